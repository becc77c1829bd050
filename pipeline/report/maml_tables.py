"""Liu et al. (2021)'s result shapes for the cross-lingual MAML experiments (X-MAML, XLA-MAML).

Written when the config has MAML experiments (`xmaml`, `xla_maml`), under results/tables/:

    xla_maml.md       per task, Tables 3-4: zero-shot and few-shot blocks; rows the English
                      baseline(s) (the MAML experiments' `init`), each MAML row (`hi→X`), and,
                      for an `aux` grid of several entries, the best entry per target language
                      chosen on that language's dev set (never test); columns every evaluated
                      language, test mean ± sd over seeds, `–` where the row trained on the
                      language (its auxiliary languages); `avg` over the row's columns
    xla_pairs.md      Figure 2: per MAML experiment with an `aux` grid, auxiliary language (rows)
                      × target language (columns), test mean minus the baseline's
    maml_options.md   Tables 6-7: every MAML row with the options it ran with (sampling,
                      parallel, order, inner steps, support, query) and its mean test score
    xla_maml.csv      every cell: block, task, row, language, seeds, mean, sd, picked entry
    maml_choices.json the dev picks behind the best-entry rows

Few-shot rows come from the fine-tuning runs (`finetune_tlps`, `finetune_split: dev`: one epoch
on the target's dev set, as §4.2); zero-shot rows from the meta runs themselves.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import active_experiments, experiment_runs, grid_slug, method_params
from pipeline.io import atomic_write_json, atomic_write_text, read_json
from pipeline.records import TLP
from pipeline.report.tables import reported_scores

MAML_METHODS = ("xmaml", "xla_maml")
OPTION_KEYS = {
    "xmaml": ("inner_steps", "inner_lr", "first_order", "support_query", "meta_batch", "reduce"),
    "xla_maml": (
        "sampling",
        "parallel",
        "inner_steps",
        "inner_lr",
        "first_order",
        "subset_size",
        "support",
        "query",
    ),
}

#: {(block, row): {tlp: {"dev": {seed: v}, "test": {seed: v}}}}
Cells = dict[tuple[str, str], dict[str, dict[str, dict[int, float]]]]


def _mean_sd(values: Mapping[int, float]) -> tuple[float, float]:
    vals = list(values.values())
    m = statistics.fmean(vals)
    return m, statistics.stdev(vals) if len(vals) > 1 else float("nan")


def _fmt(values: Mapping[int, float] | None) -> str:
    if not values:
        return "–"
    m, sd = _mean_sd(values)
    return f"{m:.1f}" if sd != sd else f"{m:.1f} ± {sd:.1f}"


def _fmt_avg(values: Sequence[Mapping[int, float] | None]) -> str:
    """The mean over columns of the per-column seed means; `–` when a column is empty."""
    means = [statistics.fmean(v.values()) for v in values if v]
    return f"{statistics.fmean(means):.1f}" if means and len(means) == len(values) else "–"


def collect(score_files: Sequence[Path], metric: str = "main") -> Cells:
    """Cells of every score file: the zero-shot block from meta runs, the few-shot block from
    fine-tuning runs, one row per experiment and `aux` entry."""
    cells: Cells = {}
    for f in sorted(score_files):
        sc = read_json(f)
        block = "few-shot" if sc["method"] == "finetune" else "zero-shot"
        aux = sc.get("grid", {}).get("aux")
        row = f"{sc['experiment']}.{grid_slug(aux)}" if aux else sc["experiment"]
        for tlp, splits in reported_scores(sc).items():
            cell = cells.setdefault((block, row), {}).setdefault(tlp, {"dev": {}, "test": {}})
            for split in ("dev", "test"):
                cell[split][int(sc["seed"])] = float(splits[split][metric])
    return cells


def _rows(cfg: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Row key -> {experiment, method, label, aux, options} of the MAML runs, and the
    baseline experiments (the MAML experiments' `init`)."""
    exps = active_experiments(cfg)
    rows: dict[str, dict[str, Any]] = {}
    bases: list[str] = []
    for r in experiment_runs(cfg):
        if r.method not in MAML_METHODS:
            continue
        exp = exps[r.experiment]
        if exp.get("init") and exp["init"] not in bases:
            bases.append(exp["init"])
        aux = r.grid.get("aux")
        label = exp.get("row", r.experiment)
        p = method_params(r.method, r.params)
        rows.setdefault(
            r.row,
            {
                "experiment": r.experiment,
                "method": r.method,
                "label": f"{label} {aux}→X" if aux else label,
                "aux": aux.split("+") if aux else [],
                "options": {k: p.get(k) for k in OPTION_KEYS[r.method]},
            },
        )
    return rows, bases


