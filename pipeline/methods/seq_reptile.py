"""Sequential Reptile (Lee et al. 2022, Algorithm 1): one trajectory across all TLPs.

One `step` is one meta-step: from φ take K inner steps, the TLP of each re-drawn from Cat(p) with
p_t ∝ N_t^q (= temperature sampling with τ = 1/q), giving θ_K; then

    φ ← φ − η (φ − θ_K)                  = lerp(φ, θ_K, η), exact at η = 1.

With η = 1 and the optimizer state carried over, this is plain MTL (pipeline/methods/mtl.py):
the draws use MTL's generator (seed + 1, one draw per inner step), so K·S MTL steps and S meta-
steps give the same weights bit for bit (tests/test_reptile.py). `steps` counts meta-steps; the
learning-rate schedule is sized in inner steps (K per step).

Defaults (recorded in `options()`):
  * inner_steps K = 1000, eta η = 0.1, q = 1/5 (temperature τ = 5): the paper's §5.2 setting
    (AdamW inner lr 3e-5, batch 12 for QA / 16 for NER are `training:` keys). Give either `q`
    or `temperature`, not both.
  * optimizer_state = shared: the paper does not say; shared matches the Reptile reference code
    and makes η = 1 coincide with MTL. `reset` clears AdamW's state at the start of each
    trajectory.
  * sampling_sizes = examples: "N_t is the number of training instances" (§5.2).
  * sampler = temperature; `multidds` learns p as for Reptile (an extension, not in the paper).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pipeline.config import method_params
from pipeline.engine import TrainContext, interpolate, snapshot
from pipeline.errors import ConfigError
from pipeline.methods.base import Method
from pipeline.methods.trajectory import (
    OPTIMIZER_STATES,
    TLPSampling,
    check_choice,
    parse_temperature,
    reset_optimizer_state,
)
from pipeline.sampling import temperature_from_exponent


class SequentialReptile(Method):
    name = "seq_reptile"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        if "q" in params and "temperature" in params:
            raise ConfigError(
                "seq_reptile: give `q` or `temperature` (q = 1/temperature), not both"
            )
        p = method_params(self.name, params)
        self.K, self.eta = int(p["inner_steps"]), float(p["eta"])
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"eta: expected a number in [0, 1], got {self.eta}")
        self.optimizer_state = check_choice(
            "optimizer_state", p["optimizer_state"], OPTIMIZER_STATES
        )
        if "q" in params:
            tau = temperature_from_exponent(float(params["q"]))
        else:
            tau = parse_temperature(p["temperature"])
        self.sampling = TLPSampling(ctx, p, tau)
        self.meta_steps = 0

    @classmethod
    def inner_steps_per_step(cls, params: dict[str, Any]) -> int:
        return int(method_params(cls.name, params)["inner_steps"])

    def step(self) -> dict[str, Any]:
        ctx = self.ctx
        params = list(ctx.model.parameters())
        phi = snapshot(params)
        if self.optimizer_state == "reset":
            reset_optimizer_state(ctx.optimizer)
        tlps, losses = [], []
        for _ in range(self.K):  # the TLP is re-drawn at every inner step
            tlps.append(self.sampling.draw())
            losses.append(ctx.inner_step(tlps[-1]))
        interpolate(params, phi, params, self.eta)
        self.meta_steps += 1
        counts = Counter(str(t) for t in tlps)
        logs: dict[str, Any] = {
            "loss": sum(losses) / len(losses),
            "tlps": sorted(counts),
            "tlp_counts": dict(sorted(counts.items())),
        }
        logs.update(self.sampling.after_meta_step(self.meta_steps))
        return logs

    def options(self) -> dict[str, Any]:
        tau = self.sampling.tau
        return {
            "inner_steps": self.K,
            "eta": self.eta,
            "q": 0.0 if tau == float("inf") else 1.0 / tau,
            "optimizer_state": self.optimizer_state,
            "inner_optimizer": type(self.ctx.optimizer).__name__,
            "outer_update": "phi - eta * (phi - theta_K) (lerp)",
            "lr_schedule_unit": "inner_step",
            **self.sampling.options(),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"meta_steps": self.meta_steps, **self.sampling.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.meta_steps = state["meta_steps"]
        self.sampling.load_state_dict(state)
