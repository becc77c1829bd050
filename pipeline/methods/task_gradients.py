"""Per-task gradients without model copies: what PCGrad, GradVac and GradNorm are built on.

The multi-task baselines of Lee et al. (2022, §4.2) look at one gradient per task before they
step: PCGrad and GradVac change the task gradients' directions, GradNorm their weights. Here a
"task" is one TLP of the step, with one batch of its own (the engine's batch streams), so a step
of T tasks reads T batches, as MTL with `tasks_per_step: T` does.

How the gradients are taken (`task_gradient_stream`, `TaskGradients`):

* one forward and one backward per task (`torch.autograd.grad` over the trainable parameters,
  `allow_unused=True`), one graph alive at a time, as the engine's `mean_loss_step`; nothing is
  copied but the gradients, into one flat (T, D) buffer, parameter by parameter in model order.
  GradNorm needs no buffer: it consumes the stream task by task.
* `allow_unused` says which parameters a task's loss touches (its head, the encoder, BERT's
  pooler only for pooled tasks). The surgery acts on the shared parameters only (both papers
  state it for the shared parameters θ; LibMTL does the same); a task-specific parameter gets
  the plain (summed or averaged) gradient of the tasks that touch it, so a head receives its own
  task's gradient untouched. A parameter no task of the step touches keeps `.grad = None`, so
  AdamW skips it exactly as in an MTL step.
* Which parameters count as shared (`surgery_params`):
  - `shared` (default): those every task of the step touches. With TLPs of one task type (Lee
    et al.'s languages of TyDi QA or WikiAnn, one head) that is the whole model, head included:
    each language is a task and the head is as shared as the encoder. With several task types
    it is the encoder (minus the pooler when some task does not read it). The widely used
    PyTorch port of PCGrad (WeiChengTseng/Pytorch-PCGrad) splits its merged gradient the same
    way (shared = "has a gradient for every task"), though it projects the full vectors; here
    dot products and norms are taken over the shared block only, as LibMTL does.
  - `encoder`: `model.encoder`'s parameters, whatever the step's tasks are: LibMTL's
    `get_share_params()` (the encoder; the decoders are task-specific).
* The surgery works in coefficient space: every modified gradient is a linear combination
  g'_i = Σ_k C_ik g_k of the original ones, and every quantity PCGrad and GradVac read (dot
  products, norms) is a quadratic form of the Gram matrix G = R Rᵀ (R the shared block of the
  buffer). So the T×T Gram matrix is computed once, the projections run on T×T float64
  matrices, and the combined shared gradient is one weighted sum aᵀR (a = Σ_i C_i, or its
  mean). No second (T, D) copy, where a direct implementation (LibMTL) clones the buffer.

`MultiGradientMethod` is the part the three methods share: T distinct TLPs per step drawn with
p_t ∝ N_t^(1/τ) (Lee et al. §4.2: "we sample eight tasks proportional to p_t ∝ (N_t)^{1/5}"),
the reduction, and the generator of the random projection orders.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.config import method_params
from pipeline.engine import TrainContext
from pipeline.errors import ConfigError
from pipeline.methods.base import Method
from pipeline.methods.trajectory import SAMPLING_SIZES, check_choice, parse_temperature
from pipeline.records import TLP
from pipeline.sampling import CategoricalSampler, temperature_probs

SURGERY_PARAMS = ("shared", "encoder")
REDUCTIONS = ("sum", "mean")
#: second word of the projection-order generator's seed, (run seed, ORDER_STREAM): a stream of its
#: own, apart from the TLP sampler (seed + 1) and MTL's concat plans (seed, epoch)
ORDER_STREAM = 0x5C6


# -- which parameters ---------------------------------------------------------------------------


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def encoder_params(model: nn.Module) -> list[nn.Parameter]:
    """The shared encoder's trainable parameters (`model.encoder`, as MultiTaskModel and the test
    models name it); the whole model when it has no `encoder`."""
    enc = getattr(model, "encoder", None)
    return trainable(enc if isinstance(enc, nn.Module) else model)


def last_shared_layer(model: nn.Module) -> list[nn.Parameter]:
    """GradNorm's W, "the last shared layer of weights" (Chen et al. 2018 §3.2): the last
    transformer block of a Hugging Face encoder (`encoder.encoder.layer[-1]`: BERT, XLM-R), else
    the last module of the encoder that holds parameters of its own."""
    enc = getattr(model, "encoder", None)
    enc = enc if isinstance(enc, nn.Module) else model
    layers = getattr(getattr(enc, "encoder", None), "layer", None)
    if isinstance(layers, nn.ModuleList) and len(layers) > 0:
        return trainable(layers[-1])
    owners = [m for m in enc.modules() if any(p.requires_grad for p in m.parameters(False))]
    if not owners:
        raise ConfigError("gradnorm: the model has no trainable shared parameters")
    return [p for p in owners[-1].parameters(False) if p.requires_grad]


# -- per-task gradients -------------------------------------------------------------------------


def task_gradient_stream(
    ctx: TrainContext, tlps: Sequence[TLP], params: Sequence[torch.Tensor]
) -> Iterator[tuple[float, tuple[torch.Tensor | None, ...]]]:
    """For each TLP in turn: the loss of its next batch (train mode) and that loss's gradient with
    respect to `params` (None where the loss does not touch a parameter). One graph is alive at
    a time; `.grad` is not touched."""
    ctx.model.train()
    for tlp in tlps:
        loss = ctx.loss(tlp, ctx.batch(tlp))
        grads = torch.autograd.grad(loss, list(params), allow_unused=True)
        yield loss.item(), grads


def _ranges(flags: Sequence[bool], offsets: Sequence[int]) -> list[tuple[int, int, bool]]:
    """Maximal runs of consecutive parameters with the same flag, as (start, end, flag) columns."""
    out: list[tuple[int, int, bool]] = []
    for k, f in enumerate(flags):
        a, b = offsets[k], offsets[k + 1]
        if out and out[-1][2] == f and out[-1][1] == a:
            out[-1] = (out[-1][0], b, f)
        else:
            out.append((a, b, f))
    return out


@dataclass
class TaskGradients:
    """The gradients of T task losses over `params`: row t of `rows` is task t's gradient,
    flattened parameter by parameter (zeros where the task does not touch a parameter);
    `touched[t, k]` says whether task t's loss reaches parameter k."""

    params: list[torch.Tensor]
    rows: torch.Tensor
    touched: torch.Tensor
    losses: list[float]
    offsets: list[int]

    @classmethod
    def compute(
        cls, ctx: TrainContext, tlps: Sequence[TLP], params: Sequence[torch.Tensor]
    ) -> TaskGradients:
        """One backward per TLP (next batch of each) into one (T, D) buffer."""
        params = list(params)
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1:
            raise ConfigError(f"per-task gradients need one parameter dtype, got {sorted(dtypes)}")
        offsets = [0]
        for p in params:
            offsets.append(offsets[-1] + p.numel())
        rows = torch.zeros(len(tlps), offsets[-1], dtype=params[0].dtype, device=params[0].device)
        touched = torch.zeros(len(tlps), len(params), dtype=torch.bool)
        losses = []
        # (no torch.no_grad() around the loop: the stream runs each task's forward inside it)
        for t, (loss, grads) in enumerate(task_gradient_stream(ctx, tlps, params)):
            for k, g in enumerate(grads):
                if g is not None:
                    rows[t, offsets[k] : offsets[k + 1]].copy_(g.reshape(-1))
                    touched[t, k] = True
            del grads
            losses.append(loss)
        return cls(params, rows, touched, losses, offsets)

    def shared_mask(self, mode: str, model: nn.Module) -> list[bool]:
        """Per parameter: does the surgery act on it (see the module docstring)?"""
        if mode == "shared":
            return [bool(x) for x in self.touched.all(dim=0)]
        if mode == "encoder":
            enc = {id(p) for p in encoder_params(model)}
            return [id(p) in enc for p in self.params]
        raise ConfigError(
            f"surgery_params: expected one of {', '.join(SURGERY_PARAMS)}, got {mode!r}"
        )

    def gram(self, mask: Sequence[bool]) -> np.ndarray:
        """G_ij = g_i · g_j over the masked (shared) parameters, as float64."""
        n = self.rows.shape[0]
        g = np.zeros((n, n), dtype=np.float64)
        for a, b, shared in _ranges(mask, self.offsets):
            if shared:
                r = self.rows[:, a:b]
                g += (r @ r.T).double().cpu().numpy()
        return g

    @torch.no_grad()
    def write(
        self, shared_coef: Sequence[float], own_coef: Sequence[float], mask: Sequence[bool]
    ) -> None:
        """Set `.grad` to Σ_t c_t g_t: c = `shared_coef` on the masked parameters, `own_coef` on
        the others; `.grad = None` for a parameter no task touched (the optimizer skips it)."""
        rows = self.rows
        out = torch.empty(rows.shape[1], dtype=rows.dtype, device=rows.device)
        coef = {
            True: torch.as_tensor(np.asarray(shared_coef), dtype=rows.dtype).to(rows.device),
            False: torch.as_tensor(np.asarray(own_coef), dtype=rows.dtype).to(rows.device),
        }
        for a, b, shared in _ranges(mask, self.offsets):
            torch.mv(rows[:, a:b].T, coef[shared], out=out[a:b])  # (b−a, T) · (T,)
        used = self.touched.any(dim=0)
        for k, p in enumerate(self.params):
            a, b = self.offsets[k], self.offsets[k + 1]
            p.grad = out[a:b].view_as(p) if used[k] else None


