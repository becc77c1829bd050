# Shared definitions of the DAG: validated config, runs, code inputs, DVC generation hints.
# (Functions live here, rules in the other files, as the Snakemake workflow catalog does.)

import glob
import os

from pipeline.config import experiment_runs, validate
from pipeline.errors import ConfigError



if workflow.config_settings.config:
    raise ConfigError(
        "--config overrides are not passed to the steps; put them in a preset file and use "
        "--configfile (or edit params.yaml / use `dvc exp run -S`)"
    )
validate(config, where="params.yaml")

# The steps read the same files Snakemake merged: params.yaml, then any --configfile presets.
PRESETS = [os.path.relpath(p) for p in workflow.overwrite_configfiles]
PARAMS = " ".join(f"--params {p}" for p in (["params.yaml", *PRESETS] if PRESETS else []))

CONDA_ENV = "../envs/pipeline.yaml"  # relative to rules/
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
    run=r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)*",
    dataset=r"[a-z][a-z0-9_-]*",


# params.yaml sections each step reads, for the generated dvc.yaml (`params:` of each stage).
DVC_PARAMS = {
    "generate": ["benchmark"],
    "prepare": ["data.layout"],
    "tokenizer": ["encoder.tokenizer", "data.datasets"],
    "pretrain": ["seed", "encoder.architecture", "encoder.pretrain"],
    "train": [
        "seed", "tlps", "zero_shot_langs", "training", "experiments.${item.experiment}",
        "features", "encoder.name",
    ],
    "finetune": [
        "seed", "tlps", "zero_shot_langs", "training", "finetune",
        "experiments.${item.experiment}", "features", "encoder.name",
    ],
    "predict": ["tlps", "zero_shot_langs", "experiments.${item.experiment}", "features"],
    "score": ["tlps", "zero_shot_langs", "experiments.${item.experiment}"],
    "report": ["report"],
}



def _experiment(wc):
    run = wc["run"] if "run" in wc else f"{wc['meta']}.ft.{wc['tlp']}"
    return {"experiment": RUNS[run].experiment}


# Per-item fields of `foreach` stages (a run's experiment, so a stage lists only its own params).
DVC_ITEM_FIELDS = {"train": _experiment, "finetune": _experiment, "predict": _experiment, "score": _experiment}
