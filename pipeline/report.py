"""Report: DVC metrics, Markdown tables (experiments × TLPs) and learning-curve plot data.

Outputs under results/:
    metrics.json                 per experiment: dev/test main metric per TLP and means (DVC metrics)
    tables/test.md, dev.md       experiments × TLPs (columns grouped by task) with a mean column
    tables/zero_shot.md          test scores on languages never trained on (if any)
    plots/train_loss/<run>.csv   step, loss                     (DVC plots)
    plots/dev_score/<run>.csv    step, dev_mean                 (DVC plots)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.io import atomic_write_json, atomic_write_text, read_json
from pipeline.records import TLP


def _metric(scores: dict[str, Any], metric: str) -> float:
    return float(scores[metric])


def collect(score_files: Sequence[Path], metric: str) -> dict[str, dict[str, dict[str, float]]]:
    """experiment -> split ('dev', 'test', 'zero_shot') -> TLP -> metric value.

    Per-TLP runs of one experiment (STL) are merged into one row.
    """
    table: dict[str, dict[str, dict[str, float]]] = {}
    for f in sorted(score_files):
        res = read_json(f)
        row = table.setdefault(res["experiment"], {"dev": {}, "test": {}, "zero_shot": {}})
        zs = set(res.get("zero_shot_tlps", []))
        for tlp, splits in res["scores"].items():
            if tlp in zs:
                row["zero_shot"][tlp] = _metric(splits["test"], metric)
            else:
                row["dev"][tlp] = _metric(splits["dev"], metric)
                row["test"][tlp] = _metric(splits["test"], metric)
    return table


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def markdown_table(rows: dict[str, dict[str, float]], title: str) -> str:
    """Rows = experiments, columns = TLPs grouped by task, then the mean over the columns."""
    cols = sorted({t for r in rows.values() for t in r}, key=lambda s: (TLP.parse(s).task, s))
    if not cols:
        return f"### {title}\n\n(no scores)\n"
    lines = [f"### {title}", "", "| experiment | " + " | ".join(cols) + " | mean |"]
    lines.append("|---" * (len(cols) + 2) + "|")
    for exp, r in rows.items():
        cells = [f"{r[c]:.1f}" if c in r else "–" for c in cols]
        m = _mean([r[c] for c in cols if c in r])
        mean = f"{m:.1f}" if m is not None else "–"
        lines.append(f"| {exp} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines) + "\n"


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in fields})
    return buf.getvalue()


def write_curves(run_dirs: Sequence[Path], out: Path) -> None:
    for d in run_dirs:
        hist = read_json(d / "history.json")
        atomic_write_text(
            out / "plots" / "train_loss" / f"{d.name}.csv", _csv(hist, ["step", "loss"])
        )
        dev = [h for h in hist if "dev_mean" in h]
        atomic_write_text(
            out / "plots" / "dev_score" / f"{d.name}.csv", _csv(dev, ["step", "dev_mean"])
        )


def write_report(
    cfg: dict[str, Any], score_files: Sequence[Path], run_dirs: Sequence[Path], out: Path
) -> dict[str, Any]:
    metric = cfg["report"]["metric"]
    table = collect(score_files, metric)
    metrics: dict[str, Any] = {}
    for exp, r in table.items():
        metrics[exp] = {
            "dev_mean": _mean(list(r["dev"].values())),
            "test_mean": _mean(list(r["test"].values())),
            "test": r["test"],
        }
        if r["zero_shot"]:
            metrics[exp]["zero_shot_test_mean"] = _mean(list(r["zero_shot"].values()))
    atomic_write_json(out / "metrics.json", {"metric": metric, "experiments": metrics})
    test_md = markdown_table({e: r["test"] for e, r in table.items()}, f"Test {metric}")
    atomic_write_text(out / "tables" / "test.md", test_md)
    atomic_write_text(
        out / "tables" / "dev.md",
        markdown_table({e: r["dev"] for e, r in table.items()}, f"Dev {metric} (model selection)"),
    )
    zs = {e: r["zero_shot"] for e, r in table.items() if r["zero_shot"]}
    atomic_write_text(
        out / "tables" / "zero_shot.md", markdown_table(zs, f"Zero-shot test {metric}")
    )
    write_curves(run_dirs, out)
    return {"summary": test_md, "metrics": metrics}
