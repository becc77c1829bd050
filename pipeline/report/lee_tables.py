"""Lee et al. (2022, Sequential Reptile)'s result shapes and gradient-alignment analyses.

Written when the config has at least two experiments whose method is one of the paper's
multi-task baselines (RecAdam, GradNorm, PCGrad, GradVac) or Sequential Reptile:

    tables/lee_multitask.md      §4.2 Tables 1-2: per task, rows STL, MTL, RecAdam, GradNorm,
                                 PCGrad, GradVac, Reptile, Seq. Reptile (each experiment's `row`
                                 label when set), columns the task's test languages + Avg., test
                                 mean ± sd over seeds (QA: F1 / EM, as the paper prints), Welch's
                                 t-test of the Avg. against MTL; then Table 3's shape (§4.2,
                                 TyDiQA → MLQA): the same runs on their zero-shot languages
    tables/lee_zero_shot.md      §4.3 Tables 4-5: the zero-shot cluster runs (`clusters`: tasks
                                 are clusters of one English training set), per task, columns the
                                 unseen test languages + Avg.
    tables/lee_tables.csv        every cell of both: table, task, row, experiment, lang (or avg),
                                 metric, seeds, mean, sd, p (avg cells, vs MTL)
    tables/grad_cosine.md        Fig. 4: per experiment, mean ± sd over seeds of the run-average
                                 (over its evaluations) of the cosine of averaged task gradients
                                 and of the mean per-batch cosine
    tables/lee_inner_lr.md       Fig. 7b: swept Reptile / Seq. Reptile experiments whose `sweep`
                                 varies `lr` (the inner optimizer's) or `inner_lr`: per value,
                                 the gradient cosine and the test main metric (avg over TLPs)
    plots/grad_cosine_by_method/<experiment>.csv    step, batches, mean, sd, batch_mean, batch_sd, seeds
    plots/tradeoff/<experiment>.csv                 Fig. 7a: seed, step, mean_task_loss,
                                                    mean_pairwise_cosine (one row per evaluation)
    plots/inner_lr/<experiment>.csv                 Fig. 7b: value, cos_mean, cos_sd,
                                                    score_mean, score_sd, seeds
    plots/{grad_cosine_by_method,tradeoff,inner_lr}.png   the three figures (matplotlib Agg)

Scores are the runs' OWN test scores: Lee et al. evaluate the multi-task model directly
(§4.2). A meta experiment fine-tuned per TLP afterwards (`reptile`, `seq_reptile` in the
embedded default: Tarunesh et al.'s protocol) scores only its zero-shot TLPs itself; its row of
Tables 1-2 then shows its fine-tuned runs' scores, marked † (`finetune: false` is Lee et al.'s
protocol, as the preset sets). Gradient cosines and the task loss come from models/runs/<run>/history.json
(`grad_cosine`, written by the trainer at every evaluation, `pipeline.analysis`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import active_experiments
from pipeline.errors import PipelineError
from pipeline.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from pipeline.records import TLP
from pipeline.report import stats
from pipeline.report.figures import png_bytes

#: the paper's row order (Tables 1-5) and labels
ORDER = ("stl", "mtl", "recadam", "gradnorm", "pcgrad", "gradvac", "reptile", "seq_reptile")
LABELS = {
    "stl": "STL",
    "mtl": "MTL",
    "recadam": "RecAdam",
    "gradnorm": "GradNorm",
    "pcgrad": "PCGrad",
    "gradvac": "GradVac",
    "reptile": "Reptile",
    "seq_reptile": "Seq. Reptile",
}
#: methods that make a config "Lee et al.'s": two experiments of these switch the tables on
TRIGGER = {"recadam", "gradnorm", "pcgrad", "gradvac", "seq_reptile"}
#: swept keys of Fig. 7b (the inner learning rate: `lr` of the inner optimizer, or `inner_lr`)
LR_KEYS = ("inner_lr", "lr")
#: the QA metric printed after the main one (the paper's "F1 / EM")
EM = "exact_match"

#: {row: {"seen" | "zs": {tlp: {metric: {seed: value}}}}}
Cells = dict[str, dict[str, dict[str, dict[str, dict[int, float]]]]]


def is_lee_config(cfg: Mapping[str, Any]) -> bool:
    methods = [e.get("method") for e in active_experiments(cfg).values()]
    return sum(m in TRIGGER for m in methods) >= 2


#: experiment keys of other papers' protocols (a stage started from another model, target-
#: language grids, dev-split or few-example training): such MTL / STL runs are no Lee et al. row
OTHER_PROTOCOL = ("init", "target", "aux", "train_examples", "finetune_tlps")


def rows_in_order(cfg: Mapping[str, Any], clusters: bool) -> list[str]:
    """Unswept experiments of the paper's methods, in its order (config order among equals);
    `clusters`: the zero-shot cluster runs (Tables 4-5), else the others (Tables 1-3).

    Lee et al.'s models all start from the pretrained encoder and train on train splits (§4.2,
    §4.3), so experiments of another paper's protocol that merely share a method (an English
    `init` stage, a `target` grid, dev-split training) are left to that paper's tables."""
    exps = active_experiments(cfg)
    inits = {e.get("init") for e in exps.values()}
    names = [
        n
        for n, e in exps.items()
        if e.get("method") in ORDER
        and not e.get("sweep")
        and bool(e.get("clusters")) == clusters
        and n not in inits
        and not any(e.get(k) for k in OTHER_PROTOCOL)
        and e.get("train_split", "train") == "train"
    ]
    return sorted(names, key=lambda n: ORDER.index(exps[n]["method"]))


