"""Per-TLP gradient cosine diagnostics: known values, and no side effects on training."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from pipeline.analysis import (
    CountSketch,
    gradient_summaries,
    shared_parameters,
    stream_seed,
    task_gradient_cosine,
)
from pipeline.engine import BatchStream
from pipeline.records import TLP
from pipeline.tasks import for_task
from tests.meta_helpers import (
    TLPS3,
    batch_of,
    headed_context,
    make_run,
    opposite_labels_context,
    optimizer_state,
    same,
    same_state,
    toy_split,
    trainer,
    weights,
)


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
    opt = optimizer_state(probe.ctx.optimizer)
    assert opt["state"]
    streams = {str(k): s.state_dict() for k, s in probe.ctx.streams.items()}
    rng = torch.get_rng_state()
    for sketch in (0, 64):
        out = task_gradient_cosine(
            probe.model, probe.ctx, probe.ctx.tlps, n_batches=2, sketch=sketch
        )
        assert len(out["pairs"]) == 3 and -1 <= out["mean_pairwise_cosine"] <= 1
        assert len(out["batch_pairs"]) == 3 and out["sketch"] == sketch
    assert same(before, weights(probe.model))
    assert same_state(optimizer_state(probe.ctx.optimizer), opt)
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


# -- per-batch cosines -------------------------------------------------------------------------


def batch_gradients(model, data, tlp, n_batches, batch_size, seed=0):
    """The diagnostic's batch gradients of the encoder, by hand (same streams)."""
    stream = BatchStream(len(data[tlp]), batch_size, stream_seed(seed, "gradcos", tlp))
    params = list(model.encoder.parameters())
    out = []
    for _ in range(n_batches):
        b = batch_of(data[tlp], stream.next())
        grads = torch.autograd.grad(for_task(tlp.task).loss(model(tlp.task, b), b), params)
        out.append(torch.cat([g.reshape(-1) for g in grads]).double())
    return out


def cos(a, b):
    return float(a.dot(b) / (a.norm() * b.norm()))


def test_batch_cosine_and_averaged_cosine_by_hand():
    """pairs: cos of the mean gradients; batch_pairs: the mean of the n² cross-batch cosines."""
    ctx = headed_context()
    n = 3
    out = task_gradient_cosine(ctx.model, ctx.train, n_batches=n, batch_size=4, seed=5)
    g = {t: batch_gradients(ctx.model, ctx.train, t, n, 4, seed=5) for t in ctx.tlps}
    for a, b in itertools.combinations(ctx.tlps, 2):
        mean = cos(torch.stack(g[a]).mean(0), torch.stack(g[b]).mean(0))
        batch = np.mean([cos(x, y) for x in g[a] for y in g[b]])
        assert out["pairs"][f"{a}|{b}"] == pytest.approx(mean, abs=1e-6)
        assert out["batch_pairs"][f"{a}|{b}"] == pytest.approx(batch, abs=1e-6)
    assert out["mean_pairwise_batch_cosine"] == pytest.approx(
        np.mean(list(out["batch_pairs"].values()))
    )
    assert abs(out["mean_pairwise_batch_cosine"] - out["mean_pairwise_cosine"]) > 1e-2


def test_batch_cosine_of_opposite_gradients():
    """Full batches (all 8 examples): at W = 0, A's and B's batch gradients are exact opposites,
    so every cross cosine is −1; batches of 4 differ in their examples, and the mean cross-batch
    cosine is above −1 while the averaged gradients stay opposite."""
    ctx = opposite_labels_context()
    full = task_gradient_cosine(ctx.model, ctx, n_batches=2, batch_size=8)
    assert full["batch_pairs"]["nli/l0|nli/l1"] == pytest.approx(-1.0, abs=1e-6)
    half = task_gradient_cosine(ctx.model, ctx, n_batches=2, batch_size=4)
    assert half["batch_pairs"]["nli/l0|nli/l1"] > -0.9


# -- count sketch ------------------------------------------------------------------------------


class Wide(nn.Module):
    """An encoder of d = 2·(h² + h) coordinates whose activations (batch × h) stay far below d."""

    def __init__(self, h: int, seed: int = 0) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, h))
        self.head = nn.Linear(h, 2)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) / h**0.5)

    def forward(self, task, batch):
        return {"logits": self.head(torch.tanh(self.encoder(batch["x"])))}


