"""The data plan: which prepared dataset provides every split the runs need, checked before any
training starts.

Every trained TLP needs its train and dev splits (dev selects the model; a run with
`train_split: dev` or `dev_tlps` trains on dev), every evaluated TLP its dev and test splits. A TLP that no dataset provides (a language the benchmark lacks, XTREME's
unlabelled test files, a zero-shot language a task does not have) stops the DAG right after
`prepare`, with one line naming the TLP, the split and the datasets searched — instead of inside
a training job hours later. The plan (`data/plan.json`) also records where each split came from,
and the score files repeat it per split: under `splits` for the runs that read `data.sources`,
and under `source_sets` for the experiments whose own `sources` change it (Lee et al.'s qa/en:
TyDiQA train for the multi-task table, SQuAD train for the zero-shot one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import (
    Run,
    active_experiments,
    data_sources,
    experiment_runs,
    experiment_sources,
    train_split_of,
)
from pipeline.data.store import Sources, prepared_tlps
from pipeline.errors import ConfigError
from pipeline.io import read_json
from pipeline.records import TLP


def needed_splits(runs: Sequence[Run]) -> dict[TLP, set[str]]:
    """TLP -> the splits some run reads (train and dev to train, dev and test to evaluate)."""
    need: dict[TLP, set[str]] = {}
    for r in runs:
        for t in r.train_tlps:  # a TLP trained on its dev split reads no train split
            need.setdefault(t, set()).update((train_split_of(r.params, t), "dev"))
        for t in r.eval_tlps:
            need.setdefault(t, set()).update(("dev", "test"))
    return need


def _why_missing(d: Path, tlp: TLP, split: str) -> str:
    """A hint from the prepared summary: records of this TLP split skipped, and why."""
    summary = read_json(d / "summary.json")
    reasons = [
        f"{n} {reason}"
        for reason, n in summary.get("skipped", {}).items()
        if str(tlp) in reason and split in reason
    ]
    return f" (skipped: {'; '.join(reasons)})" if reasons else ""


def resolve(sources: Sources, need: Mapping[TLP, set[str]]) -> dict[str, dict[str, Any]]:
    """{tlp: {split: {"dataset": name, "n": records}}}, or a ConfigError naming the first TLP
    split that none of its candidate datasets holds."""
    have = {d: prepared_tlps(d) for d in sources}
    counts = {d: read_json(d / "summary.json")["counts"] for d in sources}
    plan: dict[str, dict[str, Any]] = {}
    for tlp in sorted(need, key=str):
        for split in sorted(need[tlp], key=("train", "dev", "test").index):
            cands = sources.candidates(tlp.task, split)
            found = next((d for d in cands if split in have.get(d, {}).get(tlp, [])), None)
            if found is None:
                names = ", ".join(d.name for d in cands)
                hint = "".join(_why_missing(d, tlp, split) for d in cands if d in counts)
                langs = sorted(
                    {t.lang for d in cands for t in have.get(d, {}) if t.task == tlp.task}
                )
                raise ConfigError(
                    f"{tlp}: no labelled {split} split in {names}{hint}; "
                    f"{tlp.task} has languages {', '.join(langs) or 'none'} there"
                )
            plan.setdefault(str(tlp), {})[split] = {
                "dataset": found.name,
                "n": counts[found][str(tlp)][split],
            }
    return plan


def source_sets(cfg: Mapping[str, Any]) -> list[tuple[list[str], dict[str, Any]]]:
    """(experiments, their `experiment_sources`) per distinct source set of the experiments
    whose `sources` change `data.sources`, in experiment order."""

    def key(experiment: str | None) -> tuple:  # `qa: {dev: b}` and `qa: {dev: [b]}` are one set
        per = data_sources(cfg, experiment).per_split
        return tuple(sorted((k, tuple(map(str, v))) for k, v in per.items()))

    default = key(None)
    sets: dict[tuple, tuple[list[str], dict[str, Any]]] = {}
    for name in active_experiments(cfg):
        if key(name) != default:
            sets.setdefault(key(name), ([], experiment_sources(cfg, name)))[0].append(name)
    return list(sets.values())


def make_plan(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The plan of a config whose datasets are prepared (see the module docstring).

    `splits` covers the runs that read `data.sources`; each experiment `sources` set that
    changes it adds an entry of `source_sets` ({experiments, sources, splits}) for its runs.
    """
    runs = experiment_runs(cfg)
    sets = source_sets(cfg)
    moved = {n for names, _ in sets for n in names}
    plan: dict[str, Any] = {
        "splits": resolve(
            data_sources(cfg), needed_splits([r for r in runs if r.experiment not in moved])
        )
    }
    if sets:
        plan["source_sets"] = [
            {
                "experiments": names,
                "sources": srcs,
                "splits": resolve(
                    data_sources(cfg, names[0]),
                    needed_splits([r for r in runs if r.experiment in names]),
                ),
            }
            for names, srcs in sets
        ]
    return plan


def plan_splits(plan: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """The resolved splits of one experiment's runs in a plan (`make_plan`)."""
    for entry in plan.get("source_sets", []):
        if experiment in entry["experiments"]:
            return entry["splits"]
    return plan["splits"]


def describe_sources(cfg: Mapping[str, Any]) -> list[str]:
    """One line per task whose splits may come from several datasets (shown by every run of
    the Snakefile, dry runs included): where each split is looked up, in order."""
    datasets = cfg["data"]["datasets"]
    explicit = cfg["data"].get("sources", {})
    if len(datasets) < 2 and not explicit:
        return []
    tasks = sorted({TLP.parse(t).task for t in cfg["tlps"]})

    def line(task: str, srcs: Mapping[str, Any]) -> str:
        parts = []
        for split in ("train", "dev", "test"):
            names = srcs.get(task, {}).get(split, datasets)
            names = [names] if isinstance(names, str) else names
            parts.append(f"{split} <- {' | '.join(names)}")
        return f"{task}: " + "; ".join(parts)

    lines = [line(task, explicit) for task in tasks]
    for names, srcs in source_sets(cfg):  # the experiments with sources of their own
        changed = sorted(t for t in srcs if srcs[t] != explicit.get(t))
        lines += [
            f"{task} ({', '.join(names)}): {line(task, srcs)[len(task) + 2 :]}" for task in changed
        ]
    return lines
