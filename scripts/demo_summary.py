"""Print the jobs and wall time per stage of the run (`make demo`, before `python -m pipeline
summary`: the headline table, and where results/report.html and every table are)."""

from __future__ import annotations

import csv
from pathlib import Path


def stage_times(root: Path = Path("benchmarks")) -> dict[str, tuple[int, float]]:
    """Rule -> (jobs, seconds summed over its jobs), from Snakemake's `benchmark:` files."""
    times: dict[str, tuple[int, float]] = {}
    for f in sorted(root.rglob("*.tsv")):
        rule = f.relative_to(root).parts[0].removesuffix(".tsv")
        with open(f) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        jobs, secs = times.get(rule, (0, 0.0))
        times[rule] = (jobs + 1, secs + sum(float(r["s"]) for r in rows[-1:]))
    return times


def print_stage_times(times: dict[str, tuple[int, float]]) -> None:
    print(f"  {'stage':<10} {'jobs':>5} {'seconds':>9}")
    for rule, (jobs, s) in times.items():
        print(f"  {rule:<10} {jobs:>5} {s:>9.1f}")
    total_jobs = sum(j for j, _ in times.values())
    print(f"  {'total':<10} {total_jobs:>5} {sum(s for _, s in times.values()):>9.1f}")


def main() -> None:
    times = stage_times()
    if times:
        print("### Jobs and wall time per stage (seconds summed over jobs)\n")
        print_stage_times(times)
    print(
        "\nResults: results/report.html (one page: tables, figures, params, provenance), "
        "results/metrics.json, results/tables/*.md and *.csv (per-seed scores: per_seed.csv), "
        "results/figures/*.png, results/plots/ (dvc plots show)\n"
    )


if __name__ == "__main__":
    main()
