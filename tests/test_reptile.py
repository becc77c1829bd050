"""Reptile and Sequential Reptile: exact identities, hand-computed meta-steps, resume, options."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from pipeline.config import load_params, validate
from pipeline.engine import BatchStream
from pipeline.errors import ConfigError
from pipeline.methods.mtl import MTL
from pipeline.methods.reptile import Reptile
from pipeline.methods.seq_reptile import SequentialReptile
from pipeline.sampling import CategoricalSampler, temperature_probs
from pipeline.tasks import for_task
from tests.conftest import REPO
from tests.meta_helpers import (
    TLPS3,
    Killed,
    batch_of,
    headed_context,
    kill_at,
    make_run,
    quadratic_context,
    same,
    trainer,
    weights,
)


def seeded(fn, seed: int):
    """Run a step with the dropout RNG at a given state, so two trainers see the same masks."""
    torch.manual_seed(seed)
    return fn()


# -- identities on the tiny BERT -----------------------------------------------------------


def test_reptile_m1_k1_beta1_is_one_optimizer_step(tiny_world, tmp_path):
    """θ + 1·(θ_1 − θ) with one trajectory of one step is that optimizer step, bit for bit."""
    stl = trainer(tiny_world, make_run("stl", ["ner/l0"]), tmp_path / "a")
    rep = trainer(tiny_world, make_run("reptile", ["ner/l0"], m=1, k=1, beta=1.0), tmp_path / "b")
    assert same(weights(stl.model), weights(rep.model))
    seeded(stl.method.step, 0)
    seeded(rep.method.step, 0)
    assert same(weights(stl.model), weights(rep.model))
    assert rep.ctx.inner_steps_done == 1


def test_reptile_m1_k1_beta1_equals_mtl_over_several_steps(tiny_world, tmp_path):
    """Same generator (seed + 1), same draws: Reptile(1, 1, 1) is MTL, step for step."""
    mtl = trainer(tiny_world, make_run("mtl", TLPS3, temperature=2.0), tmp_path / "a")
    rep = trainer(
        tiny_world, make_run("reptile", TLPS3, m=1, k=1, beta=1.0, temperature=2.0), tmp_path / "b"
    )
    for i in range(5):
        a, b = seeded(mtl.method.step, i), seeded(rep.method.step, i)
        assert a["tlps"] == b["tlps"]
        assert same(weights(mtl.model), weights(rep.model))


def test_beta_zero_leaves_theta_unchanged(tiny_world, tmp_path):
    rep = trainer(tiny_world, make_run("reptile", TLPS3, m=3, k=2, beta=0.0), tmp_path / "b")
    before = weights(rep.model)
    rep.method.step()
    assert same(before, weights(rep.model))
    assert rep.ctx.inner_steps_done == 6
    assert rep.ctx.optimizer.state  # the inner steps did happen (AdamW has moments)


def test_beta_half_is_lerp_of_theta_and_theta_1(tiny_world, tmp_path):
    """β = 0.5, m = 1: the result is lerp(θ, θ_1, 0.5) with θ_1 from a β = 1 run."""
    full = trainer(tiny_world, make_run("reptile", ["qa/l0"], m=1, k=2, beta=1.0), tmp_path / "a")
    half = trainer(tiny_world, make_run("reptile", ["qa/l0"], m=1, k=2, beta=0.5), tmp_path / "b")
    theta = weights(half.model)
    seeded(full.method.step, 0)
    seeded(half.method.step, 0)
    theta_1, got = weights(full.model), weights(half.model)
    expected = {k: torch.lerp(theta[k], theta_1[k], 0.5) for k in theta}
    assert same(expected, got)
    assert not same(theta, got)


def test_seq_reptile_eta1_equals_mtl_step_for_step(tiny_world, tmp_path):
    """η = 1, shared AdamW state, MTL's generator: S meta-steps of K are K·S MTL steps."""
    K, S = 3, 3
    mtl = trainer(tiny_world, make_run("mtl", TLPS3, temperature=2.0, steps=K * S), tmp_path / "a")
    seq = trainer(
        tiny_world,
        make_run("seq_reptile", TLPS3, inner_steps=K, eta=1.0, temperature=2.0, steps=S),
        tmp_path / "b",
    )
    for i in range(S):
        torch.manual_seed(i)  # one dropout stream for K MTL steps and for one meta-step
        drawn = [mtl.method.step()["tlps"][0] for _ in range(K)]
        logs = seeded(seq.method.step, i)
        assert logs["tlp_counts"] == {t: drawn.count(t) for t in sorted(set(drawn))}
        assert same(weights(mtl.model), weights(seq.model))
    assert mtl.ctx.optimizer.param_groups[0]["lr"] == seq.ctx.optimizer.param_groups[0]["lr"]


