"""Gradient geometry diagnostics: how aligned are the per-TLP gradients of the shared encoder?

Sequential Reptile (Lee et al. 2022, Fig. 4) explains its gains by the average pairwise cosine
similarity between task gradients staying high during training, where MTL and Reptile let it
fall. `task_gradient_cosine` measures that at a checkpoint, for any method, without side effects:
the weights, the optimizer, the training batch streams and every RNG are left exactly as found,
so calling it every evaluation does not change the numbers a run produces. It reports cosines of
averaged gradients and mean cosines of single-batch gradients, exactly or (for encoders of
mBERT's size, where one flat gradient per TLP is gigabytes) from count sketches of bounded size.

The same helpers (the shared parameters, a flattened gradient, a cosine) give MultiDDS its
reward (pipeline.multidds).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import torch

from pipeline.engine import BatchStream, TrainContext
from pipeline.features import SplitData, take
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


# -- count sketch ------------------------------------------------------------------------------

#: the prime of the hash families (coordinates and bucket counts must stay below it)
HASH_PRIME = 2**31 - 1
#: coordinates hashed at a time: bounds the temporaries of one (large) parameter to O(chunk)
SKETCH_CHUNK = 1 << 20


class CountSketch:
    """A count sketch S: R^d → R^k, applied to a gradient parameter by parameter.

    Coordinate c (the position of a value in the encoder's parameters, in `parameters()` order)
    goes to bucket h(c) with sign s(c): (S x)_b = Σ_{c: h(c) = b} s(c)·x_c. With P = 2^31 − 1 and
    coefficients drawn from `seed`,

        h(c) = ((a1·c + a0) mod P) mod k                            (2-universal)
        s(c) = 1 − 2·(((b3·c³ + b2·c² + b1·c + b0) mod P) mod 2)    (4-wise independent)

    so E⟨S x, S y⟩ = ⟨x, y⟩ over the draw of the hash (up to the O(1/P) bias of the parity), with
    variance about (‖x‖²‖y‖² + ⟨x, y⟩²)/k. For k ≥ d the bucket is the coordinate itself
    (h(c) = c, injective): S x is x with random signs and zero padding, and inner products are
    exact (up to the order of floating-point summation). Hashes are recomputed per chunk of
    `SKETCH_CHUNK` coordinates, never stored: memory is the k buckets (float64) plus one chunk.
    The same seed gives the same hash on every device; on CPU the sketch is deterministic, on
    CUDA index_add_ sums colliding coordinates in no fixed order (float64 rounding only).
    """

    def __init__(self, k: int, d: int, seed: int, device: torch.device | str = "cpu") -> None:
        if not 0 < k < HASH_PRIME:
            raise ValueError(f"sketch size must be in [1, {HASH_PRIME}), got {k}")
        if d >= HASH_PRIME:
            raise ValueError(f"count sketch: {d} coordinates, at most {HASH_PRIME - 1} supported")
        self.k, self.d, self.device = k, d, torch.device(device)
        self.injective = k >= d
        rng = np.random.Generator(np.random.PCG64(seed))
        self.a = [int(x) for x in rng.integers(1, HASH_PRIME, size=2)]
        self.b = [int(x) for x in rng.integers(0, HASH_PRIME, size=4)]

    def hashes(self, start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Buckets (int64) and signs (float64, ±1) of coordinates start … start + n − 1."""
        c = torch.arange(start, start + n, dtype=torch.int64, device=self.device)
        if self.injective:
            bucket = c
        else:
            bucket = (c * self.a[1] + self.a[0]).remainder_(HASH_PRIME).remainder_(self.k)
        acc = torch.full_like(c, self.b[3])
        for coef in (self.b[2], self.b[1], self.b[0]):  # Horner, every product below 2^62
            acc = acc.mul_(c).add_(coef).remainder_(HASH_PRIME)
        sign = acc.remainder_(2).mul_(-2).add_(1).to(torch.float64)
        return bucket, sign

    def zeros(self) -> torch.Tensor:
        return torch.zeros(self.k, dtype=torch.float64, device=self.device)

    @torch.no_grad()
    def sketch(
        self, grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, float]:
        """(S g, ‖g‖²) of the gradient given per parameter (None: zero), one chunk at a time."""
        out, sq = self.zeros(), torch.zeros((), dtype=torch.float64, device=self.device)
        offset = 0
        for g, p in zip(grads, params, strict=True):
            n = p.numel()
            if g is not None:
                flat = g.detach().reshape(-1)
                for lo in range(0, n, SKETCH_CHUNK):
                    vals = flat[lo : lo + SKETCH_CHUNK].to(self.device, torch.float64)
                    bucket, sign = self.hashes(offset + lo, len(vals))
                    sq += vals.square().sum()
                    out.index_add_(0, bucket, vals * sign)
            offset += n
        if offset != self.d:
            raise ValueError(f"count sketch built for {self.d} coordinates, got {offset}")
        return out, float(sq)


# -- the diagnostic ------------------------------------------------------------------------------


@dataclass
class GradientSummary:
    """What the diagnostic keeps per TLP: two vectors (d floats exact, k sketched).

    `mean` = (1/n) Σ_i g_i and `unit_mean` = (1/n) Σ_i g_i / ‖g_i‖ over the TLP's n batch
    gradients g_i (a zero g_i adds zero to `unit_mean`); sketched, both are S(·) of these.
    `loss` = (1/n) Σ_i L(B_i): the mean loss of the very batches whose gradients these are (the
    forward pass the gradients needed anyway; Lee et al. 2022 Fig. 7a's "MTL training loss").
    """

    mean: torch.Tensor
    unit_mean: torch.Tensor
    loss: float = math.nan


def _diagnostic_data(
    model: torch.nn.Module,
    ctx_or_data: TrainContext | Mapping[TLP, SplitData],
    batch_size: int | None,
    device: torch.device | None,
) -> tuple[Mapping[TLP, SplitData], int, torch.device]:
    if isinstance(ctx_or_data, TrainContext):
        return (
            ctx_or_data.train,
            batch_size or int(ctx_or_data.params["batch_size"]),
            device or ctx_or_data.device,
        )
    return ctx_or_data, batch_size or 16, device or next(model.parameters()).device


def gradient_summaries(
    model: torch.nn.Module,
    ctx_or_data: TrainContext | Mapping[TLP, SplitData],
    tlps: Sequence[TLP],
    n_batches: int = 4,
    batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | None = None,
    store: str | torch.device = "cpu",
    sketch: int = 0,
) -> dict[TLP, GradientSummary]:
    """Per TLP, the mean and the mean unit batch gradient of the shared encoder (see
    `task_gradient_cosine`, which documents the arguments); sketched when `sketch` > 0."""
    data, batch_size, device = _diagnostic_data(model, ctx_or_data, batch_size, device)
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    if sketch < 0:
        raise ValueError(f"sketch must be >= 0 (0 = exact), got {sketch}")
    params = shared_parameters(model)
    cs = None
    if sketch:
        d = sum(p.numel() for p in params)
        cs = CountSketch(sketch, d, zlib.crc32(f"{seed}/gradcos-sketch".encode()), device)
    out: dict[TLP, GradientSummary] = {}
    with preserved_rng(), eval_mode(model):
        for tlp in tlps:
            split = data[tlp]
            stream = BatchStream(len(split), batch_size, stream_seed(seed, "gradcos", tlp))
            total: torch.Tensor | None = None
            unit: torch.Tensor | None = None
            loss_sum = 0.0
            for _ in range(n_batches):
                idx = stream.next()
                batch = take(split.tensors, idx, device)
                loss = tlp_loss(model, tlp, batch)
                loss_sum += float(loss.detach())
                if cs is None:
                    g = flat_gradient(loss, params)
                    norm = float(torch.linalg.vector_norm(g, dtype=torch.float64))
                else:
                    grads = torch.autograd.grad(loss, params, allow_unused=True)
                    g, sq = cs.sketch(grads, params)
                    del grads
                    norm = math.sqrt(sq)
                u = g / norm if norm > 0 else torch.zeros_like(g)
                total = g if total is None else total.add_(g)
                unit = u if unit is None else unit.add_(u)
            assert total is not None and unit is not None
            out[tlp] = GradientSummary(
                total.div_(n_batches).to(store),
                unit.div_(n_batches).to(store),
                loss_sum / n_batches,
            )
    return out


def task_gradient_cosine(
    model: torch.nn.Module,
    ctx_or_data: TrainContext | Mapping[TLP, SplitData],
    tlps: Sequence[TLP] | None = None,
    n_batches: int = 4,
    batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | None = None,
    store: str | torch.device = "cpu",
    sketch: int = 0,
) -> dict[str, Any]:
    """Average pairwise cosines between per-TLP gradients of the shared encoder, on train batches.

    Each TLP t gets n = `n_batches` batch gradients g_t,1 … g_t,n (dropout off) from a fresh
    stream seeded by (`seed`, t): every call sees the same batches, so values at successive
    checkpoints differ by the weights only. With ḡ_t = (1/n) Σ_i g_t,i and pairs a < b of `tlps`:

      * `mean_pairwise_cosine` = mean over pairs of cos(ḡ_a, ḡ_b): the cosine of averaged
        gradients (Lee et al. 2022, Fig. 4), per pair in `pairs`;
      * `mean_pairwise_batch_cosine` = mean over pairs of (1/n²) Σ_i Σ_j cos(g_a,i, g_b,j): the
        mean cosine between one batch gradient of a and one of b, over all n² cross pairs (how
        aligned single steps are), per pair in `batch_pairs`; computed as ⟨ū_a, ū_b⟩ with
        ū_t = (1/n) Σ_i g_t,i/‖g_t,i‖, so it costs one more vector per TLP, not n. A zero
        gradient has cosine 0 with everything (as `cosine`).

    `sketch` = 0 (exact): ḡ_t and ū_t are kept as flat vectors on `store` (CPU by default: two
    vectors of the encoder's size per TLP). `sketch` = k > 0: every batch gradient is compressed
    on the fly, parameter by parameter, into a count sketch of k buckets (`CountSketch`, hashed
    from `seed`; the full flattened gradient is never built), with its norm computed exactly,
    and the two k-vectors per TLP replace ḡ_t and ū_t. Inner products of sketches are unbiased
    estimates of the true ones (relative error ~ 1/√k), so `batch_pairs` are unbiased and `pairs`
    (ratios, normalised by sketch norms) consistent; for k ≥ d (the encoder's size) the hash is
    injective and both are exact. Memory per TLP: 2k float64 instead of 2d float32.

    `mean_task_loss` = mean over `tlps` and their n batches of the batch losses, from the same
    forward passes (no extra one): the MTL training loss of Lee et al.'s Fig. 7a (§4.4), so the
    cosine-vs-loss trade-off is read at the same weights and on the same batches.

    No side effects: gradients go through autograd.grad, so `.grad`, the optimizer and the
    training streams are untouched; the RNG states are restored.

    Returns {"mean_pairwise_cosine", "pairs": {"a|b": cos}, "mean_pairwise_batch_cosine",
    "batch_pairs": {"a|b": cos}, "mean_task_loss", "tlps": [...], "n_batches": n, "sketch": k}.
    """
    data, _, _ = _diagnostic_data(model, ctx_or_data, batch_size, device)
    tlps = list(tlps) if tlps is not None else list(data)
    if len(tlps) < 2:
        raise ValueError(
            f"need at least two TLPs for pairwise cosines, got {[str(t) for t in tlps]}"
        )
    s = gradient_summaries(
        model, ctx_or_data, tlps, n_batches, batch_size, seed, device, store, sketch
    )
    pairs = {f"{a}|{b}": cosine(s[a].mean, s[b].mean) for a, b in combinations(tlps, 2)}
    batch_pairs = {
        f"{a}|{b}": float(s[a].unit_mean.double().dot(s[b].unit_mean.double()))
        for a, b in combinations(tlps, 2)
    }
    return {
        "mean_pairwise_cosine": float(np.mean(list(pairs.values()))),
        "pairs": pairs,
        "mean_pairwise_batch_cosine": float(np.mean(list(batch_pairs.values()))),
        "batch_pairs": batch_pairs,
        "mean_task_loss": float(np.mean([s[t].loss for t in tlps])),
        "tlps": [str(t) for t in tlps],
        "n_batches": n_batches,
        "sketch": sketch,
    }
