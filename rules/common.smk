# Shared definitions of the DAG: validated config, runs, code inputs, DVC generation hints.
# (Functions live here, rules in the other files, as the Snakemake workflow catalog does.)

import glob
import json
import os
import shlex
import sys

from snakemake.settings.types import DeploymentMethod

from pipeline.workflow.code_stamps import write_stamp
from pipeline.config import CLUSTERS_DIR, cluster_name, experiment_runs, layout, validate
from pipeline.data.plan import describe_sources, needed_splits
from pipeline.errors import ConfigError
from pipeline.runtime import forkserver
from pipeline.steps import TASK_METHODS



if workflow.config_settings.config:
    raise ConfigError(
        "--config overrides are not passed to the steps; put them in a preset file and use "
        "--configfile (or edit params.yaml / use `dvc exp run -S`)"
    )
validate(config, where="params.yaml")

# Rules call `python -m pipeline …`: unless a conda env is requested (--sdm conda), that is the
# interpreter running Snakemake (e.g. .venv/bin/snakemake without activating the venv).
if DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method:
    shell.prefix(f'export PATH={shlex.quote(os.path.dirname(sys.executable))}:"$PATH"; ')

# The steps read the same files Snakemake merged: params.yaml, then any --configfile presets.
PRESETS = [os.path.relpath(p) for p in workflow.overwrite_configfiles]
# (quoted: a preset's path reaches the shell; so does every value in `shell:`, through `:q`)
PARAMS = " ".join(
    f"--params {shlex.quote(p)}" for p in (["params.yaml", *PRESETS] if PRESETS else [])
)

# The tiny local encoder needs no hub: say so to transformers/datasets, which otherwise try the
# network (seconds per job, offline) — the embedded default never touches the hub.
if config["encoder"]["name"] is None:
    for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# A local run's jobs are forked from one warm interpreter (pipeline/runtime/forkserver.py): each
# skips the ~6 s of importing torch/transformers/datasets; a job the server cannot run as a fresh
# process would (another interpreter, package or environment) runs in its own. Cluster jobs never
# use it. Off: PIPELINE_FORKSERVER=0 snakemake …
onstart:
    if workflow.local_exec and forkserver.enabled():
        forkserver.start("logs/forkserver.log", watch_pid=os.getpid())


onsuccess:
    forkserver.stop_current()


onerror:
    forkserver.stop_current()

CONDA_ENV = "../envs/pipeline.yaml"  # relative to rules/
RUNS = {r.id: r for r in experiment_runs(config)}
# where each task's splits are looked up (several datasets: say so, dry runs included)
for _line in describe_sources(config):
    print(f"data sources: {_line}", file=sys.stderr)
DATASETS = config["data"]["datasets"]
LOCAL_ENCODER = config["encoder"]["name"] is None
ENCODER = "models/encoder" if LOCAL_ENCODER else config["encoder"]["name"]
# what the tiny encoder's tokenizer and MLM pretraining read (encoder.pretrain.corpus)
CORPUS = expand(
    "data/raw/{dataset}" if config["encoder"]["pretrain"]["corpus"] == "text"
    else "data/prepared/{dataset}",
    dataset=DATASETS,
)


# What one job of each step asks a scheduler for (the only place jobs are sized), so a cluster
# (profiles/slurm) and a workstation (`snakemake --resources gpu=1`) see the same numbers.
# Columns: GPU-capable?, cpus_per_task, mem_mb, runtime (minutes), sized for the real presets
# (configs/*.yaml: a hub encoder such as bert-base-multilingual-cased or xlm-roberta-base, full
# XTREME-sized data); the embedded tiny CPU encoder needs a fraction (TINY_SCALE) and no GPU.
RESOURCES = {
    # data and bookkeeping: CPU only, whatever the encoder
    "generate": (False, 1, 2000, 30),
    "download": (False, 1, 4000, 120),
    "prepare": (False, 1, 8000, 60),
    "plan": (False, 1, 4000, 15),
    "tokenizer": (False, 1, 4000, 30),
    "pseudo_tasks": (False, 2, 16000, 120),
    "report": (False, 1, 8000, 60),
    "toy2d": (False, 1, 2000, 30),
    # a model on the accelerator: one GPU when the encoder is a hub model
    "pretrain": (True, 4, 8000, 120),
    "clusters": (True, 4, 16000, 120),
    "train": (True, 4, 32000, 720),
    "finetune": (True, 4, 32000, 360),
    "represent": (True, 2, 16000, 60),
    "forgetting_pretrained": (True, 2, 16000, 60),
    "forgetting": (True, 2, 16000, 60),
}
TINY_SCALE = {"mem_mb": 8, "runtime": 4}  # divisors for the embedded tiny encoder