def test_seq_reptile_eta_below_one_differs_from_mtl(tiny_world, tmp_path):
    mtl = trainer(tiny_world, make_run("mtl", TLPS3, temperature=2.0), tmp_path / "a")
    seq = trainer(
        tiny_world,
        make_run("seq_reptile", TLPS3, inner_steps=2, eta=0.1, temperature=2.0),
        tmp_path / "b",
    )
    theta = weights(seq.model)
    torch.manual_seed(0)
    for _ in range(2):
        mtl.method.step()
    seeded(seq.method.step, 0)
    theta_k, got = weights(mtl.model), weights(seq.model)
    assert same({k: torch.lerp(theta[k], theta_k[k], 0.1) for k in theta}, got)


# -- hand-computed meta-steps on ½(w − c)² -------------------------------------------------


def test_reptile_by_hand_two_tlps_k2():
    """SGD lr ½ from w = 0: two steps towards c give w = ¾c. θ_A = 0.75, θ_B = 2.25, mean 1.5,
    β = ½ → 0.75."""
    ctx = quadratic_context({"nli/a": 1.0, "nli/b": 3.0}, lr=0.5)
    method = Reptile(ctx, {**ctx.params, "m": 2, "k": 2, "beta": 0.5, "replacement": False})
    logs = method.step()
    assert sorted(logs["tlps"]) == ["nli/a", "nli/b"]
    assert ctx.model.w.item() == 0.75
    # second meta-step from 0.75: θ_A = 0.75 + ¾(1 − 0.75) = 0.9375, θ_B = 0.75 + ¾·2.25 = 2.4375
    method.step()
    assert ctx.model.w.item() == pytest.approx(0.75 + 0.5 * ((0.9375 + 2.4375) / 2 - 0.75))


@pytest.mark.parametrize("policy", ["shared", "reset"])
def test_optimizer_state_shared_vs_reset_by_hand(policy):
    """SGD momentum ½, lr ½, k = 1, from w = 0 (g = w − c, buffer b ← ½b + g, w ← w − ½b):
    first trajectory on c: b = −c, θ = c/2. The second, on c', starts from 0 with
    shared: b = −c/2 − c' (θ' = c/4 + c'/2) | reset: b = −c' (θ' = c'/2)."""
    ctx = quadratic_context({"nli/a": 1.0, "nli/b": 3.0}, lr=0.5, momentum=0.5)
    method = Reptile(
        ctx,
        {
            **ctx.params,
            "m": 2,
            "k": 1,
            "beta": 1.0,
            "replacement": False,
            "optimizer_state": policy,
        },
    )
    first, second = method.step()["tlps"]
    c = {"nli/a": 1.0, "nli/b": 3.0}
    theta_1 = c[first] / 2
    theta_2 = c[first] / 4 + c[second] / 2 if policy == "shared" else c[second] / 2
    assert ctx.model.w.item() == (theta_1 + theta_2) / 2
    assert method.options()["optimizer_state"] == policy


def test_seq_reptile_by_hand():
    """K = 2 steps of SGD lr ½ towards c = 1 from φ = 0: θ_K = 0.75; η = 0.1 → φ = 0.075."""
    ctx = quadratic_context({"nli/a": 1.0}, lr=0.5)
    method = SequentialReptile(ctx, {**ctx.params, "inner_steps": 2, "eta": 0.1})
    method.step()
    assert ctx.model.w.item() == pytest.approx(0.075, abs=1e-7)
    method.step()  # from 0.075: θ_K = 0.075 + ¾(1 − 0.075) = 0.76875
    assert ctx.model.w.item() == pytest.approx(0.075 + 0.1 * (0.76875 - 0.075), abs=1e-7)


