"""`results/tables/provenance.md` (+ `.json`): what produced each run's numbers.

One row per run (seed, commit and whether the tree was dirty, params and run hashes, device),
then what the runs share (package versions, dataset digests) once, or per run where they differ,
so a table cell can be traced to the exact code, parameters, software and data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.io import atomic_write_json, atomic_write_text


def _commit(rec: dict[str, Any]) -> str:
    git = rec.get("git")
    if not git:
        return "(no git)"
    return git["commit"][:12] + (" (dirty)" if git.get("dirty") else "")


def write_provenance_table(runs: Sequence[Path], out: Path) -> dict[str, Any] | None:
    """Tabulate the `provenance.json` of every run folder that has one; None if none has."""
    recs = {}
    for r in runs:
        f = Path(r) / "provenance.json"
        if f.exists():
            recs[Path(r).name] = json.loads(f.read_text())
    if not recs:
        return None
    lines = [
        "# Provenance",
        "",
        "| run | seed | commit | params sha256 | run sha256 | device |",
        "|---|---|---|---|---|---|",
    ]
    for name, rec in sorted(recs.items()):
        dev = rec.get("device", {})
        device = dev.get("name") or dev.get("type", "?")
        lines.append(
            f"| {name} | {rec.get('seed')} | {_commit(rec)} | {rec['params_sha256'][:12]} "
            f"| {rec['run_sha256'][:12]} | {device} ({dev.get('torch_threads')} threads) |"
        )
    for key, title in (("packages", "Packages"), ("data", "Datasets")):
        values = {json.dumps(rec.get(key), sort_keys=True) for rec in recs.values()}
        lines += ["", f"## {title}" + ("" if len(values) == 1 else " (differ between runs)"), ""]
        groups = (
            [("all runs", next(iter(recs.values())).get(key) or {})]
            if len(values) == 1
            else [(n, r.get(key) or {}) for n, r in sorted(recs.items())]
        )
        for who, value in groups:
            if len(groups) > 1:
                lines.append(f"- {who}:")
            for k, v in sorted(value.items()):
                lines.append(f"  - {k}: {json.dumps(v, sort_keys=True)}")
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    atomic_write_text(tables / "provenance.md", "\n".join(lines) + "\n")
    atomic_write_json(tables / "provenance.json", recs)
    return {"runs": len(recs)}
