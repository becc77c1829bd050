"""Temperature sampling: hand-computed distributions and reproducible draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.sampling import CategoricalSampler, temperature_probs


def test_tau_one_is_proportional_to_sizes():
    assert np.allclose(temperature_probs([100, 300, 600], 1.0), [0.1, 0.3, 0.6])


def test_tau_infinity_is_uniform():
    assert np.allclose(temperature_probs([1, 1000, 5], math.inf), [1 / 3] * 3)


def test_tau_two_by_hand():
    # q = (0.2, 0.8); q^(1/2) = (0.4472, 0.8944); normalised: (1/3, 2/3)
    assert np.allclose(temperature_probs([20, 80], 2.0), [1 / 3, 2 / 3])


def test_higher_tau_flattens():
    p1, p5 = temperature_probs([10, 90], 1.0), temperature_probs([10, 90], 5.0)
    assert p5[0] > p1[0] and p5[1] < p1[1]


def test_bad_sizes():
    with pytest.raises(ValueError):
        temperature_probs([0, 3], 1.0)


def test_sampler_state_round_trip():
    a = CategoricalSampler([0.2, 0.3, 0.5], seed=4)
    [a.draw() for _ in range(5)]
    state = a.state_dict()
    rest = [a.draw() for _ in range(20)]
    b = CategoricalSampler([1.0, 0.0, 0.0], seed=999)
    b.load_state_dict(state)
    assert [b.draw() for _ in range(20)] == rest


def test_empirical_frequencies_follow_probs():
    s = CategoricalSampler(temperature_probs([100, 300, 600], 1.0), seed=0)
    counts = np.bincount([s.draw() for _ in range(20000)], minlength=3) / 20000
    assert np.allclose(counts, [0.1, 0.3, 0.6], atol=0.015)
