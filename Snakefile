# The DAG: download/generate -> prepare -> tokenizer -> pretrain -> train -> predict -> score -> report.
# Every rule is a thin `python -m pipeline <command>` call; `params:` carries the config values each
# step reads, so Snakemake's params trigger reruns exactly the steps a params.yaml change affects.
# dvc.yaml is generated from this DAG: `python -m pipeline dvc-yaml` (checked by `make check`).

import glob
import os

from pipeline.config import experiment_runs, validate
from pipeline.errors import ConfigError


configfile: "params.yaml"


if workflow.config_settings.config:
    raise ConfigError(
        "--config overrides are not passed to the steps; put them in a preset file and use "
        "--configfile (or edit params.yaml / use `dvc exp run -S`)"
    )
validate(config, where="params.yaml")

# The steps read the same files Snakemake merged: params.yaml, then any --configfile presets.
PRESETS = [os.path.relpath(p) for p in workflow.overwrite_configfiles]
PARAMS = " ".join(f"--params {p}" for p in (["params.yaml", *PRESETS] if PRESETS else []))

RUNS = {r.id: r for r in experiment_runs(config)}
DATASETS = config["data"]["datasets"]
LOCAL_ENCODER = config["encoder"]["name"] is None
ENCODER = "models/encoder" if LOCAL_ENCODER else config["encoder"]["name"]


def code(*modules):
    """The pipeline/ files a step runs (inputs, so a code change reruns the step).

    A package folder stands for every .py file below it.
    """
    base = ["__init__.py", "cli.py", "steps.py", "config.py", "io.py", "records.py", "errors.py"]
    files = set()
    for m in [*base, *modules]:
        path = os.path.join("pipeline", m)
        if os.path.isdir(path):
            files.update(glob.glob(os.path.join(path, "**", "*.py"), recursive=True))
        else:
            files.add(path)
    return sorted(files)


wildcard_constraints:
    run=r"[a-z][a-z0-9_]*(\.[a-z]+\.[A-Za-z0-9_-]+)?",
    dataset=r"[a-z][a-z0-9_-]*",


include: "rules/data.smk"
include: "rules/encoder.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    input:
        "results/metrics.json",
    default_target: True


# params.yaml sections each step reads, for the generated dvc.yaml (`params:` of each stage).
DVC_PARAMS = {
    "generate": ["benchmark"],
    "prepare": ["data.layout"],
    "tokenizer": ["encoder.tokenizer", "data.datasets"],
    "pretrain": ["seed", "encoder.architecture", "encoder.pretrain"],
    "train": ["seed", "tlps", "zero_shot_langs", "training", "experiments", "features", "encoder.name"],
    "predict": ["tlps", "zero_shot_langs", "features"],
    "score": ["tlps", "zero_shot_langs"],
    "report": ["report"],
}
