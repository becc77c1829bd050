"""Cost per inner step of MTL, Reptile and Sequential Reptile, and MultiDDS's reward overhead.

Reptile-style methods should cost no more than a plain optimizer step per inner step: their extra
work is a snapshot, m restores and the delta accumulation (Reptile), or one snapshot and one lerp
(Sequential Reptile), all torch._foreach ops on parameter values. This script measures it on the
same model and batches: a BERT (hidden 64, 2 layers) with nli/ner/qa heads, 6 TLPs of synthetic
tokens, batch 16 × 64 tokens. Rounds are interleaved (MTL, Reptile, Seq Reptile, ...) and the
median per round is reported, so drift of the machine hits all methods alike.

    python scripts/bench_reptile.py [--rounds 25] [--inner 12] [--threads 1] [--device cpu]

Printed figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import Row, Target, alternated, medians, saved_bytes  # noqa: E402

from pipeline.analysis import task_gradient_cosine
from pipeline.engine import BatchStream, TrainContext, interpolate, restore, snapshot
from pipeline.features import SplitData
from pipeline.methods.mtl import MTL
from pipeline.methods.reptile import Reptile
from pipeline.methods.seq_reptile import SequentialReptile
from pipeline.methods.trajectory import EndpointMean
from pipeline.models.multitask import MultiTaskModel
from pipeline.multidds import Rewards
from pipeline.optim import make_optimizer, make_scheduler
from pipeline.records import TLP
from pipeline.tasks import FeatureSettings

LABELS = {
    "nli": {"label": ["contradiction", "entailment", "neutral"]},
    "ner": {"tags": ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]},
    "qa": {},
}
TLPS = [TLP(t, lang) for t in ("nli", "ner", "qa") for lang in ("l0", "l1")]


def synthetic_split(tlp: TLP, n: int, length: int, vocab: int, g: torch.Generator) -> SplitData:
    t: dict[str, torch.Tensor] = {
        "input_ids": torch.randint(5, vocab, (n, length), generator=g),
        "attention_mask": torch.ones(n, length, dtype=torch.long),
        "token_type_ids": torch.zeros(n, length, dtype=torch.long),
    }
    if tlp.task == "nli":
        t["labels"] = torch.randint(0, 3, (n,), generator=g)
    elif tlp.task == "ner":
        t["labels"] = torch.randint(0, 7, (n, length), generator=g)
    else:
        start = torch.randint(1, length - 4, (n,), generator=g)
        t["start_positions"], t["end_positions"] = start, start + 2
    return SplitData(tlp, "train", Path("."), None, list(range(n)), t, FeatureSettings())  # type: ignore[arg-type]


def build(args: argparse.Namespace, seed: int = 0) -> TrainContext:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=args.vocab,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=args.length,
        type_vocab_size=2,
    )
    model = MultiTaskModel(BertModel(config, add_pooling_layer=False), LABELS, 0.1).to(args.device)
    g = torch.Generator().manual_seed(seed)
    data = {t: synthetic_split(t, args.batch * 40, args.length, args.vocab, g) for t in TLPS}
    params: dict[str, Any] = {"seed": seed, "batch_size": args.batch, "max_grad_norm": 1.0}
    opt = make_optimizer(model, 3e-5, 0.01)
    sched = make_scheduler(opt, 0, 10**9, "constant")
    streams = {t: BatchStream(len(d), args.batch, i) for i, (t, d) in enumerate(data.items())}
    return TrainContext(
        model, opt, sched, data, streams, params, torch.device(args.device), dev=data
    )


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(method: Any, n_steps: int, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(n_steps):
        method.step()
    sync(device)
    return time.perf_counter() - start


def model_args(ap: argparse.ArgumentParser) -> None:
    """The bench model and data options every benchmark script shares (see `build`)."""
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--inner", type=int, default=12, help="inner steps per round and method")
    model_args(ap)
    ap.add_argument("--update-every", type=int, default=10, help="MultiDDS update interval")
    return ap


def run(args: argparse.Namespace) -> list[Row]:
    """The `steps` rows of scripts/bench.py: Reptile and Sequential Reptile per inner step vs an
    MTL step (alternated rounds, medians), autograd memory of one step of each vs MTL's, and
    MultiDDS's reward computation vs the training compute between two reward updates."""
    torch.set_num_threads(args.threads)
    m, k, K = 4, 3, 12
    if args.inner % (m * k) or args.inner % K:
        raise SystemExit(f"--inner must be a multiple of {m * k} and {K}")
    ctx = build(args)
    p = {**ctx.params, "temperature": 1.0}
    methods = {
        "MTL": (MTL(ctx, p), 1),
        f"Reptile m={m} k={k}": (Reptile(ctx, {**p, "m": m, "k": k}), m * k),
        f"Seq Reptile K={K}": (SequentialReptile(ctx, {**p, "inner_steps": K}), K),
    }
    variants = {
        name: (lambda meth=meth, inner=inner: [meth.step() for _ in range(args.inner // inner)])
        for name, (meth, inner) in methods.items()
    }
    times = medians(alternated(variants, args.rounds, lambda: sync(args.device)))
    per = {name: t / args.inner for name, t in times.items()}
    target = Target("ratio", "<=", 1.05)
    rows = [
        Row("steps", f"{name} inner step vs MTL step", per[name], per["MTL"], "s", target)
        for name in list(methods)[1:]
    ]
    # per inner step: a step() call is one meta-step of `inner` inner steps
    saved = {name: saved_bytes(meth.step) / inner for name, (meth, inner) in methods.items()}
    for name in list(methods)[1:]:
        rows.append(
            Row(
                "steps",
                f"{name} memory vs MTL (autograd saved/step)",
                saved[name],
                saved["MTL"],
                "B",
            )
        )
    interval = per[f"Reptile m={m} k={k}"] * m * k * args.update_every
    for mode in ("cosine", "faithful"):
        rewards = Rewards(ctx, TLPS, mode, seed=0)
        t = medians(
            alternated({mode: rewards}, max(1, min(args.rounds, 7)), lambda: sync(args.device))
        )
        rows.append(
            Row(
                "steps",
                f"MultiDDS {mode} rewards vs {args.update_every} Reptile meta-step(s)",
                t[mode],
                interval,
                "s",
                note="baseline: the training compute between two reward updates",
            )
        )
    return rows


def main() -> None:
    args = parser().parse_args()
    torch.set_num_threads(args.threads)
    m, k, K = 4, 3, 12
    assert args.inner % (m * k) == 0 and args.inner % K == 0

    ctx = build(args)
    n_params = sum(p.numel() for p in ctx.model.parameters())
    print(
        f"model: BERT hidden 64 × 2 layers, {n_params / 1e6:.2f}M parameters, batch "
        f"{args.batch} × {args.length} tokens, {len(TLPS)} TLPs, device {args.device}, "
        f"{args.threads} threads"
    )
    p = {**ctx.params, "temperature": 1.0}
    methods = {
        "MTL": (MTL(ctx, p), 1),
        f"Reptile m={m} k={k}": (Reptile(ctx, {**p, "m": m, "k": k}), m * k),
        f"Seq Reptile K={K}": (SequentialReptile(ctx, {**p, "inner_steps": K}), K),
    }
    for method, _ in methods.values():  # warm-up: allocator, AdamW state, threads
        method.step()
    per_inner: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, (method, inner) in methods.items():
            secs = time_steps(method, args.inner // inner, args.device)
            per_inner[name].append(secs / args.inner)
    base = statistics.median(per_inner["MTL"])
    base_min = min(per_inner["MTL"])
    print(
        f"\nper inner step over {args.rounds} interleaved rounds of {args.inner} inner steps "
        "(ratio to MTL; min is the least disturbed by other load):"
    )
    for name, times in per_inner.items():
        med, low = statistics.median(times), min(times)
        print(
            f"  {name:<20} median {med * 1e3:7.2f} ms  ×{med / base:.3f}   "
            f"min {low * 1e3:7.2f} ms  ×{low / base_min:.3f}"
        )

    # the outer-loop bookkeeping alone (snapshot, restores, deltas, lerp), without inner steps
    params = list(ctx.model.parameters())

    def reptile_bookkeeping() -> None:
        theta = snapshot(params)
        mean = EndpointMean(theta)
        for i in range(m):
            if i:
                restore(params, theta)
            if i < m - 1:
                mean.add(params)
        mean.finish(params)
        interpolate(params, theta, params, 1.0)

    def seq_bookkeeping() -> None:
        phi = snapshot(params)
        interpolate(params, phi, params, 1.0)

    print("\nouter-loop bookkeeping alone, spread over the meta-step's inner steps:")
    for name, fn, inner in (
        (f"Reptile m={m} k={k}", reptile_bookkeeping, m * k),
        (f"Seq Reptile K={K}", seq_bookkeeping, K),
    ):
        reps = 50
        times = []
        for _ in range(args.rounds):
            sync(args.device)
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            sync(args.device)
            times.append((time.perf_counter() - start) / reps)
        low = min(times)
        print(
            f"  {name:<20} {low * 1e3:7.3f} ms per meta-step = "
            f"{low / inner / base_min * 100:.3f}% of an MTL step per inner step"
        )

    # MultiDDS: reward computation relative to the training compute between two updates
    print(f"\nMultiDDS reward overhead (update every {args.update_every} meta-steps, dev = all):")
    meta_step = min(per_inner[f"Reptile m={m} k={k}"]) * m * k
    interval = meta_step * args.update_every
    for mode in ("cosine", "faithful"):
        rewards = Rewards(ctx, TLPS, mode, seed=0)
        rewards()  # warm-up
        times = []
        for _ in range(min(args.rounds, 7)):
            sync(args.device)
            start = time.perf_counter()
            rewards()
            sync(args.device)
            times.append(time.perf_counter() - start)
        r = min(times)
        print(
            f"  {mode:<9} {r * 1e3:8.1f} ms per update = {r / interval:.3f} × the training compute "
            f"of {args.update_every} Reptile meta-steps ({interval * 1e3:.0f} ms)"
        )

    # the gradient-cosine diagnostic, per call (what an eval adds)
    start = time.perf_counter()
    out = task_gradient_cosine(ctx.model, ctx, TLPS, n_batches=4)
    secs = time.perf_counter() - start
    print(
        f"\ntask_gradient_cosine (6 TLPs × 4 batches): {secs * 1e3:.0f} ms per call "
        f"(= {secs / base:.1f} MTL steps); mean pairwise cosine {out['mean_pairwise_cosine']:.3f}"
    )


if __name__ == "__main__":
    main()
