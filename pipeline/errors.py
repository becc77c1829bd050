"""One exception type for bad input, so the CLI can print it as one line and exit non-zero."""


class PipelineError(Exception):
    """Bad input or configuration. The message names the file/line/key and what was expected."""


class ConfigError(PipelineError):
    """An invalid value in params.yaml (or a preset); the message starts with the key path."""


class DataError(PipelineError):
    """A malformed raw or prepared data file; the message starts with `file:line:`."""


class TrainingError(PipelineError):
    """Training cannot go on (a non-finite loss); the message names the run, step and TLPs."""
