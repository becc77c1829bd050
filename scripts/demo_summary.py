"""Print the end-of-demo summary: test table, zero-shot table, and wall time per stage."""

from __future__ import annotations

import csv
from pathlib import Path


def stage_times(root: Path = Path("benchmarks")) -> dict[str, float]:
    """Seconds per rule, summed over its jobs, from Snakemake's `benchmark:` files."""
    times: dict[str, float] = {}
    for f in sorted(root.rglob("*.tsv")):
        rule = f.relative_to(root).parts[0].removesuffix(".tsv")
        with open(f) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        times[rule] = times.get(rule, 0.0) + sum(float(r["s"]) for r in rows[-1:])
    return times


def main() -> None:
    for name in ("test.md", "zero_shot.md"):
        p = Path("results/tables") / name
        if p.exists():
            print(p.read_text())
    times = stage_times()
    if times:
        print("### Wall time per stage (s, summed over jobs)\n")
        for rule, s in times.items():
            print(f"  {rule:<10} {s:8.1f}")
        print(f"  {'total':<10} {sum(times.values()):8.1f}")
    print("\nResults: results/metrics.json, results/tables/*.md, results/plots/ (dvc plots show)")


if __name__ == "__main__":
    main()