def pick_on_dev(
    cfg: Mapping[str, Any], score_files: Sequence[Path], rows: Sequence[str]
) -> tuple[list[str], dict[str, Any]]:
    """One experiment per row label: among experiments sharing a `row` (Lee et al. §4.3: NLI's
    lr "3e-5 or 5e-5 ... based on the performance on the validation set"), the best mean dev
    main metric over seeds and the run's own TLPs (never a zero-shot language's dev set: the
    protocol has no target data). Returns the kept rows, in order, and the choices made."""
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(label(cfg, r), []).append(r)
    if all(len(g) == 1 for g in groups.values()):
        return list(rows), {}
    dev: dict[str, list[float]] = {}
    for f in sorted(score_files):
        sc = read_json(f)
        if sc["experiment"] not in rows or not _own(sc):
            continue
        zs = set(sc.get("zero_shot_tlps", []))
        vals = [
            float(v["dev"]["main"]) for t, v in sc["scores"].items() if t not in zs and "dev" in v
        ]
        if vals:
            dev.setdefault(sc["experiment"], []).append(stats.mean(vals))
    choices: dict[str, Any] = {}
    drop: set[str] = set()
    for name, group in groups.items():
        if len(group) == 1:
            continue
        scored = {e: stats.mean(dev[e]) for e in group if dev.get(e)}
        if not scored:
            continue
        best = max(scored, key=lambda e: (scored[e], -group.index(e)))
        drop |= set(group) - {best}
        choices[name] = {"chosen": best, "dev_mean": scored}
    return [r for r in rows if r not in drop], choices


def label(cfg: Mapping[str, Any], exp: str) -> str:
    e = active_experiments(cfg)[exp]
    return e.get("row", LABELS.get(e["method"], exp))


def _own(sc: Mapping[str, Any]) -> bool:
    """A meta (or STL/MTL) run's own score file: not a fine-tuning run, not a sweep run."""
    return sc.get("method") != "finetune" and ".ft." not in sc["run"] and not sc.get("sweep")


