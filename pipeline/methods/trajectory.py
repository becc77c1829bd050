"""Pieces the Reptile-style methods share: which TLP next, optimizer-state policy, outer update.

`TLPSampling` draws TLPs from temperature probabilities or from MultiDDS's learned ones, with the
generator seeded `seed + 1` as MTL's, so identical settings give identical draws across methods
(the MTL = Sequential Reptile identity relies on it). `EndpointMean` accumulates the trajectory
end points θ_i of a parallel Reptile meta-step as deltas from θ, without model copies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pipeline.config import temperature
from pipeline.engine import TrainContext
from pipeline.errors import ConfigError
from pipeline.multidds import MultiDDS, Rewards, resolve_dev
from pipeline.records import TLP
from pipeline.runtime import distributed
from pipeline.sampling import CategoricalSampler, temperature_probs

OPTIMIZER_STATES = ("shared", "reset")
SAMPLING_SIZES = ("examples", "batches")
SAMPLERS = ("temperature", "multidds")


def check_choice(key: str, value: Any, allowed: Sequence[Any]) -> Any:
    if value not in allowed:
        raise ConfigError(f"{key}: expected one of {', '.join(map(str, allowed))}, got {value!r}")
    return value


def reset_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Forget moments and step counts (Adam restarts its bias correction); keep hyperparameters."""
    optimizer.state.clear()


class TLPSampling:
    """Which TLP next, for methods that draw many per step; MultiDDS updates included.

    Weights come from example or batch counts (`sampling_sizes`), tempered by τ. With
    `sampler: multidds`, ψ starts at log of those probabilities (P = q at τ = 1) and is updated by
    `after_meta_step` every `multidds.update_every` meta-steps (default 10, the authors' code;
    Algorithm 1 of Tarunesh et al. updates after every meta-step, i.e. 1). The rewards' options
    (`reward`, `reward_params`, `dev_reduce`: pipeline.multidds) are recorded in `options()`.
    """

    def __init__(self, ctx: TrainContext, p: dict[str, Any], tau: float) -> None:
        self.ctx = ctx
        self.tau = tau
        self.unit = check_choice("sampling_sizes", p["sampling_sizes"], SAMPLING_SIZES)
        self.kind = check_choice("sampler", p["sampler"], SAMPLERS)
        self.init_probs = temperature_probs(ctx.sizes(self.unit), tau)
        self.sampler = CategoricalSampler(self.init_probs, seed=p["seed"] + 1)
        self.dds: MultiDDS | None = None
        self.rewards: Rewards | None = None
        if self.kind == "multidds":
            cfg = p["multidds"]
            self.dds_cfg = cfg
            self.dev_tlps = resolve_dev(cfg["dev"], ctx.tlps)
            self.dds = MultiDDS(self.init_probs, float(cfg["lr"]))
            self.rewards = Rewards(
                ctx,
                self.dev_tlps,
                cfg["reward"],
                p["seed"],
                reward_params=cfg.get("reward_params"),
                dev_reduce=cfg.get("dev_reduce"),
            )

    def draw(self) -> TLP:
        return self.ctx.tlps[self.sampler.draw()]

    def draw_many(self, m: int, replace: bool) -> list[TLP]:
        return [self.ctx.tlps[i] for i in self.sampler.draw_many(m, replace)]

    def probs_log(self) -> dict[str, float]:
        return {str(t): float(p) for t, p in zip(self.ctx.tlps, self.sampler.probs)}

    def after_meta_step(self, meta_step: int) -> dict[str, Any]:
        """MultiDDS: every n meta-steps (and at the first, for the plot's start), log P; on
        update steps compute rewards, take the REINFORCE step and log rewards and the new P."""
        if self.dds is None or self.rewards is None:
            return {}
        logs: dict[str, Any] = {}
        if meta_step % int(self.dds_cfg["update_every"]) == 0:
            r = self.rewards()
            if distributed.world().size > 1:  # rank 0's rewards: one sampler state on all ranks
                r = np.asarray(distributed.broadcast_floats(r), dtype=np.float64)
            self.sampler.set_probs(self.dds.update(r))
            logs["rewards"] = {str(t): float(x) for t, x in zip(self.ctx.tlps, r)}
            logs["sampling_probs"] = self.probs_log()
        elif meta_step == 1:
            logs["sampling_probs"] = self.probs_log()
        return logs

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "temperature": "inf" if math.isinf(self.tau) else self.tau,
            "sampling_sizes": self.unit,
            "sampler": self.kind,
            "probs": {str(t): round(float(p), 6) for t, p in zip(self.ctx.tlps, self.init_probs)},
        }
        if self.dds is not None and self.rewards is not None:
            out["multidds"] = {
                **{k: self.dds_cfg[k] for k in ("update_every", "lr", "dev")},
                **self.rewards.options(),
                "dev_tlps": [str(t) for t in self.dev_tlps],
                "init": "psi = log(probs)",
                "reward_batches": "own streams, dropout off",
            }
        return out

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"sampler": self.sampler.state_dict()}
        if self.dds is not None and self.rewards is not None:
            state["multidds"] = self.dds.state_dict()
            state["reward_streams"] = self.rewards.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        if self.dds is not None and self.rewards is not None:
            self.dds.load_state_dict(state["multidds"])
            self.rewards.load_state_dict(state["reward_streams"])


class EndpointMean:
    """mean_i θ_i over m trajectories that all start at θ, kept as Σ(θ_i − θ) (accurate in fp32).

    Call `add` after each trajectory but the last; `finish` with the last end point θ_m still in
    the parameters sets them to θ_m + (Σ_{i<m}(θ_i − θ) − (m−1)(θ_m − θ))/m, which equals
    mean_i θ_i and is θ_m bit for bit when m = 1 (no arithmetic touches it), so Reptile with
    m = 1, β = 1 is exactly one inner trajectory.
    """

    def __init__(self, start: list[torch.Tensor]) -> None:
        self.start = start
        self.acc: list[torch.Tensor] | None = None
        self.n = 0

    @torch.no_grad()
    def add(self, params: list[torch.Tensor]) -> None:
        delta = torch._foreach_sub(params, self.start)
        if self.acc is None:
            self.acc = delta
        else:
            torch._foreach_add_(self.acc, delta)
        self.n += 1

    @torch.no_grad()
    def finish(self, params: list[torch.Tensor]) -> None:
        if self.acc is None:
            return
        m = self.n + 1
        torch._foreach_add_(self.acc, torch._foreach_sub(params, self.start), alpha=-(m - 1))
        torch._foreach_add_(params, self.acc, alpha=1.0 / m)
        self.acc = None


def parse_temperature(value: Any) -> float:
    tau = temperature(value)
    if not tau > 0:
        raise ConfigError(f"temperature: expected a number > 0 or 'inf', got {value!r}")
    return tau
