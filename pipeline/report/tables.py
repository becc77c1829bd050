"""Report: tables over seeds (mean ± sd, 95% intervals, significance), DVC metrics, plot data.

Every cell is an experiment × TLP over the experiment's seeds. Outputs under results/:

    metrics.json                  per experiment: dev/test means over seeds (DVC metrics)
    tables/test.md, dev.md        experiments × TLPs (columns grouped by task): mean ± sd; test.md
                                  also the 95% interval of every cell
    tables/zero_shot.md           test scores on languages never trained on (if any), same shape
    tables/paper_table{2,3,4}.md  the paper's shapes: Δ ± sd against the best-on-dev baseline of
                                  each column, `*` where Welch's t-test over seeds gives p < 0.05,
                                  and the p-values
    tables/paper_choices.json     every pick made on dev (model and baseline per column)
    tables/cells.csv              experiment, split, TLP, seeds, mean, sd, 95% interval
    tables/paper_tables.csv       every cell of the paper-shaped tables with its p-value
    tables/per_seed.csv           every score of every seed, to recompute anything
    tables/xla_maml.md, …         Liu et al.'s shapes for X-MAML / XLA-MAML runs
                                  (pipeline.report.maml_tables)
    plots/train_loss/<run>.csv    step, loss                     (DVC plots)
    plots/dev_score/<run>.csv     step, dev_mean                 (DVC plots)

The 95% interval pools two sources of variation: the test examples and the seeds (a two-level
bootstrap, `pipeline.report.stats.bootstrap_ci`), so it reads as "where this method's score on data like
this lies", not just "how lucky this test set was". Model selection (which τ, which baseline)
uses the mean dev score over seeds; test is only read for the picked entries.
"""

from __future__ import annotations

import csv
import io
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import active_experiments, experiment_runs
from pipeline.errors import PipelineError
from pipeline.io import atomic_write_json, atomic_write_text, read_json
from pipeline.records import TLP
from pipeline.report import stats

#: the splits of a result row: seen TLPs (dev, test) and unseen-language TLPs (zs_dev, zs_test)
ROW_SPLITS = ("dev", "test", "zs_dev", "zs_test")
#: p-value under which a difference is marked significant
ALPHA = 0.05
#: significance mark of the Markdown tables
MARK = "*"

Seeds = dict[int, float]


@dataclass
class Results:
    """Scores of every experiment, split, TLP and seed, and the per-example statistics of test.

    `values[exp][split][tlp][seed]` is the metric; `examples[exp][split][tlp][seed]` is
    (kind, ids, n×k values) for the bootstrap (test splits, decomposable metrics only);
    `runs[exp][seed]` lists the runs that produced the scores.
    """

    metric: str
    values: dict[str, dict[str, dict[str, Seeds]]] = field(default_factory=dict)
    examples: dict[str, dict[str, dict[str, dict[int, tuple[str, list, np.ndarray]]]]] = field(
        default_factory=dict
    )
    runs: dict[tuple[str, str, str, int], str] = field(default_factory=dict)

    def cell(self, exp: str, split: str, tlp: str) -> Seeds:
        return self.values.get(exp, {}).get(split, {}).get(tlp, {})

    def split(self, exp: str, split: str) -> dict[str, Seeds]:
        return self.values.get(exp, {}).get(split, {})


def reported_scores(sc: dict[str, Any]) -> dict[str, Any]:
    """The TLP scores of a score file that the report reads: none for an intermediate run (a
    fine-tuned `target` grid's meta run), only the target's for a `target` grid's run."""
    if sc.get("report") is False:
        return {}
    target = sc.get("grid", {}).get("target")
    return {
        tlp: splits
        for tlp, splits in sc["scores"].items()
        if target is None or TLP.parse(tlp).lang == target
    }


