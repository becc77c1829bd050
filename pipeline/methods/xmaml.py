"""X-MAML (Nooralahzadeh et al. 2020): MAML whose every task is one auxiliary language.

One `step` is one meta-step (one outer optimizer step, `steps` counts them): for each TLP of the
meta-batch, support and query come from that same TLP; the model adapts on the support by
`inner_steps` SGD steps of size `inner_lr` (pipeline.methods.maml_core) and the query loss at
the adapted parameters is back-propagated to θ; then one step of the run's optimizer (AdamW, its
schedule sized to the meta-steps that run) on the mean of the tasks' meta-gradients.

Options (recorded in the run's options; defaults first, and what the reference code does):

* `inner_steps` = 1, `inner_lr` = 1e-4 (the reference's `--inner_lr` default), second order
  (`first_order: false`; the reference differentiates through `higher`'s inner loop).
* `support_query` — where the two sets come from:
  * `batches` (default): the support is the next `inner_steps` batches of the TLP's stream, the
    query the batch after them (disjoint examples within an epoch).
  * `halves`: the reference's behaviour (seed-implementations §2.2, M1): ONE batch, its first
    half the support and its second half the query; `inner_steps` SGD steps all on that half
    (the reference takes exactly one whatever `--inner_train_steps` says: set 1 to match).
* `meta_batch` — the tasks of a meta-step: `all` (default, as the reference: every TLP of the
  run once, in the run's order) or an integer m: m TLPs drawn with replacement from temperature
  probabilities (`temperature`, `sampling_sizes`, the generator seeded as MTL's).
* `reduce` — `mean` (default) or `sum` of the tasks' meta-gradients (the reference sums the
  auxiliary languages' query gradients before its Adam step, M5).

Reference behaviour in one line: `inner_steps: 1, support_query: halves, first_order: false,
reduce: sum` (with `meta_batch: all`). Its other divergences (the same permutation at every
meta-iteration, hash-ordered language ids, Adam steps on stale momentum past the data) are
bugs and not offered.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import method_params
from pipeline.engine import TrainContext
from pipeline.errors import ConfigError
from pipeline.methods import maml_core
from pipeline.methods.base import Method
from pipeline.methods.trajectory import TLPSampling, check_choice, parse_temperature
from pipeline.records import TLP

SUPPORT_QUERY = ("batches", "halves")


class XMAML(Method):
    name = "xmaml"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = method_params(self.name, params)
        self.maml = maml_core.Settings.from_params(p)
        self.support_query = check_choice("support_query", p["support_query"], SUPPORT_QUERY)
        self.meta_batch = p["meta_batch"]
        m = self.meta_batch
        if m != "all" and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ConfigError(
                f"meta_batch: expected 'all' or an integer >= 1, got {self.meta_batch!r}"
            )
        if self.support_query == "halves" and params["batch_size"] < 2:
            raise ConfigError("support_query: halves needs batch_size >= 2")
        tau = parse_temperature(p["temperature"])
        self.sampling = TLPSampling(ctx, {**p, "sampler": "temperature"}, tau)

    def _tlps(self) -> list[TLP]:
        if self.meta_batch == "all":
            return list(self.ctx.tlps)
        return self.sampling.draw_many(int(self.meta_batch), True)

    def _task(self, tlp: TLP) -> maml_core.MetaTask:
        ctx = self.ctx
        if self.support_query == "halves":
            batch = ctx.batch(tlp)
            half = len(next(iter(batch.values()))) // 2
            support = {k: v[:half] for k, v in batch.items()}
            query = {k: v[half:] for k, v in batch.items()}
            return maml_core.MetaTask([(tlp, support)] * self.maml.inner_steps, (tlp, query))
        support = [(tlp, ctx.batch(tlp)) for _ in range(self.maml.inner_steps)]
        return maml_core.MetaTask(support, (tlp, ctx.batch(tlp)))

    def step(self) -> dict[str, Any]:
        tlps = self._tlps()
        tasks = [self._task(t) for t in tlps]
        logs: dict[str, Any] = self.maml.step(self.ctx, tasks)
        logs["tlps"] = [str(t) for t in tlps]
        return logs

    @classmethod
    def batches_per_step(cls, params: dict[str, Any], n_tlps: int = 1) -> int:
        """Batches one meta-step reads (sizes `epochs`; the schedule counts meta-steps, one
        optimizer step each): per task one (`halves`) or inner_steps + 1."""
        p = method_params(cls.name, params)
        tasks = n_tlps if p["meta_batch"] == "all" else int(p["meta_batch"])
        return tasks * (1 if p["support_query"] == "halves" else int(p["inner_steps"]) + 1)

    def options(self) -> dict[str, Any]:
        return {
            **self.maml.options(),
            "support_query": self.support_query,
            "meta_batch": self.meta_batch,
            "outer_optimizer": type(self.ctx.optimizer).__name__,
            **self.sampling.options(),
        }

    def state_dict(self) -> dict[str, Any]:
        return self.sampling.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampling.load_state_dict(state)
