"""Cost of an X-METRA-ADA outer step (pipeline/methods/xmetra.py) against plain training on the
same batches.

One outer step of the paper's setting adapts each of `--tasks` meta-tasks (4, as the reference)
by n = 5 first-order SGD steps on its whole support set and back-propagates its query loss:
T (n + 1) forward/backward passes and one optimizer step. It is timed against T (n + 1) plain
training steps (`TrainContext.outer_step` after each backward) on the same batches; the target is
≤ 1.15×. The reference code's interleaving (`stages: interleaved`: every task continues with
`--adapt` more inner steps on a meta-adapt support set and a second query) is timed against its
own plain count, T (n + 1 + n_adapt + 1).

Same model and data as scripts/bench_reptile.py (BERT hidden 64 × 2 layers, batch 16 × 64
tokens); rounds interleave the variants and the median and min per round are printed.

    python scripts/bench_xmetra.py [--rounds 10] [--tasks 4] [--inner 5] [--adapt 5] [--device cpu]

Printed figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_maml import interleaved  # noqa: E402
from bench_reptile import TLPS, build, model_args  # noqa: E402

from pipeline.methods import maml_core  # noqa: E402
from pipeline.methods.maml_core import MetaTask  # noqa: E402
from pipeline.tasks import for_task  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=4, help="meta-tasks per outer step")
    ap.add_argument("--inner", type=int, default=5, help="inner steps n (the paper: 5)")
    ap.add_argument("--adapt", type=int, default=5, help="inner steps of a meta-adapt task")
    model_args(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ctx = build(args)
    tlp = TLPS[0]
    t, n, na = args.tasks, args.inner, args.adapt
    # per task: its support set (one batch, used at every inner step) and query; meta-adapt too
    sets = [[ctx.batch(tlp) for _ in range(4)] for _ in range(t)]
    train = [MetaTask([(tlp, s)] * n, (tlp, q)) for s, q, _, _ in sets]
    chained = [
        MetaTask([(tlp, s)] * n, (tlp, q), then=MetaTask([(tlp, sa)] * na, (tlp, qa)))
        for s, q, sa, qa in sets
    ]
    n_params = sum(p.numel() for p in ctx.model.parameters())
    print(
        f"model: BERT hidden 64 × 2 layers, {n_params / 1e6:.2f}M parameters, batch "
        f"{args.batch} × {args.length} tokens, {t} tasks × n = {n} inner steps (meta-adapt "
        f"{na}), first order, device {args.device}, {args.threads} threads"
    )

    def plain(passes: list[dict]) -> Callable[[], None]:
        def go() -> None:
            ctx.model.train()
            for b in passes:
                for_task(tlp.task).loss(ctx.model(tlp.task, b), b).backward()
                ctx.outer_step()

        return go

    seq_passes = [b for s, q, _, _ in sets for b in [s] * n + [q]]
    int_passes = [b for s, q, sa, qa in sets for b in [s] * n + [q] + [sa] * na + [qa]]
    variants: dict[str, Callable[[], None]] = {
        f"plain × {len(seq_passes)}": plain(seq_passes),
        "X-METRA(-ADA) step": lambda: maml_core.meta_step(ctx, train, 1e-3, True),
        f"plain × {len(int_passes)}": plain(int_passes),
        "interleaved step": lambda: maml_core.meta_step(ctx, chained, 1e-3, True),
    }
    times = interleaved(variants, args.rounds, args.device)
    print(
        f"\nper outer step over {args.rounds} interleaved rounds (ratio to plain on the same batches):"
    )
    pairs = [
        ("X-METRA(-ADA) step", f"plain × {len(seq_passes)}"),
        ("interleaved step", f"plain × {len(int_passes)}"),
    ]
    for name, base_name in pairs:
        for label in (base_name, name):
            ts, base = times[label], times[base_name]
            med, low = statistics.median(ts), min(ts)
            print(
                f"  {label:<20} median {med * 1e3:8.2f} ms  ×{med / statistics.median(base):.3f}   "
                f"min {low * 1e3:8.2f} ms  ×{low / min(base):.3f}"
            )
    print("  target: ×1.15 or less")


if __name__ == "__main__":
    main()
