"""Gradient geometry diagnostics: how aligned are the per-TLP gradients of the shared encoder?

Sequential Reptile (Lee et al. 2022, Fig. 4) explains its gains by the average pairwise cosine
similarity between task gradients staying high during training, where MTL and Reptile let it
fall. `task_gradient_cosine` measures that at a checkpoint, for any method, without side effects:
the weights, the optimizer, the training batch streams and every RNG are left exactly as found,
so calling it every evaluation does not change the numbers a run produces.

The same helpers (the shared parameters, a flattened gradient, a cosine) give MultiDDS its
reward (pipeline.multidds).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import combinations
from typing import Any

import numpy as np
import torch

from pipeline.engine import BatchStream, TrainContext
from pipeline.features import SplitData
from pipeline.records import TLP
from pipeline.tasks import for_task


def shared_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters every TLP trains: the encoder's when the model has one (heads are per task)."""
    owner = getattr(model, "encoder", model)
    return [p for p in owner.parameters() if p.requires_grad]


def flat_gradient(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """d loss / d params as one vector, without touching `.grad` (zeros for unused params)."""
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos(a, b) in float64; 0 when either vector is zero (no direction, no signal)."""
    a, b = a.double(), b.double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return 0.0
    return float(a.dot(b) / (na * nb))


def tlp_loss(model: torch.nn.Module, tlp: TLP, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return for_task(tlp.task).loss(model(tlp.task, batch), batch)


def stream_seed(seed: int, tag: str, tlp: TLP) -> int:
    """A stable seed for a diagnostic stream, distinct from the training streams' seeds."""
    return zlib.crc32(f"{seed}/{tag}/{tlp}".encode()) % 2**31


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore torch (CPU and CUDA), numpy and python RNG states on exit."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(np_state)
        random.setstate(py_state)


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Dropout off (deterministic gradients), then the model's previous mode back."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def task_gradient_cosine(
    model: torch.nn.Module,
    ctx_or_data: TrainContext | Mapping[TLP, SplitData],
    tlps: Sequence[TLP] | None = None,
    n_batches: int = 4,
    batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | None = None,
    store: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Average pairwise cosine between per-TLP gradients of the shared encoder, on train batches.

    Each TLP's gradient is the mean over `n_batches` batches of its train split (dropout off),
    drawn from fresh streams seeded by (`seed`, TLP): every call sees the same batches, so values
    at successive checkpoints differ by the weights only. Gradients go through autograd.grad, so
    `.grad`, the optimizer and the training streams are untouched; RNG states are restored.
    Per-TLP gradient vectors are kept on `store` (CPU by default: T vectors of the encoder's size).

    Returns {"mean_pairwise_cosine": x, "pairs": {"a|b": cos}, "tlps": [...], "n_batches": n}.
    """
    if isinstance(ctx_or_data, TrainContext):
        data: Mapping[TLP, SplitData] = ctx_or_data.train
        batch_size = batch_size or int(ctx_or_data.params["batch_size"])
        device = device or ctx_or_data.device
    else:
        data = ctx_or_data
        batch_size = batch_size or 16
        device = device or next(model.parameters()).device
    tlps = list(tlps) if tlps is not None else list(data)
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    if len(tlps) < 2:
        raise ValueError(
            f"need at least two TLPs for pairwise cosines, got {[str(t) for t in tlps]}"
        )
    params = shared_parameters(model)
    grads: dict[TLP, torch.Tensor] = {}
    with preserved_rng(), eval_mode(model):
        for tlp in tlps:
            split = data[tlp]
            stream = BatchStream(len(split), batch_size, stream_seed(seed, "gradcos", tlp))
            total: torch.Tensor | None = None
            for _ in range(n_batches):
                idx = stream.next()
                batch = {k: v[idx].to(device) for k, v in split.tensors.items()}
                g = flat_gradient(tlp_loss(model, tlp, batch), params)
                total = g if total is None else total.add_(g)
            assert total is not None
            grads[tlp] = total.div_(n_batches).to(store)
    pairs = {f"{a}|{b}": cosine(grads[a], grads[b]) for a, b in combinations(tlps, 2)}
    return {
        "mean_pairwise_cosine": float(np.mean(list(pairs.values()))),
        "pairs": pairs,
        "tlps": [str(t) for t in tlps],
        "n_batches": n_batches,
    }
