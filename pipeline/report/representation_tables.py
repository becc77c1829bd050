"""Xia et al. (2021) §4.5: the Hausdorff distance between source and target representations.

Written when the report is handed `represent` outputs (results/representations/<run>/, paired
runs: jt, metaxl), under results/:

    tables/representations.md    rows: the experiment's `row` label × task; columns the
                                 source and target TLPs, the Hausdorff distance under the cosine
                                 distance (Eq. 6), mean ± sd over seeds, and n (seeds)
    tables/representations.csv   the same cells with the points per language
    plots/representations/<run>.<task>.csv   pc1, pc2, lang, role (DVC scatter plots)
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import Run, experiment_runs
from pipeline.errors import PipelineError
from pipeline.io import atomic_write_text, read_json
from pipeline.records import TLP

CSV_FIELDS = [
    "row",
    "task",
    "source",
    "target",
    "seeds",
    "mean",
    "sd",
    "n_source",
    "n_target",
    "runs",
]


def _fmt(values: Sequence[float]) -> str:
    m = statistics.fmean(values)
    return f"{m:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{m:.3f}"


def _count(ns: Sequence[int]) -> float | int:
    """Points per language over seeds: the number, or the mean where seeds differ."""
    return ns[0] if len(set(ns)) == 1 else statistics.fmean(ns)


def collect(
    runs: Mapping[str, Run], rep_dirs: Sequence[Path]
) -> dict[tuple[str, str, str, str], list[tuple[int, str, dict[str, Any]]]]:
    """{(row, task, source, target): [(seed, run, summary entry)]}, in the order of `runs`."""
    order = {rid: i for i, rid in enumerate(runs)}
    cells: dict[tuple[str, str, str, str], list[tuple[int, str, dict[str, Any]]]] = {}
    for d in sorted(rep_dirs, key=lambda p: (order.get(p.name, -1), p.name)):
        run = runs.get(d.name)
        if run is None:
            raise PipelineError(f"{d}: not the representations of a run of the config")
        for task, entry in read_json(d / "summary.json").items():
            label = run.params.get("row", run.row)  # the config's row label (JT, MetaXL)
            key = (label, task, entry["source"], entry["target"])
            cells.setdefault(key, []).append((run.seed, run.id, entry))
    return cells


def write_representation_tables(
    cfg: Mapping[str, Any], rep_dirs: Sequence[Path], out: Path
) -> bool:
    """Write the files of the module docstring; False (nothing written) without any."""
    if not rep_dirs:
        return False
    return write_tables({r.id: r for r in experiment_runs(cfg)}, rep_dirs, out)


def write_tables(runs: Mapping[str, Run], rep_dirs: Sequence[Path], out: Path) -> bool:
    """`write_representation_tables` with the runs given ({id: Run})."""
    cells = collect(runs, rep_dirs)
    lines = [
        "# Source vs target representations (Xia et al. 2021 §4.5)",
        "",
        "Hausdorff distance between the source and the target dev-set representations of the "
        "saved model (plain encoder), cosine distance 1 − cos (Eq. 6): [CLS] for sentence "
        "tasks, each word's first sub-token for tagging; mean ± sd over n seeds.",
        "",
        "| model | task | source | target | Hausdorff (1 − cos) | n |",
        "|---|---|---|---|---|---|",
    ]
    rows = []
    for (row, task, src, tgt), entries in cells.items():
        entries = sorted(entries, key=lambda e: (e[0], e[1]))
        vals = [e["hausdorff_cosine"] for _, _, e in entries]
        lines.append(
            f"| {row} | {task} | {TLP.parse(src).lang} | {TLP.parse(tgt).lang} | "
            f"{_fmt(vals)} | {len(vals)} |"
        )
        rows.append(
            [
                row,
                task,
                src,
                tgt,
                len(vals),
                statistics.fmean(vals),
                statistics.stdev(vals) if len(vals) > 1 else "",
                _count([e["n_source"] for _, _, e in entries]),
                _count([e["n_target"] for _, _, e in entries]),
                " ".join(r for _, r, _ in entries),
            ]
        )
    tables = out / "tables"
    atomic_write_text(tables / "representations.md", "\n".join(lines) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    w.writerows(rows)
    atomic_write_text(tables / "representations.csv", buf.getvalue())
    plots = out / "plots" / "representations"
    plots.mkdir(parents=True, exist_ok=True)
    for d in rep_dirs:
        for f in sorted(d.glob("*.csv")):
            atomic_write_text(plots / f"{d.name}.{f.stem}.csv", f.read_text(encoding="utf-8"))
    return True
