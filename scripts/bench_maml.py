"""Cost of a MAML meta-step (pipeline/methods/maml_core.py) against the plain training it needs.

A first-order meta-step with n inner steps does n + 1 forward/backward passes (n on support
batches, one on the query) and one optimizer step; the target is ≤ 1.15× the time of n + 1 plain
training steps (`TrainContext.inner_step`) on the same batches. Second order is reported beside
it with the memory its graphs hold: peak CUDA memory on a GPU, and on any device the bytes autograd
saves for the backward pass (saved-tensor hooks), for one task. When `higher` installs, its
second-order inner loop runs on the same model and batches for comparison.

Same model and data as scripts/bench_reptile.py (BERT hidden 64 × 2 layers, batch 16 × 64
tokens); rounds interleave the variants and the median and min per round are printed.

    python scripts/bench_maml.py [--rounds 15] [--inner 2] [--threads 1] [--device cpu]

Printed figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import Row, Target, medians, memory_rows, saved_bytes  # noqa: E402
from bench_reptile import TLPS, build, model_args, sync  # noqa: E402

from pipeline.methods import maml_core  # noqa: E402
from pipeline.methods.maml_core import MetaTask  # noqa: E402
from pipeline.tasks import for_task  # noqa: E402


def fixed_batches(ctx, tlp, k):
    return [ctx.batch(tlp) for _ in range(k)]


def timed(fn: Callable[[], None], device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def interleaved(
    variants: dict[str, Callable[[], object]], rounds: int, device: str
) -> dict[str, list[float]]:
    """Seconds of each variant per round (one warm-up call each first); rounds interleave the
    variants so that machine noise hits them alike."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(timed(fn, device))
    return times


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--inner", type=int, default=2, help="inner steps n")
    model_args(ap)
    return ap


def run(args: argparse.Namespace) -> list[Row]:
    """The `steps` rows of scripts/bench.py: first- and second-order MAML meta-steps vs the
    n + 1 plain training steps on the same batches (alternated rounds, medians), and memory."""
    torch.set_num_threads(args.threads)
    ctx = build(args)
    tlp, n = TLPS[0], args.inner
    batches = fixed_batches(ctx, tlp, n + 1)
    task = MetaTask([(tlp, b) for b in batches[:n]], (tlp, batches[n]))

    def plain() -> None:
        ctx.model.train()
        for b in batches:
            for_task(tlp.task).loss(ctx.model(tlp.task, b), b).backward()
            ctx.outer_step()

    variants = {
        "plain": plain,
        "fo": lambda: maml_core.meta_step(ctx, [task], 1e-5, True),
        "so": lambda: maml_core.meta_step(ctx, [task], 1e-5, False),
    }
    t = medians(interleaved(variants, args.rounds, args.device))
    base = f"{n + 1} plain steps"
    rows = [
        Row(
            "steps",
            f"MAML 1st order n={n} vs {base}",
            t["fo"],
            t["plain"],
            "s",
            Target("ratio", "<=", 1.15),
        ),
        Row("steps", f"MAML 2nd order n={n} vs {base}", t["so"], t["plain"], "s"),
    ]

    def grads(fo: bool) -> Callable[[], None]:
        def go() -> None:
            maml_core.accumulate_meta_gradient(ctx, [task], 1e-5, fo)
            ctx.optimizer.zero_grad(set_to_none=True)

        return go

    rows += memory_rows("steps", "MAML 2nd vs 1st order", grads(False), grads(True), args.device)
    return rows


def main() -> None:
    args = parser().parse_args()
    torch.set_num_threads(args.threads)
    ctx = build(args)
    tlp = TLPS[0]
    n = args.inner
    batches = fixed_batches(ctx, tlp, n + 1)
    task = MetaTask([(tlp, b) for b in batches[:n]], (tlp, batches[n]))
    n_params = sum(p.numel() for p in ctx.model.parameters())
    print(
        f"model: BERT hidden 64 × 2 layers, {n_params / 1e6:.2f}M parameters, batch "
        f"{args.batch} × {args.length} tokens, TLP {tlp}, n = {n} inner steps, device "
        f"{args.device}, {args.threads} threads"
    )

    def plain() -> None:  # n + 1 plain training steps on the same batches
        ctx.model.train()
        for b in batches:
            for_task(tlp.task).loss(ctx.model(tlp.task, b), b).backward()
            ctx.outer_step()

    def maml(first_order: bool) -> Callable[[], None]:
        return lambda: maml_core.meta_step(ctx, [task], 1e-5, first_order)

    variants: dict[str, Callable[[], None]] = {
        f"plain × {n + 1}": plain,
        "MAML first order": maml(True),
        "MAML second order": maml(False),
    }
    try:
        import higher

        inner_opt = torch.optim.SGD(ctx.model.parameters(), lr=1e-5)

        def with_higher() -> None:
            ctx.model.train()
            with higher.innerloop_ctx(ctx.model, inner_opt, copy_initial_weights=False) as (
                fmodel,
                diffopt,
            ):
                for b in batches[:n]:
                    diffopt.step(for_task(tlp.task).loss(fmodel(tlp.task, b), b))
                q = batches[n]
                for_task(tlp.task).loss(fmodel(tlp.task, q), q).backward()
            ctx.outer_step()

        with_higher()  # does it run on this model at all?
        variants["higher second order"] = with_higher
    except Exception as e:  # not installed, or its monkey-patching fails on this model
        print(f"higher: not compared ({type(e).__name__}: {e})")

    times = interleaved(variants, args.rounds, args.device)
    base, base_min = statistics.median(times[f"plain × {n + 1}"]), min(times[f"plain × {n + 1}"])
    print(f"\nper meta-step over {args.rounds} interleaved rounds (ratio to {n + 1} plain steps):")
    for name, ts in times.items():
        med, low = statistics.median(ts), min(ts)
        print(
            f"  {name:<22} median {med * 1e3:8.2f} ms  ×{med / base:.3f}   "
            f"min {low * 1e3:8.2f} ms  ×{low / base_min:.3f}"
        )
    print("  target: first order ≤ ×1.15")

    print("\nmemory held for backward, one task:")
    for name in ("MAML first order", "MAML second order"):
        fo = name.endswith("first order")
        got = saved_bytes(lambda fo=fo: maml_core.accumulate_meta_gradient(ctx, [task], 1e-5, fo))
        ctx.optimizer.zero_grad(set_to_none=True)
        line = f"  {name:<22} saved tensors {got / 2**20:8.1f} MiB"
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            maml_core.accumulate_meta_gradient(ctx, [task], 1e-5, fo)
            ctx.optimizer.zero_grad(set_to_none=True)
            line += f", peak CUDA {torch.cuda.max_memory_allocated() / 2**20:8.1f} MiB"
        print(line)


if __name__ == "__main__":
    main()
