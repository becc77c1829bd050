"""MultiDDS: P = q at the start, the REINFORCE step by hand, rewards with a known sign, logs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.features import load_split_data
from pipeline.methods.reptile import Reptile
from pipeline.methods.seq_reptile import SequentialReptile
from pipeline.multidds import MultiDDS, Rewards, labelled_tensors, resolve_dev
from pipeline.records import TLP
from pipeline.sampling import CategoricalSampler, temperature_from_exponent, temperature_probs
from tests.meta_helpers import (
    SETTINGS,
    TLPS3,
    make_run,
    opposite_labels_context,
    quadratic_context,
    same,
    trainer,
    weights,
)

A, B = TLP("nli", "l0"), TLP("nli", "l1")


def test_init_probs_are_q():
    q = [0.1, 0.3, 0.6]
    assert np.allclose(MultiDDS(q, lr=0.1).probs(), q, atol=1e-15)
    assert np.allclose(MultiDDS([1, 3, 6], lr=0.1).probs(), q, atol=1e-15)  # normalised


@pytest.mark.parametrize("cls", [Reptile, SequentialReptile])
def test_method_starts_sampling_at_q(cls):
    sizes = {"nli/a": 10, "nli/b": 30, "nli/c": 60}
    ctx = quadratic_context(dict.fromkeys(sizes, 0.0), lr=0.1, sizes=sizes, with_dev=True)
    method = cls(ctx, {**ctx.params, "temperature": 1.0, "sampler": "multidds"})
    assert method.sampling.sampler.probs == pytest.approx([0.1, 0.3, 0.6], abs=1e-12)
    assert method.sampling.dds.probs() == pytest.approx([0.1, 0.3, 0.6], abs=1e-12)


def test_exponent_q_is_inverse_temperature():
    assert temperature_from_exponent(0.2) == pytest.approx(5.0)
    assert math.isinf(temperature_from_exponent(0.0))
    sizes = [10, 30, 60]
    n = np.asarray(sizes, dtype=float) ** 0.2  # Lee et al.: p ∝ N^q
    assert temperature_probs(sizes, temperature_from_exponent(0.2)) == pytest.approx(n / n.sum())


def test_set_probs_keeps_the_generator_stream():
    a, b = CategoricalSampler([0.5, 0.5], seed=1), CategoricalSampler([0.5, 0.5], seed=1)
    a.set_probs([0.5, 0.5])
    assert [a.draw() for _ in range(30)] == [b.draw() for _ in range(30)]
    a.set_probs([1.0, 0.0])
    assert {a.draw() for _ in range(30)} == {0}
    with pytest.raises(ValueError):
        a.set_probs([0.7, 0.7])


def test_reinforce_step_by_hand():
    """dψ_j = lr·(R_j − P_j ΣR): P = (½, ½), R = (1, −1), lr 0.1 → ψ = log ½ ± 0.1."""
    dds = MultiDDS([0.5, 0.5], lr=0.1)
    p = dds.update([1.0, -1.0])
    assert dds.psi == pytest.approx([math.log(0.5) + 0.1, math.log(0.5) - 0.1])
    assert p[0] == pytest.approx(1 / (1 + math.exp(-0.2)))
    # P = (0.2, 0.3, 0.5), R = (1, 0, 0): dψ = 0.5·(0.8, −0.3, −0.5)
    dds = MultiDDS([0.2, 0.3, 0.5], lr=0.5)
    before = dds.psi.copy()
    dds.update([1.0, 0.0, 0.0])
    assert dds.psi - before == pytest.approx([0.4, -0.15, -0.25])


def test_state_round_trip():
    dds = MultiDDS([0.2, 0.8], lr=0.3)
    dds.update([0.5, -0.2])
    other = MultiDDS([0.5, 0.5], lr=0.3)
    other.load_state_dict(json.loads(json.dumps(dds.state_dict())))
    assert other.probs().tolist() == dds.probs().tolist()


@pytest.mark.parametrize("mode", ["cosine", "faithful"])
def test_rewards_have_the_known_sign(mode):
    """A and B have opposite labels, dev = A's data: g_A ∥ g_dev, g_B = −g_dev at W = 0."""
    ctx = opposite_labels_context(lr=1e-3)
    rewards = Rewards(ctx, [A], mode, seed=0)(), Rewards(ctx, [B], mode, seed=0)()
    if mode == "cosine":
        assert rewards[0] == pytest.approx([1.0, -1.0], abs=1e-6)
        assert rewards[1] == pytest.approx([-1.0, 1.0], abs=1e-6)
    else:  # Adam displacements: the sign survives the reference's carried first moment
        assert rewards[0][0] > 0.9 and rewards[0][1] < -0.9
        assert rewards[1][0] < -0.9 and rewards[1][1] > 0.9


