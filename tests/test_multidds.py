"""MultiDDS: P = q at the start, the REINFORCE step by hand, rewards with a known sign, logs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pipeline.analysis import stream_seed
from pipeline.engine import BatchStream
from pipeline.errors import ConfigError
from pipeline.features import load_split_data
from pipeline.methods.reptile import Reptile
from pipeline.methods.seq_reptile import SequentialReptile
from pipeline.multidds import MultiDDS, Rewards, labelled_tensors, resolve_dev
from pipeline.records import TLP
from pipeline.sampling import CategoricalSampler, temperature_from_exponent, temperature_probs
from pipeline.tasks import for_task
from tests.meta_helpers import (
    SETTINGS,
    TLPS3,
    batch_of,
    headed_context,
    make_run,
    opposite_labels_context,
    optimizer_state,
    quadratic_context,
    same,
    same_state,
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
    if mode == "faithful":  # the reference's reward: all parameters (one dev TLP: any reduce)
        cfg["reward_params"] = "all"
    method = Reptile(ctx, {**ctx.params, "m": 1, "k": 1, "sampler": "multidds", "multidds": cfg})
    psi0 = method.sampling.dds.psi.copy()
    logs = method.step()
    assert logs["rewards"]["nli/l0"] > 0 > logs["rewards"]["nli/l1"]
    psi = method.sampling.dds.psi
    assert psi[0] > psi0[0] and psi[1] < psi0[1]
    assert logs["sampling_probs"]["nli/l0"] > 0.5 > logs["sampling_probs"]["nli/l1"]
    assert method.sampling.sampler.probs == pytest.approx(method.sampling.dds.probs(), abs=1e-15)


REWARD_SETTINGS = [
    ("cosine", "encoder", "mean-gradient"),
    ("cosine", "encoder", "mean-cosine"),
    ("cosine", "all", "mean-gradient"),
    ("cosine", "all", "mean-cosine"),
    ("faithful", "all", "mean-cosine"),
]


def test_rewards_leave_training_state_untouched(tiny_world, tmp_path):
    run = make_run("reptile", TLPS3, m=2, k=1)
    t = trainer(tiny_world, run, tmp_path / "a")
    t.method.step()
    before = weights(t.model)
    opt = optimizer_state(t.ctx.optimizer)
    assert opt["state"]  # AdamW moments and step counts exist: the comparison is not vacuous
    streams = {str(k): s.state_dict() for k, s in t.ctx.streams.items()}
    rng = torch.get_rng_state()
    for mode, params, reduce in REWARD_SETTINGS:
        r = Rewards(t.ctx, t.ctx.tlps, mode, 0, reward_params=params, dev_reduce=reduce)()
        assert r.shape == (3,) and np.all(np.abs(r) <= 1 + 1e-9)
    assert same(before, weights(t.model))
    assert all(p.grad is None for p in t.model.parameters())
    assert same_state(optimizer_state(t.ctx.optimizer), opt)
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


# -- reward options, by hand on a model with heads ---------------------------------------------

NLI0, NLI1, PA0 = TLP("nli", "l0"), TLP("nli", "l1"), TLP("pa", "l0")


def hand_gradient(ctx, tlp, split, tag, reward_params, seed=0):
    """d loss / d params on the first batch of the reward stream `tag` of `tlp`, by autograd."""
    model = ctx.model
    params = (
        list(model.encoder.parameters()) if reward_params == "encoder" else list(model.parameters())
    )
    idx = BatchStream(len(split), ctx.params["batch_size"], stream_seed(seed, tag, tlp)).next()
    batch = batch_of(split, idx)
    loss = for_task(tlp.task).loss(model(tlp.task, batch), batch)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]
    ).double()


def cos(a, b):
    return float(a.dot(b) / (a.norm() * b.norm()))


def hand_rewards(ctx, dev_tlps, reward_params, dev_reduce, seed=0):
    g_dev = [hand_gradient(ctx, d, ctx.dev[d], "dds-dev", reward_params, seed) for d in dev_tlps]
    out = []
    for t in ctx.tlps:
        g = hand_gradient(ctx, t, ctx.train[t], "dds-train", reward_params, seed)
        if dev_reduce == "mean-gradient":
            out.append(cos(torch.stack(g_dev).mean(0), g))
        else:
            out.append(sum(cos(gd, g) for gd in g_dev) / len(g_dev))
    return np.array(out)


@pytest.mark.parametrize("reward_params", ["encoder", "all"])
@pytest.mark.parametrize("dev_reduce", ["mean-gradient", "mean-cosine"])
@pytest.mark.parametrize("dev", [[NLI1, PA0], [PA0]])
def test_cosine_reward_options_by_hand(reward_params, dev_reduce, dev):
    ctx = headed_context()
    got = Rewards(ctx, dev, "cosine", 0, reward_params=reward_params, dev_reduce=dev_reduce)()
    assert got == pytest.approx(hand_rewards(ctx, dev, reward_params, dev_reduce), abs=1e-6)


def test_dev_reduce_differs_with_two_dev_tlps_and_coincides_with_one():
    ctx = headed_context()
    for params in ("encoder", "all"):
        two = [
            Rewards(ctx, [NLI1, PA0], "cosine", 0, reward_params=params, dev_reduce=r)()
            for r in ("mean-gradient", "mean-cosine")
        ]
        assert np.abs(two[0] - two[1]).min() > 1e-3
        one = [
            Rewards(ctx, [PA0], "cosine", 0, reward_params=params, dev_reduce=r)()
            for r in ("mean-gradient", "mean-cosine")
        ]
        assert one[0].tolist() == one[1].tolist()  # the same number, bit for bit


def test_reward_params_all_differs_from_encoder():
    """The heads enter `all`: nli/l0 vs dev nli/l1 share the nli head (extra shared direction);
    vs dev pa/l0 the heads are disjoint (same dot product, larger norms)."""
    ctx = headed_context()
    for dev in ([NLI1], [PA0], [NLI1, PA0]):
        enc, full = (Rewards(ctx, dev, "cosine", 0, reward_params=p)() for p in ("encoder", "all"))
        assert np.abs(enc - full).min() > 1e-3
    enc, full = (Rewards(ctx, [PA0], "cosine", 0, reward_params=p)() for p in ("encoder", "all"))
    assert abs(full[0]) < abs(enc[0])  # nli/l0 against pa/l0: disjoint heads only add to norms


def test_reward_defaults_are_todays_and_recorded():
    """Defaults: cosine over the encoder with the mean dev gradient; faithful: its own (all,
    mean-cosine). Options record what was used."""
    ctx = headed_context()
    default = Rewards(ctx, [NLI1, PA0], "cosine", 0)
    assert (default.reward_params, default.dev_reduce) == ("encoder", "mean-gradient")
    explicit = Rewards(ctx, [NLI1, PA0], "cosine", 0, "encoder", "mean-gradient")
    assert default().tolist() == explicit().tolist()
    faithful = Rewards(ctx, [NLI1, PA0], "faithful", 0)
    assert faithful.options()["reward_params"] == "all"
    assert faithful.options()["dev_reduce"] == "mean-cosine"
    cfg = {"update_every": 1, "dev": "all", "reward_params": "all", "dev_reduce": "mean-cosine"}
    method = Reptile(ctx, {**ctx.params, "m": 1, "k": 1, "sampler": "multidds", "multidds": cfg})
    opts = method.options()["multidds"]
    assert opts["reward"] == "cosine" and opts["reward_params"] == "all"
    assert opts["dev_reduce"] == "mean-cosine" and opts["update_every"] == 1
    opts = Reptile(ctx, {**ctx.params, "sampler": "multidds"}).options()["multidds"]
    assert (opts["reward_params"], opts["dev_reduce"], opts["update_every"]) == (
        "encoder",
        "mean-gradient",
        10,
    )


def test_faithful_refuses_what_it_cannot_honour():
    """faithful averages per-(train, dev) pair cosines of AdamW displacements over all
    parameters: `encoder` is refused, `mean-gradient` too with several dev TLPs (with one it is
    the same number)."""
    ctx = headed_context()
    with pytest.raises(ConfigError, match="reward_params: all"):
        Rewards(ctx, [PA0], "faithful", 0, reward_params="encoder")
    with pytest.raises(ConfigError, match="dev_reduce: mean-cosine"):
        Rewards(ctx, [NLI1, PA0], "faithful", 0, reward_params="all", dev_reduce="mean-gradient")
    one = Rewards(ctx, [PA0], "faithful", 0, reward_params="all", dev_reduce="mean-gradient")()
    ref = Rewards(ctx, [PA0], "faithful", 0, reward_params="all", dev_reduce="mean-cosine")()
    assert one.tolist() == ref.tolist()
    # through a method: unset, both take the mode's own value; set against it, a clear error
    method = Reptile(ctx, {**ctx.params, "sampler": "multidds", "multidds": {"reward": "faithful"}})
    opts = method.options()["multidds"]
    assert (opts["reward_params"], opts["dev_reduce"]) == ("all", "mean-cosine")
    with pytest.raises(ConfigError, match="faithful"):
        Reptile(
            ctx,
            {
                **ctx.params,
                "sampler": "multidds",
                "multidds": {"reward": "faithful", "reward_params": "encoder"},
            },
        )
    for bad in ({"reward_params": "heads"}, {"dev_reduce": "median"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            Rewards(ctx, [PA0], "cosine", 0, **bad)


@pytest.mark.parametrize("dev_reduce", ["mean-gradient", "mean-cosine"])
def test_multidds_with_several_dev_tlps_by_hand(dev_reduce):
    """One meta-step (m = k = 1), then the rewards against D_dev = all three TLPs, computed by
    hand at the new θ, and ψ = log q + lr·(R − q·ΣR)."""
    ctx = headed_context()
    lr = 0.5
    cfg = {"update_every": 1, "lr": lr, "dev": "all", "dev_reduce": dev_reduce}
    method = Reptile(
        ctx,
        {**ctx.params, "m": 1, "k": 1, "temperature": 1.0, "sampler": "multidds", "multidds": cfg},
    )
    q = np.array([8, 12, 16]) / 36
    assert method.sampling.dds.probs() == pytest.approx(q, abs=1e-12)
    logs = method.step()
    r = hand_rewards(ctx, ctx.tlps, "encoder", dev_reduce)
    assert list(logs["rewards"].values()) == pytest.approx(r, abs=1e-6)
    psi = np.log(q) + lr * (r - q * r.sum())
    assert method.sampling.dds.psi == pytest.approx(psi, abs=1e-6)
    p = np.exp(psi) / np.exp(psi).sum()
    assert method.sampling.sampler.probs == pytest.approx(p, abs=1e-6)
    assert list(logs["sampling_probs"].values()) == pytest.approx(p, abs=1e-6)
