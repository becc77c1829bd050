"""Multi-task learning: one optimizer step per batch of one TLP, or on the mean of several.

Options (recorded in the run's options; defaults first):

* `mixing` — how the TLP of each batch is chosen:
  * `sample` (default): draw it by temperature sampling, P(i) ∝ q_i^(1/τ) over example or batch
    counts (`sampling_sizes`), independent draws (with replacement); τ = inf samples TLPs
    uniformly.
  * `concat`: "concatenate and shuffle the selected datasets" (Tarunesh et al. §5, their MTL
    baselines): every epoch visits each TLP's batches exactly once, in a random interleaving.
    This is what τ = 1 sampling gives in expectation, without its sampling noise.
* `tasks_per_step` — TLP batches per optimizer step (default 1). With n > 1 a step takes the next
  n TLPs of the same sequence (n draws of the sampler, or the next n entries of the `concat`
  plan, crossing into the next epoch's plan when one ends), one batch each, and ONE optimizer
  step on the mean of their n batch losses (gradients accumulated one batch graph at a time).
  Lee et al. (2022) §4.2's multi-task baselines "sample eight tasks" per step with
  p_t ∝ N_t^(1/5): `tasks_per_step: 8, temperature: 5`. The TLP sequence is the one n single
  steps would use, so only the grouping into optimizer steps changes; with 1 a step is the
  engine's inner step, bit for bit (MTL = Sequential Reptile with η = 1). A step then consumes n
  batches: `batches_per_step` says so, for sizing `epochs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.config import method_params, temperature
from pipeline.errors import ConfigError
from pipeline.methods.base import Method
from pipeline.sampling import CategoricalSampler, temperature_probs

MIXING = ("sample", "concat")


class MTL(Method):
    name = "mtl"
    parallelism = "data"  # a shard of every batch per rank, gradients averaged

    def __init__(self, ctx, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = method_params(self.name, params)
        self.mixing = p["mixing"]
        if self.mixing not in MIXING:
            raise ConfigError(f"mixing: expected one of {', '.join(MIXING)}, got {self.mixing!r}")
        self.tasks_per_step = int(p["tasks_per_step"])
        if self.tasks_per_step < 1:
            raise ConfigError(
                f"tasks_per_step: expected an integer >= 1, got {self.tasks_per_step}"
            )
        self.tau = temperature(params.get("temperature", 1.0))
        self.unit = params.get("sampling_sizes", "examples")
        probs = temperature_probs(ctx.sizes(self.unit), self.tau)
        self.sampler = CategoricalSampler(probs, seed=params["seed"] + 1)
        self.epoch, self.pos = 0, 0
        self._plan: np.ndarray | None = None

    @classmethod
    def batches_per_step(cls, params: dict[str, Any], n_tlps: int = 1) -> int:
        """Training batches one `step` consumes (for sizing `epochs`); optimizer steps stay 1."""
        return int(method_params(cls.name, params)["tasks_per_step"])

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
        if self.tasks_per_step == 1:
            tlp = self.ctx.tlps[self._next_tlp()]
            return {"loss": self.ctx.inner_step(tlp), "tlps": [str(tlp)]}
        tlps = [self.ctx.tlps[self._next_tlp()] for _ in range(self.tasks_per_step)]
        return {"loss": self.ctx.mean_loss_step(tlps), "tlps": [str(t) for t in tlps]}

    def options(self) -> dict[str, Any]:
        if self.mixing == "concat":
            return {"mixing": "concat", "tasks_per_step": self.tasks_per_step}
        return {
            "mixing": "sample",
            "tasks_per_step": self.tasks_per_step,
            "draws": "independent (with replacement)",
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