@pytest.mark.parametrize("mode", ["cosine", "faithful"])
def test_update_moves_psi_toward_the_aligned_tlp(mode):
    ctx = opposite_labels_context(lr=1e-3)
    cfg = {"update_every": 1, "lr": 0.5, "dev": "nli/l0", "reward": mode}
    method = Reptile(ctx, {**ctx.params, "m": 1, "k": 1, "sampler": "multidds", "multidds": cfg})
    psi0 = method.sampling.dds.psi.copy()
    logs = method.step()
    assert logs["rewards"]["nli/l0"] > 0 > logs["rewards"]["nli/l1"]
    psi = method.sampling.dds.psi
    assert psi[0] > psi0[0] and psi[1] < psi0[1]
    assert logs["sampling_probs"]["nli/l0"] > 0.5 > logs["sampling_probs"]["nli/l1"]
    assert method.sampling.sampler.probs == pytest.approx(method.sampling.dds.probs(), abs=1e-15)


def test_rewards_leave_training_state_untouched(tiny_world, tmp_path):
    run = make_run("reptile", TLPS3, m=2, k=1)
    t = trainer(tiny_world, run, tmp_path / "a")
    t.method.step()
    before = weights(t.model)
    opt = json.dumps(str(t.ctx.optimizer.state_dict()))
    streams = {str(k): s.state_dict() for k, s in t.ctx.streams.items()}
    rng = torch.get_rng_state()
    for mode in ("cosine", "faithful"):
        r = Rewards(t.ctx, t.ctx.tlps, mode, seed=0)()
        assert r.shape == (3,) and np.all(np.abs(r) <= 1 + 1e-9)
    assert same(before, weights(t.model))
    assert all(p.grad is None for p in t.model.parameters())
    assert json.dumps(str(t.ctx.optimizer.state_dict())) == opt
    assert {str(k): s.state_dict() for k, s in t.ctx.streams.items()} == streams
    assert torch.equal(rng, torch.get_rng_state())
    assert t.model.training


def test_qa_dev_labels_match_the_training_featurizer(tiny_world, tmp_path):
    t = trainer(tiny_world, make_run("reptile", ["qa/l1"]), tmp_path / "a")
    dev = t.ctx.dev[TLP("qa", "l1")]
    assert "start_positions" not in dev.tensors
    got = labelled_tensors(dev)
    ref = load_split_data(
        TLP("qa", "l1"),
        "dev",
        [tiny_world["prepared"]],
        t.tokenizer,
        t.labels,
        SETTINGS,
        True,
        cache_dir=None,
    )
    for col in ("input_ids", "start_positions", "end_positions"):
        assert torch.equal(got[col], ref.tensors[col])
    assert (got["start_positions"] > 0).any()  # answers do fall inside the windows


def test_resolve_dev_settings():
    pool = [TLP.parse(t) for t in ("nli/l0", "nli/l1", "qa/l0", "ner/l1")]
    assert resolve_dev("all", pool) == pool
    assert resolve_dev("lang:l1", pool) == [TLP("nli", "l1"), TLP("ner", "l1")]
    assert resolve_dev("task:nli", pool) == [TLP("nli", "l0"), TLP("nli", "l1")]
    assert resolve_dev("qa/l0", pool) == [TLP("qa", "l0")]
    for bad in ("qa/l1", "lang:zz", "task:pos"):
        with pytest.raises(ConfigError, match="matches no TLP"):
            resolve_dev(bad, pool)


def test_needs_dev_data():
    ctx = quadratic_context({"nli/a": 1.0, "nli/b": 2.0}, lr=0.1)
    with pytest.raises(Exception, match="dev"):
        Reptile(ctx, {**ctx.params, "sampler": "multidds"})


def test_trainer_logs_probs_and_rewards_over_time(tiny_world, tmp_path):
    run = make_run(
        "reptile",
        TLPS3,
        steps=4,
        m=2,
        k=1,
        temperature=1.0,
        sampler="multidds",
        multidds={"update_every": 2, "lr": 1.0, "dev": "lang:l0"},
    )
    t = trainer(tiny_world, run, tmp_path / "a")
    t.fit(tmp_path / "out")
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert [e["step"] for e in history if "sampling_probs" in e] == [1, 2, 4]
    assert [e["step"] for e in history if "rewards" in e] == [2, 4]
    q = temperature_probs(t.ctx.sizes("examples"), 1.0)
    assert list(history[0]["sampling_probs"].values()) == pytest.approx(list(q))
    for e in history[1::2]:
        assert sum(e["sampling_probs"].values()) == pytest.approx(1.0)
        assert set(e["rewards"]) == set(TLPS3)
        assert all(-1 <= r <= 1 for r in e["rewards"].values())
    assert history[1]["sampling_probs"] != history[0]["sampling_probs"]  # ψ moved
