"""RecAdam (Chen et al. 2020, "Recall and Learn"), a baseline of Lee et al. (2022) Tables 1-2:
fine-tune with an annealed pull toward the pretrained weights, against catastrophic forgetting.

The objective mixes the task loss with a quadratic penalty that stands in for the pretraining
tasks (Chen et al. §3, "pretraining simulation" and "objective shifting"):

    Loss = λ(t) · L_task + (1 − λ(t)) · (γ/2) · ‖θ − θ*‖²,     λ(t) = 1 / (1 + exp(−k (t − t0))),

θ* the weights at the start of training (the pretrained encoder), t the optimizer step (1 at the
first step, as RecAdam's `state["step"]`). Early on (t ≪ t0) the model stays near θ*; after t0
the task takes over. Only the encoder is anchored: the heads are new, so they get plain Adam steps
(the authors' code gives the non-pretrained parameter groups `anneal_w = 0`).

`penalty` (how the objective reaches the optimizer):

* `decoupled` (default, the RecAdam optimizer of Chen et al. §3 and their code): like AdamW's
  weight decay, the penalty does not pass through Adam's moments. The moments see the raw task
  gradient; the encoder's Adam step is scaled by λ(t) and the penalty step lr·(1 − λ)·γ·(θ − θ*)
  is taken beside it:

      θ ← θ·(1 − lr·wd) + λ(t)·u − lr·(1 − λ(t))·γ·(θ − θ*),   u = the Adam step of the task loss

  implemented around the run's own AdamW step (ctx.optimizer, so its state, schedule and
  checkpoint are the trainer's): θ is snapshotted before, and after the step the encoder is set
  to the formula above, u and the decay read off the step that happened. Differences from the
  authors' optimizer, all O(lr²) per step: the penalty uses θ before the step (their code: after
  the Adam part), and AdamW decays before its Adam part (theirs: after).
* `coupled`: the objective as written, through AdamW: the encoder's gradient becomes
  λ·∇L_task + (1 − λ)·γ·(θ − θ*) (added in an optimizer pre-step hook, so `max_grad_norm`
  clipping sees the task gradient only), Adam then normalises both together.

A parameter without a gradient in a step (the pooler when no task reads it) is left as it is,
penalty included, as the authors' optimizer skips it. When λ(t) = 1.0 exactly in float64 (from
about t ≥ t0 + 37/k on) the step is MTL's step, bit for bit (tests).

Sampling is MTL's (pipeline/methods/mtl.py: `mixing`, `tasks_per_step`, `temperature`,
`sampling_sizes`), with Lee et al.'s §4.2 baseline setting as defaults: eight TLPs per step,
p_t ∝ N_t^(1/5), one optimizer step on their mean loss. The draws are MTL's independent ones
(with replacement, not capped at the run's TLPs): RecAdam looks at no per-task gradient, so a TLP
drawn twice is simply two of its batches.

Options (recorded in `options()`; defaults first):

* `gamma` 5000: "the coefficient of the quadratic penalty" (Chen et al.; the authors' README and
  optimizer default).
* `anneal_k` 1.0, `anneal_t0` 1000: the authors' BERT-base GLUE example (README: k and t0 chosen
  from {0.05, 0.1, 0.2, 0.5, 1} and {250, 500, 1000}); Lee et al. give no values.
* `penalty` decoupled (above); the annealing function is the sigmoid (the paper's choice).
* `tasks_per_step` 8, `temperature` 5, `mixing` sample, `sampling_sizes` examples (MTL's keys).

θ* is a flat copy of the encoder taken when the method is built. The Trainer builds it before it
loads a checkpoint, so a resumed run recaptures the same θ* from the encoder files; the state
records a checksum of θ* and a resume that finds another one logs a warning.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from pipeline.config import method_params
from pipeline.engine import TrainContext
from pipeline.errors import ConfigError
from pipeline.methods.mtl import MTL
from pipeline.methods.task_gradients import encoder_params
from pipeline.methods.trajectory import check_choice

log = logging.getLogger(__name__)

PENALTIES = ("decoupled", "coupled")


def anneal_lambda(t: float, k: float, t0: float) -> float:
    """λ(t) = 1 / (1 + exp(−k (t − t0))) (Chen et al.'s sigmoid annealing), without overflow
    for large |k (t − t0)|."""
    z = k * (t - t0)
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class RecAdam(MTL):
    name = "recadam"
    parallelism = None  # (MTL's data parallelism is untested with its penalty hooks)

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        p = method_params(self.name, params)
        super().__init__(ctx, p)  # MTL's sampling, read from RecAdam's defaults
        self.penalty = check_choice("penalty", p["penalty"], PENALTIES)
        self.gamma, self.k, self.t0 = float(p["gamma"]), float(p["anneal_k"]), float(p["anneal_t0"])
        if self.gamma < 0 or self.k <= 0:
            raise ConfigError(
                f"recadam: gamma must be >= 0 and anneal_k > 0, got {self.gamma}, {self.k}"
            )
        in_opt = {id(q) for g in ctx.optimizer.param_groups for q in g["params"]}
        self.anchored = [q for q in encoder_params(ctx.model) if id(q) in in_opt]
        with torch.no_grad():
            #: θ*, one flat buffer; `self.star` views it per anchored parameter
            self.anchor = torch.cat([q.detach().reshape(-1) for q in self.anchored]).clone()
        self.star, a = [], 0
        for q in self.anchored:
            self.star.append(self.anchor[a : a + q.numel()].view_as(q))
            a += q.numel()
        #: parameter -> index of its optimizer group (indices, not the group dicts:
        #: `optimizer.load_state_dict` replaces the dicts, and the scheduler writes the new ones)
        self.group_of = {
            id(q): i for i, g in enumerate(ctx.optimizer.param_groups) for q in g["params"]
        }
        self.steps = 0

    def lam(self, t: int) -> float:
        return anneal_lambda(t, self.k, self.t0)

    def step(self) -> dict[str, Any]:
        lam = self.lam(self.steps + 1)
        self.steps += 1
        if lam == 1.0:  # no penalty left and the full Adam step: MTL's step, bit for bit
            return {**super().step(), "lambda": lam}
        stepped: list[bool] = []
        if self.penalty == "decoupled":
            before = [q.detach().clone() for q in self.anchored]
            rates = [self._rates(q) for q in self.anchored]
            hook = self.ctx.optimizer.register_step_pre_hook(
                lambda *_: stepped.extend(q.grad is not None for q in self.anchored)
            )
            try:
                logs = super().step()
            finally:
                hook.remove()
            self._decoupled(lam, before, rates, stepped)
        else:
            hook = self.ctx.optimizer.register_step_pre_hook(lambda *_: self._coupled(lam))
            try:
                logs = super().step()
            finally:
                hook.remove()
        return {**logs, "lambda": lam}

    def _rates(self, q: torch.Tensor) -> tuple[float, float]:
        """(lr, decoupled decay factor 1 − lr·wd) of q's group for the coming optimizer step."""
        g = self.ctx.optimizer.param_groups[self.group_of[id(q)]]
        lr = float(g["lr"])
        wd = float(g.get("weight_decay", 0.0)) if g.get("decoupled_weight_decay", False) else 0.0
        return lr, 1.0 - lr * wd

    @torch.no_grad()
    def _coupled(self, lam: float) -> None:
        for q, star in zip(self.anchored, self.star):
            if q.grad is not None:
                q.grad.mul_(lam).add_(q.detach() - star, alpha=(1.0 - lam) * self.gamma)

    @torch.no_grad()
    def _decoupled(
        self,
        lam: float,
        before: list[torch.Tensor],
        rates: list[tuple[float, float]],
        stepped: list[bool],
    ) -> None:
        for q, b, star, (lr, keep), s in zip(self.anchored, before, self.star, rates, stepped):
            if not s:
                continue
            decayed = b * keep  # AdamW's decoupled decay; q − decayed is its Adam step u
            new = torch.lerp(decayed, q.detach(), lam)  # decayed + λ·u
            new.sub_(b - star, alpha=lr * (1.0 - lam) * self.gamma)
            q.copy_(new)

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "penalty": self.penalty,
            "gamma": self.gamma,
            "anneal": "sigmoid",
            "anneal_k": self.k,
            "anneal_t0": self.t0,
            "anchor": "encoder at the start of training (heads excluded)",
            "optimizer": type(self.ctx.optimizer).__name__,
        }

    def _checksum(self) -> float:
        return float(self.anchor.double().sum())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "steps": self.steps, "anchor_checksum": self._checksum()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.steps = state["steps"]
        saved, now = state.get("anchor_checksum"), self._checksum()
        if saved is not None and not math.isclose(saved, now, rel_tol=1e-6, abs_tol=1e-6):
            log.warning(
                "recadam: the pretrained weights theta* differ from the checkpoint's "
                "(checksum %r, now %r): was the method built after loading other weights?",
                saved,
                now,
            )
