"""MetaXL (Xia et al. 2021) and its joint-training baselines on the shared engine.

A run pairs, per task, one source TLP (English or a related language, through the RTN) with one
target TLP (the low-resource language, through the plain encoder): `targets` names the target
languages (config.source_target_pairs). Every step reads one source and one target batch per
task.

* `jt` — joint training (JT): one optimizer step on Σ_task [L_s(θ) + L_t(θ)], the mean over the
  run's tasks. `rtn: true` is "JT w/ RTN" (Table 6): the source examples go through the RTN,
  whose φ the same optimizer trains on the same loss. Its RTN is MetaXL's (same `transform`,
  layers and bottleneck), unlike the reference's baseline, which drops MetaXL's residual (X10).
* `metaxl` — Algorithm 1. With θ the model's parameters and φ the RTN's:

      θ'(φ) = θ − α ∇θ L_s(θ, φ)                                   look-ahead (Eq. 3)
      φ    ← φ − β ∇φ L_t(θ'(φ))                                   (Eq. 4; Adam on φ, lr β)
      θ    ← optimizer step on L_s(θ, φ) + L_t(θ)                  the real update, new φ

  θ' is a dict of tensors through `torch.func.functional_call`, never written into the model:
  the look-ahead leaves θ bit-identical. ∇θ L_s is taken with `create_graph`, so the meta-
  gradient is second order through φ (the paper's −α ∇φ(∇θ L_sᵀ ∇θ' L_t) Hessian-vector term);
  nothing but φ receives it. The real update trains θ on the source (through the new φ) and
  target losses, as the reference code (Algorithm 1 line 4 prints the source term only; the
  target data must train θ somewhere, or MetaXL would be zero-shot); φ takes no gradient from
  it. The RNG is restored after the look-ahead, so the real update draws the dropout masks JT
  would, and a MetaXL step with β = 0 is JT w/ RTN (frozen φ) step for step. The look-ahead's
  attention runs on the math kernel (engine.second_order: the fused kernels have no double
  backward).

Named options (recorded with every result; defaults first, then the reference code's choice,
seed-implementations §3.2):

* `transform`: `eq1` | `residual_gate` (h + σ(s)·MLP(h.detach()), X6) — pipeline.models.rtn.
* `rtn_layers`: [`last`] (L12 of XLM-R base) | any of 0..N (0: after the embeddings; several:
  one RTN each, all applied to source examples); `bottleneck` r (null: d / 2).
* `inner_target`: false | true (X5: the look-ahead loss adds the target train part).
* `lookahead_lr`: `fixed` (α = `inner_lr`, null: the run's lr) | `scheduled` (X7: the main
  optimizer's current scheduled lr; the reference's warm-up starts at 0, so its first
  meta-gradient is exactly 0, ours at lr / warmup_steps — set `warmup_steps: 0` for none).
* `target_split`: `whole` (the target batch is the meta batch and trains θ) | `halves` (the
  reference's portion 2: its first half trains θ, the second is the meta batch).
* `meta_lr` β (1e-6, the README's; the paper tunes {3e-5, 1e-6, 1e-7}), `meta_weight_decay`
  (0; the reference's Adam 5e-4), `meta_schedule`: `constant` | `main` (β on the main
  warm-up/decay schedule, as the reference).

Never reproduced: the reference's XLM-R special-token, pad-id and position-id bugs (X3, X4) —
the tokenizer's own special tokens and the model's own position handling are used throughout.
"""

from __future__ import annotations

from typing import Any

import torch

from pipeline.analysis import preserved_rng
from pipeline.config import method_params, source_target_pairs
from pipeline.engine import TrainContext, second_order
from pipeline.errors import ConfigError
from pipeline.methods.base import Method
from pipeline.models import rtn as rtn_lib
from pipeline.records import TLP

Batch = dict[str, torch.Tensor]