def collect(score_files: Sequence[Path], rows: Sequence[str]) -> Cells:
    """Test cells of the experiments `rows` from their own runs (main metric, QA's EM too)."""
    cells: Cells = {}
    for f in sorted(score_files):
        sc = read_json(f)
        if sc["experiment"] not in rows or not _own(sc):
            continue
        zs, seed = set(sc.get("zero_shot_tlps", [])), int(sc.get("seed", 0))
        row = cells.setdefault(sc["experiment"], {"seen": {}, "zs": {}})
        for tlp, splits in sc["scores"].items():
            test = splits["test"]
            for metric in ("main", EM):
                if metric == EM and (TLP.parse(tlp).task != "qa" or EM not in test):
                    continue
                kind = "zs" if tlp in zs else "seen"
                cell = row[kind].setdefault(tlp, {}).setdefault(metric, {})
                if seed in cell:
                    raise PipelineError(f"{f}: {sc['experiment']} {tlp} seed {seed} scored twice")
                cell[seed] = float(test[metric])
    _fine_tuned_rows(score_files, rows, cells)
    return cells


#: marks a row whose Tables 1-2 cells are its fine-tuned runs' (see the module docstring)
FINE_TUNED = "†"


def _fine_tuned_rows(score_files: Sequence[Path], rows: Sequence[str], cells: Cells) -> None:
    """Rows with no own score of a training TLP take their `.ft.` runs' (marked FINE_TUNED)."""
    need = {r for r in rows if not cells.get(r, {}).get("seen")}
    for f in sorted(score_files):
        sc = read_json(f)
        if sc["experiment"] not in need or _own(sc) or sc.get("sweep"):
            continue
        zs, seed = set(sc.get("zero_shot_tlps", [])), int(sc.get("seed", 0))
        row = cells.setdefault(sc["experiment"], {"seen": {}, "zs": {}})
        row["fine_tuned"] = True  # type: ignore[assignment]
        for tlp, splits in sc["scores"].items():
            if tlp in zs:
                continue
            for metric in ("main", EM):
                if metric == EM and (TLP.parse(tlp).task != "qa" or EM not in splits["test"]):
                    continue
                row["seen"].setdefault(tlp, {}).setdefault(metric, {})[seed] = float(
                    splits["test"][metric]
                )


# ---------------------------------------------------------------------------------------------
# Tables 1-5


def _summary(cell: Mapping[int, float]) -> tuple[float, float, int]:
    xs = [cell[s] for s in sorted(cell)]
    return stats.mean(xs), stats.sd(xs), len(xs)


def _text(mean: float, sd: float, digits: int = 1) -> str:
    """Scores with one decimal (the paper's); cosines with three (`digits`)."""
    return f"{mean:.{digits}f}" if math.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _avg_seeds(per_lang: Sequence[Mapping[int, float]]) -> dict[int, float]:
    """Per seed, the mean over the columns (seeds that have every column); {} if one is empty."""
    if not per_lang or not all(per_lang):
        return {}
    seeds = sorted(set.intersection(*(set(c) for c in per_lang)))
    return {s: stats.mean([c[s] for c in per_lang]) for s in seeds}


def _langs(cfg: Mapping[str, Any], cells: Cells, rows: Sequence[str], kind: str, task: str):
    """The task's languages in `kind`: the pool's order (`tlps`), then the rest sorted."""
    have = {
        TLP.parse(t).lang
        for r in rows
        for t in cells.get(r, {}).get(kind, {})
        if TLP.parse(t).task == task
    }
    pool = [TLP.parse(t).lang for t in cfg.get("tlps", []) if TLP.parse(t).task == task]
    first = [lg for lg in dict.fromkeys(pool) if lg in have]
    return first + sorted(have - set(first))