def collect(score_files: Sequence[Path], metric: str) -> Results:
    """Read every score file; the runs of one experiment (per TLP, per group, fine-tuning runs,
    per seed) merge into one row whose cells hold one value per seed. An `aux` grid gives one
    row per entry (`xla_maml.hi`); a `target` grid's runs give their target's cells."""
    res = Results(metric)
    for f in sorted(score_files):
        sc = read_json(f)
        if sc.get("report") is False:
            continue
        exp, seed = sc.get("row", sc["experiment"]), int(sc.get("seed", 0))
        row = res.values.setdefault(exp, {k: {} for k in ROW_SPLITS})
        ex_row = res.examples.setdefault(exp, {k: {} for k in ROW_SPLITS})
        zs = set(sc.get("zero_shot_tlps", []))
        for tlp, splits in reported_scores(sc).items():
            for split in ("dev", "test"):
                name = ("zs_" if tlp in zs else "") + split
                scores = splits[split]
                cell = row[name].setdefault(tlp, {})
                if seed in cell:
                    raise PipelineError(f"{f}: {exp} {tlp} {split} seed {seed} scored twice")
                cell[seed] = float(scores[metric])
                res.runs[exp, name, tlp, seed] = sc["run"]
                key = scores.get("main_key", "main") if metric == "main" else metric
                ex = scores.get("examples")
                if ex and key in ex.get("stats", {}):
                    st = ex["stats"][key]
                    vals = np.asarray(st["values"], dtype=np.float64)
                    ex_row[name].setdefault(tlp, {})[seed] = (st["kind"], ex["ids"], vals)
    return res


# ---------------------------------------------------------------------------------------------
# Cell statistics


@dataclass(frozen=True)
class Summary:
    mean: float
    sd: float  # nan with one seed
    n: int


def summarize(cell: Seeds) -> Summary:
    xs = [cell[s] for s in sorted(cell)]
    return Summary(stats.mean(xs), stats.sd(xs), len(xs))


def seed_values(cell: Seeds) -> list[float]:
    return [cell[s] for s in sorted(cell)]


def interval(res: Results, exp: str, split: str, tlp: str, cfg: dict[str, Any]) -> tuple:
    """95% bootstrap interval over test examples and seeds, or None when not computable (a
    metric without per-example statistics, or seeds scored on different examples)."""
    per_seed = res.examples.get(exp, {}).get(split, {}).get(tlp)
    if not per_seed:
        return None
    items = [per_seed[s] for s in sorted(per_seed)]
    kinds, ids = {k for k, _, _ in items}, [i for _, i, _ in items]
    if len(kinds) != 1 or any(i != ids[0] for i in ids):
        return None
    rep = cfg["report"]
    seed = rep.get("bootstrap_seed", 0) + zlib.crc32(f"{exp}/{split}/{tlp}".encode())
    return stats.bootstrap_ci(
        kinds.pop(), [v for _, _, v in items], n_boot=rep.get("bootstrap", 1000), seed=seed
    )


def _fmt(mean: float, sd: float = math.nan, signed: bool = False) -> str:
    text = f"{mean:+.1f}" if signed else f"{mean:.1f}"
    return text if math.isnan(sd) else f"{text} ± {sd:.1f}"


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# ---------------------------------------------------------------------------------------------
# Markdown


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """TLP columns, grouped by task."""
    return sorted({t for r in rows for t in r}, key=lambda s: (TLP.parse(s).task, s))


def render(
    title: str,
    cols: Sequence[str],
    rows: Sequence[tuple[str, dict[str, str], str]],
    notes: Sequence[str] = (),
    mean_header: str = "mean",
) -> str:
    """A Markdown table: (row name, {column: cell text}, mean cell) per row."""
    if not cols:
        return f"### {title}\n\n(no scores)\n"
    lines = [f"### {title}", ""]
    for n in notes:
        lines += [n, ""]
    head = ["model", *cols] + ([mean_header] if mean_header else [])
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, cells, mean in rows:
        body = [cells.get(c, "–") for c in cols] + ([mean] if mean_header else [])
        lines.append(f"| {name} | " + " | ".join(body) + " |")
    return "\n".join(lines) + "\n"


