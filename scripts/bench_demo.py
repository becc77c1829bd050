"""Benchmark the embedded default: full DAG wall time, jobs and time per stage, no-op dry run.

Runs in a fresh copy of the project (so your own results/ are untouched) and prints figures
against the targets (≤ 600 s for the whole DAG, 3 seeds, on 2 cores; no-op `-n` ≤ 10 s; planning
the largest preset's DAG, `snakemake -n --configfile configs/tarunesh2021.yaml`, ≤ 10 s).
Usage: python scripts/bench_demo.py [--cores 2] [--keep DIR] [--plan-only]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from demo_summary import print_stage_times, stage_times  # noqa: E402

COPY = [
    "Snakefile",
    "rules",
    "envs",
    "pipeline",
    "profiles",
    "configs",
    "params.yaml",
    "pyproject.toml",
]


#: the largest preset: its DAG is the one whose planning a user waits for
LARGEST_PRESET = "configs/tarunesh2021.yaml"


def plan_seconds(work: Path, smk: list[str], preset: str = LARGEST_PRESET) -> float:
    """Wall time of a dry run planning `preset`'s DAG: what `snakemake -n` costs before any job
    of a real run starts (DAG building, input functions, the schema), none of it computing."""
    t0 = time.perf_counter()
    subprocess.run([*smk, "-n", "--configfile", preset], cwd=work, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cores", default="2")
    ap.add_argument("--keep", default=None, help="run in this folder and keep it")
    ap.add_argument("--plan-only", action="store_true", help=f"only time planning {LARGEST_PRESET}")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    smk = [sys.executable, "-m", "snakemake", "--cores", args.cores]
    row = f"{'plan ' + Path(LARGEST_PRESET).stem + ' -n':<28}"
    if args.plan_only:
        plan = plan_seconds(work, smk)
        print(f"{'measure':<28}{'measured s':>12}{'target s':>10}{'ratio':>8}")
        print(f"{row}{plan:>12.1f}{10:>10}{plan / 10:>8.2f}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return
    t0 = time.perf_counter()
    subprocess.run(smk, cwd=work, check=True, capture_output=True)
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = subprocess.run([*smk, "-n"], cwd=work, check=True, capture_output=True, text=True)
    noop = time.perf_counter() - t0
    plan = plan_seconds(work, smk)
    print_stage_times(stage_times(work / "benchmarks"))
    print()
    print(f"{'measure':<28}{'measured s':>12}{'target s':>10}{'ratio':>8}")
    print(f"{'full DAG wall time':<28}{full:>12.1f}{600:>10}{full / 600:>8.2f}")
    print(f"{'no-op snakemake -n':<28}{noop:>12.1f}{10:>10}{noop / 10:>8.2f}")
    print(f"{row}{plan:>12.1f}{10:>10}{plan / 10:>8.2f}")
    print(
        "no-op says:",
        "Nothing to be done" if "Nothing to be done" in res.stdout + res.stderr else "WORK PENDING",
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
