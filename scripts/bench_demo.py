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


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cores", default="2")
    ap.add_argument("--keep", default=None, help="run in this folder and keep it")
    ap.add_argument("--plan-only", action="store_true", help=f"only time planning {LARGEST_PRESET}")
    return ap


def copy_project(work: Path) -> None:
    """The project files a run needs, and the DVC project files (for `dvc status`), without SCM."""
    work.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(
            src, work / name, **({"dirs_exist_ok": True} if src.is_dir() else {})
        )
    for name in ("dvc.yaml", ".dvcignore", ".dvc/config"):
        if (REPO / name).exists():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, work / name)
    config = work / ".dvc" / "config"
    text = config.read_text() if config.exists() else ""
    if "[core]" in text:
        text = text.replace("[core]", "[core]\n    no_scm = true", 1)
    else:
        text += "[core]\n    no_scm = true\n"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)


def dvc_status_seconds(work: Path) -> tuple[float, str]:
    """Wall time of `dvc status` and its output (up to date after `dvc commit` of a finished
    run: what a no-op `dvc repro` checks first)."""
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=work, capture_output=True, text=True
    )
    return time.perf_counter() - t0, res.stdout + res.stderr


def run(args: argparse.Namespace) -> list:
    """The `dag` rows of scripts/bench.py (absolute: the DAG has no baseline to run beside it):
    planning the largest preset; unless --plan-only, the full DAG, seconds and jobs per stage,
    and the no-op reruns of `snakemake -n` and `dvc status`."""
    from bench_common import Row, Target

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-demo-"))
    copy_project(work)
    smk = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
    rows = []
    try:
        if not args.plan_only:
            t0 = time.perf_counter()
            subprocess.run(smk, cwd=work, check=True, capture_output=True)
            full = time.perf_counter() - t0
            stages = stage_times(work / "benchmarks")
            jobs = sum(j for j, _ in stages.values())
            rows.append(
                Row(
                    "dag",
                    f"full DAG wall time ({jobs} jobs, {args.cores} cores)",
                    full,
                    None,
                    "s",
                    Target("candidate", "<=", 600, "s"),
                    extra={"jobs": jobs},
                )
            )
            for rule, (n, secs) in stages.items():
                rows.append(
                    Row(
                        "dag",
                        f"stage {rule} ({n} jobs, summed)",
                        secs,
                        None,
                        "s",
                        extra={"jobs": n},
                    )
                )
            t0 = time.perf_counter()
            res = subprocess.run([*smk, "-n"], cwd=work, check=True, capture_output=True, text=True)
            noop = time.perf_counter() - t0
            said = "Nothing to be done" in res.stdout + res.stderr
            rows.append(
                Row(
                    "dag",
                    "no-op snakemake -n",
                    noop,
                    None,
                    "s",
                    Target("candidate", "<=", 10, "s"),
                    extra={"nothing_to_be_done": said},
                )
            )
            # record the run's outputs in dvc.lock (untimed), so `dvc status` is a no-op check
            commit = subprocess.run(
                [sys.executable, "-m", "dvc", "commit", "-f", "-q"], cwd=work, capture_output=True
            )
            secs, out = dvc_status_seconds(work)
            rows.append(
                Row(
                    "dag",
                    "no-op dvc status",
                    secs,
                    None,
                    "s",
                    Target("candidate", "<=", 10, "s"),
                    extra={
                        "up_to_date": "up to date" in out.lower(),
                        "commit_rc": commit.returncode,
                    },
                )
            )
        plan = plan_seconds(work, smk)
        rows.append(
            Row(
                "dag",
                f"plan {Path(LARGEST_PRESET).stem} -n",
                plan,
                None,
                "s",
                Target("candidate", "<=", 10, "s"),
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> None:
    args = parser().parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-demo-"))
    copy_project(work)
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