def test_replacement_false_draws_distinct_tlps_and_refuses_m_too_large():
    ctx = quadratic_context({"nli/a": 1.0, "nli/b": 2.0, "nli/c": 3.0}, lr=0.1)
    method = Reptile(ctx, {**ctx.params, "m": 3, "k": 1, "replacement": False})
    for _ in range(4):
        assert sorted(method.step()["tlps"]) == ["nli/a", "nli/b", "nli/c"]
    with pytest.raises(ConfigError, match="without replacement"):
        Reptile(ctx, {**ctx.params, "m": 4, "replacement": False})


def test_sampling_options_q_temperature_and_sizes():
    ctx = quadratic_context({"nli/a": 1.0, "nli/b": 2.0}, lr=0.1)
    q = SequentialReptile(ctx, {**ctx.params, "q": 0.2}).options()
    t = SequentialReptile(ctx, {**ctx.params, "temperature": 5.0}).options()
    assert q["probs"] == t["probs"] and q["temperature"] == 5.0 and t["q"] == pytest.approx(0.2)
    assert SequentialReptile(ctx, dict(ctx.params)).options()["temperature"] == 5.0  # paper q=1/5
    with pytest.raises(ConfigError, match="not both"):
        SequentialReptile(ctx, {**ctx.params, "q": 0.2, "temperature": 5.0})


@pytest.mark.parametrize(
    "unit, expected", [("examples", [0.25, 0.75]), ("batches", [2 / 9, 7 / 9])]
)
def test_sampling_sizes_examples_vs_batches(unit, expected):
    """10 and 30 examples in batches of 4: 2 and 7 (full) batches."""
    ctx = quadratic_context(
        {"nli/a": 1.0, "nli/b": 2.0}, lr=0.1, sizes={"nli/a": 10, "nli/b": 30}, batch_size=4
    )
    for cls in (Reptile, SequentialReptile):
        opts = cls(ctx, {**ctx.params, "temperature": 1.0, "sampling_sizes": unit}).options()
        assert opts["sampling_sizes"] == unit
        assert list(opts["probs"].values()) == pytest.approx(expected, abs=1e-6)


# -- the trainer: schedule sizing, resume, recorded options ------------------------------


def test_schedule_is_sized_in_inner_steps(tiny_world, tmp_path):
    run = make_run("reptile", TLPS3, m=2, k=3, steps=4, warmup_steps=2, schedule="linear")
    assert Reptile.inner_steps_per_step(run.params) == 6
    assert SequentialReptile.inner_steps_per_step({"inner_steps": 7}) == 7
    t = trainer(tiny_world, run, tmp_path / "a")
    t.method.step()
    # 6 of 24 inner steps done: linear factor (24 − 6) / (24 − 2)
    assert t.ctx.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 18 / 22)


RESUMABLE = {
    "reptile": dict(m=2, k=2, beta=0.5),
    "reptile-reset-norepl": dict(m=2, k=1, optimizer_state="reset", replacement=False),
    "seq_reptile": dict(inner_steps=3, eta=0.5),
    "reptile-multidds": dict(
        m=2, k=1, sampler="multidds", multidds={"update_every": 2, "lr": 0.5, "dev": "all"}
    ),
    "seq_reptile-multidds-faithful": dict(
        inner_steps=2,
        eta=0.5,
        sampler="multidds",
        multidds={
            "update_every": 3,
            "lr": 0.5,
            "dev": "lang:l0",
            "reward": "faithful",
            "reward_params": "all",
            "dev_reduce": "mean-cosine",
        },
    ),
    "reptile-multidds-options": dict(
        m=2,
        k=1,
        sampler="multidds",
        multidds={
            "update_every": 2,
            "dev": "all",
            "reward_params": "all",
            "dev_reduce": "mean-cosine",
        },
    ),
    "mtl-tasks2": dict(tasks_per_step=2, temperature=2.0),
    "mtl-concat-tasks3": dict(tasks_per_step=3, mixing="concat"),
}


