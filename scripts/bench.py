"""The benchmark suite (`make bench`): every group's rows in one table, one JSON file per group.

Each row is a candidate measured beside its baseline in the same run (rounds alternate the two;
medians), their ratio (candidate / baseline) and its target; rows without a baseline (the DAG's
wall times, the fork server's warm-up, tokens/s) are absolute figures with their own targets.
Groups, in order (each is a script of its own, also runnable alone):

  featurize  task.featurize vs the bare fast tokenizer's batched call, QA and tagging (>= 0.85x)
             scripts/bench_featurize.py: MLQA / PAN-X dev from ../shared/realdata when present
  steps      a step of Reptile, Sequential Reptile (<= 1.05x), MAML (first order <= 1.15x of its
             n + 1 plain steps), MetaXL (vs JT w/ RTN), PCGrad / GradVac / GradNorm (<= 1.1x of
             an MTL step over the same T batches), MultiDDS rewards, vs the plain step on the same
             batches; memory: bytes autograd saves for backward (any device; torch's CPU
             allocator has no peak counter) and the peak CUDA allocation on a GPU
             scripts/bench_reptile.py, bench_maml.py, bench_metaxl.py, bench_grad_surgery.py
  padding    training / evaluation tokens/s, dynamic padding + length-grouped batches vs fixed
             length 128, XNLI-like lengths (>= 1.5x)            scripts/bench_padding.py
  startup    `python -m pipeline` jobs forked from the warm server vs fresh (score job <= 1 s)
             scripts/bench_startup.py
  dag        the embedded default's DAG end to end (<= 600 s on 2 cores), seconds per stage,
             no-op `snakemake -n` and `dvc status` (<= 10 s), planning the largest preset
             (<= 10 s); about 10 minutes           scripts/bench_demo.py
  gpu        mBERT-size training step (bf16 autocast, fused AdamW): tokens/s and MFU against the
             bf16 matmul rate measured in the same run (>= 40 %); skipped without CUDA
             scripts/bench_gpu.py

    python scripts/bench.py [--only G,G] [--skip G,G] [--tiny] [--rounds N] [--dag-plan-only]
        [--device cpu|cuda] [--out results/bench]

`BENCH_SKIP=dag make bench` (or BENCH_ONLY=...) selects groups from make. Writes
results/bench/<group>.json for every group run ({"device", "rows", "metrics"}: `metrics` holds
{measure: {candidate, baseline, ratio}} for `dvc metrics diff`). Printed figures; no assertion
fails the run (the exit status is 1 only when a group raised).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import OUT_DIR, Row, device_info, device_line, table, write_group  # noqa: E402

GROUPS = ("featurize", "steps", "padding", "startup", "dag", "gpu")

#: the smallest settings per script (the test and a quick look; figures are not meaningful)
TINY_MODEL = ["--batch", "4", "--length", "16", "--vocab", "200"]
TINY = {
    "featurize": ["--synthetic", "--n-qa", "40", "--n-tagging", "200", "--repeats", "1"]
    + ["--vocab-size", "1000", "--n-texts", "500"],
    "reptile": ["--rounds", "1", "--inner", "12", "--update-every", "1", *TINY_MODEL],
    "maml": ["--rounds", "1", *TINY_MODEL],
    "metaxl": ["--rounds", "1", *TINY_MODEL],
    "grad_surgery": ["--rounds", "1", "--steps", "1", *TINY_MODEL],
    "padding": ["--rounds", "1", "--steps", "2", "--n", "256", "--n-eval", "128"],
    "startup": ["--rounds", "1", "--no-imports"],
    "dag": ["--plan-only"],
    "gpu": ["--tiny", "--rounds", "1", "--steps", "1"],
}


def names(text: str | None) -> list[str]:
    out = [g.strip() for g in (text or "").split(",") if g.strip()]
    bad = [g for g in out if g not in GROUPS]
    if bad:
        raise SystemExit(f"unknown group(s) {', '.join(bad)}; groups: {', '.join(GROUPS)}")
    return out


def script_args(module, key: str, opts: argparse.Namespace, extra: list[str]) -> argparse.Namespace:
    """The script's own options: its defaults, then --tiny's, --rounds, --device, `extra`."""
    argv = list(TINY.get(key, [])) if opts.tiny else []
    known = {a.dest for a in module.parser()._actions}
    if opts.rounds is not None and {"rounds", "repeats"} & known:
        argv += ["--rounds" if "rounds" in known else "--repeats", str(opts.rounds)]
    if opts.device and "device" in known and key != "gpu":
        argv += ["--device", opts.device]
    return module.parser().parse_args(argv + extra)


def group_runs(opts: argparse.Namespace) -> dict[str, list[tuple[str, Callable[[], list[Row]]]]]:
    """Per group, its scripts' `run` calls (imported lazily: a group not run costs nothing)."""

    def call(mod_name: str, key: str, extra: list[str] | None = None):
        def go() -> list[Row]:
            module = __import__(mod_name)
            return module.run(script_args(module, key, opts, extra or []))

        return go

    return {
        "featurize": [("bench_featurize", call("bench_featurize", "featurize"))],
        "steps": [
            ("bench_reptile", call("bench_reptile", "reptile")),
            ("bench_maml", call("bench_maml", "maml")),
            ("bench_metaxl", call("bench_metaxl", "metaxl")),
            ("bench_grad_surgery", call("bench_grad_surgery", "grad_surgery")),
        ],
        "padding": [("bench_padding", call("bench_padding", "padding"))],
        "startup": [("bench_startup", call("bench_startup", "startup"))],
        "dag": [
            (
                "bench_demo",
                call("bench_demo", "dag", ["--plan-only"] if opts.dag_plan_only else []),
            )
        ],
        "gpu": [("bench_gpu", call("bench_gpu", "gpu"))],
    }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY"), help="groups to run (a,b)")
    ap.add_argument("--skip", default=os.environ.get("BENCH_SKIP"), help="groups to leave out")
    ap.add_argument("--tiny", action="store_true", help="the cheapest settings (a smoke test)")
    ap.add_argument("--rounds", type=int, default=None, help="alternated rounds, every group")
    ap.add_argument(
        "--dag-plan-only", action="store_true", help="dag: only plan the largest preset"
    )
    ap.add_argument("--device", default=None, help="steps/padding device (default: cpu)")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="folder of the <group>.json files")
    return ap