class JointTraining(Method):
    """JT and JT w/ RTN: one source and one target batch per task and step, their losses summed."""

    name = "jt"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.p = method_params(self.name, params)
        self.pairs = source_target_pairs(ctx.tlps, self.p["targets"], "tlps")
        self.target_split = self.p["target_split"]
        if self.target_split == "halves" and params["batch_size"] < 2:
            raise ConfigError("target_split: halves needs batch_size >= 2")
        self.rtn = rtn_lib.rtn_of(ctx.model)

    @classmethod
    def uses_rtn(cls, params: dict[str, Any]) -> bool:
        return bool(method_params(cls.name, params).get("rtn"))

    @classmethod
    def prepare_model(cls, model: Any, params: dict[str, Any]) -> None:
        if cls.uses_rtn(params):
            p = method_params(cls.name, params)
            rtn_lib.attach(
                model, p["rtn_layers"], p["bottleneck"], p["transform"], params["seed"] + 7
            )

    @classmethod
    def batches_per_step(cls, params: dict[str, Any], n_tlps: int = 1) -> int:
        return n_tlps  # one batch of every TLP (a source and a target per task)

    @classmethod
    def steps_per_epoch(cls, params: dict[str, Any], batches: dict[Any, int]) -> float:
        """An epoch is a pass over the source data (the target set, 100 examples, cycles), as
        the reference's loop over source batches."""
        pairs = source_target_pairs(list(batches), method_params(cls.name, params)["targets"])
        return max(batches[s] for s, _ in pairs)

    # -- batches and losses --------------------------------------------------------------

    def _split(self, batch: Batch) -> tuple[Batch, Batch]:
        """(the part that trains θ, the meta part) of a target batch."""
        if self.target_split == "whole":
            return batch, batch
        half = len(next(iter(batch.values()))) // 2
        return {k: v[:half] for k, v in batch.items()}, {k: v[half:] for k, v in batch.items()}

    def _batches(self) -> list[tuple[TLP, Batch, TLP, Batch, Batch]]:
        """Per task: source TLP and batch, target TLP, its train part and its meta part."""
        out = []
        for s, t in self.pairs:
            src = self.ctx.batch(s)
            train, meta = self._split(self.ctx.batch(t))
            out.append((s, src, t, train, meta))
        return out

    def source_loss(
        self, params: dict[str, torch.Tensor] | None, tlp: TLP, batch: Batch
    ) -> torch.Tensor:
        """A source batch's loss, through the RTN when the model has one."""
        with rtn_lib.applied(self.ctx.model):
            if params is None:
                return self.ctx.loss(tlp, batch)
            return self.ctx.functional_loss(params, tlp, batch)

    def joint_update(self, batches: list[tuple[TLP, Batch, TLP, Batch, Batch]]) -> float:
        """One optimizer step on mean_task [L_s(θ, φ) + L_t(θ)] (accumulated per task)."""
        ctx = self.ctx
        ctx.model.train()
        total = 0.0
        n = len(batches)
        for s, src, t, train, _ in batches:
            loss = self.source_loss(None, s, src) + ctx.loss(t, train)
            (loss / n).backward()
            total += loss.item()
        self.before_outer_step()
        ctx.outer_step()
        return total / n

    def before_outer_step(self) -> None:
        """JT w/ RTN: φ trains with θ (nothing to do)."""

    def step(self) -> dict[str, Any]:
        batches = self._batches()
        loss = self.joint_update(batches)
        return {"loss": loss, "tlps": [str(x) for s, t in self.pairs for x in (s, t)]}

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pairs": {str(t): str(s) for s, t in self.pairs},
            "target_split": self.target_split,
            "update": "one optimizer step on mean over tasks of L_source + L_target",
            "epoch": "a pass over the source batches",
        }
        if self.rtn is not None:
            out["rtn"] = {
                "layers": self.rtn.layers,
                "bottleneck": next(iter(self.rtn.nets.values())).down.out_features,
                "transform": self.p["transform"],
                "applied_to": "source examples only; discarded at test time",
            }
        else:
            out["rtn"] = None
        return out