@pytest.mark.parametrize("case", list(RESUMABLE))
def test_resume_after_kill_gives_identical_weights(tiny_world, tmp_path, case):
    method = case.split("-")[0]
    run = make_run(method, TLPS3, steps=7, checkpoint_every=2, eval_every=3, **RESUMABLE[case])
    full = trainer(tiny_world, run, tmp_path / "ckpt-full")
    full.fit(tmp_path / "out-full")
    expected = weights(full.model)
    expected_history = json.loads((tmp_path / "out-full" / "history.json").read_text())

    killed = trainer(tiny_world, run, tmp_path / "ckpt")
    kill_at(killed, 6)  # after the checkpoint at step 4, before the one at step 6
    with pytest.raises(Killed):
        killed.fit(tmp_path / "out")
    assert not (tmp_path / "out").exists()

    resumed = trainer(tiny_world, run, tmp_path / "ckpt")
    resumed.fit(tmp_path / "out")
    assert same(expected, weights(resumed.model))
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert history == expected_history  # sampling probabilities and rewards included
    if "multidds" in case:
        assert resumed.method.sampling.dds.psi.tolist() == full.method.sampling.dds.psi.tolist()


def test_options_recorded_in_run_summary(tiny_world, tmp_path):
    run = make_run(
        "reptile",
        TLPS3,
        steps=4,
        m=2,
        k=1,
        beta=0.5,
        replacement=False,
        temperature="inf",
        sampler="multidds",
        multidds={"update_every": 2, "dev": "task:qa", "lr": 0.1},
    )
    summary = trainer(tiny_world, run, tmp_path / "c").fit(tmp_path / "out")
    opts = json.loads((tmp_path / "out" / "summary.json").read_text())["options"]
    assert opts == summary["options"]
    assert {
        k: opts[k]
        for k in (
            "m",
            "k",
            "beta",
            "replacement",
            "optimizer_state",
            "temperature",
            "sampling_sizes",
        )
    } == {
        "m": 2,
        "k": 1,
        "beta": 0.5,
        "replacement": False,
        "optimizer_state": "shared",
        "temperature": "inf",
        "sampling_sizes": "examples",
    }
    assert opts["sampler"] == "multidds" and opts["inner_optimizer"] == "AdamW"
    assert opts["multidds"]["dev_tlps"] == ["qa/l0"] and opts["multidds"]["reward"] == "cosine"
    assert opts["probs"] == {t: pytest.approx(1 / 3) for t in TLPS3}

    seq = make_run("seq_reptile", TLPS3, steps=2, inner_steps=2, q=0.5)
    opts = trainer(tiny_world, seq, tmp_path / "d").fit(tmp_path / "out2")["options"]
    assert opts["inner_steps"] == 2 and opts["eta"] == 0.1 and opts["q"] == 0.5
    assert opts["temperature"] == 2.0 and opts["optimizer_state"] == "shared"
    assert opts["sampler"] == "temperature" and "multidds" not in opts


# -- config schema -------------------------------------------------------------------------


@pytest.fixture()
def cfg():
    return load_params([REPO / "params.yaml"])


def test_config_accepts_meta_methods(cfg):
    cfg = copy.deepcopy(cfg)
    cfg["experiments"]["rep"] = {
        "method": "reptile",
        "steps": 10,
        "m": 4,
        "k": 2,
        "beta": 0.5,
        "replacement": False,
        "optimizer_state": "reset",
        "temperature": "inf",
        "sampling_sizes": "batches",
        "sampler": "multidds",
        "multidds": {
            "update_every": 5,
            "lr": 0.1,
            "dev": "qa/l0",
            "reward": "faithful",
            "reward_params": "all",
            "dev_reduce": "mean-cosine",
        },
    }
    cfg["experiments"]["mtl8"] = {
        "method": "mtl",
        "steps": 3,
        "tasks_per_step": 8,
        "temperature": 5,
    }
    cfg["experiments"]["seq"] = {"method": "seq_reptile", "steps": 3, "inner_steps": 50, "q": 0.2}
    validate(cfg)