def row_mean(row: dict[str, Seeds], cols: Sequence[str]) -> Summary | None:
    """Mean over the row's columns per seed, then mean ± sd over the seeds that have them all."""
    have = [c for c in cols if c in row]
    if not have:
        return None
    seeds = sorted(set.intersection(*(set(row[c]) for c in have)))
    per_seed = {s: stats.mean([row[c][s] for c in have]) for s in seeds}
    return summarize(per_seed) if per_seed else None


def seed_table(
    rows: dict[str, dict[str, Seeds]], title: str, notes: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """Experiments × TLPs: mean ± sd over seeds, the best mean of each column in bold."""
    cols = columns(list(rows.values()))
    best = {}
    for c in cols:
        means = {e: summarize(r[c]).mean for e, r in rows.items() if c in r}
        best[c] = max(means.values()) if means else None
    body = []
    for exp, r in rows.items():
        cells = {}
        for c in cols:
            if c in r:
                s = summarize(r[c])
                text = _fmt(s.mean, s.sd)
                cells[c] = f"**{text}**" if s.mean == best[c] and len(rows) > 1 else text
        m = row_mean(r, cols)
        body.append((exp, cells, _fmt(m.mean, m.sd) if m else "–"))
    return render(title, cols, body, notes), cols


def ci_table(cis: dict[str, dict[str, tuple | None]], cols: Sequence[str], title: str) -> str:
    body = []
    for exp, r in cis.items():
        cells = {c: "–" if v is None else f"[{v[0]:.1f}, {v[1]:.1f}]" for c, v in r.items()}
        body.append((exp, cells, ""))
    return render(title, cols, body, mean_header="")


# ---------------------------------------------------------------------------------------------
# Paper-shaped tables


def best_on_dev(candidates: Sequence[str], res: Results, col: str, zs: bool) -> str | None:
    """The candidate with the best mean dev score (over seeds) in column `col` (never test)."""
    dev = "zs_dev" if zs else "dev"
    have = [e for e in candidates if res.cell(e, dev, col)]
    return max(have, key=lambda e: summarize(res.cell(e, dev, col)).mean) if have else None


@dataclass
class PaperCell:
    value: float  # absolute mean (baselines) or difference of means (meta rows)
    sd: float  # over the seeds of the row's picked experiment
    p: float = math.nan  # Welch t-test over seeds against the column's baseline (meta rows)
    model: str = ""
    baseline: str = ""


def paper_tables(
    cfg: dict[str, Any], res: Results
) -> tuple[dict[str, str], dict[str, Any], list[dict[str, Any]]]:
    """Tarunesh et al.'s table shapes, with every choice made on dev.

    Table 2: baselines (STL, MTL) as absolute test scores; each meta row (experiments sharing a
    `row` label, e.g. the temperatures of one selection) shows, per column, the test score of
    the row's experiment with the best dev score minus that of the best-on-dev baseline of the
    column, with the sd of the picked experiment's seeds and Welch's t-test of the two sets of
    seeds. Table 4: every meta experiment on its own, same differences. Table 3: zero-shot TLPs;
    MTL baselines absolute, meta rows as differences from the best MTL.
    (The paper picks the best τ and baseline per column without saying on which split; we pick
    on dev, and record each pick in tables/paper_choices.json.)
    """
    exps = active_experiments(cfg)
    names = list(res.values)
    baselines = [e for e in names if exps.get(e, {}).get("method") in ("stl", "mtl")]
    metas = [e for e in names if e not in baselines]
    mtls = [e for e in baselines if exps[e]["method"] == "mtl"]

    def label(e: str) -> str:
        return exps.get(e, {}).get("row", e)

    rows_of: dict[str, list[str]] = {}
    for e in metas:
        rows_of.setdefault(label(e), []).append(e)
    choices: dict[str, Any] = {"table2": {}, "table3": {}, "table4": {}}
    csv_rows: list[dict[str, Any]] = []

    def shaped(base: list[str], groups: dict[str, list[str]], zs: bool, key: str):
        split = "zs_test" if zs else "test"
        cols = columns([res.split(e, split) for e in base + metas])
        best_base = {c: best_on_dev(base, res, c, zs) for c in cols}
        rows: dict[str, dict[str, PaperCell]] = {}
        for e in base:  # baselines sharing a row label (e.g. per-task STL) merge into one row
            members = [b for b in base if label(b) == label(e)]
            for c, cell in res.split(e, split).items():
                if best_on_dev(members, res, c, zs) == e:
                    s = summarize(cell)
                    rows.setdefault(label(e), {})[c] = PaperCell(s.mean, s.sd, model=e)
        deltas = set()
        for name, members in groups.items():
            deltas.add(name)
            r = rows.setdefault(name, {})
            for c in cols:
                pick, ref = best_on_dev(members, res, c, zs), best_base[c]
                if pick is None or ref is None:
                    continue
                a, b = res.cell(pick, split, c), res.cell(ref, split, c)
                _, _, p = stats.welch_t(seed_values(a), seed_values(b))
                sa = summarize(a)
                r[c] = PaperCell(sa.mean - summarize(b).mean, sa.sd, p, pick, ref)
                choices[key].setdefault(name, {})[c] = {"model": pick, "baseline": ref}
        for name, r in rows.items():
            for c, pc in r.items():
                csv_rows.append(
                    {
                        "table": key,
                        "row": name,
                        "tlp": c,
                        "kind": "delta" if name in deltas else "absolute",
                        "value": pc.value,
                        "sd": pc.sd,
                        "p": pc.p,
                        "model": pc.model,
                        "baseline": pc.baseline,
                    }
                )
        return rows, deltas, cols

    note = (
        "Baselines: mean ± sd over seeds (test). Meta rows: difference of means from the "
        "best-on-dev baseline of the column ± sd of the row's seeds; "
        f"`{MARK}`: Welch's t-test over seeds, p < {ALPHA}."
    )
    out = {}
    for fname, title, (rows, deltas, cols) in (
        (
            "paper_table2.md",
            "Table 2 shape: main results",
            shaped(baselines, rows_of, False, "table2"),
        ),
        (
            "paper_table4.md",
            "Table 4 shape: every sampling setting",
            shaped(baselines, {e: [e] for e in metas}, False, "table4"),
        ),
        (
            "paper_table3.md",
            "Table 3 shape: zero-shot",
            shaped(mtls, {e: [e] for e in metas}, True, "table3"),
        ),
    ):
        out[fname] = _paper_markdown(title, cols, rows, deltas, note)
    return out, choices, csv_rows


def _paper_markdown(
    title: str,
    cols: Sequence[str],
    rows: dict[str, dict[str, PaperCell]],
    deltas: set[str],
    note: str,
) -> str:
    best = {}
    for c in cols:
        vals = [r[c].value for n, r in rows.items() if n in deltas and c in r]
        best[c] = max(vals) if vals else None
    body, pbody = [], []
    for name, r in rows.items():
        signed = name in deltas
        cells = {}
        for c, pc in r.items():
            text = _fmt(pc.value, pc.sd, signed)
            if signed and not math.isnan(pc.p) and pc.p < ALPHA:
                text += MARK
            if signed and pc.value == best[c] and len(deltas) > 1:
                text = f"**{text}**"
            cells[c] = text
        vals = [pc.value for pc in r.values()]
        mean = _fmt(stats.mean(vals), signed=signed) if vals else "–"
        body.append((name, cells, mean))
        if signed:
            pbody.append((name, {c: _fmt_p(pc.p) for c, pc in r.items()}, ""))
    text = render(title, cols, body, [note])
    if pbody:
        text += "\n" + render(
            f"{title}: p-values (Welch's t-test over seeds vs the column's baseline)",
            cols,
            pbody,
            mean_header="",
        )
    return text


# ---------------------------------------------------------------------------------------------
# Files


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in fields})
    return buf.getvalue()


