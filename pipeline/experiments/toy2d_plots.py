"""Figures and files of the 2-D synthetic experiment (pipeline/experiments/toy2d.py; Lee et al.
2022 Figure 3): trajectories over the contour lines of Σ_i L_i, the heatmap of the mean pairwise
gradient cosine, trajectories and the sweep as CSV (long format with a `method` column, what the
DVC plots of dvc.yaml read), `summary.json` and `claims.md`.

Matplotlib's Agg canvas (no display, no pyplot state), as pipeline/report/representations.py.
`write_toy2d` writes everything into a temporary directory beside `out_dir` and renames it into
place only when all of it has been written (pipeline.io.atomic_dir): a failure leaves no
`out_dir` (and an existing one untouched).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.experiments.toy2d import (
    CELL_KEYS,
    MINIMA,
    START,
    Trajectory,
    gradient_cosine_grid,
    sum_loss_grid,
)
from pipeline.io import atomic_dir

EXTENT = (-5.0, 25.0, -5.0, 15.0)  # x0, x1, y0, y1: the minima, φ0 and some margin


def _figure(size: tuple[float, float] = (6.5, 4.8)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def grid(n: int = 121, extent: Sequence[float] = EXTENT) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n))


def trajectories_png(trajectories: Mapping[str, Trajectory], n: int = 121) -> bytes:
    """Every method's path over the contour lines of the summed loss."""
    xs, ys = grid(n)
    z = sum_loss_grid(xs, ys)
    fig = _figure()
    ax = fig.add_subplot()
    cs = ax.contour(xs, ys, z, levels=20, cmap="viridis", linewidths=0.7)
    fig.colorbar(cs, ax=ax, label="sum of task losses")
    for name, t in trajectories.items():
        ax.plot(t.points[:, 0], t.points[:, 1], lw=1.2, label=name)
        ax.plot(*t.points[-1], marker="o", ms=4, color=ax.lines[-1].get_color())
    for i, m in enumerate(MINIMA):
        ax.plot(*m, marker="*", ms=10, color="k")
        ax.annotate(f"x{i + 1}", m, textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.plot(*START, marker="s", ms=6, color="k")
    ax.set_xlim(EXTENT[0], EXTENT[1])
    ax.set_ylim(EXTENT[2], EXTENT[3])
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title("Trajectories over the MTL loss (Lee et al. 2022 Fig. 3a-g)", fontsize=9)
    return _png(fig)


def cosine_png(trajectories: Mapping[str, Trajectory] | None = None, n: int = 121) -> bytes:
    """Heatmap of the mean pairwise cosine of the three task gradients over a grid of φ."""
    xs, ys = grid(n)
    c = gradient_cosine_grid(xs, ys)
    fig = _figure()
    ax = fig.add_subplot()
    im = ax.imshow(
        c, origin="lower", extent=EXTENT, cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="equal"
    )
    fig.colorbar(im, ax=ax, label="mean pairwise gradient cosine")
    for name, t in (trajectories or {}).items():
        ax.plot(*t.points[-1], marker="o", ms=5, label=name)
    for m in MINIMA:
        ax.plot(*m, marker="*", ms=10, color="k")
    if trajectories:
        ax.legend(loc="upper right", fontsize=7)
    ax.set_title("Gradient cosine (Fig. 3h) and end points", fontsize=9)
    return _png(fig)


#: columns of trajectories.csv: one row per method and point (step 0 = φ0, then one per step)
TRAJECTORY_COLUMNS = (
    "method",
    "step",
    "phi1",
    "phi2",
    "loss1",
    "loss2",
    "loss3",
    "sum_loss",
    "cosine",
)
#: columns of sweep.csv: one row per sweep cell (lr, K) and method (reptile, seq_reptile)
SWEEP_COLUMNS = (
    "lr",
    "K",
    "method",
    "phi1",
    "phi2",
    "nearest_minimum",
    "distance_to_nearest",
    "in_mtl_minimum",
    "cosine_end",
    "sum_loss_end",
    "claim2",
    "claim3",
)


def _num(x: float) -> str:
    return "" if math.isnan(x) else repr(float(x))


def trajectories_csv(trajectories: Mapping[str, Trajectory]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TRAJECTORY_COLUMNS)
    for name, t in trajectories.items():
        for s, (p, lo, c) in enumerate(zip(t.points, t.losses, t.cosines)):
            w.writerow(
                [name, s, _num(p[0]), _num(p[1])]
                + [_num(x) for x in lo]
                + [_num(lo.sum()), _num(c)]
            )
    return buf.getvalue()


def sweep_csv(sweep: Sequence[Mapping[str, Any]] | None) -> str:
    """The sweep in long format (the header only when there is no sweep)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SWEEP_COLUMNS)
    for c in sweep or []:
        for method in ("reptile", "seq_reptile"):
            m = {k: c[method][k] for k in CELL_KEYS}
            w.writerow(
                [repr(c["lr"]), c["K"], method, _num(m["end"][0]), _num(m["end"][1])]
                + [m["nearest_minimum"], _num(m["distance_to_nearest"])]
                + [str(m["in_mtl_minimum"]).lower(), _num(m["cosine_end"])]
                + [_num(m["sum_loss_end"]), str(c["claim2"]).lower(), str(c["claim3"]).lower()]
            )
    return buf.getvalue()


def claims_md(
    analysis: Mapping[str, Any],
    sweep: Sequence[Mapping[str, Any]] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    lines = [
        f"# Lee et al. 2022 §4.1 synthetic experiment (radius r = {analysis['radius']})",
        "",
    ]
    if settings:
        shown = ", ".join(f"{k} {json.dumps(v)}" for k, v in settings.items())
        lines += [f"Settings: {shown}.", ""]
    lines += [
        "| method | end | nearest | dist | in MTL minimum | sum loss | cos end | cos mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in analysis["methods"].items():
        lines.append(
            f"| {name} | ({m['end'][0]:.3f}, {m['end'][1]:.3f}) | {m['nearest_minimum']} | "
            f"{m['distance_to_nearest']:.3f} | {m['in_mtl_minimum']} | {m['sum_loss_end']:.2f} | "
            f"{m['cosine_end']:.3f} | {m['cosine_mean']:.3f} |"
        )
    lines += ["", "| claim | holds |", "|---|---|"]
    lines += [f"| {k} | {v['holds']} |" for k, v in analysis["claims"].items()]
    if sweep:
        lines += [
            "",
            "| lr | K | reptile end | rep cos | seq end | seq cos | claim 2 | claim 3 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in sweep:
            r, s = c["reptile"], c["seq_reptile"]
            lines.append(
                f"| {c['lr']} | {c['K']} | ({r['end'][0]:.2f}, {r['end'][1]:.2f}) | "
                f"{r['cosine_end']:.3f} | ({s['end'][0]:.2f}, {s['end'][1]:.2f}) | "
                f"{s['cosine_end']:.3f} | {c['claim2']} | {c['claim3']} |"
            )
    return "\n".join(lines) + "\n"


def _clean(obj: Any) -> Any:
    """JSON without NaN (null instead)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_toy2d(
    out_dir: str | Path,
    trajectories: Mapping[str, Trajectory],
    analysis: Mapping[str, Any],
    sweep: Sequence[Mapping[str, Any]] | None = None,
    grid_n: int = 121,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """trajectories.png, cosine.png, trajectories.csv, sweep.csv, summary.json, claims.md under
    `out_dir`, all or nothing; `settings` (the study's, e.g. params.yaml's `toy2d:`) are
    recorded in summary.json and claims.md."""
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        (tmp / "trajectories.png").write_bytes(trajectories_png(trajectories, grid_n))
        (tmp / "cosine.png").write_bytes(cosine_png(trajectories, grid_n))
        (tmp / "trajectories.csv").write_text(trajectories_csv(trajectories))
        (tmp / "sweep.csv").write_text(sweep_csv(sweep))
        summary = {
            "settings": dict(settings or {}),
            "analysis": analysis,
            "sweep": list(sweep or []),
            "options": {n: t.options for n, t in trajectories.items()},
        }
        (tmp / "summary.json").write_text(
            json.dumps(_clean(summary), indent=2, sort_keys=True, default=str) + "\n"
        )
        (tmp / "claims.md").write_text(claims_md(analysis, sweep, settings))
    return out
