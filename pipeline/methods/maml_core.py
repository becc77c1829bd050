"""The MAML core (Finn et al. 2017) shared by X-MAML, XLA-MAML and X-METRA(-ADA).

A meta-task is a support set (one batch per inner step) and a query batch, each batch tagged
with its TLP so that support and query may come from different languages (XLA-MAML, X-METRA).
On the shared multi-task model, with θ its trainable parameters:

    θ_0 = θ,   θ_{j+1} = θ_j − α ∇L_{S_j}(θ_j)          n = len(support) plain SGD steps
    θ'  = θ_n,  meta-loss L_Q(θ')
    second order: ∇_θ L_Q(θ') through the inner steps (their graphs kept, create_graph);
    first order:  the inner gradients are detached, so dθ'/dθ = I and the meta-gradient is
                  ∇L_Q evaluated at θ' (FOMAML; what X-METRA-ADA uses).

Everything goes through `torch.func.functional_call` on the one model: θ' is a dict of tensors,
never a copy of the model, and θ itself is never written by the inner loop. A meta-batch of T
tasks accumulates (1/T) Σ_t ∇L_Q_t (`reduce: mean`) or Σ_t (`reduce: sum`, what X-MAML's
reference code does) into `.grad`, one task graph alive at a time; the outer step is the run's
optimizer (AdamW with its schedule) and clipping, exactly like every other method's step.
With n = 0 the outer step is plain training on the query batch, bit for bit.

The model stays in train mode for inner and outer passes (dropout on in both, as in MAML
implementations built on `higher`); the trainer's evaluation switches to eval and back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pipeline.engine import TrainContext, second_order
from pipeline.errors import ConfigError
from pipeline.records import TLP

Batch = dict[str, torch.Tensor]
Params = dict[str, torch.Tensor]

#: how the meta-gradients of a meta-batch's tasks are combined
REDUCE = ("mean", "sum")


@dataclass
class MetaTask:
    """One meta-task: the support batches (one per inner step) and the query batch.

    `then`: a task that continues adapting from this one's adapted parameters θ' (not from θ),
    its query loss back-propagated as well — the reference X-METRA-ADA's interleaving of
    meta-train and meta-adapt in one update (seed-implementations §5.2, A5)."""

    support: list[tuple[TLP, Batch]] = field(default_factory=list)
    query: tuple[TLP, Batch] | None = None
    then: MetaTask | None = None


def trainable(model: torch.nn.Module) -> Params:
    """θ: the model's parameters that take gradients, by name (the tensors themselves)."""
    return {k: p for k, p in model.named_parameters() if p.requires_grad}


def adapt(
    ctx: TrainContext,
    params: Mapping[str, torch.Tensor],
    support: Sequence[tuple[TLP, Batch]],
    lr: float,
    first_order: bool,
    losses: list[float] | None = None,
) -> Params:
    """θ' after len(support) SGD steps of size `lr` from `params`, one support batch each.

    Second order keeps each step's graph (θ' is differentiable in θ through the inner
    gradients); first order takes the inner gradients without a graph. Parameters a batch's
    loss does not reach (the heads of other tasks) keep their value. `params` itself is never
    modified. Each inner loss is appended to `losses` when given.
    """
    out: Params = dict(params)
    for tlp, batch in support:
        names = list(out)
        loss = ctx.functional_loss(out, tlp, batch)
        grads = torch.autograd.grad(
            loss, [out[k] for k in names], create_graph=not first_order, allow_unused=True
        )
        if losses is not None:
            losses.append(loss.item())
        out = {
            k: out[k] if g is None else out[k] - lr * g for k, g in zip(names, grads, strict=True)
        }
    return out


def accumulate_meta_gradient(
    ctx: TrainContext,
    tasks: Sequence[MetaTask],
    lr: float,
    first_order: bool,
    reduce: str = "mean",
) -> dict[str, float]:
    """Add the meta-gradient of `tasks` to the trainable parameters' `.grad` (see the module
    docstring); returns the mean query loss (`loss`) and the mean inner (support) loss."""
    if reduce not in REDUCE:
        raise ValueError(f"reduce: expected one of {', '.join(REDUCE)}, got {reduce!r}")
    if not tasks:
        raise ValueError("a meta-batch needs at least one task")
    ctx.model.train()
    theta = trainable(ctx.model)
    scale = 1.0 / len(tasks) if reduce == "mean" else 1.0
    with contextlib.nullcontext() if first_order else second_order():
        return _accumulate(ctx, theta, tasks, lr, first_order, scale)


def _accumulate(
    ctx: TrainContext,
    theta: Params,
    tasks: Sequence[MetaTask],
    lr: float,
    first_order: bool,
    scale: float,
) -> dict[str, float]:
    query_total, n_query, inner = 0.0, 0, []
    for first in tasks:
        params: Mapping[str, torch.Tensor] = theta
        task: MetaTask | None = first
        while task is not None:  # a chain (`then`) continues from the adapted parameters
            if task.query is None:
                raise ValueError("a meta-task needs a query batch")
            adapted = adapt(ctx, params, task.support, lr, first_order, inner)
            q = ctx.functional_loss(adapted, *task.query)
            # × 1.0 is exact: n = 0 stays plain training bit for bit; a chain keeps the graph
            # from θ to θ' for its next link
            (q * scale).backward(retain_graph=task.then is not None)
            query_total += q.item()
            n_query += 1
            params, task = adapted, task.then
        del adapted, params, q  # free θ' before the next task builds its own
    logs = {"loss": query_total / n_query}
    if inner:
        logs["support_loss"] = sum(inner) / len(inner)
    return logs


def meta_step(
    ctx: TrainContext,
    tasks: Sequence[MetaTask],
    lr: float,
    first_order: bool,
    reduce: str = "mean",
) -> dict[str, float]:
    """One outer step: the meta-gradient of `tasks`, clipping, the run's optimizer and
    scheduler, `.grad` cleared, one optimizer step counted."""
    logs = accumulate_meta_gradient(ctx, tasks, lr, first_order, reduce)
    ctx.outer_step()
    return logs


@dataclass(frozen=True)
class Settings:
    """The MAML choices every MAML method takes from its params (validated)."""

    inner_steps: int
    inner_lr: float
    first_order: bool
    reduce: str

    @classmethod
    def from_params(cls, p: Mapping[str, Any]) -> Settings:
        if p["reduce"] not in REDUCE:
            raise ConfigError(f"reduce: expected one of {', '.join(REDUCE)}, got {p['reduce']!r}")
        return cls(int(p["inner_steps"]), float(p["inner_lr"]), bool(p["first_order"]), p["reduce"])

    def step(self, ctx: TrainContext, tasks: Sequence[MetaTask]) -> dict[str, float]:
        """One meta-step on `tasks` with these settings (see `meta_step`)."""
        return meta_step(ctx, tasks, self.inner_lr, self.first_order, self.reduce)

    def options(self) -> dict[str, Any]:
        return options(self.inner_lr, self.first_order, self.reduce, self.inner_steps)


def options(lr: float, first_order: bool, reduce: str, inner_steps: int) -> dict[str, Any]:
    """The MAML choices recorded with every result."""
    return {
        "inner_steps": inner_steps,
        "inner_lr": lr,
        "inner_optimizer": "SGD",
        "order": "first" if first_order else "second",
        "meta_batch_reduce": reduce,
        "dropout": "train mode in inner and outer passes",
    }