def _best_entry(
    cells: Cells, block: str, members: list[str], rows: Mapping[str, Any], tlp: str
) -> tuple[str | None, float]:
    """The member row with the best mean dev score on `tlp` among those that did not train on
    its language (dev of the zero-shot meta runs: unseen by them)."""
    lang = TLP.parse(tlp).lang
    best, score = None, float("-inf")
    for m in members:
        if lang in rows[m]["aux"]:
            continue
        dev = cells.get(("zero-shot", m), {}).get(tlp, {}).get("dev")
        if dev and (s := statistics.fmean(dev.values())) > score:
            best, score = m, s
    return best, score


def write_maml_tables(cfg: Mapping[str, Any], score_files: Sequence[Path], out: Path) -> bool:
    """Write the tables of the module docstring; False (nothing written) without MAML runs."""
    if not any(e.get("method") in MAML_METHODS for e in active_experiments(cfg).values()):
        return False
    rows, bases = _rows(cfg)
    if not rows:
        return False
    cells = collect(score_files, cfg["report"]["metric"])
    cells = {k: v for k, v in cells.items() if k[1] in rows or k[1] in bases}
    exps = active_experiments(cfg)
    tables = out / "tables"
    tasks = sorted({TLP.parse(t).task for (_, _), c in cells.items() for t in c})
    md = ["# Cross-lingual MAML (Liu et al. 2021, Tables 3-4)", ""]
    md.append(
        "Test score, mean ± sd over seeds; `–`: the row trained on that language (auxiliary) "
        "or has no score. Best-entry rows pick, per column, the `aux` entry with the best "
        "mean dev score on that language (dev only)."
    )
    csv_rows: list[dict[str, Any]] = []
    choices: dict[str, Any] = {}
    by_exp: dict[str, list[str]] = {}
    for key, info in rows.items():
        by_exp.setdefault(info["experiment"], []).append(key)
    for task in tasks:
        cols = sorted(
            {t for c in cells.values() for t in c if TLP.parse(t).task == task},
            key=lambda t: TLP.parse(t).lang,
        )
        for block in ("zero-shot", "few-shot"):
            lines: list[tuple[str, str, dict[str, Any]]] = []  # (label, key, cells)
            for base in bases:
                c = cells.get((block, base))
                if c:
                    lines.append((exps[base].get("row", base), base, c))
            for key, info in rows.items():
                c = cells.get((block, key))
                if c:
                    shown = {t: v for t, v in c.items() if TLP.parse(t).lang not in info["aux"]}
                    lines.append((info["label"], key, shown))
            for exp, members in by_exp.items():
                if len(members) < 2 or not any((block, m) in cells for m in members):
                    continue
                picked: dict[str, Any] = {}
                for tlp in cols:
                    m, _ = _best_entry(cells, block, members, rows, tlp)
                    if m and tlp in cells.get((block, m), {}):
                        picked[tlp] = dict(cells[block, m][tlp], picked=m)
                choices[f"{block}:{exp}"] = {t: v["picked"] for t, v in picked.items()}
                label = f"{exps[exp].get('row', exp)} best entry (dev)"
                lines.append((label, f"{exp}:best", picked))
            lines = [ln for ln in lines if any(ln[2].get(t, {}).get("test") for t in cols)]
            if not lines:  # rows of this block with a score in this task only
                continue
            md += ["", f"## {task}: {block}", ""]
            md.append("| model | " + " | ".join(TLP.parse(c).lang for c in cols) + " | avg |")
            md.append("|" + "---|" * (len(cols) + 2))
            for label, key, c in lines:
                vals = [c[t]["test"] for t in cols if t in c and c[t]["test"]]
                avg = statistics.fmean(statistics.fmean(v.values()) for v in vals) if vals else None
                star = "*" if len(vals) < len(cols) else ""
                avg_s = "–" if avg is None else f"{avg:.1f}{star}"
                md.append(
                    f"| {label} | "
                    + " | ".join(_fmt(c.get(t, {}).get("test")) for t in cols)
                    + f" | {avg_s} |"
                )
                for t in cols:
                    if t in c and c[t]["test"]:
                        m, sd = _mean_sd(c[t]["test"])
                        csv_rows.append(
                            {
                                "block": block,
                                "task": task,
                                "row": key,
                                "lang": TLP.parse(t).lang,
                                "seeds": len(c[t]["test"]),
                                "mean": m,
                                "sd": sd,
                                "picked": c[t].get("picked", ""),
                            }
                        )
    md += ["", "`*`: average over the languages shown (the row's auxiliary ones excluded)."]
    atomic_write_text(tables / "xla_maml.md", "\n".join(md) + "\n")
    atomic_write_text(tables / "xla_pairs.md", _pairs(cells, rows, bases, by_exp, exps))
    atomic_write_text(tables / "maml_options.md", _options(cells, rows))
    atomic_write_json(tables / "maml_choices.json", choices)
    buf = io.StringIO()
    fields = ["block", "task", "row", "lang", "seeds", "mean", "sd", "picked"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(csv_rows)
    atomic_write_text(tables / "xla_maml.csv", buf.getvalue())
    return True


def _pairs(
    cells: Cells,
    rows: Mapping[str, Any],
    bases: list[str],
    by_exp: Mapping[str, list[str]],
    exps: Mapping[str, Any],
) -> str:
    """Figure 2: auxiliary (rows) × target (columns), test mean minus the baseline's."""
    md = ["# Auxiliary × target language (Liu et al. 2021, Figure 2)", ""]
    md.append(
        "Zero-shot test score minus the baseline's (the experiment's `init`), mean over seeds."
    )
    for exp, members in by_exp.items():
        base = exps[exp].get("init")
        if not base or not members:
            continue
        ref = cells.get(("zero-shot", base), {})
        cols = sorted(
            {t for m in members for t in cells.get(("zero-shot", m), {}) if t in ref},
            key=lambda t: (TLP.parse(t).task, TLP.parse(t).lang),
        )
        if not cols:
            continue
        md += ["", f"## {exps[exp].get('row', exp)} (baseline: {base})", ""]
        md.append("| aux | " + " | ".join(cols) + " |")
        md.append("|" + "---|" * (len(cols) + 1))
        for m in members:
            c = cells.get(("zero-shot", m), {})
            out = []
            for t in cols:
                if TLP.parse(t).lang in rows[m]["aux"] or not c.get(t, {}).get("test"):
                    out.append("–")
                    continue
                d = statistics.fmean(c[t]["test"].values()) - statistics.fmean(
                    ref[t]["test"].values()
                )
                out.append(f"{d:+.1f}")
            md.append(f"| {'+'.join(rows[m]['aux']) or m} | " + " | ".join(out) + " |")
    return "\n".join(md) + "\n"


def _options(cells: Cells, rows: Mapping[str, Any]) -> str:
    """Tables 6-7: every MAML row with its options and mean test score per block."""
    keys = sorted({k for r in rows.values() for k in r["options"]})
    md = ["# MAML options per row (Liu et al. 2021, Tables 6-7: sampling, parallelism)", ""]
    md.append("| row | block | " + " | ".join(keys) + " | mean test |")
    md.append("|" + "---|" * (len(keys) + 3))
    for key, info in rows.items():
        for block in ("zero-shot", "few-shot"):
            c = cells.get((block, key))
            if not c:
                continue
            vals = [
                statistics.fmean(v["test"].values())
                for t, v in c.items()
                if v["test"] and TLP.parse(t).lang not in info["aux"]
            ]
            opts = [str(info["options"].get(k, "")) for k in keys]
            mean = f"{statistics.fmean(vals):.1f}" if vals else "–"
            md.append(f"| {info['label']} | {block} | " + " | ".join(opts) + f" | {mean} |")
    return "\n".join(md) + "\n"
