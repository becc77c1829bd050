"""Parallel Reptile over TLPs (Tarunesh et al. 2021, Algorithm 1; Nichol et al. 2018).

One `step` is one meta-step: draw m TLPs from the sampling distribution; from the same θ take k
inner steps (the engine's AdamW step, one batch each) on each, giving θ_i; then

    θ ← θ + β · mean_i (θ_i − θ)        = lerp(θ, mean_i θ_i, β), the plain-SGD outer step.

No model copies: θ is a snapshot of parameter values, each trajectory restores it in place, and
the end points are accumulated as deltas with torch._foreach ops (trajectory.EndpointMean).
`steps` counts meta-steps; the learning-rate schedule is sized in inner steps (m·k per step).

Defaults and the choices the papers and the reference code differ on (all in `options()`):
  * m = 8, k = 3, β = 1.0: §4.2's grid-search winner (grid m ∈ {4,8,16}, k ∈ {2..5},
    β ∈ {0.1,0.5,1.0}); lr 3e-5 and dropout 0.1 are `training:` keys.
  * optimizer_state = shared: "This optimizer is shared across all the TLPs" (§4.2); the
    reference code also carries AdamW's moments across meta-steps. `reset` clears them at the
    start of every trajectory (each θ_i then comes from a fresh AdamW).
  * sampling_sizes = examples: the paper defines q_i by dataset sizes (§3, "|D_train^i|"); the
    reference code counts batches (`batches`).
  * replacement = true: Algorithm 1 samples m TLPs from the multinomial M, i.e. independent
    draws, as the reference's np.random.choice does; `false` draws m distinct TLPs (m ≤ #TLPs).
  * temperature = 1 (the grid-search setting); sampler = temperature, or multidds (ψ = log q,
    rewards after the outer update every `multidds.update_every` meta-steps: default 10, as the
    authors' code (seed-implementations §1.5 T6); Algorithm 1 updates after every meta-step, i.e.
    `update_every: 1`).
  * The learning-rate schedule advances per inner step (the reference steps it per meta-step).

Several processes (`torchrun`, pipeline/runtime/distributed.py; `parallelism = "trajectories"`):
every rank draws the same m TLPs (same seeded sampler, same MultiDDS state), rank r runs
trajectories r, r + N, … from θ and only accounts for the others (`ctx.skip_inner_steps`: their
batches and learning-rate steps are consumed as if they ran), and the outer update all-reduces
Σ_i (θ_i − θ): θ ← lerp(θ, θ + Σ/m, β) on every rank. That equals the single-process meta-step
(to float tolerance: the sums are grouped differently) when the trajectories are independent
given θ, i.e. with `optimizer_state: reset` (any schedule: each trajectory's learning rates are
its own inner-step indices) and no dropout (each rank has its own dropout masks). With
`optimizer_state: shared` the single-process trajectories are chained through AdamW's moments,
which several processes cannot reproduce: that combination is refused.
"""

from __future__ import annotations

from typing import Any

import torch

from pipeline.config import method_params
from pipeline.engine import TrainContext, interpolate, restore, snapshot
from pipeline.errors import ConfigError
from pipeline.methods.base import Method
from pipeline.methods.trajectory import (
    OPTIMIZER_STATES,
    EndpointMean,
    TLPSampling,
    check_choice,
    parse_temperature,
    reset_optimizer_state,
)
from pipeline.runtime import distributed


