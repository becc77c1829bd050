"""The DAG step of Lee et al.'s 2-D study (rule `toy2d`, `python -m pipeline toy2d`).

params.yaml's `toy2d:` section (`steps`, `lr`, `seed`, `optimizer`, `radius`, `sweep: {lrs, ks}`)
-> every registered method's run (`run_all`), the per-claim verdicts (`analyse`), Reptile and
Sequential Reptile per (inner lr, K) cell (`sweep`; none when `sweep` is null or a list is
empty) -> `write_toy2d` into `out`, all or nothing. A run the sweep shares with the main runs
(its lr and K equal to theirs) is computed once. The verdicts are logged, one line each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.experiments.toy2d import (
    Runner,
    Trajectory,
    analyse,
    run_all,
    run_method,
    run_params,
    sweep,
)
from pipeline.experiments.toy2d_plots import write_toy2d

log = logging.getLogger(__name__)

#: the keys of a `toy2d:` section (pipeline/config.py's schema requires them all)
SETTINGS = ("steps", "lr", "seed", "optimizer", "radius", "sweep")
#: grid points per axis of the contour and cosine images
GRID_N = 121


def sweep_grid(settings: Mapping[str, Any]) -> tuple[list[float], list[int]]:
    """The sweep's inner lrs and Ks (empty when `sweep` is null or either list is empty)."""
    sw = settings.get("sweep") or {}
    lrs, ks = list(sw.get("lrs") or []), list(sw.get("ks") or [])
    return (lrs, ks) if lrs and ks else ([], [])


def memo_runner() -> Runner:
    """`run_method`, each distinct run (method, its params, optimizer) computed once."""
    cache: dict[tuple[str, str, str], Trajectory] = {}

    def run(
        name: str,
        options: Mapping[str, Any] | None,
        steps: int,
        lr: float,
        seed: int,
        optimizer: str = "sgd",
    ) -> Trajectory:
        key = (
            name,
            json.dumps(run_params(name, options, steps, lr, seed), sort_keys=True),
            optimizer,
        )
        if key not in cache:
            cache[key] = run_method(name, options, steps, lr, seed, optimizer)
        return cache[key]

    return run


def verdict_lines(analysis: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per method, per claim and per sweep cell."""
    lines = []
    for name, m in analysis["methods"].items():
        lines.append(
            f"{name}: end ({m['end'][0]:.3f}, {m['end'][1]:.3f}), nearest {m['nearest_minimum']}"
            f" at {m['distance_to_nearest']:.3f}, in an MTL minimum: {m['in_mtl_minimum']},"
            f" sum loss {m['sum_loss_end']:.2f}, cosine end {m['cosine_end']:.3f}"
            f" (mean {m['cosine_mean']:.3f})"
        )
    for name, c in analysis["claims"].items():
        detail = {k: v for k, v in c.items() if k not in ("holds", "settings")}
        verdict = "holds" if c["holds"] else "does not hold"
        lines.append(f"claim {name}: {verdict} {json.dumps(detail, default=str)}")
    for c in cells:
        r, s = c["reptile"], c["seq_reptile"]
        lines.append(
            f"sweep lr={c['lr']} K={c['K']}: reptile in minimum {r['in_mtl_minimum']} cosine"
            f" {r['cosine_end']:.3f} | seq_reptile in minimum {s['in_mtl_minimum']} cosine"
            f" {s['cosine_end']:.3f} | claim 2 {c['claim2']}, claim 3 {c['claim3']}"
        )
    return lines


def run_study(settings: Mapping[str, Any], out: str | Path, grid_n: int = GRID_N) -> dict[str, Any]:
    """The study with these settings (a `toy2d:` section) into `out`; returns the verdicts."""
    s = {k: settings[k] for k in SETTINGS}
    run = memo_runner()
    trajs = run_all(steps=s["steps"], lr=s["lr"], seed=s["seed"], optimizer=s["optimizer"], run=run)
    res = analyse(trajs, s["radius"])
    lrs, ks = sweep_grid(s)
    cells = sweep(lrs, ks, s["steps"], s["seed"], s["optimizer"], s["radius"], run=run)
    write_toy2d(out, trajs, res, cells, grid_n, settings=s)
    for line in verdict_lines(res, cells):
        log.info(line)
    return {
        "out": str(out),
        "claims": {k: v["holds"] for k, v in res["claims"].items()},
        "sweep": [{k: c[k] for k in ("lr", "K", "claim2", "claim3")} for c in cells],
    }