def task_table(
    cfg: Mapping[str, Any],
    cells: Cells,
    rows: Sequence[str],
    kind: str,
    task: str,
    title: str,
    table: str,
    csv_rows: list[dict[str, Any]],
) -> str:
    """One task's table (Markdown), its cells appended to `csv_rows`; "" without scores.

    Bold: the best mean of each column among the multilingual rows (all but STL), as the
    paper's; underlined: the best of all rows, STL included, when STL has the column.
    """
    exps = active_experiments(cfg)
    langs = _langs(cfg, cells, rows, kind, task)
    have = [
        r for r in rows if any(TLP.parse(t).task == task for t in cells.get(r, {}).get(kind, {}))
    ]
    if not langs or not have:
        return ""
    metrics = (
        ["main", EM]
        if any(EM in cells[r][kind].get(f"{task}/{lg}", {}) for r in have for lg in langs)
        else ["main"]
    )

    def col(r: str, lg: str, m: str) -> dict[int, float]:
        return cells[r][kind].get(f"{task}/{lg}", {}).get(m, {})

    # per row and metric: the cells of the columns, Avg. last
    grid = {
        r: {
            m: [col(r, lg, m) for lg in langs] + [_avg_seeds([col(r, lg, m) for lg in langs])]
            for m in metrics
        }
        for r in have
    }
    mtl = next((r for r in have if exps[r]["method"] == "mtl"), None)
    multi = [r for r in have if exps[r]["method"] != "stl"]
    best, best_all = [], []
    for i in range(len(langs) + 1):
        means = {r: _summary(grid[r]["main"][i])[0] for r in have if grid[r]["main"][i]}
        m_multi = [v for r, v in means.items() if r in multi]
        best.append(max(m_multi) if len(m_multi) > 1 else None)
        has_stl = any(exps[r]["method"] == "stl" for r in means)
        best_all.append(max(means.values()) if has_stl and len(means) > 1 else None)
    head = [*langs, "Avg."]
    lines = [f"### {title}", "", "| Method | " + " | ".join(head) + " | p (Avg. vs MTL) |"]
    lines.append("|---" * (len(head) + 2) + "|")
    for r in have:
        name = label(cfg, r) + (FINE_TUNED if kind == "seen" and cells[r].get("fine_tuned") else "")
        texts = []
        for i in range(len(langs) + 1):
            parts = []
            for m in metrics:
                c = grid[r][m][i]
                if not c:
                    parts.append("–")
                    continue
                mean, sd, n = _summary(c)
                parts.append(_text(mean, sd))
                csv_rows.append(
                    {
                        "table": table,
                        "task": task,
                        "row": name,
                        "experiment": r,
                        "lang": head[i] if i < len(langs) else "avg",
                        "metric": m,
                        "seeds": n,
                        "mean": mean,
                        "sd": sd,
                        "p": _p(grid, r, mtl, m) if i == len(langs) else "",
                    }
                )
            text = " / ".join(parts) if parts[0] != "–" else "–"
            main = grid[r]["main"][i]
            if main:
                mean = _summary(main)[0]
                if best_all[i] is not None and mean == best_all[i]:
                    text = f"<u>{text}</u>"
                if r in multi and best[i] is not None and mean == best[i]:
                    text = f"**{text}**"
            texts.append(text)
        p = "–" if r == mtl or mtl is None else _fmt_p(_p(grid, r, mtl, "main"))
        lines.append(f"| {name} | " + " | ".join(texts) + f" | {p} |")
    return "\n".join(lines) + "\n"


def _p(grid: Mapping[str, Any], r: str, mtl: str | None, m: str) -> float:
    """Welch's t-test over seeds of the row's per-seed Avg. against MTL's (nan: no MTL)."""
    if mtl is None or r == mtl:
        return math.nan
    a, b = grid[r][m][-1], grid[mtl][m][-1]
    if not a or not b:
        return math.nan
    return stats.welch_t([a[s] for s in sorted(a)], [b[s] for s in sorted(b)]).p


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _tasks(cells: Cells, kind: str) -> list[str]:
    return sorted({TLP.parse(t).task for r in cells.values() for t in r.get(kind, {})})


NOTE = (
    "Test main metric: mean ± sd over seeds of each experiment's own multi-task model (Lee et "
    "al. evaluate the multi-task model directly, §4.2; † below for the exception); QA cells "
    "F1 / EM. Avg.: per seed the mean over the columns, then mean ± sd. **Bold**: best "
    "multilingual row, <u>underlined</u>: best of all rows (STL included). p: Welch's t-test over "
    "seeds of the Avg. (main metric) against MTL. †: a meta model fine-tuned per TLP afterwards "
    "(Tarunesh et al.'s protocol, `finetune: true`): its fine-tuned runs' scores; Lee et al. "
    "evaluate the multi-task model itself (`finetune: false`). Experiments sharing a row label: "
    "the one with the best dev score on its own languages (§4.3's lr choice; "
    "`lee_choices.json`)."
)


