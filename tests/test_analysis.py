"""Per-TLP gradient cosine diagnostics: known values, and no side effects on training."""

from __future__ import annotations

import pytest
import torch

from pipeline.analysis import task_gradient_cosine
from pipeline.records import TLP
from tests.meta_helpers import TLPS3, make_run, opposite_labels_context, same, trainer, weights


def test_opposite_and_identical_gradients_by_hand():
    """At W = 0, A (class 0) and B (class 1) on the same inputs have gradients g and −g; a copy
    of A under another name has g. Pairs: (A, B) −1, (A, A') 1, (B, A') −1; mean −1/3."""
    ctx = opposite_labels_context()
    a, b, a2 = TLP("nli", "l0"), TLP("nli", "l1"), TLP("nli", "l2")
    data = {**ctx.train, a2: ctx.train[a]}
    out = task_gradient_cosine(ctx.model, data, [a, b, a2], n_batches=2, batch_size=4)
    assert out["pairs"]["nli/l0|nli/l1"] == pytest.approx(-1.0, abs=1e-6)
    assert out["pairs"]["nli/l0|nli/l2"] == pytest.approx(1.0, abs=1e-6)
    assert out["pairs"]["nli/l1|nli/l2"] == pytest.approx(-1.0, abs=1e-6)
    assert out["mean_pairwise_cosine"] == pytest.approx(-1 / 3, abs=1e-6)


def test_same_data_over_a_full_epoch_has_cosine_one(tiny_world, tmp_path):
    """Different batch orders, same full-epoch mean gradient (24 examples = 3 batches of 8; NLI
    has one label per example, so the mean of batch means is the epoch mean)."""
    t = trainer(tiny_world, make_run("mtl", ["nli/l0"]), tmp_path / "a")
    split = t.ctx.train[TLP("nli", "l0")]
    data = {TLP("nli", "l0"): split, TLP("nli", "l1"): split}
    out = task_gradient_cosine(t.model, data, n_batches=3, batch_size=8)
    assert out["mean_pairwise_cosine"] == pytest.approx(1.0, abs=1e-5)
    partial = task_gradient_cosine(t.model, data, n_batches=1, batch_size=8)
    assert partial["mean_pairwise_cosine"] < 0.9999  # one batch each: different batches


@pytest.mark.parametrize(
    "method, over",
    [("mtl", {}), ("reptile", {"m": 2, "k": 1}), ("seq_reptile", {"inner_steps": 2})],
)
def test_no_side_effects_on_training(tiny_world, tmp_path, method, over):
    """Calling the diagnostic between steps changes nothing: same weights, optimizer state,
    streams and RNG, and the continued run equals a run that never called it."""
    run = make_run(method, TLPS3, **over)
    probe, plain = (
        trainer(tiny_world, run, tmp_path / "a"),
        trainer(tiny_world, run, tmp_path / "b"),
    )
    torch.manual_seed(0)
    probe.method.step()
    before = weights(probe.model)
    opt = str(probe.ctx.optimizer.state_dict())
    streams = {str(k): s.state_dict() for k, s in probe.ctx.streams.items()}
    rng = torch.get_rng_state()
    out = task_gradient_cosine(probe.model, probe.ctx, probe.ctx.tlps, n_batches=2)
    assert len(out["pairs"]) == 3 and -1 <= out["mean_pairwise_cosine"] <= 1
    assert same(before, weights(probe.model))
    assert str(probe.ctx.optimizer.state_dict()) == opt
    assert {str(k): s.state_dict() for k, s in probe.ctx.streams.items()} == streams
    assert torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in probe.model.parameters()) and probe.model.training
    probe.method.step()
    torch.manual_seed(0)
    plain.method.step()
    plain.method.step()
    assert same(weights(probe.model), weights(plain.model))


def test_needs_two_tlps():
    ctx = opposite_labels_context()
    with pytest.raises(ValueError, match="two TLPs"):
        task_gradient_cosine(ctx.model, ctx, [TLP("nli", "l0")])