class Reptile(Method):
    name = "reptile"
    parallelism = "trajectories"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = method_params(self.name, params)
        self.m, self.k, self.beta = int(p["m"]), int(p["k"]), float(p["beta"])
        self.replacement = bool(p["replacement"])
        self.optimizer_state = check_choice(
            "optimizer_state", p["optimizer_state"], OPTIMIZER_STATES
        )
        if not 0.0 <= self.beta <= 1.0:
            raise ConfigError(f"beta: expected a number in [0, 1], got {self.beta}")
        if not self.replacement and self.m > len(ctx.tlps):
            raise ConfigError(
                f"m: {self.m} TLPs without replacement, but the run has only {len(ctx.tlps)}"
            )
        self.world = distributed.world().size
        if self.world > 1 and self.optimizer_state == "shared":
            raise ConfigError(
                f"optimizer_state: shared chains the m trajectories of a meta-step through one "
                f"AdamW state, which {self.world} processes cannot reproduce; use "
                "`optimizer_state: reset` (independent trajectories) or one process"
            )
        self.sampling = TLPSampling(ctx, p, parse_temperature(p["temperature"]))
        self.meta_steps = 0

    @classmethod
    def inner_steps_per_step(cls, params: dict[str, Any]) -> int:
        p = method_params(cls.name, params)
        return int(p["m"]) * int(p["k"])

    def step(self) -> dict[str, Any]:
        if self.world > 1:
            return self._step_distributed()
        ctx = self.ctx
        params = list(ctx.model.parameters())
        theta = snapshot(params)
        mean = EndpointMean(theta)
        tlps = self.sampling.draw_many(self.m, self.replacement)
        losses = []
        for i, tlp in enumerate(tlps):
            if i:
                restore(params, theta)
            if self.optimizer_state == "reset":
                reset_optimizer_state(ctx.optimizer)
            losses += [ctx.inner_step(tlp) for _ in range(self.k)]
            if i < len(tlps) - 1:
                mean.add(params)
        mean.finish(params)  # params ← mean_i θ_i
        interpolate(params, theta, params, self.beta)
        self.meta_steps += 1
        logs: dict[str, Any] = {"loss": sum(losses) / len(losses), "tlps": [str(t) for t in tlps]}
        logs.update(self.sampling.after_meta_step(self.meta_steps))
        return logs

    def _step_distributed(self) -> dict[str, Any]:
        """One meta-step over the ranks: mine are trajectories rank, rank + N, …; the summed
        deltas Σ_i (θ_i − θ) and losses are all-reduced (one flat buffer per dtype)."""
        ctx, w = self.ctx, distributed.world()
        params = list(ctx.model.parameters())
        theta = snapshot(params)
        tlps = self.sampling.draw_many(self.m, self.replacement)
        acc = [torch.zeros_like(t) for t in theta]
        loss_sum = torch.zeros(1, dtype=torch.float64, device=theta[0].device)
        mine = 0
        for i, tlp in enumerate(tlps):
            if i % w.size != w.rank:
                ctx.skip_inner_steps(tlp, self.k)
                continue
            if mine:
                restore(params, theta)
            reset_optimizer_state(ctx.optimizer)  # (`shared` is refused with several ranks)
            loss_sum += sum(ctx.inner_step(tlp) for _ in range(self.k))
            with torch.no_grad():
                torch._foreach_add_(acc, torch._foreach_sub(params, theta))
            mine += 1
        distributed.all_reduce_sum_([*acc, loss_sum])
        with torch.no_grad():
            mean = torch._foreach_add(theta, acc, alpha=1.0 / self.m)  # θ + Σ/m = mean_i θ_i
        interpolate(params, theta, mean, self.beta)
        self.meta_steps += 1
        logs: dict[str, Any] = {
            "loss": loss_sum.item() / (self.m * self.k),
            "tlps": [str(t) for t in tlps],
        }
        logs.update(self.sampling.after_meta_step(self.meta_steps))
        return logs

    def options(self) -> dict[str, Any]:
        return {
            "m": self.m,
            "k": self.k,
            "beta": self.beta,
            "replacement": self.replacement,
            "optimizer_state": self.optimizer_state,
            "inner_optimizer": type(self.ctx.optimizer).__name__,
            "outer_update": "theta + beta * mean_i(theta_i - theta) (lerp, plain SGD)",
            "lr_schedule_unit": "inner_step",
            **(
                {"processes": self.world, "trajectories": "rank r runs r, r + N, ... (all-reduce)"}
                if self.world > 1
                else {}
            ),
            **self.sampling.options(),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"meta_steps": self.meta_steps, **self.sampling.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.meta_steps = state["meta_steps"]
        self.sampling.load_state_dict(state)