def _missing(rows: Sequence[str], cells: Cells, kind: str) -> str:
    gone = [r for r in rows if not cells.get(r, {}).get(kind)]
    if not gone:
        return ""
    return (
        f"No own test scores here for: {', '.join(gone)} (not scored yet, or a meta experiment "
        "whose runs are missing)."
    )


# ---------------------------------------------------------------------------------------------
# Gradient cosine (Fig. 4), trade-off (Fig. 7a), inner learning rate (Fig. 7b)


def run_infos(score_files: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """run id -> its score file's experiment, seed, method, sweep and scores (every run)."""
    out = {}
    for f in score_files:
        sc = read_json(f)
        out[sc["run"]] = sc
    return out


def evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """The history entries of a run that carry the gradient diagnostic."""
    f = run_dir / "history.json"
    if not f.exists():
        return []
    return [h for h in read_json(f) if "grad_cosine" in h]


def run_average(evals: Sequence[Mapping[str, Any]], key: str) -> float:
    return stats.mean([h["grad_cosine"][key] for h in evals if key in h["grad_cosine"]])


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in fields})
    return buf.getvalue()


def _num(x: float) -> Any:
    return "" if isinstance(x, float) and math.isnan(x) else x


def _png(path: Path, draw: Any, size: tuple[float, float] = (6.5, 4.5)) -> None:
    """A figure drawn by `draw(fig)`, saved as PNG (figures.png_bytes)."""
    atomic_write_bytes(path, png_bytes(draw, size, dpi=100))


