"""PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning"), a baseline of Lee et al.
(2022) Tables 1-2: project away the conflicting part of each task gradient.

Algorithm 1 of Yu et al.: for every task i, starting from g_i^PC = g_i, visit the other tasks j
in a random order and, when g_i^PC · g_j < 0 (the gradients conflict),

    g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j          (Eq. 1: onto g_j's normal plane)

always against the ORIGINAL g_j, never its projected version; the update is Σ_i g_i^PC. Why: to
first order, a component of g_i against g_j raises task j's loss; after the projection
g_i^PC · g_j = 0 for the task just projected against, so task i's share of the step no longer
works against it (for two tasks Yu et al.'s Theorem 1 gives convergence on convex losses).

Here the projections act on the shared parameters (`surgery_params`, see task_gradients); heads
get their tasks' plain gradients. They are computed in coefficient space: g_i^PC = Σ_k C_ik g_k
with C built from the T×T Gram matrix, so g_i^PC · g_j = (C G)_ij exactly as the vector
arithmetic (up to rounding), with no copy of the (T, D) gradient buffer.

Options (recorded in `options()`; defaults first):

* `tasks_per_step` 8, `temperature` 5, `sampling_sizes` examples: Lee et al. §4.2 ("we sample
  eight tasks proportional to p_t ∝ (N_t)^{1/5}"), T distinct TLPs per step (capped at the run's).
* `reduction` sum: Σ_i g_i^PC (Yu et al. Algorithm 1, LibMTL's `pc_grads.sum(0)`); `mean` divides
  by T (heads too), MTL's mean loss.
* `surgery_params` shared: the parameters every task of the step touches; `encoder`: the encoder
  whatever the tasks (LibMTL). See task_gradients for why the default.
* Order: each i draws a permutation of the OTHER tasks from the method's own generator, seeded
  (run seed, ORDER_STREAM) and checkpointed, so a resumed run draws the same orders.

Where LibMTL (1.1.5, `weighting/PCGrad.py`) differs, and what we follow:
* LibMTL shuffles all T tasks, i included (with Python's global `random`); Algorithm 1 visits
  j ≠ i. We follow the paper. (Projecting g_i^PC off g_i only triggers if g_i^PC · g_i < 0,
  which a single projection cannot produce: ‖g_i‖² − (g_i·g_j)²/‖g_j‖² ≥ 0.)
* LibMTL divides by ‖g_j‖² unguarded; a task with a zero gradient here never conflicts (its dot
  products are 0), so no division by zero can occur.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.methods.task_gradients import SurgeryMethod


def pcgrad_coefficients(gram: np.ndarray, orders: Sequence[Sequence[int]]) -> np.ndarray:
    """C with g_i^PC = Σ_k C_ik g_k (Yu et al. Algorithm 1), from G_ij = g_i · g_j.

    `orders[i]`: the tasks j ≠ i in the order they are visited for i. Only row i of C changes
    while task i is processed, and only the original g_j are projected on: C_ij −= (C_i·G_j)/G_jj.
    """
    gram = np.asarray(gram, dtype=np.float64)
    c = np.eye(len(gram))
    for i, order in enumerate(orders):
        for j in order:
            dot = float(c[i] @ gram[:, j])  # g_i^PC · g_j
            if dot < 0.0 and gram[j, j] > 0.0:
                c[i, j] -= dot / gram[j, j]
    return c


class PCGrad(SurgeryMethod):
    name = "pcgrad"

    def combine(self, gram: np.ndarray, idx: list[int]) -> tuple[np.ndarray, dict[str, Any]]:
        orders = self.orders(len(idx))
        c = pcgrad_coefficients(gram, orders)
        # conflicting (i, j) pairs of the original gradients, each unordered pair once
        iu = np.triu_indices(len(idx), 1)
        return c, {"conflicts": int((gram[iu] < 0).sum())}

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "projection": "g_i -= (g_i.g_j / |g_j|^2) g_j if g_i.g_j < 0, g_j original",
            "order": "random permutation of the other tasks per task (own generator)",
        }
