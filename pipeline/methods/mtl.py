"""Multi-task learning: one optimizer step per batch of one TLP.

Two ways to choose the TLP of each batch (`mixing`, recorded in the run's options):

* `sample` (default): draw it by temperature sampling, P(i) ∝ q_i^(1/τ) over example or batch
  counts (`sampling_sizes`); τ = inf samples TLPs uniformly.
* `concat`: "concatenate and shuffle the selected datasets" (Tarunesh et al. §5, their MTL
  baselines): every epoch visits each TLP's batches exactly once, in a random interleaving.
  This is what τ = 1 sampling gives in expectation, without its sampling noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.config import temperature
from pipeline.methods.base import Method
from pipeline.sampling import CategoricalSampler, temperature_probs


class MTL(Method):
    name = "mtl"

    def __init__(self, ctx, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.mixing = params.get("mixing", "sample")
        self.tau = temperature(params.get("temperature", 1.0))
        self.unit = params.get("sampling_sizes", "examples")
        probs = temperature_probs(ctx.sizes(self.unit), self.tau)
        self.sampler = CategoricalSampler(probs, seed=params["seed"] + 1)
        self.epoch, self.pos = 0, 0
        self._plan: np.ndarray | None = None

    def _epoch_plan(self) -> np.ndarray:
        """The TLP index of every batch of the current epoch (each TLP's batches once)."""
        if self._plan is None:
            counts = [self.ctx.streams[t].batches_per_epoch() for t in self.ctx.tlps]
            plan = np.repeat(np.arange(len(counts)), counts)
            rng = np.random.Generator(np.random.PCG64([self.params["seed"], self.epoch]))
            rng.shuffle(plan)
            self._plan = plan
        return self._plan

    def _next_tlp(self) -> int:
        if self.mixing == "sample":
            return self.sampler.draw()
        plan = self._epoch_plan()
        i = int(plan[self.pos])
        self.pos += 1
        if self.pos == len(plan):
            self.epoch, self.pos, self._plan = self.epoch + 1, 0, None
        return i

    def step(self) -> dict[str, Any]:
        tlp = self.ctx.tlps[self._next_tlp()]
        return {"loss": self.ctx.inner_step(tlp), "tlps": [str(tlp)]}

    def options(self) -> dict[str, Any]:
        if self.mixing == "concat":
            return {"mixing": "concat"}
        return {
            "mixing": "sample",
            "temperature": "inf" if self.tau == float("inf") else self.tau,
            "sampling_sizes": self.unit,
            "probs": {
                str(t): round(float(p), 6) for t, p in zip(self.ctx.tlps, self.sampler.probs)
            },
        }

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(), "epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.epoch, self.pos, self._plan = state.get("epoch", 0), state.get("pos", 0), None
