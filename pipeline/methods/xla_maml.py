"""XLA-MAML (Liu et al. 2021): MAML whose tasks adapt across languages.

Each meta-task draws disjoint language subsets for its support and query (Algorithm 1, §3:
"sample {l_i}_S ⊂ L, {l_i}_Q ⊂ L"), a support batch per inner step from the support languages'
data and a query batch from the query languages' (pipeline.methods.episodes); the model adapts
on the support by `inner_steps` SGD steps of size `inner_lr` and the query loss at the adapted
parameters gives the meta-gradient (pipeline.methods.maml_core). One `step` is one meta-step:
`meta_batch` tasks, their meta-gradients averaged (`reduce: mean`) or summed, one step of the
run's optimizer (the paper's outer Adam with weight decay 0.01 and a linear schedule: set
`schedule: linear` and `weight_decay: 0.01`).

The paper's two settings are configurations, not code paths: zero-shot `support: [en]` (the
English dev set), `query: [aux]`; few-shot `support: [target]`, `query: [aux]`, then one epoch
of fine-tuning on the target dev set (`finetune_tlps: [nli/target]`, `finetune_split: dev`).
Both meta-train on dev splits (`train_split: dev`) from the English model (`init`).

Choices the paper leaves open, with our defaults: `inner_steps` 1 (not given in §4.2),
second order (`first_order: false`, as `higher`, which the paper uses, differentiates through the
inner loop), `subset_size` 1 ("fixed as a hyperparameter"), dropout on in inner and outer
passes, tasks of a multi-task run taken in turn. The paper's §4.2 settings: inner SGD 1e-5
(`inner_lr`), outer lr 1e-5, batch 8 (`batch_size`, inner and outer); `sampling: cover` and
`parallel: true` are its better variants (Tables 6 and 7), `random` / `false` the others.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import method_params
from pipeline.engine import TrainContext
from pipeline.methods import maml_core
from pipeline.methods.base import Method
from pipeline.methods.episodes import Episodes
from pipeline.records import TLP


class XLAMAML(Method):
    name = "xla_maml"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = method_params(self.name, params)
        self.maml = maml_core.Settings.from_params(p)
        self.meta_batch = int(p["meta_batch"])
        self.episodes = Episodes(
            ctx,
            p["support"],
            p["query"],
            int(p["subset_size"]),
            p["sampling"],
            bool(p["parallel"]),
            int(params["batch_size"]),
            int(params["seed"]),
        )
        self.p = p

    def step(self) -> dict[str, Any]:
        tasks, drawn = [], []
        for _ in range(self.meta_batch):
            ep = self.episodes.draw(self.maml.inner_steps)
            task = ep["task"]
            s_tlp = TLP(task, "+".join(ep["support_langs"]))
            q_tlp = TLP(task, "+".join(ep["query_langs"]))
            # the TLP tags only choose the head (the task); the languages are for the logs
            tasks.append(
                maml_core.MetaTask([(s_tlp, b) for b in ep["support"]], (q_tlp, ep["query"]))
            )
            drawn.append(f"{s_tlp}->{q_tlp.lang}")
        logs: dict[str, Any] = self.maml.step(self.ctx, tasks)
        logs["tasks"] = drawn
        return logs

    @classmethod
    def batches_per_step(cls, params: dict[str, Any], n_tlps: int = 1) -> int:
        """Batches one meta-step reads (sizes `epochs`): per task inner_steps + 1."""
        p = method_params(cls.name, params)
        return int(p["meta_batch"]) * (int(p["inner_steps"]) + 1)

    def options(self) -> dict[str, Any]:
        p = self.p
        return {
            **self.maml.options(),
            "support": list(p["support"]),
            "query": list(p["query"]),
            "subset_size": int(p["subset_size"]),
            "sampling": p["sampling"],
            "parallel": bool(p["parallel"]),
            "meta_batch": self.meta_batch,
            "outer_optimizer": type(self.ctx.optimizer).__name__,
            "tasks_order": "in turn",
        }

    def state_dict(self) -> dict[str, Any]:
        return self.episodes.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes.load_state_dict(state)