def main(argv: list[str] | None = None) -> int:
    opts = parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    only, skip = names(opts.only), names(opts.skip)
    selected = [g for g in GROUPS if (not only or g in only) and g not in skip]
    runs = group_runs(opts)
    rows: list[Row] = []
    failed: list[str] = []
    written: list[Path] = []
    for group in selected:
        started = time.perf_counter()
        print(f"[bench] {group} ...", file=sys.stderr, flush=True)
        group_rows: list[Row] = []
        for script, fn in runs[group]:
            try:
                group_rows += fn()
            except (Exception, SystemExit) as e:  # one broken group does not hide the rest
                traceback.print_exc()
                failed.append(f"{group} ({script}: {type(e).__name__}: {e})")
                group_rows.append(
                    Row(
                        group,
                        f"{script} failed: {type(e).__name__}",
                        None,
                        unit="",
                        extra={"error": str(e)},
                    )
                )
        info = device_info(opts.device)
        seconds = time.perf_counter() - started
        if group == "gpu":
            from bench_gpu import write

            written.append(write(group_rows, opts.out))
        else:
            written.append(
                write_group(group, group_rows, info, opts.out, seconds=seconds, tiny=opts.tiny)
            )
        print(f"[bench] {group}: {seconds:.1f} s", file=sys.stderr, flush=True)
        rows += group_rows
    print(device_line(device_info(opts.device)))
    if opts.tiny:
        print("(--tiny: the cheapest settings, a test of the code; the figures mean nothing)")
    print(table(rows))
    left = [g for g in GROUPS if g not in selected]
    print(
        "ratio = candidate / baseline, measured side by side (alternated rounds, medians); "
        "memory = bytes autograd saves for backward (peak CUDA allocation on a GPU)"
    )
    if left:
        print(f"not run: {', '.join(left)}")
    print("wrote " + ", ".join(str(p) for p in written))
    if failed:
        print("FAILED: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