def curve_sources(run_dirs: Sequence[Path]) -> list[tuple[str, Path]]:
    """(curve name, run folder with history.json): a fine-tuning run holds one per TLP, named
    `<meta run>.ft.<task>.<lang>` whether the job fine-tuned one TLP or all."""
    out = []
    for d in run_dirs:
        if (d / "history.json").exists():
            out.append((d.name, d))
            continue
        meta = d.name.rsplit(".ft.", 1)[0]
        for sub in sorted(p for p in d.iterdir() if (p / "history.json").exists()):
            out.append((f"{meta}.ft.{sub.name}", sub))
    return out


def write_curves(run_dirs: Sequence[Path], out: Path) -> None:
    """Per run: loss and dev curves; gradient cosine between TLPs (Lee et al. Figure 4); and
    MultiDDS sampling probabilities and rewards per TLP (Tarunesh et al. Figure 3)."""
    plots = out / "plots"
    for name, d in curve_sources(run_dirs):
        hist = read_json(d / "history.json")
        atomic_write_text(plots / "train_loss" / f"{name}.csv", _csv(hist, ["step", "loss"]))
        dev = [h for h in hist if "dev_mean" in h]
        atomic_write_text(plots / "dev_score" / f"{name}.csv", _csv(dev, ["step", "dev_mean"]))
        # Lee et al. Fig. 7c (computational efficiency): dev score against the training batches
        # (gradient computations) spent so far (dev, not test: test is scored once)
        spent = [h for h in dev if "batches" in h]
        if spent:
            atomic_write_text(
                plots / "efficiency" / f"{name}.csv", _csv(spent, ["batches", "dev_mean", "step"])
            )
        cos = [
            {"step": h["step"], "mean_pairwise_cosine": h["grad_cosine"]["mean_pairwise_cosine"]}
            for h in hist
            if "grad_cosine" in h
        ]
        if cos:
            atomic_write_text(
                plots / "grad_cosine" / f"{name}.csv", _csv(cos, ["step", "mean_pairwise_cosine"])
            )
        probs: dict[str, list[dict[str, Any]]] = {}
        for h in hist:
            for tlp, pr in h.get("sampling_probs", {}).items():
                row = {"step": h["step"], "prob": pr, "reward": h.get("rewards", {}).get(tlp, "")}
                probs.setdefault(tlp, []).append(row)
        for tlp, rows in probs.items():
            fname = f"{name}.{TLP.parse(tlp).slug}.csv"
            atomic_write_text(plots / "multidds" / fname, _csv(rows, ["step", "prob", "reward"]))


