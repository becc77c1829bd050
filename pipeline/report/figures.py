"""PNG figures of the report's plot data (results/plots/*/ -> results/figures/*.png).

DVC renders results/plots/ interactively (`dvc plots show`); a report that is read, mailed or
shown in the README needs images. This module draws the same data with matplotlib's Agg canvas
(no display, no pyplot state, no network) into results/figures/:

    learning_curves.png   training loss and dev score per step (Tarunesh et al.'s curves)
    grad_cosine.png       mean pairwise cosine of the TLPs' gradients per step (Lee et al. Fig. 4)
    multidds.png          MultiDDS sampling probabilities softmax(ψ) per TLP (the ψ trajectories)
    efficiency.png        dev score against the training batches spent (Lee et al. Fig. 7c)
    sweeps.png            k-shot and downsampling curves (M'hamdi et al. §4.2), mean ± sd
    <kind>.<name>.png     figures other report modules already drew under plots/ (forgetting,
                          Lee et al.'s figures), copied so that figures/ holds every image

Curves of one experiment's seeds are averaged step by step (the run id's `s<seed>` part is
dropped), so a figure has one line per experiment and stays readable with many seeds. PNGs are
written without a timestamp or software tag: the same data give the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.io import atomic_write_bytes, atomic_write_json, read_json

#: the run id's seed part (`mtl.s13`, `reptile.s13.ft.nli.l0`)
_SEED = re.compile(r"^s\d+$")
#: lines per panel beyond which the legend is left out (it would hide the curves)
MAX_LEGEND = 14


@dataclass(frozen=True)
class Figure:
    """One image of the report: file name (under figures/), title and caption."""

    name: str
    title: str
    caption: str


def series_name(run: str) -> str:
    """The experiment-level name of a run's curve: the run id without its seed part."""
    return ".".join(p for p in run.split(".") if not _SEED.match(p))


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _num(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def mean_curves(folder: Path, x: str, y: str, name: Callable[[str], str] = series_name) -> dict:
    """{series: [(x, mean y over the series' files)]} of every CSV in `folder`, x ascending."""
    acc: dict[str, dict[float, list[float]]] = {}
    for f in sorted(folder.glob("*.csv")):
        pts = acc.setdefault(name(f.stem), {})
        for row in _read_csv(f):
            xv, yv = _num(row.get(x)), _num(row.get(y))
            if xv is not None and yv is not None:
                pts.setdefault(xv, []).append(yv)
    return {
        s: [(xv, sum(ys) / len(ys)) for xv, ys in sorted(pts.items())]
        for s, pts in sorted(acc.items())
        if pts
    }


def png_bytes(draw: Callable[[Any], None], size: tuple[float, float], dpi: int = 90) -> bytes:
    """PNG bytes of a figure drawn by `draw(fig)`: matplotlib's Agg canvas without pyplot (no
    global state, no display), constrained layout (a legend outside the axes gets its room),
    no timestamp or software tag (the same data give the same bytes). Every report image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


#: line styles cycled after the 10 colours, so up to 40 series stay distinguishable
_DASHES = ("-", "--", ":", "-.")


def _style(i: int) -> dict[str, Any]:
    return {"color": f"C{i % 10}", "linestyle": _DASHES[(i // 10) % len(_DASHES)]}


def _legend_rows(n: int, ncol: int) -> float:
    """Inches a figure-level legend of n entries in ncol columns needs below the axes."""
    return 0.16 * -(-n // ncol) + 0.2


def _lines(
    ax: Any,
    curves: dict,
    title: str,
    xlabel: str,
    ylabel: str,
    styles: dict[str, dict[str, Any]] | None = None,
    legend: bool = True,
) -> None:
    styles = styles or {s: _style(i) for i, s in enumerate(curves)}
    for s, pts in curves.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=s, linewidth=1.2, **styles[s])
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend and 0 < len(curves) <= MAX_LEGEND:
        ax.legend(fontsize=6, ncol=2 if len(curves) > 6 else 1)


def _not_ft(curves: dict) -> dict:
    """Curves of the runs that train the model (meta-training, MTL, STL), not the fine-tunings
    after meta-training (one per TLP: they would crowd the figure; their CSVs stay in plots/)."""
    kept = {s: c for s, c in curves.items() if ".ft." not in s}
    return kept or curves


def learning_curves(plots: Path) -> bytes | None:
    loss = _not_ft(mean_curves(plots / "train_loss", "step", "loss"))
    dev = _not_ft(mean_curves(plots / "dev_score", "step", "dev_mean"))
    if not loss and not dev:
        return None

    names = sorted(set(loss) | set(dev))
    styles = {s: _style(i) for i, s in enumerate(names)}
    ncol = 5

    def draw(fig: Any) -> None:
        a, b = fig.subplots(1, 2)
        _lines(a, loss, "Training loss (mean over seeds)", "step", "loss", styles, False)
        _lines(b, dev, "Dev score (mean over seeds)", "step", "dev mean", styles, False)
        # one legend for both panels, below them (a run's line has one style in both)
        handles = {h.get_label(): h for ax in (a, b) for h in ax.get_lines()}
        fig.legend(
            [handles[s] for s in names if s in handles],
            [s for s in names if s in handles],
            loc="outside lower center",
            ncol=ncol,
            fontsize=7,
            frameon=False,
        )

    return png_bytes(draw, (11.0, 4.2 + _legend_rows(len(names), ncol)))


def _single(
    plots: Path, kind: str, x: str, y: str, title: str, xlabel: str, ylabel: str, **kw: Any
) -> bytes | None:
    curves = mean_curves(plots / kind, x, y, **kw)
    if not curves:
        return None
    return png_bytes(
        lambda fig: _lines(fig.add_subplot(1, 1, 1), curves, title, xlabel, ylabel), (7, 4.2)
    )


def _multidds_series(stem: str) -> str:
    """`<run>.<task>.<lang>` -> `<experiment> <task>/<lang>` (seeds averaged)."""
    run, task, lang = stem.rsplit(".", 2)
    return f"{series_name(run)} {task}/{lang}"


def sweep_series(rows: list[dict[str, str]]) -> tuple[list[str], list[float], list[float]]:
    """Swept values, means and sds of one sweep CSV. A missing mean is NaN, so matplotlib
    leaves a gap where a value has no score rather than drawing a score of 0; a missing sd
    draws no error bar."""
    means = [_num(r["mean"]) for r in rows]
    return (
        [r["value"] for r in rows],
        [math.nan if m is None else m for m in means],
        [_num(r.get("sd")) or 0.0 for r in rows],
    )


def sweeps(plots: Path) -> bytes | None:
    """k-shot / downsampling curves: mean ± sd per swept value, one line per experiment × TLP ×
    metric. Values keep the order of the CSV (the order of the experiment's `sweep`)."""
    files = sorted((plots / "sweeps").glob("*.csv"))
    if not files:
        return None

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        labels: list[str] = []
        for f in files:
            xs, ys, sd = sweep_series(_read_csv(f))
            labels += [x for x in xs if x not in labels]
            pos = [labels.index(x) for x in xs]
            ax.errorbar(pos, ys, yerr=sd, label=f.stem, capsize=3, marker="o", linewidth=1.2)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_title("k-shot and downsampling sweeps (mean ± sd over seeds)", fontsize=10)
        ax.set_xlabel("swept value (k = q, or dev fraction)")
        ax.set_ylabel("test score")
        ax.grid(alpha=0.3)
        if len(files) <= MAX_LEGEND:
            ax.legend(fontsize=6)

    return png_bytes(draw, (7, 4.2))


def write_figures(out: Path) -> list[Figure]:
    """Draw every figure whose data exist under out/plots; returns them in report order."""
    plots, figs_dir = out / "plots", out / "figures"
    figs_dir.mkdir(parents=True, exist_ok=True)
    made: list[Figure] = []

    def put(name: str, data: bytes | None, title: str, caption: str) -> None:
        if data is not None:
            atomic_write_bytes(figs_dir / name, data)
            made.append(Figure(name, title, caption))

    put(
        "learning_curves.png",
        learning_curves(plots),
        "Learning curves",
        "Training loss and dev score per step of every training run (fine-tuning runs after "
        "meta-training left out), averaged over seeds. Data: results/plots/train_loss, dev_score.",
    )
    put(
        "grad_cosine.png",
        _single(
            plots,
            "grad_cosine",
            "step",
            "mean_pairwise_cosine",
            "Gradient cosine between TLPs",
            "step",
            "mean pairwise cosine",
        ),
        "Gradient cosine",
        "Mean pairwise cosine of the TLPs' gradients at each evaluation, averaged over seeds "
        "(Lee et al. 2022, Figure 4). Data: results/plots/grad_cosine.",
    )
    put(
        "multidds.png",
        _single(
            plots,
            "multidds",
            "step",
            "prob",
            "MultiDDS sampling probabilities softmax(ψ)",
            "step",
            "P(TLP)",
            name=_multidds_series,
        ),
        "ψ trajectories",
        "MultiDDS's sampling probability of each TLP per step, averaged over seeds (Tarunesh "
        "et al. 2021, Figure 3). Data: results/plots/multidds.",
    )
    put(
        "efficiency.png",
        _single(
            plots,
            "efficiency",
            "batches",
            "dev_mean",
            "Dev score by gradient computations",
            "training batches",
            "dev mean",
        ),
        "Computational efficiency",
        "Dev score against the training batches spent so far (Lee et al. 2022, Figure 7c). "
        "Data: results/plots/efficiency.",
    )
    put(
        "sweeps.png",
        sweeps(plots),
        "k-shot and downsampling",
        "Test score per swept k-shot or dev-fraction value, mean ± sd over seeds (M'hamdi et "
        "al. 2021, §4.2). Data: results/plots/sweeps.",
    )
    for png in sorted(plots.rglob("*.png")) if plots.is_dir() else []:
        rel = png.relative_to(plots)
        name = ".".join(rel.parts)
        shutil.copyfile(png, figs_dir / name)
        made.append(Figure(name, _drawn_title(rel), f"Data and image: results/plots/{rel}."))
    atomic_write_json(figs_dir / "figures.json", [asdict(f) for f in made])
    return made


def _drawn_title(rel: Path) -> str:
    """Title of a figure another report module drew (`forgetting/l2.png` -> `forgetting: l2`)."""
    parts = [*rel.parts[:-1], rel.stem]
    return ": ".join(p.replace("_", " ") for p in parts)


def read_figures(out: Path) -> list[Figure]:
    """The figures write_figures made (figures/figures.json), in report order."""
    index = out / "figures" / "figures.json"
    return [Figure(**f) for f in read_json(index)] if index.exists() else []
