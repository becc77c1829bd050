"""Generate dvc.yaml from the Snakemake DAG: one DVC stage per rule, `foreach` over wildcards.

The DAG is built with Snakemake's own API (forceall, so every job appears). For each rule, the
stage command is the rule's `shell:` template formatted with `${item}` for the wildcard (the same
`python -m pipeline …` command Snakemake runs, minus the log redirect), deps are the rule's
inputs (data and the pipeline/ modules it runs), outs its outputs, and `params:` the params.yaml
sections the step reads (DVC_PARAMS in the rules). Metrics and plots are declared with
`cache: false` so `dvc metrics show`, `dvc plots show` and `dvc exp show` read them from git.
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

#: outputs declared as DVC metrics / plots (not cached: committed to git with the experiment)
METRICS = {"results/metrics.json"}
PLOTS = {"results/plots"}
UNCACHED = {"results/tables"}


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
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(),
            snakefile=snakefile,
            workdir=workdir,
        )
        dag_api = wf_api.dag(dag_settings=DAGSettings(forceall=True))
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        return workflow


def _fmt_value(v: Any) -> str:
    if isinstance(v, list | tuple):
        return " ".join(map(str, v))
    return str(v)


def _template(text: str, wildcard: str | None) -> str:
    return text.replace("{" + wildcard + "}", "${item}") if wildcard else text


def _command(rule: Any, job: Any, wildcard: str | None) -> str:
    """The rule's shell template with wildcards as ${item}, log redirect dropped."""
    cmd = re.sub(r"\s*>\s*\{log\}\s*2>&1\s*$", "", rule.shellcmd.strip())

    def sub(m: re.Match) -> str:
        kind, _, name = m.group(1).partition(".")
        if kind == "PARAMS":
            return ""
        if kind == "wildcards":
            return "${item}"
        if kind in ("input", "output"):
            files = rule.input if kind == "input" else rule.output
            pats = [str(f) for f in (getattr(files, name) if name else files)]
            pats = pats if isinstance(pats, list) else [pats]
            return " ".join(_template(p, wildcard) for p in pats)
        if kind == "params":
            return _fmt_value(getattr(job.params, name))
        raise PipelineError(f"dvc-yaml: rule {rule.name}: cannot translate {{{m.group(1)}}}")

    cmd = re.sub(r"\{([A-Za-z_.]+)\}", sub, cmd)
    return re.sub(r"\s+", " ", cmd).strip()


def _paths(files: Any, wildcard: str | None, exclude: set[str] = frozenset()) -> list[str]:
    out = []
    for f in files:
        s = _template(str(f), wildcard)
        if s not in exclude and s not in out:
            out.append(s)
    return out


def stages_from_workflow(workflow: Any, dvc_params: dict[str, list[str]]) -> dict[str, Any]:
    jobs_by_rule: dict[str, list[Any]] = {}
    for job in workflow.dag.jobs:
        jobs_by_rule.setdefault(job.rule.name, []).append(job)
    stages: dict[str, Any] = {}
    order = [r.name for r in workflow.rules]
    for name in order:
        jobs = jobs_by_rule.get(name)
        rule = workflow.get_rule(name)
        if not jobs or not rule.shellcmd:
            continue  # `all` and rules not in this DAG
        wildcards = sorted(rule.wildcard_names)
        if len(wildcards) > 1:
            raise PipelineError(f"dvc-yaml: rule {name} has several wildcards {wildcards}")
        wc = wildcards[0] if wildcards else None
        job = jobs[0]
        outs: list[Any] = []
        for o in _paths(rule.output, wc):
            if o in METRICS:
                continue
            if any(o == p or o.startswith(p + "/") for p in PLOTS | UNCACHED):
                outs.append({o: {"cache": False}})
            else:
                outs.append(o)
        stage: dict[str, Any] = {"cmd": _command(rule, job, wc)}
        deps = _paths(rule.input, wc)
        if deps:
            stage["deps"] = deps
        if dvc_params.get(name):
            stage["params"] = list(dvc_params[name])
        if outs:
            stage["outs"] = outs
        metrics = [o for o in _paths(rule.output, wc) if o in METRICS]
        if metrics:
            stage["metrics"] = [{m: {"cache": False}} for m in metrics]
        if wc:
            values = sorted({j.wildcards_dict[wc] for j in jobs})
            stages[name] = {"foreach": values, "do": stage}
        else:
            stages[name] = stage
    return stages


def render(snakefile: Path = Path("Snakefile"), workdir: Path = Path(".")) -> str:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        workflow = _build_dag(snakefile.resolve(), workdir.resolve())
    dvc_params = workflow.globals.get("DVC_PARAMS", {})
    doc = {
        "stages": stages_from_workflow(workflow, dvc_params),
        "metrics": sorted(METRICS),
        "plots": [
            {"results/plots/train_loss": {"x": "step", "y": "loss", "template": "linear"}},
            {"results/plots/dev_score": {"x": "step", "y": "dev_mean", "template": "linear"}},
        ],
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=100)


def write_dvc_yaml(out: Path, check: bool = False) -> dict[str, Any]:
    text = render()
    if check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            raise PipelineError(f"{out} is stale: regenerate it with `python -m pipeline dvc-yaml`")
        return {"fresh": str(out)}
    atomic_write_text(out, text)
    return {"written": str(out), "stages": text.count("\n  ") and len(yaml.safe_load(text)["stages"])}