def wide_data(h: int, tlps=("nli/l0", "nli/l1", "pa/l0"), n: int = 16):
    g = torch.Generator().manual_seed(1)
    out = {}
    for i, name in enumerate(tlps):
        t = TLP.parse(name)
        x = torch.randn(n, h, generator=g) + 0.5 * i
        out[t] = toy_split(t, {"x": x, "labels": torch.randint(0, 2, (n,), generator=g)})
    return out


def test_sketch_close_to_exact_for_large_k():
    h = 256  # d = 131584 > k = 2**16: buckets do collide
    model, data = Wide(h), wide_data(h)
    d = sum(p.numel() for p in shared_parameters(model))
    assert d > 2**16
    exact = task_gradient_cosine(model, data, n_batches=2, batch_size=4)
    approx = task_gradient_cosine(model, data, n_batches=2, batch_size=4, sketch=2**16)
    for key in ("pairs", "batch_pairs"):
        for pair, value in exact[key].items():
            assert approx[key][pair] == pytest.approx(value, abs=0.05)
            assert approx[key][pair] != value  # really estimated
    small = task_gradient_cosine(model, data, n_batches=2, batch_size=4, sketch=16)
    err = lambda o: max(abs(o["pairs"][p] - exact["pairs"][p]) for p in exact["pairs"])  # noqa: E731
    assert err(approx) < err(small)


def test_sketch_is_exact_for_k_at_least_d(tiny_world, tmp_path):
    """k ≥ d: the bucket of coordinate c is c (injective), so the sketch is the gradient with
    random signs; inner products and every cosine equal the exact ones."""
    t = trainer(tiny_world, make_run("mtl", TLPS3), tmp_path / "a")
    d = sum(p.numel() for p in shared_parameters(t.model))
    exact = task_gradient_cosine(t.model, t.ctx, n_batches=2)
    for k in (d, d + 1000):
        sk = task_gradient_cosine(t.model, t.ctx, n_batches=2, sketch=k)
        for key in ("pairs", "batch_pairs"):
            assert sk[key] == pytest.approx(exact[key], abs=1e-6)


def test_count_sketch_is_unbiased_and_injective_when_k_covers_d():
    g = torch.Generator().manual_seed(0)
    d = 3000
    x, y = torch.randn(d, generator=g), torch.randn(d, generator=g)
    y = y + 0.5 * x
    params = [torch.empty(1000), torch.empty(2000)]

    def parts(v):
        return [v[:1000], v[1000:]]

    true = float(x.double().dot(y.double()))
    est = []
    for seed in range(300):
        cs = CountSketch(32, d, seed)
        (sx, nx), (sy, _) = cs.sketch(parts(x), params), cs.sketch(parts(y), params)
        assert nx == pytest.approx(float(x.double().square().sum()))  # exact norms
        est.append(float(sx.dot(sy)))
    se = np.std(est) / np.sqrt(len(est))
    assert abs(np.mean(est) - true) < 4 * se
    assert np.std(est) > 0.05 * abs(true)  # k = 32 ≪ d: a real estimate, not exact
    cs = CountSketch(d, d, 7)
    (sx, _), (sy, _) = cs.sketch(parts(x), params), cs.sketch(parts(y), params)
    assert float(sx.dot(sy)) == pytest.approx(true, rel=1e-12)
    assert sorted(cs.hashes(0, d)[0].tolist()) == list(range(d))  # injective
    assert set(cs.hashes(0, d)[1].tolist()) == {-1.0, 1.0}