def check_complete(cfg: dict[str, Any], score_files: Sequence[Path]) -> None:
    """The scores must be exactly the config's runs: a stale dvc.yaml (e.g. after a change of
    `seeds`) would otherwise report a subset of the seeds without saying so."""
    want = {r.id for r in experiment_runs(cfg)}
    have = {read_json(f)["run"] for f in score_files}
    missing, extra = sorted(want - have), sorted(have - want)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing scores of {', '.join(missing[:5])}" + ("…" * (len(missing) > 5)))
        if extra:
            parts.append(f"scores of runs not in the config: {', '.join(extra[:5])}")
        raise PipelineError(
            "report: " + "; ".join(parts) + " (a stale dvc.yaml? regenerate it with "
            "`python -m pipeline dvc-yaml`)"
        )


def _metrics_json(res: Results, seeds: list[int]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for exp, r in res.values.items():
        entry: dict[str, Any] = {}
        for split, key in (("dev", "dev"), ("test", "test"), ("zs_test", "zero_shot_test")):
            m = row_mean(r[split], list(r[split]))
            if m is not None:
                entry[f"{key}_mean"] = m.mean
                if not math.isnan(m.sd):
                    entry[f"{key}_sd"] = m.sd
        entry["test"] = {t: summarize(c).mean for t, c in r["test"].items()}
        entry["seeds"] = sorted({s for c in r["test"].values() for s in c})
        metrics[exp] = entry
    return {"metric": res.metric, "seeds": seeds, "experiments": metrics}


def write_report(
    cfg: dict[str, Any],
    score_files: Sequence[Path],
    run_dirs: Sequence[Path],
    out: Path,
    check: bool = True,
    forgetting: Sequence[Path] = (),
) -> dict[str, Any]:
    if check:
        check_complete(cfg, score_files)
    metric = cfg["report"]["metric"]
    res = collect(score_files, metric)
    metrics = _metrics_json(res, list(cfg.get("seeds", [])))
    atomic_write_json(out / "metrics.json", metrics)

    tables = out / "tables"
    notes = [f"Mean ± sd over seeds; best mean of each column in bold. Metric: `{metric}`."]
    cell_rows: list[dict[str, Any]] = []

    def with_intervals(split: str, title: str) -> str:
        rows = {e: r[split] for e, r in res.values.items() if r[split]}
        text, cols = seed_table(rows, title, notes)
        cis = {}
        for e, r in rows.items():
            cis[e] = {c: interval(res, e, split, c, cfg) for c in r}
            for c, cell in r.items():
                s, ci = summarize(cell), cis[e][c]
                cell_rows.append(
                    {
                        "experiment": e,
                        "split": split,
                        "tlp": c,
                        "seeds": s.n,
                        "mean": s.mean,
                        "sd": s.sd,
                        "ci_low": ci[0] if ci else "",
                        "ci_high": ci[1] if ci else "",
                    }
                )
        if rows:
            text += "\n" + ci_table(
                cis,
                cols,
                f"{title}: 95% intervals (bootstrap over test examples and seeds)",
            )
        return text

    test_md = with_intervals("test", f"Test {metric}")
    atomic_write_text(tables / "test.md", test_md)
    atomic_write_text(
        tables / "zero_shot.md", with_intervals("zs_test", f"Zero-shot test {metric}")
    )
    dev_rows = {e: r["dev"] for e, r in res.values.items()}
    for e, r in dev_rows.items():
        for c, cell in r.items():
            s = summarize(cell)
            cell_rows.append(
                {
                    "experiment": e,
                    "split": "dev",
                    "tlp": c,
                    "seeds": s.n,
                    "mean": s.mean,
                    "sd": s.sd,
                    "ci_low": "",
                    "ci_high": "",
                }
            )
    atomic_write_text(
        tables / "dev.md", seed_table(dev_rows, f"Dev {metric} (model selection)", notes)[0]
    )
    shaped, choices, paper_rows = paper_tables(cfg, res)
    for name, text in shaped.items():
        atomic_write_text(tables / name, text)
    atomic_write_json(tables / "paper_choices.json", choices)
    fields = ["experiment", "split", "tlp", "seeds", "mean", "sd", "ci_low", "ci_high"]
    atomic_write_text(tables / "cells.csv", _csv(cell_rows, fields))
    pfields = ["table", "row", "tlp", "kind", "value", "sd", "p", "model", "baseline"]
    atomic_write_text(tables / "paper_tables.csv", _csv(paper_rows, pfields))
    per_seed = [
        {
            "experiment": e,
            "seed": s,
            "run": res.runs[e, split, t, s],
            "split": split,
            "tlp": t,
            "value": v,
        }
        for e, r in res.values.items()
        for split, cells in r.items()
        for t, cell in cells.items()
        for s, v in sorted(cell.items())
    ]
    atomic_write_text(
        tables / "per_seed.csv",
        _csv(per_seed, ["experiment", "seed", "run", "split", "tlp", "value"]),
    )
    from pipeline.report.maml_tables import write_maml_tables  # (it reads `reported_scores`)

    write_maml_tables(cfg, score_files, out)  # Liu et al.'s shapes, when MAML runs exist
    from pipeline.report.xmetra_tables import write_xmetra_tables

    write_xmetra_tables(cfg, score_files, out)  # M'hamdi et al.'s, when X-METRA runs exist
    from pipeline.report.metaxl_tables import write_metaxl_tables

    write_metaxl_tables(cfg, score_files, out)  # Xia et al.'s, when MetaXL / JT runs exist
    if forgetting:  # Lee et al.'s Figure 5, for the runs with `forgetting: true`
        from pipeline.report.forgetting_tables import write_forgetting_tables

        write_forgetting_tables(forgetting, out)
    from pipeline.report.lee_tables import write_lee_tables

    write_lee_tables(cfg, score_files, run_dirs, out)  # Lee et al.'s, when their methods run
    write_curves(run_dirs, out)
    return {"summary": test_md, "metrics": metrics}