def job_resources(rule_name, run=None):
    """A rule's `resources:` (gpu, cpus_per_task, mem_mb, runtime), from RESOURCES.

    `gpu` is always set (0 on CPU rules), so `--resources gpu=N` bounds GPU jobs on a
    workstation and the SLURM executor asks for `--gpus` only where a model is trained or run.
    Partition and account are a cluster's business: the profile or the command line sets them.
    `run` (wildcards -> Run; train and finetune): a run with `training.processes: N` (or the
    experiment's `processes`) trains in N processes under torchrun, so its job asks for N times
    the GPUs and CPUs of one.
    """
    gpu_capable, cpus, mem_mb, runtime = RESOURCES[rule_name]
    if LOCAL_ENCODER:
        mem_mb = max(1000, mem_mb // TINY_SCALE["mem_mb"])
        runtime = max(10, runtime // TINY_SCALE["runtime"])
        cpus = 1
    gpu = int(gpu_capable and not LOCAL_ENCODER)
    if run is not None:
        def _times(n):
            return lambda wildcards: n * int(run(wildcards).params.get("processes", 1))

        gpu, cpus = _times(gpu), _times(cpus)
    return {
        "gpu": gpu,
        "cpus_per_task": cpus,
        "mem_mb": mem_mb,
        "runtime": runtime,
    }


def canon(obj):
    """A params value as canonical JSON: Snakemake's params trigger compares values in order, so a
    dict whose keys were merely reordered in params.yaml would otherwise rerun its jobs."""
    return json.dumps(obj, sort_keys=True, default=str)


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


# A step's code input is its group's stamp, one small file holding the sha256 of each file of
# the group, not the files themselves (pipeline/workflow/code_stamps.py): editing a file of a
# group reruns that group's jobs as before, and planning stats each file once per group instead
# of once per job (~55 files x every train job of a preset). The stamps are brought up to date
# here, as the rules are read (no job writes them); dvc.yaml lists the files themselves
# (pipeline/workflow/dvc_yaml.py).
CODE_STAMP = "logs/code/{group}.sha256"
CODE_GROUPS = {}  # group -> code(*modules) of its steps


def code_stamp(group, *modules):
    """The code input of the steps of `group`: its stamp over `code(*modules)`, up to date."""
    files = code(*modules)
    if group in CODE_GROUPS:
        if CODE_GROUPS[group] != files:
            raise ValueError(f"code group {group!r} declared twice with different files")
    else:
        CODE_GROUPS[group] = files
        write_stamp(CODE_STAMP.format(group=group), files)
    return CODE_STAMP.format(group=group)


# A run id is `<experiment>[.<group>…].s<seed>`, a fine-tuning run `<meta run>.ft.<all|task.lang>`.
wildcard_constraints:
    run=r"[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)*",
    dataset=r"[a-z][a-z0-9_-]*",


# params.yaml sections each step reads, for the generated dvc.yaml (`params:` of each stage).
# The seed of a run is in its id (and its foreach item), not a param: adding a seed adds stages.
DVC_PARAMS = {
    "generate": ["benchmark"],
    "prepare": ["data.layout", "data.drop_untranslated", "data.heldout_dev"],
    "plan": ["tlps", "zero_shot_langs", "experiments", "seeds", "data"],
    "tokenizer": ["encoder.tokenizer", "encoder.pretrain.corpus", "data.datasets"],
    "pretrain": ["encoder.architecture", "encoder.pretrain"],
    "train": [
        "tlps", "zero_shot_langs", "training", "experiments.${item.experiment}",
        "features", "encoder", "data", "metrics",
    ],
    "pseudo_tasks": [
        "tlps", "zero_shot_langs", "training", "experiments.${item.experiment}", "features",
        "encoder", "data",
    ],
    "clusters": ["clustering", "encoder", "data"],
    "finetune": [
        "tlps", "zero_shot_langs", "training", "finetune",
        "experiments.${item.experiment}", "features", "data", "metrics",
    ],
    "report": ["report", "seeds", "experiments", "metrics"],
}



def _run_id(wc):
    return wc["run"] if "run" in wc else f"{wc['meta']}.ft.{wc['part']}"


def _experiment(wc):
    run = RUNS[_run_id(wc)]
    return {"experiment": run.experiment, "seed": run.seed}


# Per-item fields of `foreach` stages (a run's experiment, so a stage lists only its own params).
DVC_ITEM_FIELDS = {
    "train": _experiment,
    "pseudo_tasks": _experiment,
    "finetune": _experiment,
    "prepare": lambda wc: {"layout": layout(config, wc["dataset"])},
}

def task_inputs(run):
    """What a run's pseudo-tasks depend on (pipeline.methods.xmetra_tasks.inputs)."""
    from pipeline.methods.xmetra_tasks import inputs

    return inputs(run.method, run.params, run.train_tlps)


def uses_tasks(run_id):
    """Whether a run meta-trains on pseudo-tasks (its train job reads data/tasks/<run>.json)."""
    return RUNS[run_id].method in TASK_METHODS


def run_cluster(run_id):
    """The cluster file a `clusters` run's one training TLP is split by
    (`<task>.<lang>.<datasets>.k<k>.s<seed>`, rule `clusters`), or None."""
    run = RUNS[run_id]
    return cluster_name(config, run, run.train_tlps[0])


# Inputs given by functions, as DVC deps: the runs with `init` become a second train stage
# (`train_init`) whose items name the run they start from; X-METRA runs also read their
# pseudo-tasks (`train_init_tasks`).
DVC_ITEM_DEPS = {
    "train": {
        "init": ("models/runs/${item.init}", lambda wc: RUNS[_run_id(wc)].init),
        "tasks": (
            "data/tasks/${item.tasks}.json",
            lambda wc: _run_id(wc) if uses_tasks(_run_id(wc)) else None,
        ),
        "clusters": ("data/clusters/${item.clusters}.json", lambda wc: run_cluster(_run_id(wc))),
    },
}


def heldout_text_input(path):
    """What the held-out text folder comes from: the folder of data/raw/<name> that rule
    `generate` or `download` writes (the synthetic benchmark's heldout_text/, or the registered
    source `cc100`), else the folder itself (placed by hand)."""
    parts = os.path.normpath(path).split(os.sep)
    return os.path.join(*parts[:3]) if parts[:2] == ["data", "raw"] and len(parts) > 2 else path