@pytest.mark.parametrize(
    "exp, message",
    [
        ({"method": "reptile", "steps": 1, "beta": 1.5}, "experiments.x.beta"),
        ({"method": "reptile", "steps": 1, "m": 0}, "experiments.x.m"),
        ({"method": "reptile", "steps": 1, "optimizer_state": "fresh"}, "optimizer_state"),
        ({"method": "reptile", "steps": 1, "inner_steps": 5}, "inner_steps: unknown key"),
        ({"method": "reptile", "steps": 1, "multidds": {"reward": "dot"}}, "multidds.reward"),
        ({"method": "reptile", "steps": 1, "multidds": {"devs": "all"}}, "multidds.devs"),
        ({"method": "seq_reptile", "steps": 1, "eta": 0}, None),
        ({"method": "seq_reptile", "steps": 1, "q": -1}, "experiments.x.q"),
        ({"method": "seq_reptile", "steps": 1, "m": 3}, "m: unknown key"),
        ({"method": "mtl", "steps": 1, "tasks_per_step": 0}, "tasks_per_step"),
        ({"method": "reptile", "steps": 1, "multidds": {"dev_reduce": "max"}}, "dev_reduce"),
        ({"method": "reptile", "steps": 1, "multidds": {"reward_params": "x"}}, "reward_params"),
    ],
)
def test_config_rejects_bad_meta_keys(cfg, exp, message):
    cfg = copy.deepcopy(cfg)
    cfg["experiments"]["x"] = exp
    if message is None:
        validate(cfg)
        return
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


# -- AdamW by hand on a model with heads ---------------------------------------------------


def hand_run(ctx, model):
    """A hand-written copy of the context's data order: same stream seeds, MTL's generator."""
    streams = {
        t: BatchStream(len(d), ctx.params["batch_size"], i)
        for i, (t, d) in enumerate(ctx.train.items())
    }

    def loss(t):
        b = batch_of(ctx.train[t], streams[t].next())
        return for_task(t.task).loss(model(t.task, b), b)

    return loss


def adamw(model, ctx):
    g = ctx.optimizer.param_groups[0]
    return torch.optim.AdamW(model.parameters(), lr=g["lr"], weight_decay=g["weight_decay"])


@pytest.mark.parametrize("policy", ["reset", "shared"])
def test_seq_reptile_optimizer_state_by_hand(policy):
    """K = 3 AdamW steps, η = 0.5, three meta-steps, against a hand loop that builds a fresh
    torch.optim.AdamW for every trajectory (`reset`) or one for the whole run (`shared`), then
    φ ← lerp(φ, θ_K, η)."""
    K, eta, S = 3, 0.5, 3
    ctx = headed_context()
    model = copy.deepcopy(ctx.model)
    method = SequentialReptile(
        ctx,
        {**ctx.params, "inner_steps": K, "eta": eta, "temperature": 1.0, "optimizer_state": policy},
    )
    loss = hand_run(ctx, model)
    sampler = CategoricalSampler(temperature_probs([8, 12, 16], 1.0), seed=ctx.params["seed"] + 1)
    params = list(model.parameters())
    opt = adamw(model, ctx)
    for _ in range(S):
        phi = [p.detach().clone() for p in params]
        if policy == "reset":
            opt = adamw(model, ctx)
        for _ in range(K):
            loss(ctx.tlps[sampler.draw()]).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            for p, f in zip(params, phi):
                p.copy_(torch.lerp(f, p, eta))
        method.step()
        assert same(weights(model), weights(ctx.model))
    assert ctx.inner_steps_done == K * S


def test_seq_reptile_reset_differs_from_shared():
    out = {}
    for policy in ("reset", "shared"):
        ctx = headed_context()
        m = SequentialReptile(
            ctx, {**ctx.params, "inner_steps": 3, "eta": 0.5, "optimizer_state": policy}
        )
        m.step()
        first = weights(ctx.model)
        m.step()
        out[policy] = first, weights(ctx.model)
    assert same(out["reset"][0], out["shared"][0])  # the first trajectory starts fresh either way
    assert not same(out["reset"][1], out["shared"][1])