class Allocations(TorchDispatchMode):
    """The largest tensor any op produces while active (forward, backward, hashing, sketching)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_sketch_never_builds_a_flat_gradient():
    """No op of the sketch path produces a tensor of the encoder's size d (the largest are one
    parameter's gradient and k buckets); the exact path does (the probe sees it). What is kept per
    TLP is two k-vectors."""
    h, k = 64, 256
    model, data = Wide(h), wide_data(h)
    d = sum(p.numel() for p in shared_parameters(model))
    largest_param = max(p.numel() for p in shared_parameters(model))
    assert largest_param < d / 2
    with Allocations() as probe:
        summaries = gradient_summaries(model, data, list(data), 2, 4, sketch=k)
    assert probe.largest <= max(largest_param, k) < d
    for s in summaries.values():
        assert s.mean.shape == (k,) and s.unit_mean.shape == (k,)
    with Allocations() as probe:
        exact = gradient_summaries(model, data, list(data), 2, 4)
    assert probe.largest >= d
    assert all(s.mean.shape == (d,) for s in exact.values())


def test_sketch_is_deterministic():
    h = 64
    model, data = Wide(h), wide_data(h)
    a = task_gradient_cosine(model, data, n_batches=2, batch_size=4, sketch=128, seed=3)
    b = task_gradient_cosine(model, data, n_batches=2, batch_size=4, sketch=128, seed=3)
    assert a == b
    c = task_gradient_cosine(model, data, n_batches=2, batch_size=4, sketch=128, seed=4)
    assert c["pairs"] != a["pairs"]  # another seed: other batches and another hash
    with pytest.raises(ValueError, match="sketch"):
        task_gradient_cosine(model, data, sketch=-1)


# -- mean task loss (Lee et al. Fig. 7a) -------------------------------------------------------

#: `task_gradient_cosine(headed_context().model, .train, n_batches=3, batch_size=4, seed=5)` as
#: computed by the code before `mean_task_loss` existed (exact and sketch=64)
BEFORE = {
    0: {
        "mean_pairwise_cosine": 0.04368064579548229,
        "pairs": {
            "nli/l0|nli/l1": 0.03770238829536093,
            "nli/l0|pa/l0": 0.18539695830511338,
            "nli/l1|pa/l0": -0.09205740921402743,
        },
        "mean_pairwise_batch_cosine": 0.07110857735759989,
        "batch_pairs": {
            "nli/l0|nli/l1": 0.021328853531118835,
            "nli/l0|pa/l0": 0.18000698788021624,
            "nli/l1|pa/l0": 0.011989890661464603,
        },
    },
    64: {
        "mean_pairwise_cosine": 0.04368064543230247,
        "pairs": {
            "nli/l0|nli/l1": 0.03770239851743851,
            "nli/l0|pa/l0": 0.18539694639513785,
            "nli/l1|pa/l0": -0.09205740861566895,
        },
        "mean_pairwise_batch_cosine": 0.07110858632990742,
        "batch_pairs": {
            "nli/l0|nli/l1": 0.02132885797832882,
            "nli/l0|pa/l0": 0.18000700156577346,
            "nli/l1|pa/l0": 0.011989899445620003,
        },
    },
}


@pytest.mark.parametrize("sketch", [0, 64])
def test_mean_task_loss_is_the_loss_of_the_diagnostic_batches(sketch):
    """`mean_task_loss` is ctx.loss averaged over the TLPs' diagnostic batches (same stream, same
    weights), and adding it changed none of the other numbers."""
    ctx = headed_context()
    n = 3
    out = task_gradient_cosine(
        ctx.model, ctx.train, n_batches=n, batch_size=4, seed=5, sketch=sketch
    )
    assert set(out) == {*BEFORE[sketch], "mean_task_loss", "tlps", "n_batches", "sketch"}
    for key, want in BEFORE[sketch].items():
        if isinstance(want, dict):
            assert out[key].keys() == want.keys()
            for pair, v in want.items():
                assert out[key][pair] == pytest.approx(v, rel=1e-9, abs=1e-12), (key, pair)
        else:
            assert out[key] == pytest.approx(want, rel=1e-9, abs=1e-12), key
    ctx.model.eval()  # the diagnostic's batches are drawn with dropout off
    losses = []
    with torch.no_grad():
        for t in ctx.tlps:
            stream = BatchStream(len(ctx.train[t]), 4, stream_seed(5, "gradcos", t))
            losses += [float(ctx.loss(t, batch_of(ctx.train[t], stream.next()))) for _ in range(n)]
    assert len(losses) == 3 * n
    assert out["mean_task_loss"] == pytest.approx(float(np.mean(losses)), rel=1e-12)
    assert out["mean_task_loss"] > 0
