"""Xia et al. (2021)'s result shapes for MetaXL and its baselines.

Written when the config has `jt` / `metaxl` experiments, under results/tables/:

    metaxl.md          Tables 2-6 shapes: per task (NER: span F1, SA: positive-class F1, the
                       paper's metrics) the test score of each target language and their average,
                       mean ± sd over seeds; rows the target-only baselines (experiments with a
                       `target` grid training on target TLPs only), then JT, JT w/ RTN and MetaXL
                       rows in config order; below, Welch's two-sample t-test of every MetaXL row
                       against the JT row with the same TLPs and source sizes
    metaxl.csv         every cell: task, row, experiment, language, metric, seeds, mean, sd
    metaxl_options.md  per row the choices where the paper and the reference code differ
                       (RTN form and layers, look-ahead step, target split, meta optimizer …)

A cell is read from the target TLP of its run's grid entry (`target`), or from every target
language of a run without a grid (the embedded default trains NER and SA in one run).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import PAIRED_METHODS, active_experiments, method_params
from pipeline.io import atomic_write_json, atomic_write_text, read_json
from pipeline.records import TLP
from pipeline.report.maml_tables import _fmt, _fmt_avg
from pipeline.report.stats import welch_t
from pipeline.report.tables import _fmt_p

#: the paper's metric per task (Xia et al. §3.2: seqeval span F1; sklearn's positive-class F1)
METRICS = {"ner": "f1", "sa": "f1"}
TITLES = {"ner": "NER (span F1)", "sa": "Sentiment (positive-class F1)"}
#: the options of metaxl_options.md (method keys; `rtn` only for JT)
OPTION_KEYS = (
    "rtn",
    "rtn_layers",
    "bottleneck",
    "transform",
    "target_split",
    "meta_lr",
    "meta_schedule",
    "lookahead_lr",
    "inner_lr",
    "inner_target",
)

#: {experiment: {tlp: {seed: value}}}
Cells = dict[str, dict[str, dict[int, float]]]


def _target_tlps(exp: Mapping[str, Any]) -> bool:
    tlps = exp.get("tlps")
    return isinstance(tlps, list) and all(t.partition("/")[2] == "target" for t in tlps)


def _tasks(exp: Mapping[str, Any]) -> set[str]:
    tlps = exp.get("tlps")
    return {t.partition("/")[0] for t in tlps} if isinstance(tlps, list) else set()


def roles(
    cfg: Mapping[str, Any], task: str | None = None
) -> tuple[list[str], dict[str, list[str]], dict[str, str]]:
    """(row labels in table order, the experiments of each row, the JT row each MetaXL row is
    tested against), over the experiments of `task` (all when None). Experiments sharing a
    `row` label form one row (the related-language setting has one experiment per target;
    candidates such as MetaXL's RTN learning rates compete per column on dev)."""
    exps = {n: e for n, e in active_experiments(cfg).items() if task is None or task in _tasks(e)}
    xl = [n for n, e in exps.items() if e.get("method") in PAIRED_METHODS and not e.get("sweep")]
    tasks = {t.partition("/")[0] for n in xl for t in exps[n].get("tlps", [])}
    bases = [
        n
        for n, e in exps.items()
        if n not in xl
        and e.get("target")
        and not e.get("sweep")
        and _target_tlps(e)
        and tasks & {t.partition("/")[0] for t in e["tlps"]}
    ]
    members: dict[str, list[str]] = {}
    for n in [*bases, *xl]:
        members.setdefault(exps[n].get("row", n), []).append(n)

    def setting(e: Mapping[str, Any]) -> tuple:
        return (json.dumps(e.get("tlps")), json.dumps(e.get("train_examples"), sort_keys=True))

    jt: dict[str, str] = {}
    for label, names in members.items():
        if not all(exps[n]["method"] == "metaxl" for n in names):
            continue
        mine = {setting(exps[n]) for n in names}
        for other, onames in members.items():
            if all(exps[o]["method"] == "jt" and not exps[o].get("rtn") for o in onames) and (
                mine & {setting(exps[o]) for o in onames}
            ):
                jt[label] = other
                break
    return list(members), members, jt


def collect(
    score_files: Sequence[Path], targets: Mapping[str, Sequence[str]]
) -> tuple[Cells, Cells]:
    """(test cells, dev main-metric cells) per experiment: the target TLPs of each run (its
    grid's `target`, else the languages `targets` names for the experiment)."""
    test: Cells = {}
    dev: Cells = {}
    for f in sorted(score_files):
        sc = read_json(f)
        exp = sc["experiment"]
        if exp not in targets or sc.get("report") is False or sc.get("sweep"):
            continue
        grid = sc.get("grid", {}).get("target")
        langs = [grid] if grid else targets[exp]
        seed = int(sc["seed"])
        for tlp, splits in sc["scores"].items():
            t = TLP.parse(tlp)
            metric = METRICS.get(t.task)
            if metric is None or t.lang not in langs or metric not in splits.get("test", {}):
                continue
            test.setdefault(exp, {}).setdefault(tlp, {})[seed] = float(splits["test"][metric])
            if "main" in splits.get("dev", {}):
                dev.setdefault(exp, {}).setdefault(tlp, {})[seed] = float(splits["dev"]["main"])
    return test, dev


def choose(
    members: Mapping[str, Sequence[str]], test: Cells, dev: Cells
) -> tuple[Cells, dict[str, dict[str, str]]]:
    """Per row and TLP the experiment with the best mean dev score (never test) among the
    row's experiments that have the cell: (cells keyed by row label, the choices)."""
    cells: Cells = {}
    picks: dict[str, dict[str, str]] = {}
    for label, names in members.items():
        tlps = dict.fromkeys(t for n in names for t in test.get(n, {}))
        for tlp in tlps:
            cands = [n for n in names if tlp in test.get(n, {})]

            def dev_mean(n: str, _tlp: str = tlp) -> float:
                vals = dev.get(n, {}).get(_tlp)
                return statistics.fmean(vals.values()) if vals else float("-inf")

            best = max(cands, key=dev_mean)  # ties: the first in config order
            cells.setdefault(label, {})[tlp] = test[best][tlp]
            picks.setdefault(label, {})[tlp] = best
    return cells, picks


def _table(
    task: str, rows: Sequence[str], cells: Cells, jt: Mapping[str, str], order: Sequence[str]
) -> str:
    have = {TLP.parse(t).lang for r in rows for t in cells.get(r, {}) if TLP.parse(t).task == task}
    langs = [lg for lg in order if lg in have]  # the config's target order
    if not langs:
        return ""
    avg = len(langs) > 1
    lines = [
        "| | " + " | ".join(langs + (["avg"] if avg else [])) + " |",
        "|---|" + "---|" * (len(langs) + avg),
    ]
    for r in rows:
        vals = [cells.get(r, {}).get(f"{task}/{lg}") for lg in langs]
        if not any(vals):
            continue
        out = [_fmt(v) for v in vals]
        if avg:
            out.append(_fmt_avg(vals))
        lines.append(f"| {r} | " + " | ".join(out) + " |")
    for x, base in jt.items():
        ps = []
        for lg in langs:
            a = cells.get(x, {}).get(f"{task}/{lg}", {})
            b = cells.get(base, {}).get(f"{task}/{lg}", {})
            ps.append(_fmt_p(welch_t(list(a.values()), list(b.values())).p) if a and b else "–")
        if any(p != "–" for p in ps):
            lines.append(f"| p, {x} vs {base} | " + " | ".join(ps) + (" | |" if avg else " |"))
    return "\n".join(lines)


def _options(cfg: Mapping[str, Any], members: Mapping[str, Sequence[str]]) -> str:
    exps = active_experiments(cfg)
    lines = [
        "| row | method | tlps | train_examples | " + " | ".join(OPTION_KEYS) + " |",
        "|---|---|---|---|" + "---|" * len(OPTION_KEYS),
    ]
    for label, r in ((lb, n) for lb, names in members.items() for n in names):
        e = exps[r]
        p = method_params(e["method"], e) if e["method"] in PAIRED_METHODS else {}
        vals = [str(p.get(k, "–")) if k in p else "–" for k in OPTION_KEYS]
        caps = e.get("train_examples") or {}
        lines.append(
            f"| {label} ({r}) | {e['method']} | {', '.join(e.get('tlps', []))} | "
            f"{', '.join(f'{k}: {v}' for k, v in caps.items()) or 'all'} | "
            + " | ".join(vals)
            + " |"
        )
    return "\n".join(lines)


def write_metaxl_tables(cfg: Mapping[str, Any], score_files: Sequence[Path], out: Path) -> bool:
    """Write the tables of the module docstring; False (nothing written) without MetaXL runs."""
    exps = active_experiments(cfg)
    if not any(e.get("method") in PAIRED_METHODS for e in exps.values()):
        return False
    targets: dict[str, list[str]] = {}
    for n, e in exps.items():
        paired = e.get("method") in PAIRED_METHODS
        own = e.get("target") or (method_params(e["method"], e)["targets"] if paired else [])
        targets[n] = list(own)
    test, dev = collect(score_files, targets)
    order = list(dict.fromkeys(lg for langs in targets.values() for lg in langs))
    parts = ["# MetaXL and its baselines (Xia et al. 2021, Tables 2-6 shapes)", ""]
    parts.append(
        "Test mean ± sd over seeds of each target language (the step chosen on the target's "
        "dev set; a row of several experiments takes, per column, the one best on dev: "
        "metaxl_choices.json); p: Welch's two-sample t-test (unequal variances) over the "
        "seeds, two-sided. Published numbers carry the reference code's XLM-R special-token "
        "and position-id bugs (seed-implementations §3.3, X3-X4), not reproduced here."
    )
    per_task: dict[str, tuple[list[str], dict[str, list[str]], Cells, dict[str, dict[str, str]]]]
    per_task = {}
    for task in METRICS:
        rows, members, jt = roles(cfg, task)
        cells, picks = choose(members, test, dev)
        body = _table(task, rows, cells, jt, order)
        if body:
            parts += ["", f"## {TITLES[task]}", "", body]
            per_task[task] = (rows, members, cells, picks)
    tables = out / "tables"
    atomic_write_text(tables / "metaxl.md", "\n".join(parts) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "row", "experiment", "lang", "metric", "seeds", "mean", "sd"])
    for task, (rows, _, cells, picks) in per_task.items():
        for r in rows:
            for tlp, vals in sorted(cells.get(r, {}).items()):
                if TLP.parse(tlp).task != task:
                    continue
                v = list(vals.values())
                sd = statistics.stdev(v) if len(v) > 1 else ""
                lang = TLP.parse(tlp).lang
                w.writerow(
                    [task, r, picks[r][tlp], lang, METRICS[task], len(v), statistics.fmean(v), sd]
                )
    atomic_write_text(tables / "metaxl.csv", buf.getvalue())
    choices: dict[str, dict[str, str]] = {}
    for _, _, _, picks in per_task.values():
        for label, got in picks.items():
            choices.setdefault(label, {}).update(got)
    atomic_write_json(tables / "metaxl_choices.json", choices)
    _, members, _ = roles(cfg)
    opts = ["# MetaXL options per experiment (where the paper and the reference code differ)", ""]
    opts.append(_options(cfg, members))
    atomic_write_text(tables / "metaxl_options.md", "\n".join(opts) + "\n")
    return True