# -- MTL with several TLPs per optimizer step ----------------------------------------------


def test_mtl_two_tasks_per_step_by_hand():
    """Each step: two draws of MTL's sampler, one batch each, one AdamW step on (l_a + l_b)/2,
    bit for bit (the gradients are accumulated as ∇(l_a/2) + ∇(l_b/2); halving is exact)."""
    ctx = headed_context()
    model = copy.deepcopy(ctx.model)
    method = MTL(ctx, {**ctx.params, "tasks_per_step": 2, "temperature": 2.0})
    loss = hand_run(ctx, model)
    sampler = CategoricalSampler(temperature_probs([8, 12, 16], 2.0), seed=ctx.params["seed"] + 1)
    opt = adamw(model, ctx)
    for _ in range(4):
        a, b = ctx.tlps[sampler.draw()], ctx.tlps[sampler.draw()]
        la, lb = loss(a), loss(b)
        ((la + lb) / 2).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        logs = method.step()
        assert logs["tlps"] == [str(a), str(b)]
        assert logs["loss"] == pytest.approx((la.item() + lb.item()) / 2, abs=1e-7)
        got, expected = weights(ctx.model), weights(model)
        assert same(got, expected)
    assert ctx.inner_steps_done == 4  # optimizer steps, not batches
    assert MTL.batches_per_step({"tasks_per_step": 2}) == 2
    assert MTL.batches_per_step({}) == 1


def test_mtl_tasks_per_step_groups_the_same_tlp_sequence():
    """n TLPs per step are the next n of the sequence n single steps would use (sample and
    concat); with concat each epoch still visits every TLP's batches once."""
    for mixing in ("sample", "concat"):
        one = MTL(c1 := headed_context(), {**c1.params, "mixing": mixing})
        three = MTL(c3 := headed_context(), {**c3.params, "mixing": mixing, "tasks_per_step": 3})
        singles = [one.step()["tlps"][0] for _ in range(18)]
        grouped = [t for _ in range(6) for t in three.step()["tlps"]]
        assert grouped == singles
        if mixing == "concat":  # 2 + 3 + 4 = 9 batches per epoch
            for epoch in (grouped[:9], grouped[9:]):
                assert sorted(epoch) == sorted(["nli/l0"] * 2 + ["nli/l1"] * 3 + ["pa/l0"] * 4)
            assert three.epoch == 2 and three.pos == 0


def test_mtl_tasks_per_step_options_and_refusals():
    ctx = headed_context()
    opts = MTL(ctx, {**ctx.params, "tasks_per_step": 8, "temperature": 5.0}).options()
    assert opts["tasks_per_step"] == 8 and opts["temperature"] == 5.0
    assert opts["draws"] == "independent (with replacement)"
    assert MTL(ctx, dict(ctx.params)).options()["tasks_per_step"] == 1
    assert MTL(ctx, {**ctx.params, "mixing": "concat"}).options() == {
        "mixing": "concat",
        "tasks_per_step": 1,
    }
    with pytest.raises(ConfigError, match="tasks_per_step"):
        MTL(ctx, {**ctx.params, "tasks_per_step": 0})
    with pytest.raises(ConfigError, match="mixing"):
        MTL(ctx, {**ctx.params, "mixing": "interleave"})


def test_mtl_tasks_per_step_one_is_todays_step(tiny_world, tmp_path):
    """tasks_per_step: 1 (given or default) is the engine's inner step, bit for bit."""
    a = trainer(tiny_world, make_run("mtl", TLPS3, temperature=2.0), tmp_path / "a")
    b = trainer(
        tiny_world, make_run("mtl", TLPS3, temperature=2.0, tasks_per_step=1), tmp_path / "b"
    )
    for i in range(4):
        assert seeded(a.method.step, i) == seeded(b.method.step, i)
        assert same(weights(a.model), weights(b.model))
