"""Training and evaluation tokens/s: fixed-length padding vs dynamic padding with length-grouped
batches, side by side in one run.

Data: one NLI TLP of synthetic token ids with an XNLI-like length spread (premise + hypothesis
in sub-tokens: gamma-distributed, mean ~40, clipped to [6, max_length = 128]), right-padded to
max_length as the featurizer pads. Model: the BERT of scripts/bench_reptile.py (hidden 64 ×
2 layers unless --hidden/--layers say otherwise) with the nli head.

* training: fixed = a plain `BatchStream` and the full max_length batch; dynamic =
  `BatchStream(..., lengths=, group_by_length=True)` and `pipeline.features.trim_padding(batch)`
  (each batch cut to its longest attention_mask row); both then do forward, backward and an AdamW
  step. --steps steps per round and variant, rounds alternated.
* evaluation: `pipeline.evaluation.model_outputs(..., padding="fixed")` vs `padding="dynamic"`
  over the whole eval split.

Tokens/s counts real (attention_mask = 1) tokens, the same work for both. The target: dynamic
≥ 1.5× fixed. Medians over --rounds.

    python scripts/bench_padding.py [--rounds 5] [--steps 10] [--n 2048] [--batch 32] [--device cpu]

Printed figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import Row, Target, device_info, device_line, skipped, table  # noqa: E402
from bench_reptile import LABELS, sync  # noqa: E402

from pipeline.features import SplitData  # noqa: E402
from pipeline.records import TLP  # noqa: E402
from pipeline.tasks import FeatureSettings, for_task  # noqa: E402

TLP_NLI = TLP("nli", "l0")


def xnli_lengths(n: int, max_length: int, seed: int, mean: float = 40.0) -> torch.Tensor:
    """Sub-token lengths like XNLI's [CLS] premise [SEP] hypothesis [SEP]: gamma(4, mean / 4),
    clipped to [6, max_length] (mean ≈ 40, a long tail up to max_length)."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.gamma(4.0, mean / 4.0, n).round().clip(6, max_length)).long()


def split(n: int, max_length: int, vocab: int, seed: int) -> SplitData:
    g = torch.Generator().manual_seed(seed)
    lengths = xnli_lengths(n, max_length, seed)
    pos = torch.arange(max_length)
    mask = (pos[None, :] < lengths[:, None]).long()
    ids = torch.randint(5, vocab, (n, max_length), generator=g) * mask
    sep = (lengths // 2).clamp(min=2)
    types = ((pos[None, :] >= sep[:, None]) & mask.bool()).long()
    t = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": types,
        "labels": torch.randint(0, 3, (n,), generator=g),
    }
    settings = FeatureSettings(max_length=max_length)
    return SplitData(TLP_NLI, "train", Path("."), None, list(range(n)), t, settings)  # type: ignore[arg-type]


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    from pipeline.models.multitask import MultiTaskModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 32),
        intermediate_size=4 * args.hidden,
        max_position_embeddings=args.max_length,
        type_vocab_size=2,
    )
    labels = {"nli": LABELS["nli"]}
    return MultiTaskModel(BertModel(config, add_pooling_layer=False), labels, 0.1).to(args.device)


def api():
    """The padding API under test, or the reason it cannot be used (not landed yet)."""
    try:
        from pipeline.engine import BatchStream
        from pipeline.evaluation import model_outputs
        from pipeline.features import trim_padding
    except ImportError as e:
        return None, f"padding API not available ({e})"
    import inspect

    if "group_by_length" not in inspect.signature(BatchStream).parameters:
        return None, "padding API not available (BatchStream has no group_by_length)"
    if "padding" not in inspect.signature(model_outputs).parameters:
        return None, "padding API not available (model_outputs has no padding)"
    return (BatchStream, trim_padding, model_outputs), ""


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="training steps per round and variant")
    ap.add_argument("--n", type=int, default=2048, help="training examples")
    ap.add_argument("--n-eval", type=int, default=1024, help="evaluation examples")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    return ap


def run(args: argparse.Namespace) -> list[Row]:
    """The `padding` rows of scripts/bench.py (see the module docstring)."""
    found, why = api()
    if found is None:
        return [skipped("padding", why)]
    BatchStream, trim_padding, model_outputs = found
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train = split(args.n, args.max_length, args.vocab, 0)
    dev = split(args.n_eval, args.max_length, args.vocab, 1)
    lengths = train.tensors["attention_mask"].sum(dim=1)
    task = for_task("nli")
    models, streams, opts = {}, {}, {}
    for name in ("fixed", "dynamic", "random"):  # random: dynamic padding, ungrouped batches
        models[name] = build_model(args)
        opts[name] = torch.optim.AdamW(models[name].parameters(), lr=3e-5)
        grouped = {"lengths": lengths, "group_by_length": True} if name == "dynamic" else {}
        streams[name] = BatchStream(args.n, args.batch, 0, **grouped)

    def train_steps(name: str, steps: int) -> int:
        model, opt, stream = models[name], opts[name], streams[name]
        model.train()
        tokens = 0
        for _ in range(steps):
            idx = stream.next()
            batch = {k: v[idx] for k, v in train.tensors.items()}
            if name != "fixed":
                batch = trim_padding(batch)
            tokens += int(batch["attention_mask"].sum())
            batch = {k: v.to(device) for k, v in batch.items()}
            task.loss(model("nli", batch), batch).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return tokens

    def evaluate(name: str) -> int:
        model_outputs(models["fixed"], dev, args.batch, device, padding=name)
        return int(dev.tensors["attention_mask"].sum())

    rates: dict[str, list[float]] = {
        k: []
        for k in ("train fixed", "train dynamic", "train random", "eval fixed", "eval dynamic")
    }
    for name in ("fixed", "dynamic", "random"):  # warm-up
        train_steps(name, 1)
        if name != "random":
            evaluate(name)
    for _ in range(args.rounds):
        for kind in ("train", "eval"):
            for name in ("fixed", "dynamic", "random") if kind == "train" else ("fixed", "dynamic"):
                sync(args.device)
                t0 = time.perf_counter()
                tokens = train_steps(name, args.steps) if kind == "train" else evaluate(name)
                sync(args.device)
                rates[f"{kind} {name}"].append(tokens / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    spread = {
        "mean_length": float(lengths.float().mean()),
        "max_length": int(lengths.max()),
        "padded_to": args.max_length,
    }
    target = Target("ratio", ">=", 1.5)
    return [
        Row(
            "padding",
            f"training tokens/s, dynamic+grouped vs fixed {args.max_length}",
            med["train dynamic"],
            med["train fixed"],
            "tok/s",
            target,
            extra=spread,
        ),
        Row(
            "padding",
            f"training tokens/s, dynamic (random batches: the default) vs fixed {args.max_length}",
            med["train random"],
            med["train fixed"],
            "tok/s",
            None,
            extra=spread,
        ),
        Row(
            "padding",
            f"evaluation tokens/s, dynamic vs fixed {args.max_length}",
            med["eval dynamic"],
            med["eval fixed"],
            "tok/s",
            target,
            extra=spread,
        ),
    ]


def main() -> None:
    args = parser().parse_args()
    rows = run(args)
    print(device_line(device_info(args.device)))
    print(table(rows))


if __name__ == "__main__":
    main()
