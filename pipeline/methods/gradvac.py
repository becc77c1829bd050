"""GradVac (Wang et al. 2021, "Gradient Vaccine"), a baseline of Lee et al. (2022) Tables 1-2:
pull each task gradient toward a target cosine with every other task, not just toward 0.

PCGrad only acts on negative cosines; GradVac keeps, per ordered task pair, a target similarity
φ̂_ij, an exponential moving average of the observed cosines (Wang et al. §3, their Eq. 3;
φ̂^(0) = 0):

    φ̂_ij ← (1 − β) φ̂_ij + β φ_ij,

and whenever φ_ij = cos(g_i', g_j) < φ̂_ij it adds the multiple of g_j that makes the cosine
exactly φ̂_ij (their closed form, from the law of sines in the plane of g_i' and g_j):

    g_i' ← g_i' + [‖g_i'‖ (φ̂_ij √(1 − φ_ij²) − φ_ij √(1 − φ̂_ij²)) / (‖g_j‖ √(1 − φ̂_ij²))] g_j.

Why: languages (tasks) that are close have positively aligned gradients, and the EMA target
lets the method keep that alignment instead of only removing conflicts; with φ̂ = 0 the rule is
PCGrad's projection. As in PCGrad, i visits the other tasks in a random order, g_i' is the
partially adjusted gradient, g_j the original; the update is Σ_i g_i'. The targets are per pair
of TLPs of the run (not positions in the step), carried across steps and checkpointed.

Computed in coefficient space (task_gradients): ‖g_i'‖² = C_i G C_iᵀ and g_i'·g_j = (C G)_ij.

Options (recorded in `options()`; defaults first):

* `beta` 0.5: LibMTL's default (`GradVac_beta`, 1.1.5 docstring). The value Wang et al. used
  could not be checked against the paper text available here; set it explicitly for a faithful
  run.
* `ema_update` always: Eq. 3 updates φ̂_ij at every visit of (i, j). `on-conflict`: only when
  φ_ij < φ̂_ij, as LibMTL 1.1.5's code does (its EMA line sits inside the `if`), so there a
  target can only fall.
* `tasks_per_step` 8, `temperature` 5, `sampling_sizes`, `reduction` sum, `surgery_params` shared:
  as PCGrad (pipeline/methods/pcgrad.py).
* Granularity: one target per task pair over all shared parameters (LibMTL's `group_type` 0,
  "whole model"); the paper's per-layer variants are not implemented.

Guards (ours; the equations leave them open): a pair where one of the two gradients is zero has
no cosine and is skipped (no adjustment, no EMA step); when |φ̂_ij| = 1 no finite multiple of g_j
reaches it and the adjustment is skipped (the EMA still runs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.engine import TrainContext
from pipeline.errors import ConfigError
from pipeline.methods.task_gradients import SurgeryMethod
from pipeline.methods.trajectory import check_choice

EMA_UPDATES = ("always", "on-conflict")


def gradvac_coefficient(norm_i: float, norm_j: float, phi: float, target: float) -> float:
    """The multiple a of g_j with cos(g_i + a g_j, g_j) = target, given ‖g_i‖, ‖g_j‖ and
    φ = cos(g_i, g_j) (Wang et al.'s closed form)."""
    return (
        norm_i
        * (target * math.sqrt(max(0.0, 1.0 - phi * phi)) - phi * math.sqrt(1.0 - target * target))
        / (norm_j * math.sqrt(1.0 - target * target))
    )


def gradvac_coefficients(
    gram: np.ndarray,
    orders: Sequence[Sequence[int]],
    targets: np.ndarray,
    beta: float,
    ema_update: str = "always",
) -> tuple[np.ndarray, np.ndarray, int]:
    """(C, updated targets, adjustments) with g_i' = Σ_k C_ik g_k, from G_ij = g_i · g_j and the
    step's targets φ̂ (T×T, row i = task i's targets toward each j)."""
    gram = np.asarray(gram, dtype=np.float64)
    tgt = np.array(targets, dtype=np.float64)
    c = np.eye(len(gram))
    adjusted = 0
    for i, order in enumerate(orders):
        for j in order:
            norm_j = math.sqrt(max(0.0, gram[j, j]))
            norm_i = math.sqrt(max(0.0, float(c[i] @ gram @ c[i])))
            if norm_i == 0.0 or norm_j == 0.0:
                continue
            phi = min(1.0, max(-1.0, float(c[i] @ gram[:, j]) / (norm_i * norm_j)))
            hat = float(tgt[i, j])
            conflict = phi < hat
            if conflict and abs(hat) < 1.0:
                c[i, j] += gradvac_coefficient(norm_i, norm_j, phi, hat)
                adjusted += 1
            if ema_update == "always" or conflict:
                tgt[i, j] = (1.0 - beta) * hat + beta * phi
    return c, tgt, adjusted


class GradVac(SurgeryMethod):
    name = "gradvac"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.beta = float(self.p["beta"])
        if not 0.0 <= self.beta <= 1.0:
            raise ConfigError(f"beta: expected a number in [0, 1], got {self.beta}")
        self.ema_update = check_choice("ema_update", self.p["ema_update"], EMA_UPDATES)
        n = len(ctx.tlps)
        #: φ̂ per ordered pair of the run's TLPs (row: the adjusted task), EMA of cosines
        self.targets = np.zeros((n, n), dtype=np.float64)

    def combine(self, gram: np.ndarray, idx: list[int]) -> tuple[np.ndarray, dict[str, Any]]:
        sel = np.ix_(idx, idx)
        c, tgt, adjusted = gradvac_coefficients(
            gram, self.orders(len(idx)), self.targets[sel], self.beta, self.ema_update
        )
        self.targets[sel] = tgt
        return c, {"adjusted": adjusted}

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "beta": self.beta,
            "ema_update": self.ema_update,
            "targets_init": 0.0,
            "granularity": "whole shared block (one target per task pair)",
            "order": "random permutation of the other tasks per task (own generator)",
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "targets": self.targets.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.targets = np.asarray(state["targets"], dtype=np.float64)
