"""Which TLP next: temperature sampling over dataset sizes (MultiDDS lives in pipeline.multidds).

P(i) ∝ q_i^(1/τ) with q_i the share of TLP i in the pool (Arivazhagan et al. 2019, as used by
Tarunesh et al. 2021 §4.2): τ = 1 is proportional to size, τ = ∞ is uniform. Lee et al. (2022)
write the same family as p_t ∝ N_t^q, i.e. q = 1/τ (`temperature_from_exponent`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def temperature_probs(sizes: Sequence[float], tau: float) -> np.ndarray:
    """P(i) ∝ (n_i / Σn)^(1/τ); τ = inf gives the uniform distribution."""
    q = np.asarray(sizes, dtype=np.float64)
    if q.ndim != 1 or len(q) == 0 or (q <= 0).any():
        raise ValueError(f"sizes must be positive, got {list(sizes)}")
    if math.isinf(tau):
        return np.full(len(q), 1.0 / len(q))
    q = q / q.sum()
    w = q ** (1.0 / tau)
    return w / w.sum()


def temperature_from_exponent(q: float) -> float:
    """τ for p ∝ N^q (Sequential Reptile's notation): τ = 1/q, and q = 0 (uniform) is τ = ∞."""
    if q < 0:
        raise ValueError(f"exponent q must be >= 0, got {q}")
    return math.inf if q == 0 else 1.0 / q


class CategoricalSampler:
    """Draws indices from a fixed distribution with its own generator (state is checkpointed)."""

    def __init__(self, probs: Sequence[float], seed: int) -> None:
        self.probs = np.asarray(probs, dtype=np.float64)
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def set_probs(self, probs: Sequence[float]) -> None:
        """Change the distribution (MultiDDS); the generator's stream continues unchanged."""
        p = np.asarray(probs, dtype=np.float64)
        if p.shape != self.probs.shape or (p < 0).any() or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"expected {len(self.probs)} probabilities summing to 1, got {p}")
        self.probs = p / p.sum()

    def draw(self) -> int:
        return int(self.rng.choice(len(self.probs), p=self.probs))

    def draw_many(self, m: int, replace: bool = True) -> list[int]:
        return [
            int(i) for i in self.rng.choice(len(self.probs), size=m, replace=replace, p=self.probs)
        ]

    def state_dict(self) -> dict[str, Any]:
        return {"probs": self.probs.tolist(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.probs = np.asarray(state["probs"], dtype=np.float64)
        self.rng.bit_generator.state = state["rng"]