def write_grad_cosine(
    cfg: Mapping[str, Any],
    infos: Mapping[str, Mapping[str, Any]],
    run_dirs: Sequence[Path],
    out: Path,
) -> None:
    """Fig. 4 (table, per-experiment curves, PNG) and Fig. 7a (trade-off curves, PNG)."""
    rows = rows_in_order(cfg, False) + rows_in_order(cfg, True)
    per_exp: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for d in run_dirs:
        sc = infos.get(d.name)
        if sc is None or sc["experiment"] not in rows or not _own(sc):
            continue
        evals = evaluations(d)
        if evals:
            per_exp.setdefault(sc["experiment"], {})[int(sc.get("seed", 0))] = evals
    if not per_exp:
        return
    plots = out / "plots"
    lines = [
        "### Fig. 4 shape: average pairwise cosine between task gradients",
        "",
        "Per run, the average over its evaluations of the mean pairwise cosine between the TLPs'"
        " averaged gradients (`mean_pairwise_cosine`, the paper's) and of the mean cosine between"
        " single-batch gradients (`mean_pairwise_batch_cosine`); mean ± sd over seeds.",
        "",
        "| Method | experiment | cosine (averaged gradients) | cosine (per batch) | seeds |",
        "|---|---|---|---|---|",
    ]
    curves: dict[str, list[dict[str, Any]]] = {}
    trade: dict[str, list[dict[str, Any]]] = {}
    for exp in (r for r in rows if r in per_exp):
        seeds = per_exp[exp]
        cells = []
        for key in ("mean_pairwise_cosine", "mean_pairwise_batch_cosine"):
            xs = [run_average(seeds[s], key) for s in sorted(seeds)]
            xs = [x for x in xs if not math.isnan(x)]
            cells.append(_text(stats.mean(xs), stats.sd(xs), 3) if xs else "–")
        lines.append(f"| {label(cfg, exp)} | {exp} | {cells[0]} | {cells[1]} | {len(seeds)} |")
        by_step: dict[int, list[Mapping[str, Any]]] = {}
        spent: dict[int, list[float]] = {}  # training batches so far (one gradient each)
        for s in sorted(seeds):
            for h in seeds[s]:
                by_step.setdefault(int(h["step"]), []).append(h["grad_cosine"])
                if "batches" in h:
                    spent.setdefault(int(h["step"]), []).append(float(h["batches"]))
        curve = []
        for step in sorted(by_step):
            gs = by_step[step]
            cos = [g["mean_pairwise_cosine"] for g in gs]
            bat = [g["mean_pairwise_batch_cosine"] for g in gs if "mean_pairwise_batch_cosine" in g]
            curve.append(
                {
                    "step": step,
                    "batches": stats.mean(spent[step]) if step in spent else "",
                    "mean": stats.mean(cos),
                    "sd": _num(stats.sd(cos)),
                    "batch_mean": _num(stats.mean(bat)) if bat else "",
                    "batch_sd": _num(stats.sd(bat)) if bat else "",
                    "seeds": len(gs),
                }
            )
        curves[exp] = curve
        fields = ["step", "batches", "mean", "sd", "batch_mean", "batch_sd", "seeds"]
        atomic_write_text(plots / "grad_cosine_by_method" / f"{exp}.csv", _csv(curve, fields))
        points = [
            {
                "seed": s,
                "step": int(h["step"]),
                "mean_task_loss": h["grad_cosine"]["mean_task_loss"],
                "mean_pairwise_cosine": h["grad_cosine"]["mean_pairwise_cosine"],
            }
            for s in sorted(seeds)
            for h in seeds[s]
            if "mean_task_loss" in h["grad_cosine"]  # histories from before Fig. 7a have none
        ]
        if points:
            trade[exp] = points
            fields = ["seed", "step", "mean_task_loss", "mean_pairwise_cosine"]
            atomic_write_text(plots / "tradeoff" / f"{exp}.csv", _csv(points, fields))
    atomic_write_text(out / "tables" / "grad_cosine.md", "\n".join(lines) + "\n")

    # a common x axis across methods: training batches (a meta-step is many optimizer steps)
    x_key = "batches" if all(c["batches"] != "" for cv in curves.values() for c in cv) else "step"

    def draw_curves(fig: Any) -> None:
        ax = fig.add_subplot()
        for exp, curve in curves.items():
            xs = [c[x_key] for c in curve]
            ys = [c["mean"] for c in curve]
            ax.plot(xs, ys, marker="o", markersize=3, label=label(cfg, exp))
            sds = [c["sd"] for c in curve]
            if all(sd != "" for sd in sds):
                lo = [y - sd for y, sd in zip(ys, sds, strict=True)]
                hi = [y + sd for y, sd in zip(ys, sds, strict=True)]
                ax.fill_between(xs, lo, hi, alpha=0.15)
        ax.set_xlabel("training batches (gradient computations)" if x_key == "batches" else "step")
        ax.set_ylabel("average pairwise cosine of task gradients")
        ax.set_title("Lee et al. Fig. 4: gradient alignment during training", fontsize=9)
        ax.legend(loc="best", fontsize=8)

    _png(plots / "grad_cosine_by_method.png", draw_curves)
    if not trade:
        return

    def draw_trade(fig: Any) -> None:
        ax = fig.add_subplot()
        for exp, points in trade.items():
            by_step: dict[int, list[dict[str, Any]]] = {}
            for p in points:
                by_step.setdefault(p["step"], []).append(p)
            steps = sorted(by_step)
            xs = [stats.mean([p["mean_task_loss"] for p in by_step[s]]) for s in steps]
            ys = [stats.mean([p["mean_pairwise_cosine"] for p in by_step[s]]) for s in steps]
            ax.plot(xs, ys, marker="o", markersize=4, label=label(cfg, exp))
        ax.set_xlabel("MTL training loss (mean over TLPs, diagnostic batches)")
        ax.set_ylabel("average pairwise cosine of task gradients")
        ax.set_title("Lee et al. Fig. 7a: cosine vs training loss (mean over seeds)", fontsize=9)
        ax.legend(loc="best", fontsize=8)

    _png(plots / "tradeoff.png", draw_trade)


