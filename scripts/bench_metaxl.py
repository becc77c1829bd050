"""Cost of a MetaXL step (pipeline/methods/metaxl.py) against a JT step on the same batches.

A MetaXL step is the look-ahead (a source forward/backward with `create_graph`, a target
forward at θ', and the second-order backward into the RTN φ), φ's Adam step, then the real
update — which is exactly a JT w/ RTN step (the source through the RTN and the target, summed,
one optimizer step). Both run on the same source and target batches (one NER pair, the reference
setting), each variant on its own copy of the model (the steps change the weights); rounds
interleave the variants, and the median and min per round are printed with the ratio to JT.
Memory: the bytes autograd saves for backward during one step (any device) and, on a GPU, the
peak allocated CUDA memory.

Same model and data as scripts/bench_reptile.py (BERT hidden 64 × 2 layers, batch 16 × 64
tokens); the RTN after the last layer with r = d / 2.

    python scripts/bench_metaxl.py [--rounds 15] [--device cpu]

Printed figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import Row, medians, memory_rows  # noqa: E402
from bench_maml import interleaved, saved_bytes  # noqa: E402
from bench_reptile import build, model_args  # noqa: E402

from pipeline.methods.metaxl import JointTraining, MetaXL  # noqa: E402
from pipeline.optim import make_optimizer, make_scheduler  # noqa: E402
from pipeline.records import TLP  # noqa: E402

PAIR = [TLP("ner", "l0"), TLP("ner", "l1")]  # source, target


def method(args: argparse.Namespace, cls: type[JointTraining], **over: Any) -> JointTraining:
    ctx = build(args)
    ctx.train = {t: ctx.train[t] for t in PAIR}
    ctx.streams = {t: ctx.streams[t] for t in PAIR}
    params = {
        "seed": 0,
        "batch_size": args.batch,
        "lr": 3e-5,
        "max_grad_norm": 1.0,
        "method": cls.name,
        "targets": ["l1"],
        **over,
    }
    cls.prepare_model(ctx.model, params)
    # as the trainer does: the optimizer built after prepare_model (JT w/ RTN trains φ with it)
    ctx.optimizer = make_optimizer(ctx.model, 3e-5, 0.01)
    ctx.scheduler = make_scheduler(ctx.optimizer, 0, 10**9, "constant")
    return cls(ctx, params)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    model_args(ap)
    return ap


def run(args: argparse.Namespace) -> list[Row]:
    """The `steps` rows of scripts/bench.py: a MetaXL step vs a JT w/ RTN step on the same
    batches (alternated rounds, medians), and memory."""
    torch.set_num_threads(args.threads)
    jt = method(args, JointTraining, rtn=True)
    xl = method(args, MetaXL, meta_lr=3e-5)
    fixed = jt._batches()
    jt._batches = lambda: fixed  # type: ignore[method-assign]
    xl._batches = lambda: fixed  # type: ignore[method-assign]
    t = medians(interleaved({"jt": jt.step, "xl": xl.step}, args.rounds, args.device))
    return [
        Row("steps", "MetaXL step vs JT w/ RTN step", t["xl"], t["jt"], "s"),
        *memory_rows("steps", "MetaXL vs JT w/ RTN", xl.step, jt.step, args.device),
    ]


def main() -> None:
    args = parser().parse_args()
    torch.set_num_threads(args.threads)
    jt = method(args, JointTraining, rtn=True)
    xl = method(args, MetaXL, meta_lr=3e-5)
    fixed = jt._batches()  # the same batches for every step of both
    n_params = sum(p.numel() for p in jt.ctx.model.parameters())
    print(
        f"model: BERT hidden 64 × 2 layers + RTN (r = 32), {n_params / 1e6:.2f}M parameters, "
        f"batch {args.batch} × {args.length} tokens, source {PAIR[0]} target {PAIR[1]}, device "
        f"{args.device}, {args.threads} threads"
    )
    jt._batches = lambda: fixed  # type: ignore[method-assign]
    xl._batches = lambda: fixed  # type: ignore[method-assign]
    variants: dict[str, Callable[[], Any]] = {"JT w/ RTN step": jt.step, "MetaXL step": xl.step}
    times = interleaved(variants, args.rounds, args.device)
    base = times["JT w/ RTN step"]
    print(f"\nper step over {args.rounds} interleaved rounds (ratio to JT on the same batches):")
    for name, ts in times.items():
        med, low = statistics.median(ts), min(ts)
        print(
            f"  {name:<16} median {med * 1e3:8.2f} ms  ×{med / statistics.median(base):.3f}   "
            f"min {low * 1e3:8.2f} ms  ×{low / min(base):.3f}"
        )
    print("\nmemory of one step:")
    for name, fn in variants.items():
        line = f"  {name:<16} autograd saved {saved_bytes(fn) / 2**20:8.1f} MiB"
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            fn()
            line += f", peak CUDA {torch.cuda.max_memory_allocated() / 2**20:8.1f} MiB"
        print(line)


if __name__ == "__main__":
    main()