class MetaXL(JointTraining):
    """Algorithm 1 (see the module docstring)."""

    name = "metaxl"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = self.p
        assert self.rtn is not None  # prepare_model attached it
        self.phi_names = rtn_lib.phi_names(ctx.model)
        named = dict(ctx.model.named_parameters())
        self.phi = [named[k] for k in self.phi_names]
        phi = set(self.phi_names)
        self.theta_names = [k for k, v in named.items() if v.requires_grad and k not in phi]
        self.meta_opt = torch.optim.Adam(
            self.phi, lr=float(p["meta_lr"]), weight_decay=float(p["meta_weight_decay"])
        )
        self.meta_schedule = p["meta_schedule"]
        self.lookahead = p["lookahead_lr"]
        self.alpha = float(params["lr"] if p["inner_lr"] is None else p["inner_lr"])
        self.inner_target = bool(p["inner_target"])

    @classmethod
    def uses_rtn(cls, params: dict[str, Any]) -> bool:
        return True

    def lookahead_lr(self) -> float:
        """α of this step: fixed, or the main optimizer's current scheduled lr."""
        if self.lookahead == "scheduled":
            return float(self.ctx.optimizer.param_groups[0]["lr"])
        return self.alpha

    def meta_gradient(
        self, batches: list[tuple[TLP, Batch, TLP, Batch, Batch]], alpha: float
    ) -> tuple[list[torch.Tensor | None], float, float]:
        """∇φ L_t(θ'(φ)) through the one-step look-ahead; θ and `.grad` untouched.

        Returns (one gradient per φ tensor, the mean look-ahead loss, the mean meta loss)."""
        with second_order():  # attention on a twice-differentiable kernel
            return self._meta_gradient(batches, alpha)

    def _meta_gradient(
        self, batches: list[tuple[TLP, Batch, TLP, Batch, Batch]], alpha: float
    ) -> tuple[list[torch.Tensor | None], float, float]:
        ctx = self.ctx
        ctx.model.train()
        named = dict(ctx.model.named_parameters())
        theta = {k: named[k] for k in self.theta_names}
        n = len(batches)
        inner = 0.0
        for s, src, t, train, _ in batches:
            inner = inner + self.source_loss(theta, s, src) / n
            if self.inner_target:
                inner = inner + ctx.functional_loss(theta, t, train) / n
        if alpha == 0.0:  # θ' = θ: the meta-gradient is exactly 0, no double backward needed
            with torch.no_grad():
                meta = sum(ctx.functional_loss(theta, t, mb) for _, _, t, _, mb in batches) / n
            return [None] * len(self.phi), float(inner.detach()), float(meta)
        names = list(theta)
        grads = torch.autograd.grad(
            inner, [theta[k] for k in names], create_graph=True, allow_unused=True
        )
        adapted = {k: theta[k] if g is None else theta[k] - alpha * g for k, g in zip(names, grads)}
        meta = 0.0
        for _, _, t, _, meta_batch in batches:
            meta = meta + ctx.functional_loss(adapted, t, meta_batch) / n
        phi_grads = torch.autograd.grad(meta, self.phi, allow_unused=True)
        return list(phi_grads), float(inner.detach()), float(meta.detach())

    def step(self) -> dict[str, Any]:
        batches = self._batches()
        alpha = self.lookahead_lr()
        with preserved_rng():  # the real update draws the dropout masks JT would
            grads, inner, meta = self.meta_gradient(batches, alpha)
        if self.meta_schedule == "main":
            factor = self.ctx.scheduler.get_last_lr()[0] / self.params["lr"]
            for g in self.meta_opt.param_groups:
                g["lr"] = float(self.p["meta_lr"]) * factor
        for p, g in zip(self.phi, grads):
            p.grad = None if g is None else g.detach()
        self.meta_opt.step()
        self.meta_opt.zero_grad(set_to_none=True)
        loss = self.joint_update(batches)
        return {
            "loss": loss,
            "lookahead_loss": inner,
            "meta_loss": meta,
            "lookahead_lr": alpha,
            "tlps": [str(x) for s, t in self.pairs for x in (s, t)],
        }

    def before_outer_step(self) -> None:
        """φ learns from the meta loss only: drop what the real update put into its `.grad`."""
        for p in self.phi:
            p.grad = None

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "update": "look-ahead on phi (Adam), then one optimizer step on mean over tasks "
            "of L_source(theta, new phi) + L_target(theta)",
            "meta_lr": float(self.p["meta_lr"]),
            "meta_optimizer": "Adam",
            "meta_weight_decay": float(self.p["meta_weight_decay"]),
            "meta_schedule": self.meta_schedule,
            "lookahead_lr": self.lookahead,
            "inner_lr": None if self.lookahead == "scheduled" else self.alpha,
            "inner_target": self.inner_target,
            "order": "second through phi (create_graph on the look-ahead gradient)",
            "dropout": "train mode; the look-ahead replays the real update's dropout masks",
        }

    def state_dict(self) -> dict[str, Any]:
        return {"meta_opt": self.meta_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.meta_opt.load_state_dict(state["meta_opt"])
