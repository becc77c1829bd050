"""Cost of a PCGrad, GradVac or GradNorm step beside an MTL step of the same T batches.

All three take one backward per task (pipeline/methods/task_gradients.py), so a step should cost
about T plain backward passes plus an optimizer step, i.e. an MTL step with `tasks_per_step: T`:
PCGrad and GradVac add copying the gradients into the (T, D) buffer, a T×T Gram matrix and one
weighted sum; GradNorm adds a norm at the last layer. Measured on the model and data of
scripts/bench_reptile.py (BERT hidden 64 × 2 layers, 6 TLPs, batch 16 × 64 tokens), every method
on the same batches (the streams are rewound before each), rounds interleaved, median and min
per step reported with the ratio to MTL.

Memory: the per-task buffer is T × D × 4 bytes (printed); on CUDA the peak allocated during a
step is also measured, as a ratio to MTL's.

    python scripts/bench_grad_surgery.py [--rounds 7] [--steps 4] [--tasks 6] [--device cpu]

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

from bench_common import Row, Target, alternated, medians, memory_rows  # noqa: E402
from bench_reptile import TLPS, build, model_args, sync  # noqa: E402

from pipeline.methods.gradnorm import GradNorm  # noqa: E402
from pipeline.methods.gradvac import GradVac  # noqa: E402
from pipeline.methods.pcgrad import PCGrad  # noqa: E402


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=4, help="steps per round and method")
    ap.add_argument("--tasks", type=int, default=len(TLPS), help="T, tasks per step")
    model_args(ap)
    return ap


def run(args: argparse.Namespace) -> list[Row]:
    """The `steps` rows of scripts/bench.py: a PCGrad, GradVac and GradNorm step vs an MTL step
    on the same T batches (T backward passes and one optimizer step; streams rewound before
    each; alternated rounds, medians), and memory."""
    torch.set_num_threads(args.threads)
    T = min(args.tasks, len(TLPS))
    ctx = build(args)
    p = {**ctx.params, "tasks_per_step": T, "temperature": 1.0}
    methods = {"PCGrad": PCGrad(ctx, p), "GradVac": GradVac(ctx, p), "GradNorm": GradNorm(ctx, p)}
    tlps = ctx.tlps[:T]
    start = {t: s.state_dict() for t, s in ctx.streams.items()}

    def rewound(fn: Callable[[], object]) -> Callable[[], None]:
        def go() -> None:
            for t, s in ctx.streams.items():
                s.load_state_dict(start[t])
            for _ in range(args.steps):
                fn()

        return go

    mtl = rewound(lambda: ctx.mean_loss_step(tlps))
    variants = {"MTL": mtl, **{name: rewound(m.step) for name, m in methods.items()}}
    t = medians(alternated(variants, args.rounds, lambda: sync(args.device)))
    rows = [
        Row(
            "steps",
            f"{name} step vs MTL step (T={T} backward)",
            t[name] / args.steps,
            t["MTL"] / args.steps,
            "s",
            Target("ratio", "<=", 1.1),
        )
        for name in methods
    ]
    for name, m in methods.items():
        rows += memory_rows("steps", f"{name} vs MTL", rewound(m.step), mtl, args.device)
    params = [q for q in ctx.model.parameters() if q.requires_grad]
    weights = sum(q.numel() * q.element_size() for q in params)
    rows.append(
        Row("steps", "PCGrad/GradVac (T, D) gradient buffer vs weights", T * weights, weights, "B")
    )
    return rows


def main() -> None:
    args = parser().parse_args()
    torch.set_num_threads(args.threads)
    T = min(args.tasks, len(TLPS))

    ctx = build(args)
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    D = sum(p.numel() for p in params)
    print(
        f"model: {D / 1e6:.2f}M trainable parameters, T = {T} tasks per step, batch "
        f"{args.batch} × {args.length} tokens, device {args.device}, {args.threads} threads"
    )
    p = {**ctx.params, "tasks_per_step": T, "temperature": 1.0}
    methods = {
        "PCGrad": PCGrad(ctx, p),
        "GradVac": GradVac(ctx, p),
        "GradNorm": GradNorm(ctx, p),
    }
    tlps = ctx.tlps[:T]

    def plain_backward() -> None:  # T backward passes, no optimizer step
        ctx.model.train()
        for t in tlps:
            ctx.loss(t, ctx.batch(t)).backward()
        ctx.optimizer.zero_grad(set_to_none=True)

    steps: dict[str, Callable[[], object]] = {
        "MTL (mean of T)": lambda: ctx.mean_loss_step(tlps),
        f"{T} plain backward": plain_backward,
        **{name: m.step for name, m in methods.items()},
    }
    start = {t: s.state_dict() for t, s in ctx.streams.items()}

    def rewind() -> None:
        for t, s in ctx.streams.items():
            s.load_state_dict(start[t])

    for fn in steps.values():  # warm-up: allocator, AdamW state, threads
        rewind()
        fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, fn in steps.items():
            rewind()
            sync(args.device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            sync(args.device)
            times[name].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times["MTL (mean of T)"])
    base_min = min(times["MTL (mean of T)"])
    print(f"\nper step over {args.rounds} interleaved rounds of {args.steps} steps (ratio to MTL):")
    for name, ts in times.items():
        med, low = statistics.median(ts), min(ts)
        print(
            f"  {name:<20} median {med * 1e3:8.2f} ms  ×{med / base:.3f}   "
            f"min {low * 1e3:8.2f} ms  ×{low / base_min:.3f}"
        )

    buffer = T * D * params[0].element_size()
    print(
        f"\nper-task gradient buffer (PCGrad, GradVac): T × D = {buffer / 2**20:.1f} MiB "
        f"({T}× the model's {D * params[0].element_size() / 2**20:.1f} MiB of weights); "
        "GradNorm keeps none"
    )
    if args.device.startswith("cuda"):
        peaks = {}
        for name, fn in steps.items():
            rewind()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            fn()
            torch.cuda.synchronize()
            peaks[name] = torch.cuda.max_memory_allocated() - before
        ref = peaks["MTL (mean of T)"]
        print("peak memory allocated during one step, above the resting state:")
        for name, b in peaks.items():
            print(f"  {name:<20} {b / 2**20:8.1f} MiB  ×{b / ref:.2f}")


if __name__ == "__main__":
    main()
