"""Code stamps: the code a group of pipeline steps runs, as one small file.

A step's jobs take the stamp of their group (`code_stamp` in rules/common.smk) as their code
input instead of every pipeline/ file the step runs, so planning a large preset's DAG stats each
file once per group rather than once per job. A stamp holds one `<sha256>  <path>` line per file
(`sha256sum`'s format: `sha256sum -c logs/code/train.sha256` checks it). It is written while
Snakemake reads the rules, before any DAG is built, and only when what it holds changes:

* a changed stamp (a file edited, or added to or dropped from the group) is written now, newer
  than every output of its group's jobs: they rerun;
* a missing stamp (a fresh clone, `dvc pull`, `rm -rf logs`) is written with the time of the
  newest of its files, so the jobs rerun exactly when one of those is newer than their outputs,
  as when the files themselves were the inputs;
* an unchanged stamp is left as it is (a file touched but not changed reruns nothing).

No stamp is a job's output: none can go missing while the outputs it stands for stay (Snakemake
would not notice a code change behind a missing intermediate file, and would rerun every job of
the group once it had to make it again).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.io import atomic_write_text, sha256_file

#: (path, mtime_ns, size) -> sha256: the groups share files (cli.py, config.py, ...)
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _digest(path: str) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise PipelineError(f"code stamp: {path} does not exist (named in rules/*.smk)") from None
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def stamp_text(files: Sequence[str]) -> str:
    """What the stamp of `files` holds: `<sha256>  <path>` per file, in the given order."""
    return "".join(f"{_digest(f)}  {f}\n" for f in files)


def write_stamp(path: str | os.PathLike, files: Sequence[str]) -> bool:
    """Bring the stamp at `path` up to date with `files`; whether it was written (see above)."""
    text = stamp_text(files)
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
        missing = False
    except FileNotFoundError:
        missing = True
    atomic_write_text(path, text)
    if missing and files:
        newest = max(os.stat(f).st_mtime_ns for f in files)
        os.utime(path, ns=(newest, newest))
    return True
