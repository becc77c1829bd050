"""X-METRA and X-METRA-ADA (M'hamdi et al. 2021, §2 and Algorithm 1).

First-order MAML (learn2learn's `first_order=True`, §3.2) from the English model (PRE, `init`)
on pre-built pseudo-tasks (pipeline.methods.xmetra_tasks, the `pseudo_tasks` step): each task's
support is a set of English train items, its query target-language dev items. One `step` is one
outer step: `meta_batch` tasks (4, as the reference), each adapted by `inner_steps` (n = 5) SGD
steps of size `inner_lr` (α) on its whole support set, the query losses at the adapted
parameters averaged and applied by the run's optimizer (Adam, `lr` = β).

X-METRA-ADA adds the meta-adaptation stage on tasks whose support and query both come from the
held-out part of the target dev split (MTOD 25%, QA 40%):

* `stages: sequential` (default, the paper's Figure 1 and Algorithm 1): `steps` meta-train
  steps, then `adapt_steps` meta-adapt steps (`steps` counts the first stage only; the
  schedule spans both);
* `stages: interleaved` (the reference code, A5): every outer step's task continues from its
  meta-train adapted parameters with `adapt_inner_steps` more SGD steps on a meta-adapt
  support set and back-propagates that query loss too (`adapt_steps` is then unused).

Tasks are taken in their file order, cyclically (the file is already a seeded random order).
Items map to features by record id; a QA item whose context spans several windows trains on
the window holding its answer (the reference indexed features by example position, so its
indices drifted: seed-implementations §5.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from pipeline.config import method_params
from pipeline.engine import TrainContext
from pipeline.errors import ConfigError
from pipeline.methods import maml_core
from pipeline.methods.base import Method
from pipeline.records import TLP

STAGES = ("sequential", "interleaved")


def feature_index(ctx: TrainContext) -> dict[TLP, dict[str, int]]:
    """Per TLP: record id -> the feature it trains on (QA: the first window with its answer)."""
    out: dict[TLP, dict[str, int]] = {}
    for t, data in ctx.train.items():
        start = data.tensors.get("start_positions")
        index: dict[str, int] = {}
        answered: dict[str, bool] = {}
        for i, rid in enumerate(map(str, data.features["example_id"])):
            has = start is None or int(start[i]) > 0
            if rid not in index or (has and not answered[rid]):
                index[rid], answered[rid] = i, has
        out[t] = index
    return out


class XMETRA(Method):
    name = "xmetra"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = method_params(self.name, params)
        self.p = p
        self.maml = maml_core.Settings.from_params(p)
        self.meta_batch = int(p["meta_batch"])
        if ctx.pseudo_tasks is None:
            raise ConfigError(f"{self.name}: the run has no pseudo-tasks (rule pseudo_tasks)")
        self.tasks = {s: ctx.pseudo_tasks[s] for s in ("meta_train", "meta_adapt")}
        if not self.tasks["meta_train"]:
            raise ConfigError(f"{self.name}: the pseudo-task file has no meta-train task")
        self.index = feature_index(ctx)
        self.pos = {"meta_train": 0, "meta_adapt": 0}
        self.done = 0  # outer steps taken (the stage of the next one)

    # -- batches ---------------------------------------------------------------------------

    def _batch(self, side: Mapping[str, Any]) -> tuple[TLP, dict[str, torch.Tensor]]:
        tlp = TLP.parse(side["tlp"])
        index = self.index[tlp]
        try:
            rows = torch.tensor([index[str(i)] for i in side["ids"]])
        except KeyError as e:
            raise ConfigError(
                f"{self.name}: pseudo-task item {e.args[0]!r} is not in {tlp}'s training data "
                "(stale pseudo-tasks: rerun the pseudo_tasks step)"
            ) from None
        data = self.ctx.train[tlp].tensors
        return tlp, self.ctx.take(data, rows)

    def _task(self, raw: Mapping[str, Any], inner_steps: int) -> maml_core.MetaTask:
        support = self._batch(raw["support"])
        return maml_core.MetaTask([support] * inner_steps, self._batch(raw["query"]))

    def _take(self, stage: str) -> list[Mapping[str, Any]]:
        pool = self.tasks[stage]
        out = [pool[(self.pos[stage] + i) % len(pool)] for i in range(self.meta_batch)]
        self.pos[stage] += self.meta_batch
        return out

    # -- steps -----------------------------------------------------------------------------

    def stage(self) -> str:
        return "meta_train"

    def step(self) -> dict[str, Any]:
        stage = self.stage()
        raws = self._take(stage)
        tasks = [self._task(r, self.maml.inner_steps) for r in raws]
        logs: dict[str, Any] = self.maml.step(self.ctx, tasks)
        self.done += 1
        logs["stage"] = stage
        logs["tasks"] = [f"{r['support']['tlp']}->{r['query']['tlp']}" for r in raws]
        return logs

    def options(self) -> dict[str, Any]:
        p = self.p
        return {
            **self.maml.options(),
            "meta_batch": self.meta_batch,
            "outer_optimizer": type(self.ctx.optimizer).__name__,
            "support": list(p["support"]),
            "query": list(p["query"]),
            "support_set": "the whole support set at every inner step",
            **(self.ctx.pseudo_tasks or {}).get("options", {}),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"pos": dict(self.pos), "done": self.done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pos, self.done = dict(state["pos"]), int(state["done"])


class XMETRAADA(XMETRA):
    name = "xmetra_ada"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = self.p
        if p["stages"] not in STAGES:
            raise ConfigError(f"stages: expected one of {', '.join(STAGES)}, got {p['stages']!r}")
        self.stages = p["stages"]
        self.train_steps = int(params["steps"])
        self.adapt_inner = int(p["adapt_inner_steps"] or self.maml.inner_steps)
        if not self.tasks["meta_adapt"]:
            raise ConfigError(f"{self.name}: the pseudo-task file has no meta-adapt task")

    @classmethod
    def total_steps(cls, params: dict[str, Any], steps: int) -> int:
        p = method_params(cls.name, params)
        return steps + (int(p["adapt_steps"]) if p["stages"] == "sequential" else 0)

    def stage(self) -> str:
        if self.stages == "sequential" and self.done >= self.train_steps:
            return "meta_adapt"
        return "meta_train"

    def step(self) -> dict[str, Any]:
        if self.stages == "sequential":
            return super().step()
        raws, adapts = self._take("meta_train"), self._take("meta_adapt")
        tasks = []
        for r, a in zip(raws, adapts, strict=True):
            task = self._task(r, self.maml.inner_steps)
            task.then = self._task(a, self.adapt_inner)
            tasks.append(task)
        logs: dict[str, Any] = self.maml.step(self.ctx, tasks)
        self.done += 1
        logs["stage"] = "interleaved"
        logs["tasks"] = [f"{r['support']['tlp']}->{r['query']['tlp']}" for r in raws]
        return logs

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "stages": self.stages,
            "meta_train_steps": self.train_steps,
            "adapt_steps": int(self.p["adapt_steps"]) if self.stages == "sequential" else 0,
            "adapt_inner_steps": self.adapt_inner,
        }