# -- the part PCGrad, GradVac and GradNorm share ------------------------------------------------


class MultiGradientMethod(Method):
    """One optimizer step per step on T distinct TLPs (one batch each), drawn with
    p_t ∝ N_t^(1/τ) without replacement (`tasks_per_step`, capped at the run's TLPs; numpy's
    sequential draws: each next TLP proportional to p among those not yet drawn). With T equal to
    the number of TLPs every step sees every TLP, once. Distinct, unlike MTL's independent draws:
    a task here is a TLP whose gradient is compared with the others', and two batches of one
    TLP would count as two conflicting "tasks". Subclasses combine the task gradients.

    `reduction`: the combined gradient is the sum of the T (modified) task gradients (`sum`, the
    papers' Σ_i g'_i and Σ_i w_i L_i, LibMTL's default) or their mean (`mean`, MTL's mean loss).
    """

    name = ""

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = method_params(self.name, params)
        self.p = p
        self.requested = int(p["tasks_per_step"])
        if self.requested < 1:
            raise ConfigError(f"tasks_per_step: expected an integer >= 1, got {self.requested}")
        self.T = min(self.requested, len(ctx.tlps))
        self.tau = parse_temperature(p["temperature"])
        self.unit = check_choice("sampling_sizes", p["sampling_sizes"], SAMPLING_SIZES)
        self.reduction = check_choice("reduction", p["reduction"], REDUCTIONS)
        self.sampler = CategoricalSampler(
            temperature_probs(ctx.sizes(self.unit), self.tau), seed=params["seed"] + 1
        )
        self.order_rng = np.random.Generator(np.random.PCG64([params["seed"], ORDER_STREAM]))

    @classmethod
    def batches_per_step(cls, params: dict[str, Any], n_tlps: int = 1) -> int:
        """T batches (one per task) per optimizer step, for sizing `epochs`."""
        return min(int(method_params(cls.name, params)["tasks_per_step"]), max(1, n_tlps))

    def draw(self) -> list[int]:
        """The step's TLPs, as indices into ctx.tlps."""
        return self.sampler.draw_many(self.T, replace=False)

    def orders(self, n: int) -> list[list[int]]:
        """For each task i of the step, the other tasks in a fresh random order (own generator)."""
        return [
            [int(j) for j in self.order_rng.permutation([j for j in range(n) if j != i])]
            for i in range(n)
        ]

    def scale(self, n: int) -> float:
        return 1.0 if self.reduction == "sum" else 1.0 / n

    def sampling_options(self) -> dict[str, Any]:
        return {
            "tasks_per_step": self.T,
            "tasks_per_step_requested": self.requested,
            "draws": "distinct TLPs (without replacement)",
            "temperature": "inf" if math.isinf(self.tau) else self.tau,
            "sampling_sizes": self.unit,
            "probs": {
                str(t): round(float(q), 6) for t, q in zip(self.ctx.tlps, self.sampler.probs)
            },
            "reduction": self.reduction,
            "optimizer": type(self.ctx.optimizer).__name__,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "order_rng": self.order_rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.order_rng.bit_generator.state = state["order_rng"]


class SurgeryMethod(MultiGradientMethod):
    """PCGrad and GradVac: per-task gradients into the buffer, a coefficient matrix C from the
    Gram matrix of their shared block (`combine`), then `.grad` ← Σ_i C_i·R on the shared
    parameters and the plain reduction elsewhere, and one engine outer step."""

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.surgery_params = check_choice(
            "surgery_params", self.p["surgery_params"], SURGERY_PARAMS
        )

    def combine(self, gram: np.ndarray, idx: list[int]) -> tuple[np.ndarray, dict[str, Any]]:
        """C (T×T, g'_i = Σ_k C_ik g_k) for the step's tasks (`idx`: their TLP indices) and logs."""
        raise NotImplementedError

    def step(self) -> dict[str, Any]:
        ctx = self.ctx
        idx = self.draw()
        tlps = [ctx.tlps[i] for i in idx]
        grads = TaskGradients.compute(ctx, tlps, trainable(ctx.model))
        mask = grads.shared_mask(self.surgery_params, ctx.model)
        coef, logs = self.combine(grads.gram(mask), idx)
        s = self.scale(len(idx))
        grads.write(coef.sum(axis=0) * s, np.full(len(idx), s), mask)
        loss = sum(grads.losses) / len(grads.losses)
        del grads  # the (T, D) buffer; `.grad` holds views of the combined vector only
        ctx.outer_step()
        return {"loss": loss, "tlps": [str(t) for t in tlps], **logs}

    def options(self) -> dict[str, Any]:
        return {**self.sampling_options(), "surgery_params": self.surgery_params}
