"""GPU row: tokens/s and model-FLOPs utilisation (MFU) of an mBERT-size encoder training step,
against the bf16 matrix-multiply rate measured on the same device in the same run.

The model: BERT-base shape (12 layers, hidden 768, 12 heads, FFN 3072, mBERT's vocabulary of
119547, sequences of 128 tokens), masked-LM head tied to the word embeddings, SDPA attention;
one step = forward and loss (every position a target) under bf16 autocast, backward, fused
AdamW step. The baseline: a square bf16 matmul (--matmul-n, 8192) timed back to back, 2·n³ FLOPs
each. Rounds alternate the two; medians.

Model FLOPs per token = 6·N + 12·L·S·H: N = the parameters that multiply (all but the position
and token-type embedding tables; the word embeddings count once, as the tied output projection
over the vocabulary), and the attention scores and weighted sums (QKᵀ and AV: 2·2·S·H per layer
forward, ×3 with the backward), which the 6·N rule leaves out. MFU = model FLOPs/s / measured
matmul FLOP/s; it is also printed against the datasheet's dense bf16 peak when the device is one
listed in PEAK_TFLOPS. Target: MFU ≥ 40 % of the measured matmul rate.

Without CUDA it prints one row "no CUDA device: skipped" and writes {"device": "cpu",
"skipped": true}. `--tiny --device cpu` runs the same code on a 2-layer, hidden-64 shape (a test
of the code path, not a measurement).

    python scripts/bench_gpu.py [--batch 64] [--steps 10] [--rounds 3] [--compile]
    python scripts/bench_gpu.py --tiny --device cpu

Printed figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import OUT_DIR, Row, Target, device_info, device_line, skipped, table, write_group  # noqa: E402

#: dense bf16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s (without sparsity); matched
#: against torch.cuda.get_device_name() in this order
PEAK_TFLOPS = (
    (("GH200",), 989.0),
    (("H200",), 989.0),
    (("H100", "PCIe"), 756.0),
    (("H100", "NVL"), 835.0),
    (("H100",), 989.0),  # SXM ("NVIDIA H100 80GB HBM3")
    (("A100",), 312.0),
    (("L40S",), 362.0),
    (("L4",), 121.0),
)

BERT_BASE = {"layers": 12, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 119547, "seq": 128}
TINY = {"layers": 2, "hidden": 64, "heads": 2, "ffn": 256, "vocab": 1000, "seq": 32}


def datasheet_peak(name: str) -> float | None:
    """Dense bf16 peak FLOP/s of a device by name, when listed."""
    for words, tflops in PEAK_TFLOPS:
        if all(w in name for w in words):
            return tflops * 1e12
    return None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default=None, help="default: cuda when present")
    ap.add_argument("--tiny", action="store_true", help="a tiny shape (tests the code path)")
    ap.add_argument("--batch", type=int, default=None, help="sequences per step (64; tiny 4)")
    ap.add_argument("--steps", type=int, default=10, help="training steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--matmul-n", type=int, default=None, help="matmul size (8192; tiny 256)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--out", default=str(OUT_DIR), help="folder of gpu.json (standalone)")
    return ap


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def model_flops_per_token(model: torch.nn.Module, shape: dict[str, int]) -> tuple[float, int]:
    """(6·N + 12·L·S·H, N): see the module docstring."""
    skip = {"position_embeddings", "token_type_embeddings"}
    n = sum(p.numel() for name, p in model.named_parameters() if not any(s in name for s in skip))
    attention = 12 * shape["layers"] * shape["seq"] * shape["hidden"]
    return 6.0 * n + attention, n


def run(args: argparse.Namespace) -> list[Row]:
    """The `gpu` rows of scripts/bench.py."""
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" and not (args.tiny and args.device):  # only --tiny --device cpu
        return [skipped("gpu", "no CUDA device: skipped")]
    from transformers import BertConfig, BertForMaskedLM

    shape = TINY if args.tiny else BERT_BASE
    batch = args.batch or (4 if args.tiny else 64)
    mm_n = args.matmul_n or (256 if args.tiny else 8192)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=shape["vocab"],
        hidden_size=shape["hidden"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        intermediate_size=shape["ffn"],
        max_position_embeddings=max(512, shape["seq"]),
        attn_implementation="sdpa",
    )
    model = BertForMaskedLM(config).to(device)
    flops_per_token, n_params = model_flops_per_token(model, shape)
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        fused = True
    except (RuntimeError, TypeError):  # a device without fused AdamW
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        fused = False
    step_model = torch.compile(model) if args.compile else model
    ids = torch.randint(5, shape["vocab"], (batch, shape["seq"]), device=device)
    mask = torch.ones_like(ids)

    def train_steps() -> None:
        for _ in range(args.steps):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = step_model(input_ids=ids, attention_mask=mask, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    a = torch.randn(mm_n, mm_n, device=device, dtype=torch.bfloat16)
    b = torch.randn(mm_n, mm_n, device=device, dtype=torch.bfloat16)
    reps = 2 if args.tiny else 50

    def matmuls() -> None:
        for _ in range(reps):
            torch.matmul(a, b)

    train_steps()  # warm-up (and compilation)
    matmuls()
    times: dict[str, list[float]] = {"train": [], "matmul": []}
    for _ in range(args.rounds):
        for name, fn in (("train", train_steps), ("matmul", matmuls)):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    t_train, t_mm = (statistics.median(times[k]) for k in ("train", "matmul"))
    tokens_per_s = batch * shape["seq"] * args.steps / t_train
    model_flops = flops_per_token * tokens_per_s
    matmul_flops = 2.0 * mm_n**3 * reps / t_mm
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (tiny)"
    peak = datasheet_peak(name) if device.type == "cuda" else None
    what = "mBERT-size" if not args.tiny else "tiny"
    extra = {
        "device_name": name,
        "shape": shape,
        "batch": batch,
        "tokens_per_step": batch * shape["seq"],
        "tokens_per_s": tokens_per_s,
        "parameters_counted": n_params,
        "flops_per_token": flops_per_token,
        "flops": "6*N + 12*L*S*H per token (attention scores and sums included)",
        "fused_adamw": fused,
        "compiled": bool(args.compile),
        "matmul_n": mm_n,
        "datasheet_peak_flops": peak,
        "mfu_vs_datasheet": model_flops / peak if peak else None,
    }
    rows = [
        Row(
            "gpu",
            f"{what} train step FLOP/s vs measured bf16 matmul (MFU)",
            model_flops,
            matmul_flops,
            "FLOP/s",
            Target("ratio", ">=", 0.40),
            extra=extra,
        ),
        Row(
            "gpu",
            f"{what} train step tokens/s (bf16, fused AdamW={fused})",
            tokens_per_s,
            None,
            "tok/s",
        ),
    ]
    if peak:
        rows.append(
            Row("gpu", f"measured bf16 matmul vs datasheet ({name})", matmul_flops, peak, "FLOP/s")
        )
        rows.append(Row("gpu", "train step FLOP/s vs datasheet peak", model_flops, peak, "FLOP/s"))
    return rows


def write(rows: list[Row], out: Path) -> Path:
    """gpu.json: {"device": "cpu", "skipped": true} without CUDA, else the rows."""
    info = device_info()
    if rows and rows[0].extra.get("skipped"):
        return write_group("gpu", rows, info, out, device="cpu", skipped=True, host=info)
    return write_group("gpu", rows, info, out, skipped=False)


def main() -> None:
    args = parser().parse_args()
    rows = run(args)
    print(device_line(device_info()))
    print(table(rows))
    print(f"-> {write(rows, Path(args.out))}")


if __name__ == "__main__":
    main()
