"""Generate dvc.yaml from the Snakemake DAG: one DVC stage per rule, `foreach` over wildcards.

The DAG is built with Snakemake's own API (forceall, so every job appears). For each rule, the
stage command is the rule's `shell:` template formatted with `${item}` for the wildcard (the same
`python -m pipeline …` command Snakemake runs, minus the log redirect), deps are the rule's
inputs (data and the pipeline/ modules it runs: a code stamp, logs/code/<group>.sha256, is
written as its group's files, which DVC hashes itself), outs its outputs, and `params:` the
params.yaml sections the step reads (DVC_PARAMS in the rules). Every output, metrics and plots
included, is cached by DVC and ignored by git: nothing a run computes is committed (a fresh clone
computes it again); `dvc exp show` and `dvc metrics diff` read committed experiments' metrics
from DVC's cache through dvc.lock. The benchmark results (results/bench/) are top-level metrics
only, no stage's output.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import PipelineError
from pipeline.io import atomic_write_text

HEADER = (
    "# GENERATED from the Snakemake DAG by `python -m pipeline dvc-yaml`. Do not edit by hand:\n"
    "# change Snakefile / rules/*.smk and regenerate (`make dvc.yaml`; `make check` fails if stale).\n"
)

#: outputs declared as DVC metrics (cached like every output; see the module docstring)
METRICS = {"results/metrics.json"}
#: the benchmark scripts' results (scripts/bench*.py: one JSON file per group, `metrics` flat
#: numbers), a top-level metrics folder but no stage's output, so `dvc metrics show/diff` list
#: them (DVC reads every JSON file of a listed folder)
BENCH_METRICS = "results/bench"

_TOY2D_CSV = "results/toy2d/trajectories.csv"
_TOY2D_SWEEP = "results/toy2d/sweep.csv"
#: Lee et al. Figure 3 (rule `toy2d`, when it is in the DAG): the trajectories on the plane, the
#: summed loss and the gradient cosine along them, the sweep's end cosine and distance to the
#: nearest minimum per K (.dvc/plots/toy2d_paths.json: a line per `method`, in `step` order;
#: toy2d_sweep.json: a line per `method` and inner `lr`), and the two images
TOY2D_PLOTS: list[Any] = [
    {
        _TOY2D_CSV: {
            "x": "phi1",
            "y": "phi2",
            "template": "toy2d_paths",
            "title": "Lee et al. Fig. 3: trajectories from (20, 5); minima (0, 10), (0, 0), (10, 0)",
        }
    },
    {
        "toy2d_sum_loss": {
            "x": "step",
            "y": {_TOY2D_CSV: "sum_loss"},
            "template": "toy2d_paths",
            "title": "2-D study: sum of the task losses per step",
        }
    },
    {
        "toy2d_cosine": {
            "x": "step",
            "y": {_TOY2D_CSV: "cosine"},
            "template": "toy2d_paths",
            "title": "2-D study: mean pairwise gradient cosine per step (Fig. 3h)",
        }
    },
    {
        _TOY2D_SWEEP: {
            "x": "K",
            "y": "cosine_end",
            "template": "toy2d_sweep",
            "title": "2-D study sweep: gradient cosine at the end per K and inner lr",
        }
    },
    {
        "toy2d_sweep_distance": {
            "x": "K",
            "y": {_TOY2D_SWEEP: "distance_to_nearest"},
            "template": "toy2d_sweep",
            "title": "2-D study sweep: distance from the nearest minimum at the end",
        }
    },
    "results/toy2d/trajectories.png",
    "results/toy2d/cosine.png",
]


def _build_dag(snakefile: Path, workdir: Path) -> Any:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
    )

    out = OutputSettings(quiet={Quietness.ALL}, enable_file_logging=False)
    with SnakemakeApi(out) as api:
        wf_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(),
            snakefile=snakefile,
            workdir=workdir,
        )
        dag_api = wf_api.dag(dag_settings=DAGSettings(forceall=True))
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(
            forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True
        )
        workflow._build_dag()
        return workflow


def _fmt_value(v: Any) -> str:
    if isinstance(v, list | tuple):
        return " ".join(map(str, v))
    return str(v)


def _template(text: str, wildcards: list[str]) -> str:
    """A Snakemake file pattern with its wildcards (constraints stripped) as `${item.<name>}`."""
    text = re.sub(r"\{(\w+),[^}]*\}", r"{\1}", str(text))
    for wc in wildcards:
        text = text.replace("{" + wc + "}", "${item." + wc + "}")
    return text


def _lookup(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _command(
    rule: Any,
    job: Any,
    wildcards: list[str],
    config: dict[str, Any],
    keys: list[str],
    item_keys: frozenset[str] = frozenset(),
) -> str:
    """The rule's shell template with wildcards as ${item}, log redirect dropped.

    A `params.X` that is also a per-item field (`item_keys`: values that differ between the
    jobs of a rule, e.g. each dataset's layout) becomes `${item.X}`; a scalar `params.X` equal
    to a params.yaml key the stage declares becomes `${key}`, so DVC fills in the current value.
    """
    # (`:q`, Snakemake's shell quoting, is dropped: DVC fills in values from its own dvc.yaml)
    cmd = re.sub(r"\s*>\s*\{log(?::q)?\}\s*2>&1\s*$", "", rule.shellcmd.strip())

    def sub(m: re.Match) -> str:
        kind, _, name = m.group(1).partition(".")
        if kind == "PARAMS":
            return ""
        if kind == "wildcards":
            return "${item." + name + "}"
        if kind in ("input", "output"):
            files = rule.input if kind == "input" else rule.output
            chosen = getattr(files, name) if name else files
            pats = [chosen] if isinstance(chosen, str) else [str(f) for f in chosen]
            return " ".join(_template(p, wildcards) for p in pats)
        if kind == "params":
            if name in item_keys:
                return "${item." + name + "}"
            value = getattr(job.params, name)
            for key in keys:
                if "$" not in key and not isinstance(value, dict | list):
                    if _lookup(config, key) == value:
                        return "${" + key + "}"
            return _fmt_value(value)
        raise PipelineError(f"dvc-yaml: rule {rule.name}: cannot translate {{{m.group(1)}}}")

    cmd = re.sub(r"\{([A-Za-z_.]+)(?::q)?\}", sub, cmd)
    return re.sub(r"\s+", " ", cmd).strip()


def _paths(
    files: Any,
    wildcards: list[str],
    skip: frozenset[int] = frozenset(),
    stamps: dict[str, list[str]] | None = None,
) -> list[str]:
    """The patterns of `files` as DVC paths; a code stamp (`stamps`: stamp path -> its group's
    files) stands for its files, which DVC hashes itself."""
    out = []
    for f in files:
        if id(f) in skip:
            continue
        if callable(f):
            raise PipelineError(
                "dvc-yaml: input functions cannot be written as DVC deps; use a pattern "
                "(or declare the input in DVC_ITEM_DEPS)"
            )
        s = _template(str(f), wildcards)
        for p in (stamps or {}).get(s, [s]):
            if p not in out:
                out.append(p)
    return out


def code_stamps(workflow: Any) -> dict[str, list[str]]:
    """Stamp path -> the code files of its group (CODE_STAMP, CODE_GROUPS in rules/common.smk)."""
    pattern = workflow.globals.get("CODE_STAMP")
    groups = workflow.globals.get("CODE_GROUPS", {})
    return {pattern.format(group=g): list(files) for g, files in groups.items()} if pattern else {}


def _split_jobs(rule: Any, jobs: list[Any], item_deps: dict[str, Any]) -> list[tuple]:
    """The stages of one rule: (stage name, jobs, extra deps, item fields of the extra deps).

    An input given by a function (DVC_ITEM_DEPS: {rule: {name: (template, fn)}}, `fn(wildcards)`
    the item value or None) cannot be one DVC pattern: the rule's jobs are grouped by which of
    these inputs they have, each group a stage `<rule>[_<name>…]` with those deps (e.g. a
    run's `init` and its pseudo-tasks: `train`, `train_init`, `train_init_tasks`)."""
    deps = item_deps.get(rule.name, {})
    if not deps:
        return [(rule.name, jobs, [], {})]
    groups: dict[tuple[str, ...], list[Any]] = {}
    for job in jobs:
        have = tuple(n for n, (_, fn) in deps.items() if fn(job.wildcards_dict) is not None)
        groups.setdefault(have, []).append(job)
    out = []
    for have in sorted(groups, key=lambda h: (len(h), h)):
        name = "_".join([rule.name, *have])
        chosen = {n: deps[n] for n in have}
        out.append((name, groups[have], [t for t, _ in chosen.values()], chosen))
    return out


def stages_from_workflow(
    workflow: Any,
    dvc_params: dict[str, list[str]],
    item_fields: dict[str, Any],
    item_deps: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One stage per rule; a rule with wildcards becomes a `foreach` over its jobs.

    Items are dicts holding the job's wildcard values (and `item_fields[rule](wildcards)`, e.g.
    a run's experiment for its `params:`), keyed by the name of the job's first output.
    """
    jobs_by_rule: dict[str, list[Any]] = {}
    for job in workflow.dag.jobs:
        jobs_by_rule.setdefault(job.rule.name, []).append(job)
    stages: dict[str, Any] = {}
    stamps = code_stamps(workflow)
    for rule in workflow.rules:
        jobs = jobs_by_rule.get(rule.name)
        if not jobs or not rule.shellcmd:
            continue  # `all` and rules not in this DAG
        # the inputs DVC_ITEM_DEPS declares are written by `_split_jobs`, not as patterns
        declared = rule.name in (item_deps or {})
        skip = frozenset(id(f) for f in rule.input if callable(f) and declared)
        for name, group, extra_deps, fields in _split_jobs(rule, jobs, item_deps or {}):
            stages[name] = _stage(
                rule, group, extra_deps, fields, skip, workflow, dvc_params, item_fields, stamps
            )
    return stages


def _stage(
    rule: Any,
    jobs: list[Any],
    extra_deps: list[str],
    dep_fields: dict[str, Any],
    skip: frozenset[int],
    workflow: Any,
    dvc_params: dict[str, list[str]],
    item_fields: dict[str, Any],
    stamps: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The DVC stage of some jobs of one rule (see `stages_from_workflow`)."""
    wcs = sorted(rule.wildcard_names)
    keys = dvc_params.get(rule.name, [])
    outs: list[Any] = []
    metrics: list[Any] = []
    for o in _paths(rule.output, wcs):
        (metrics if o in METRICS else outs).append(o)
    extra = item_fields.get(rule.name, lambda wc: {})
    first = {k: jobs[0].wildcards_dict[k] for k in wcs}
    item_keys = frozenset(extra(first)) if wcs else frozenset()
    cmd = _command(rule, jobs[0], wcs, workflow.config, keys, item_keys)
    stage: dict[str, Any] = {"cmd": cmd}
    deps = _paths(rule.input, wcs, skip, stamps) + extra_deps
    if deps:
        stage["deps"] = deps
    if keys:
        stage["params"] = list(keys)
    if outs:
        stage["outs"] = outs
    if metrics:
        stage["metrics"] = metrics
    if wcs:
        items = {}
        for job in sorted(jobs, key=lambda j: str(j.output[0])):
            wc = {k: job.wildcards_dict[k] for k in wcs}
            fields = {n: fn(job.wildcards_dict) for n, (_, fn) in dep_fields.items()}
            key = Path(str(job.output[0])).name.removesuffix(".json")
            items[key] = {**wc, **extra(wc), **fields}
        return {"foreach": items, "do": stage}
    return stage


def render(snakefile: Path = Path("Snakefile"), workdir: Path = Path(".")) -> str:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        workflow = _build_dag(snakefile.resolve(), workdir.resolve())
    dvc_params = workflow.globals.get("DVC_PARAMS", {})
    item_fields = workflow.globals.get("DVC_ITEM_FIELDS", {})
    doc = {
        "stages": stages_from_workflow(
            workflow, dvc_params, item_fields, workflow.globals.get("DVC_ITEM_DEPS", {})
        ),
        "metrics": [*sorted(METRICS), BENCH_METRICS],
        "plots": [
            {"results/plots/train_loss": {"x": "step", "y": "loss", "template": "linear"}},
            {"results/plots/dev_score": {"x": "step", "y": "dev_mean", "template": "linear"}},
            {
                "results/plots/grad_cosine": {
                    "x": "step",
                    "y": "mean_pairwise_cosine",
                    "template": "linear",
                }
            },
            {"results/plots/multidds": {"x": "step", "y": "prob", "template": "linear"}},
            # Lee et al. Fig. 7c: dev score against training batches (gradient computations)
            {"results/plots/efficiency": {"x": "batches", "y": "dev_mean", "template": "linear"}},
            # Lee et al. Fig. 4 (cosine per step, mean over seeds), Fig. 7a (cosine vs the MTL
            # training loss), Fig. 7b (cosine and test score per inner learning rate), and their
            # PNGs (pipeline.report.lee_tables; DVC shows image paths as images)
            {
                "results/plots/grad_cosine_by_method": {
                    "x": "step",
                    "y": "mean",
                    "template": "linear",
                }
            },
            {
                "results/plots/tradeoff": {
                    "x": "mean_task_loss",
                    "y": "mean_pairwise_cosine",
                    "template": "scatter",
                }
            },
            {
                "results/plots/inner_lr": {
                    "x": "value",
                    "y": ["cos_mean", "score_mean"],
                    "template": "linear",
                }
            },
            "results/plots/grad_cosine_by_method.png",
            "results/plots/tradeoff.png",
            "results/plots/inner_lr.png",
            # Lee et al. Fig. 5: MLM loss on seen / unseen languages and l2 distance from the
            # pretrained encoder per experiment (pipeline.report.forgetting_tables; bar charts,
            # and the same as PNGs in the folder)
            {
                "results/plots/forgetting": {
                    "x": "value",
                    "y": "experiment",
                    "template": "bar_horizontal",
                }
            },
            # M'hamdi et al. §4.2: score per sweep value (k = q shots, dev_fraction)
            {"results/plots/sweeps": {"x": "value", "y": "mean", "template": "linear"}},
            # Xia et al. Figures 1 and 3: PCA of source vs target representations, per paired run
            # and task (.dvc/plots/representations.json: the scatter template colored by `lang`)
            {
                "results/plots/representations": {
                    "x": "pc1",
                    "y": "pc2",
                    "template": "representations",
                }
            },
        ],
    }
    if "toy2d" in doc["stages"]:
        doc["plots"] += TOY2D_PLOTS
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=100)


def write_dvc_yaml(out: Path, check: bool = False) -> dict[str, Any]:
    text = render()
    if check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            raise PipelineError(f"{out} is stale: regenerate it with `python -m pipeline dvc-yaml`")
        return {"fresh": str(out)}
    atomic_write_text(out, text)
    return {
        "written": str(out),
        "stages": text.count("\n  ") and len(yaml.safe_load(text)["stages"]),
    }