def lr_key(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """The swept inner-learning-rate key of a sweep (`inner_lr` before `lr`), None if neither."""
    return next((k for k in LR_KEYS if any(k in e for e in entries)), None)


def write_inner_lr(
    cfg: Mapping[str, Any],
    infos: Mapping[str, Mapping[str, Any]],
    run_dirs: Sequence[Path],
    out: Path,
) -> None:
    """Fig. 7b: per swept value, gradient cosine and test main metric (mean ± sd over seeds).

    The test metric of a run is its own models' mean over its trained TLPs' test scores (its
    zero-shot ones for a run without any, e.g. a cluster run)."""
    exps = active_experiments(cfg)
    swept = {
        n: k
        for n, e in exps.items()
        if e.get("method") in ("reptile", "seq_reptile")
        and e.get("sweep")
        and (k := lr_key(e["sweep"]))
    }
    if not swept:
        return
    dirs = {d.name: d for d in run_dirs}
    lines = [
        "### Fig. 7b shape: effect of the inner learning rate",
        "",
        "Per swept value: the run-average cosine of averaged task gradients (Fig. 4's) and the "
        "test main metric of the multi-task model averaged over its TLPs; mean ± sd over seeds.",
    ]
    series: dict[str, list[dict[str, Any]]] = {}
    for name, key in swept.items():
        default = exps[name].get(key, cfg.get("training", {}).get(key))
        points: dict[str, dict[str, Any]] = {}
        for sc in sorted(infos.values(), key=lambda s: s["run"]):
            if sc["experiment"] != name or not sc.get("sweep") or sc.get("method") == "finetune":
                continue
            if ".ft." in sc["run"]:
                continue
            entry = sc["sweep"]
            value = entry.get(key, default)
            rest = ",".join(f"{k}={v}" for k, v in entry.items() if k != key)
            pt = points.setdefault(
                f"{value}|{rest}", {"value": value, "rest": rest, "cos": {}, "score": {}}
            )
            seed = int(sc.get("seed", 0))
            zs = set(sc.get("zero_shot_tlps", []))
            seen = [t for t in sc["scores"] if t not in zs] or list(sc["scores"])
            if seen:
                pt["score"][seed] = stats.mean([sc["scores"][t]["test"]["main"] for t in seen])
            evals = evaluations(dirs[sc["run"]]) if sc["run"] in dirs else []
            if evals:
                pt["cos"][seed] = run_average(evals, "mean_pairwise_cosine")
        rows = []
        for pt in sorted(points.values(), key=lambda p: (_sort_num(p["value"]), p["rest"])):
            cos = [pt["cos"][s] for s in sorted(pt["cos"])]
            score = [pt["score"][s] for s in sorted(pt["score"])]
            rows.append(
                {
                    "value": pt["value"],
                    "rest": pt["rest"],
                    "cos_mean": _num(stats.mean(cos)),
                    "cos_sd": _num(stats.sd(cos)),
                    "score_mean": _num(stats.mean(score)),
                    "score_sd": _num(stats.sd(score)),
                    "seeds": len(set(pt["cos"]) | set(pt["score"])),
                }
            )
        if not rows:
            continue
        series[name] = rows
        fields = ["value", "cos_mean", "cos_sd", "score_mean", "score_sd", "seeds"]
        atomic_write_text(out / "plots" / "inner_lr" / f"{name}.csv", _csv(rows, fields))
        lines += ["", f"#### {label(cfg, name)} ({name}): `{key}`", ""]
        lines += [f"| {key} | cosine | test main metric (avg) | seeds |"]
        lines += ["|---|---|---|---|"]
        for r in rows:
            v = f"{r['value']}" + (f" ({r['rest']})" if r["rest"] else "")
            cells = [
                _text(r[f"{k}_mean"], r[f"{k}_sd"] if r[f"{k}_sd"] != "" else math.nan, digits)
                if r[f"{k}_mean"] != ""
                else "–"
                for k, digits in (("cos", 3), ("score", 1))
            ]
            lines.append(f"| {v} | {cells[0]} | {cells[1]} | {r['seeds']} |")
    if not series:
        return
    atomic_write_text(out / "tables" / "lee_inner_lr.md", "\n".join(lines) + "\n")

    def draw(fig: Any) -> None:
        ax_cos, ax_score = fig.subplots(1, 2)
        for name, rows in series.items():
            pts = [r for r in rows if isinstance(r["value"], (int, float))]
            xs = [r["value"] for r in pts]
            for ax, k in ((ax_cos, "cos"), (ax_score, "score")):
                have = [(x, r) for x, r in zip(xs, pts, strict=True) if r[f"{k}_mean"] != ""]
                if not have:
                    continue
                err = [r[f"{k}_sd"] if r[f"{k}_sd"] != "" else 0.0 for _, r in have]
                ax.errorbar(
                    [x for x, _ in have],
                    [r[f"{k}_mean"] for _, r in have],
                    yerr=err,
                    marker="o",
                    capsize=3,
                    label=label(cfg, name),
                )
        for ax, title in ((ax_cos, "gradient cosine"), (ax_score, "test score (avg)")):
            if all(x > 0 for r in series.values() for x in _values(r)):
                ax.set_xscale("log")
            ax.set_xlabel("inner learning rate")
            ax.set_title(title, fontsize=9)
            ax.legend(loc="best", fontsize=7)
        fig.suptitle("Lee et al. Fig. 7b: effect of the inner learning rate", fontsize=9)

    _png(out / "plots" / "inner_lr.png", draw, size=(9.0, 4.0))


def _values(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    return [r["value"] for r in rows if isinstance(r["value"], (int, float))]


def _sort_num(v: Any) -> tuple[int, float, str]:
    return (0, float(v), "") if isinstance(v, (int, float)) else (1, 0.0, str(v))


# ---------------------------------------------------------------------------------------------


def write_lee_tables(
    cfg: Mapping[str, Any], score_files: Sequence[Path], run_dirs: Sequence[Path], out: Path
) -> bool:
    """Write the files of the module docstring; False (nothing written) for other papers'
    configs (fewer than two experiments of RecAdam, GradNorm, PCGrad, GradVac, Seq. Reptile)."""
    if not is_lee_config(cfg):
        return False
    tables = out / "tables"
    csv_rows: list[dict[str, Any]] = []
    multi, picks = pick_on_dev(cfg, score_files, rows_in_order(cfg, False))
    cluster, cpicks = pick_on_dev(cfg, score_files, rows_in_order(cfg, True))
    atomic_write_json(tables / "lee_choices.json", {"multitask": picks, "zero_shot": cpicks})
    cells = collect(score_files, multi + cluster)
    for fname, rows, shapes in (
        (
            "lee_multitask.md",
            multi,
            (
                ("seen", "multitask", "Tables 1-2 shape (§4.2, multi-task)"),
                ("zs", "multitask_zero_shot", "Table 3 shape (§4.2, unseen languages)"),
            ),
        ),
        (
            "lee_zero_shot.md",
            cluster,
            (("zs", "zero_shot", "Tables 4-5 shape (§4.3, zero-shot from English clusters)"),),
        ),
    ):
        if not rows:
            continue
        parts = [
            f"# Sequential Reptile (Lee et al. 2022): {fname[4:-3].replace('_', '-')}",
            "",
            NOTE,
        ]
        for kind, table, title in shapes:
            bodies = [
                task_table(cfg, cells, rows, kind, task, f"{title}: {task}", table, csv_rows)
                for task in _tasks({r: cells[r] for r in rows if r in cells}, kind)
            ]
            parts += [x for b in bodies if b for x in ("", b.rstrip("\n"))]
            missing = _missing(rows, cells, kind) if kind == "seen" else ""
            if any(bodies) and missing:
                parts += ["", missing]
        atomic_write_text(tables / fname, "\n".join(parts) + "\n")
    fields = ["table", "task", "row", "experiment", "lang", "metric", "seeds", "mean", "sd", "p"]
    atomic_write_text(
        tables / "lee_tables.csv",
        _csv([{k: _num(v) for k, v in r.items()} for r in csv_rows], fields),
    )
    infos = run_infos(score_files)
    write_grad_cosine(cfg, infos, run_dirs, out)
    write_inner_lr(cfg, infos, run_dirs, out)
    return True
