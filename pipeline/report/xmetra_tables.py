"""M'hamdi et al. (2021)'s result shapes for X-METRA(-ADA) and its baselines.

Written when the config has `xmetra` / `xmetra_ada` experiments, under results/tables/:

    xmetra_ada.md     Table 1 (MTOD: intent accuracy and slot F1 per target language) and Table 2
                      (QA: F1 per target language, avg), test mean ± sd over seeds; rows PRE (the
                      X-METRA experiments' `init`), the few-shot baselines (experiments with a
                      `target` grid that train on the target's dev split: MONO, FT, FT w/EN), then
                      X-METRA and X-METRA-ADA; below each table the paper's pairwise two-sample
                      t-test assuming unequal variance (Welch) of every X-METRA row against FT
                      (the baseline from the same `init` trained on the target dev split only)
    xmetra_ada.csv    every cell: task, row, language, metric, seeds, mean, sd (the slots also with
                      the reference code's token-level macro F1, `slot_token_macro_f1`)
    xmetra_sweeps.md  the analyses of §4.2: per swept experiment (`sweep`), the k-shot (k = q) or
                      downsampling (dev_fraction) value × target language and metric
and results/plots/sweeps/<experiment>.<tlp>.<metric>.csv (value, mean, sd: DVC plots).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import active_experiments, trains_on_dev
from pipeline.io import atomic_write_text, read_json
from pipeline.records import TLP
from pipeline.report.maml_tables import _fmt, _fmt_avg
from pipeline.report.stats import welch_t
from pipeline.report.tables import _fmt_p

XMETRA_METHODS = ("xmetra", "xmetra_ada")
#: task -> the metrics of its table (the paper's columns), then extra CSV-only metrics
METRICS = {"mtod": ("intent_accuracy", "slot_f1"), "qa": ("f1",)}
CSV_ONLY = {"mtod": ("slot_token_macro_f1",), "qa": ("exact_match",)}
LABEL = {
    "intent_accuracy": "intent",
    "slot_f1": "slot F1",
    "f1": "F1",
    "slot_token_macro_f1": "slot token F1",
    "exact_match": "EM",
}

#: {experiment: {tlp: {metric: {seed: value}}}}
Cells = dict[str, dict[str, dict[str, dict[int, float]]]]


def roles(cfg: Mapping[str, Any]) -> tuple[list[str], dict[str, str], list[str]]:
    """(rows in table order, the FT baseline of each X-METRA experiment, target languages)."""
    exps = active_experiments(cfg)
    xs = [n for n, e in exps.items() if e.get("method") in XMETRA_METHODS and not e.get("sweep")]
    inits = list(dict.fromkeys(exps[n]["init"] for n in xs if exps[n].get("init")))
    tasks = {t.partition("/")[0] for n in xs for t in exps[n].get("tlps", [])}
    targets = list(dict.fromkeys(lg for n in xs for lg in exps[n].get("target", [])))
    bases = []
    for n, e in exps.items():
        if n in xs or e.get("sweep") or e.get("aux") or not e.get("target"):
            continue
        if e.get("method") in XMETRA_METHODS or not trains_on_dev(e):
            continue
        if tasks & {t.partition("/")[0] for t in e.get("tlps", [])}:
            bases.append(n)
    ft = {}
    for n in xs:
        cands = [
            b
            for b in bases
            if exps[b].get("init") == exps[n].get("init") and exps[b].get("train_split") == "dev"
        ]
        if cands:
            ft[n] = cands[0]
    return [*inits, *bases, *xs], ft, targets


def collect(score_files: Sequence[Path], swept: bool = False) -> Cells:
    """Test cells per experiment (per experiment and sweep entry when `swept`)."""
    cells: Cells = {}
    for f in sorted(score_files):
        sc = read_json(f)
        if bool(sc.get("sweep")) != swept or (not swept and sc.get("report") is False):
            continue
        key = sc["experiment"]
        if swept:
            key = f"{key}|{json_key(sc['sweep'])}"
        target = sc.get("grid", {}).get("target")
        for tlp, splits in sc["scores"].items():
            t = TLP.parse(tlp)
            if t.task not in METRICS or (target is not None and t.lang != target):
                continue
            for metric in (*METRICS[t.task], *CSV_ONLY[t.task]):
                if metric in splits["test"]:
                    cell = cells.setdefault(key, {}).setdefault(tlp, {}).setdefault(metric, {})
                    cell[int(sc["seed"])] = float(splits["test"][metric])
    return cells


def json_key(entry: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in entry.items())


def _table(
    task: str,
    rows: Sequence[str],
    labels: Mapping[str, str],
    cells: Cells,
    targets: Sequence[str],
    ft: Mapping[str, str],
) -> str:
    metrics = METRICS[task]
    langs = [lg for lg in targets if any(f"{task}/{lg}" in cells.get(r, {}) for r in rows)]
    if not langs:
        return ""
    cols = [(lg, m) for lg in langs for m in metrics]
    head = [f"{lg} {LABEL[m]}" for lg, m in cols]
    avg = len(langs) > 1 and len(metrics) == 1
    lines = [
        "| | " + " | ".join(head + (["avg"] if avg else [])) + " |",
        "|---|" + "---|" * (len(head) + avg),
    ]
    for r in rows:
        row = cells.get(r, {})
        vals = [row.get(f"{task}/{lg}", {}).get(m) for lg, m in cols]
        if not any(vals):
            continue
        out = [_fmt(v) for v in vals]
        if avg:
            out.append(_fmt_avg(vals))
        lines.append(f"| {labels[r]} | " + " | ".join(out) + " |")
    tests = []
    for x, base in ft.items():
        ps = []
        for lg, m in cols:
            a = cells.get(x, {}).get(f"{task}/{lg}", {}).get(m, {})
            b = cells.get(base, {}).get(f"{task}/{lg}", {}).get(m, {})
            ps.append(_fmt_p(welch_t(list(a.values()), list(b.values())).p) if a and b else "–")
        if any(p != "–" for p in ps):
            tests.append(f"| p, {labels[x]} vs {labels[base]} | " + " | ".join(ps) + " |")
    if tests:
        lines += tests
    return "\n".join(lines)


def write_xmetra_tables(cfg: Mapping[str, Any], score_files: Sequence[Path], out: Path) -> bool:
    """Write the tables of the module docstring; False (nothing written) without X-METRA runs."""
    exps = active_experiments(cfg)
    if not any(e.get("method") in XMETRA_METHODS for e in exps.values()):
        return False
    rows, ft, targets = roles(cfg)
    labels = {r: exps[r].get("row", r) for r in rows}
    cells = collect(score_files)
    tables = out / "tables"
    parts = ["# X-METRA-ADA and its baselines (M'hamdi et al. 2021, Tables 1-2 shapes)", ""]
    parts.append(
        "Test mean ± sd over seeds; rows that trained on a target's dev split keep their last "
        "step or the dev selection of their config. p: Welch's two-sample t-test (unequal "
        "variances) over the seeds, two-sided, as the paper's §4.1."
    )
    for task, title in (("mtod", "Table 1: MTOD"), ("qa", "Table 2: QA (F1)")):
        body = _table(task, rows, labels, cells, targets, ft)
        if body:
            parts += ["", f"## {title}", "", body]
    atomic_write_text(tables / "xmetra_ada.md", "\n".join(parts) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "row", "experiment", "lang", "metric", "seeds", "mean", "sd"])
    for r in rows:
        for tlp, per in sorted(cells.get(r, {}).items()):
            t = TLP.parse(tlp)
            for m, vals in per.items():
                v = list(vals.values())
                sd = statistics.stdev(v) if len(v) > 1 else ""
                w.writerow([t.task, labels[r], r, t.lang, m, len(v), statistics.fmean(v), sd])
    atomic_write_text(tables / "xmetra_ada.csv", buf.getvalue())
    _write_sweeps(cfg, score_files, out)
    return True


def _write_sweeps(cfg: Mapping[str, Any], score_files: Sequence[Path], out: Path) -> None:
    """k-shot and downsampling analyses: one table and one DVC plot file per series."""
    exps = active_experiments(cfg)
    swept = [n for n, e in exps.items() if e.get("sweep")]
    if not swept:
        return
    cells = collect(score_files, swept=True)
    parts = ["# Sweeps (M'hamdi et al. §4.2: k-shot and downsampling analyses)", ""]
    parts.append("Test mean ± sd over seeds per sweep entry.")
    for name in swept:
        entries = exps[name]["sweep"]
        keys = list(dict.fromkeys(k for e in entries for k in e))
        series: dict[tuple[str, str], list[tuple[str, Mapping[int, float]]]] = {}
        for e in entries:
            for tlp, per in cells.get(f"{name}|{json_key(e)}", {}).items():
                for m in METRICS[TLP.parse(tlp).task]:
                    if m in per:
                        vs = [str(e[k]) for k in keys if k in e]
                        value = vs[0] if len(set(vs)) == 1 else "/".join(vs)  # k = q: one
                        series.setdefault((tlp, m), []).append((value, per[m]))
        if not series:
            continue
        label = exps[name].get("row", name)
        title = name if label == name else f"{label} ({name})"
        parts += ["", f"## {title}: {' = '.join(keys)}", ""]
        cols = sorted(series)
        values = list(dict.fromkeys(v for s in series.values() for v, _ in s))
        parts.append(
            f"| {'='.join(keys)} | " + " | ".join(f"{t} {LABEL[m]}" for t, m in cols) + " |"
        )
        parts.append("|---|" + "---|" * len(cols))
        for v in values:
            row = [_fmt(dict(series[c]).get(v)) for c in cols]
            parts.append(f"| {v} | " + " | ".join(row) + " |")
        for (tlp, m), pts in series.items():
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["value", "mean", "sd", "seeds"])
            for v, vals in pts:
                xs = list(vals.values())
                w.writerow(
                    [v, statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else "", len(xs)]
                )
            fname = f"{name}.{TLP.parse(tlp).slug}.{m}.csv"
            atomic_write_text(out / "plots" / "sweeps" / fname, buf.getvalue())
    atomic_write_text(out / "tables" / "xmetra_sweeps.md", "\n".join(parts) + "\n")
