"""Multi-task learning: one optimizer step per batch, the TLP drawn by temperature sampling.

Sampling weights come from example counts (default) or batch counts (`sampling_sizes`), and
P(i) ∝ q_i^(1/τ) (pipeline.sampling). τ = 1 is the "concatenate and shuffle" baseline in
expectation; τ = inf samples TLPs uniformly.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import temperature
from pipeline.methods.base import Method
from pipeline.sampling import CategoricalSampler, temperature_probs


class MTL(Method):
    name = "mtl"

    def __init__(self, ctx, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.tau = temperature(params.get("temperature", 1.0))
        self.unit = params.get("sampling_sizes", "examples")
        probs = temperature_probs(ctx.sizes(self.unit), self.tau)
        self.sampler = CategoricalSampler(probs, seed=params["seed"] + 1)

    def step(self) -> dict[str, Any]:
        tlp = self.ctx.tlps[self.sampler.draw()]
        return {"loss": self.ctx.inner_step(tlp), "tlps": [str(tlp)]}

    def options(self) -> dict[str, Any]:
        return {
            "temperature": "inf" if self.tau == float("inf") else self.tau,
            "sampling_sizes": self.unit,
            "probs": {
                str(t): round(float(p), 6) for t, p in zip(self.ctx.tlps, self.sampler.probs)
            },
        }

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
