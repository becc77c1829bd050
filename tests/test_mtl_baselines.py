"""PCGrad, GradVac, GradNorm and RecAdam (Lee et al. 2022's multi-task baselines).

Hand-computed surgery on tiny vectors, the per-task gradient helper against separate
`torch.autograd.grad` calls, heads getting their own gradients, resume, identities with STL/MTL,
short real Trainer runs, and (when LibMTL is installed) LibMTL's weighting code on the same
gradients.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from pipeline.config import METHOD_PROPS, load_params, method_defaults, validate
from pipeline.engine import BatchStream
from pipeline.errors import ConfigError
from pipeline.methods import get_method
from pipeline.methods.gradnorm import GradNorm, gradnorm_update, gradnorm_weight_grad
from pipeline.methods.gradvac import GradVac, gradvac_coefficient, gradvac_coefficients
from pipeline.methods.mtl import MTL
from pipeline.methods.pcgrad import PCGrad, pcgrad_coefficients
from pipeline.methods.recadam import RecAdam, anneal_lambda
from pipeline.methods.task_gradients import TaskGradients, last_shared_layer, trainable
from pipeline.records import TLP
from tests.conftest import REPO
from tests.meta_helpers import (
    TLPS3,
    assert_resumes_bit_identically,
    batch_of,
    headed_context,
    make_run,
    quadratic_context,
    same,
    trainer,
    weights,
)

METHODS = ("pcgrad", "gradvac", "gradnorm", "recadam")


@pytest.fixture(autouse=True)
def one_thread():
    """Toy models run fastest (and the same everywhere) on one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def vec(*x: float) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def combined(c: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The modified task gradients g'_i = Σ_k C_ik g_k, one per row."""
    return c @ rows


# -- PCGrad by hand -------------------------------------------------------------------------


def test_pcgrad_projects_a_conflicting_pair_exactly_and_leaves_orthogonal_ones():
    """g1·g2 = −1 < 0: g1 − (−1/‖g2‖²) g2 = (½, ½, 0) and g2 − (−1/‖g1‖²) g1 = (0, 1, 0); g3 is
    orthogonal to both, so it and their components along it are untouched."""
    rows = np.stack([vec(1, 0, 0), vec(-1, 1, 0), vec(0, 0, 2)])
    c = pcgrad_coefficients(rows @ rows.T, [[1, 2], [2, 0], [0, 1]])
    pc = combined(c, rows)
    np.testing.assert_allclose(pc[0], [0.5, 0.5, 0.0], atol=1e-15)
    np.testing.assert_allclose(pc[1], [0.0, 1.0, 0.0], atol=1e-15)
    np.testing.assert_array_equal(pc[2], rows[2])
    assert pc[0] @ rows[1] == pytest.approx(0.0, abs=1e-15)  # on g2's normal plane
    np.testing.assert_allclose(c.sum(0) @ rows, [0.5, 1.5, 2.0], atol=1e-15)


def test_pcgrad_projects_on_the_original_gradients_in_the_given_order():
    """g1 = (2, 0), g2 = (−1, 1), g3 = (−1, −2), task 1 only.
    Order (2, 3): g1·g2 = −2 → (1, 1); (1, 1)·g3 = −3 → (1, 1) + ⅗(−1, −2) = (0.4, −0.2).
    Order (3, 2): g1·g3 = −2 → (2, 0) + ⅖(−1, −2) = (1.6, −0.8); ·g2 = −2.4 → (0.4, 0.4)."""
    rows = np.stack([vec(2, 0), vec(-1, 1), vec(-1, -2)])
    gram = rows @ rows.T
    a = combined(pcgrad_coefficients(gram, [[1, 2], [], []]), rows)[0]
    b = combined(pcgrad_coefficients(gram, [[2, 1], [], []]), rows)[0]
    np.testing.assert_allclose(a, [0.4, -0.2], atol=1e-14)
    np.testing.assert_allclose(b, [0.4, 0.4], atol=1e-14)


def test_pcgrad_without_conflicts_is_the_plain_sum():
    rows = np.stack([vec(1, 2, 0), vec(0, 1, 1), vec(3, 0, 1)])
    c = pcgrad_coefficients(rows @ rows.T, [[1, 2], [0, 2], [1, 0]])
    np.testing.assert_array_equal(c, np.eye(3))


# -- GradVac by hand ------------------------------------------------------------------------


@pytest.mark.parametrize("target", [0.4, -0.3, 0.9])
def test_gradvac_closed_form_coefficient_reaches_the_target_cosine(target):
    rng = np.random.default_rng(0)
    for _ in range(20):
        gi, gj = rng.normal(size=7), rng.normal(size=7)
        phi = gi @ gj / (np.linalg.norm(gi) * np.linalg.norm(gj))
        if phi >= target:
            gi = gi - 2 * (gi @ gj) / (gj @ gj) * gj  # reflect to make φ = −φ
            phi = gi @ gj / (np.linalg.norm(gi) * np.linalg.norm(gj))
        if phi >= target:
            continue
        a = gradvac_coefficient(np.linalg.norm(gi), np.linalg.norm(gj), phi, target)
        new = gi + a * gj
        assert new @ gj / (np.linalg.norm(new) * np.linalg.norm(gj)) == pytest.approx(
            target, abs=1e-12
        )


def test_gradvac_adjusts_below_target_only_and_updates_the_ema():
    """g1 = (1, 0), g2 = (1, 1): cos = 1/√2. Targets φ̂_12 = 0.9 (above: g1 is pulled toward g2
    to cosine 0.9), φ̂_21 = 0.5 (below: g2 is left alone). EMA β = ½: always both targets move to
    ½φ̂ + ½·cos; `on-conflict` moves only φ̂_12."""
    rows = np.stack([vec(1, 0), vec(1, 1)])
    cos = 1 / math.sqrt(2)
    targets = np.array([[0.0, 0.9], [0.5, 0.0]])
    for mode in ("always", "on-conflict"):
        c, tgt, adjusted = gradvac_coefficients(rows @ rows.T, [[1], [0]], targets, 0.5, mode)
        g = combined(c, rows)
        assert adjusted == 1
        assert g[0] @ rows[1] / (np.linalg.norm(g[0]) * np.linalg.norm(rows[1])) == (
            pytest.approx(0.9, abs=1e-12)
        )
        np.testing.assert_array_equal(g[1], rows[1])
        assert tgt[0, 1] == pytest.approx(0.5 * 0.9 + 0.5 * cos)
        assert tgt[1, 0] == (pytest.approx(0.5 * 0.5 + 0.5 * cos) if mode == "always" else 0.5)


def test_gradvac_with_zero_targets_is_pcgrad():
    """φ̂ = 0: the coefficient −‖g_i‖φ/‖g_j‖ = −g_i·g_j/‖g_j‖² is PCGrad's projection."""
    rows = np.stack([vec(2, 0, 1), vec(-1, 1, 0), vec(-1, -2, 0.5)])
    gram, orders = rows @ rows.T, [[1, 2], [2, 0], [0, 1]]
    c, _, _ = gradvac_coefficients(gram, orders, np.zeros((3, 3)), 0.5)
    np.testing.assert_allclose(c, pcgrad_coefficients(gram, orders), atol=1e-14)


# -- GradNorm by hand -----------------------------------------------------------------------


def test_gradnorm_weight_update_by_hand():
    """‖∇_W L‖ = (1, 3), w = (1, 1), L = (1, 2), L(0) = (1, 1), α = 1: G = (1, 3), Ḡ = 2,
    L̃ = (1, 2), r = (⅔, 4/3), target Ḡr = (4/3, 8/3): G − target = (−⅓, ⅓), so ∂L_grad/∂w =
    (−1, +3): the task below its target gains weight, the one above loses. lr 0.1: (1.1, 0.7),
    renormalised to sum 2: (1.1, 0.7)·2/1.8."""
    grad = gradnorm_weight_grad(vec(1, 1), vec(1, 3), vec(1, 2), vec(1, 1), alpha=1.0)
    np.testing.assert_array_equal(grad, [-1.0, 3.0])
    new = gradnorm_update(vec(1, 1), grad, lr=0.1)
    np.testing.assert_allclose(new, [1.1 * 2 / 1.8, 0.7 * 2 / 1.8], rtol=1e-15)
    assert new.sum() == pytest.approx(2.0)
    # α = 0: equal training rates are not asked for, only equal norms: target Ḡ = 2 for both
    np.testing.assert_array_equal(
        gradnorm_weight_grad(vec(1, 1), vec(1, 3), vec(1, 2), vec(1, 1), alpha=0.0), [-1.0, 3.0]
    )
    # a weight pushed below 0 is clipped, the rest renormalised: (1 + 5, 0) → (2, 0)
    np.testing.assert_array_equal(gradnorm_update(vec(1, 1), vec(-1, 3), lr=5.0), [2.0, 0.0])


# -- RecAdam by hand ------------------------------------------------------------------------


def test_recadam_lambda_schedule():
    assert anneal_lambda(250, 0.5, 250) == 0.5
    assert anneal_lambda(2, 0.5, 4) == pytest.approx(1 / (1 + math.e))
    assert anneal_lambda(6, 0.5, 4) == pytest.approx(1 / (1 + math.exp(-1)))
    # far before t0 no overflow: exp(k(t − t0)) / (1 + exp(k(t − t0))), tiny then exactly 0
    assert anneal_lambda(1, 0.5, 1000) == pytest.approx(math.exp(-499.5), rel=1e-12)
    assert anneal_lambda(1, 5.0, 1000) == 0.0
    assert anneal_lambda(1037, 1.0, 1000) == 1.0  # 1 + e^-37 rounds to 1: MTL from here on


@pytest.mark.parametrize("penalty", ["decoupled", "coupled"])
def test_recadam_penalty_step_by_hand_with_sgd(penalty):
    """½(w − 3)², SGD lr 0.1, θ* = 0, then w set to 1 (g = −2); λ(1) = ½ (k = 1, t0 = 1), γ = 1.
    coupled: w − lr(λg + (1−λ)γ(w − θ*)) = 1 − 0.1(−1 + 0.5) = 1.05. decoupled: the SGD step
    u = +0.2 scaled by λ, penalty step lr(1−λ)γ(w − θ*) = 0.05: 1 + 0.1 − 0.05 = 1.05 (plain SGD
    is linear, so the two coincide; they differ under Adam)."""
    ctx = quadratic_context({"nli/a": 3.0}, lr=0.1)
    method = RecAdam(
        ctx,
        {
            **ctx.params,
            "tasks_per_step": 1,
            "anneal_k": 1.0,
            "anneal_t0": 1,
            "gamma": 1.0,
            "penalty": penalty,
        },
    )
    with torch.no_grad():
        ctx.model.w.fill_(1.0)
    logs = method.step()
    assert logs["lambda"] == 0.5
    assert ctx.model.w.item() == pytest.approx(1.05, abs=1e-7)


def test_recadam_decoupled_is_lambda_scaled_adamw_step_plus_penalty_heads_plain():
    """On AdamW with weight decay, one step from θ_b ≠ θ*: encoder = lerp(θ_b(1 − lr·wd), θ_AdamW,
    λ) − lr(1 − λ)γ(θ_b − θ*), with θ_AdamW the plain MTL step from the same point and batch;
    heads exactly the MTL step (not anchored, not annealed)."""
    lam, gamma, lr, wd = anneal_lambda(1, 0.5, 1), 2.0, 0.05, 0.01
    ctx_a, ctx_b = headed_context(lr=lr, weight_decay=wd), headed_context(lr=lr, weight_decay=wd)
    common = {"tasks_per_step": 2, "temperature": 5.0}
    mtl = MTL(ctx_a, {**ctx_a.params, **common})
    rec = RecAdam(
        ctx_b, {**ctx_b.params, **common, "anneal_k": 0.5, "anneal_t0": 1, "gamma": gamma}
    )
    star = weights(ctx_b.model)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # move both encoders away from θ* by the same δ
        for pa, pb in zip(ctx_a.model.encoder.parameters(), ctx_b.model.encoder.parameters()):
            d = 0.3 * torch.randn(pa.shape, generator=g)
            pa.add_(d)
            pb.add_(d)
    before = weights(ctx_b.model)
    assert mtl.step()["tlps"] == rec.step()["tlps"]
    got, plain = weights(ctx_b.model), weights(ctx_a.model)
    for k in got:
        if k.startswith("encoder."):
            want = torch.lerp(before[k] * (1 - lr * wd), plain[k], lam) - lr * (1 - lam) * gamma * (
                before[k] - star[k]
            )
            torch.testing.assert_close(got[k], want, rtol=0, atol=1e-6)
            assert not torch.allclose(got[k], plain[k])
        else:
            assert torch.equal(got[k], plain[k]), k


# -- the per-task gradient helper -----------------------------------------------------------


def stream_states(ctx) -> dict:
    return {t: s.state_dict() for t, s in ctx.streams.items()}


def stream_at(ctx, t, states) -> BatchStream:
    """A copy of t's batch stream at the saved position."""
    s = BatchStream(len(ctx.train[t]), ctx.params["batch_size"], ctx.streams[t].seed)
    s.load_state_dict(states[t])
    return s


def replay(ctx, tlps, states) -> list[dict[str, torch.Tensor | None]]:
    """Each TLP's gradient on the batch its stream gave from `states`, by a separate
    torch.autograd.grad call per TLP."""
    names = [n for n, p in ctx.model.named_parameters() if p.requires_grad]
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    out = []
    for t in tlps:
        b = batch_of(ctx.train[t], stream_at(ctx, t, states).next())
        grads = torch.autograd.grad(ctx.loss(t, b), params, allow_unused=True)
        out.append(dict(zip(names, grads)))
    return out


def test_task_gradients_equal_separate_autograd_grad_and_record_what_each_task_touches():
    ctx = headed_context()
    tlps = ctx.tlps  # nli/l0, nli/l1, pa/l0
    states = stream_states(ctx)
    params = trainable(ctx.model)
    names = [n for n, p in ctx.model.named_parameters() if p.requires_grad]
    tg = TaskGradients.compute(ctx, tlps, params)
    ref = replay(ctx, tlps, states)
    for t in range(len(tlps)):
        for k, n in enumerate(names):
            seg = tg.rows[t, tg.offsets[k] : tg.offsets[k + 1]]
            if ref[t][n] is None:
                assert not tg.touched[t, k] and torch.count_nonzero(seg) == 0
            else:
                assert tg.touched[t, k]
                assert torch.equal(seg, ref[t][n].reshape(-1)), (t, n)
    touched = {n: tg.touched[:, k].tolist() for k, n in enumerate(names)}
    assert touched["encoder.weight"] == [True, True, True]
    assert touched["heads.nli.weight"] == [True, True, False]
    assert touched["heads.pa.weight"] == [False, False, True]
    shared = dict(zip(names, tg.shared_mask("shared", ctx.model)))
    assert shared == {n: n.startswith("encoder.") for n in names}
    # .grad untouched by the helper
    assert all(p.grad is None for p in params)


def pcgrad_reference(vectors: list[torch.Tensor], orders) -> torch.Tensor:
    """Yu et al.'s Algorithm 1 on the vectors themselves (float64): Σ_i g_i^PC."""
    pc = [v.clone() for v in vectors]
    for i, order in enumerate(orders):
        for j in order:
            dot = pc[i] @ vectors[j]
            if dot < 0:
                pc[i] = pc[i] - dot / (vectors[j] @ vectors[j]) * vectors[j]
    return torch.stack(pc).sum(0)


def run_captured(method) -> tuple[dict, dict, list]:
    """One step with the optimizer step replaced by a capture of `.grad`; returns (grads by name,
    logs, projection orders used)."""
    ctx = method.ctx
    got: dict[str, torch.Tensor | None] = {}
    orders: list = []
    real_orders = method.orders

    def capture() -> None:
        for n, p in ctx.model.named_parameters():
            got[n] = None if p.grad is None else p.grad.detach().clone()
        ctx.optimizer.zero_grad(set_to_none=True)

    def record(n: int):
        orders.append(real_orders(n))
        return orders[-1]

    ctx.outer_step = capture  # type: ignore[method-assign]
    method.orders = record  # type: ignore[method-assign]
    logs = method.step()
    return got, logs, orders[0] if orders else None


def flat(grads: dict, names: list[str]) -> torch.Tensor:
    return torch.cat([grads[n].reshape(-1).double() for n in names])


@pytest.mark.parametrize("surgery_params", ["shared", "encoder"])
def test_pcgrad_step_projects_the_encoder_and_gives_heads_their_own_gradients(surgery_params):
    ctx = headed_context(seed=3)
    method = PCGrad(ctx, {**ctx.params, "tasks_per_step": 3, "surgery_params": surgery_params})
    states = stream_states(ctx)
    got, logs, orders = run_captured(method)
    tlps = [TLP.parse(t) for t in logs["tlps"]]
    ref = replay(ctx, tlps, states)
    enc = ["encoder.weight", "encoder.bias"]
    vectors = [flat(r, enc) for r in ref]
    assert logs["conflicts"] > 0  # the seed makes the test meaningful
    torch.testing.assert_close(
        flat(got, enc), pcgrad_reference(vectors, orders), rtol=1e-5, atol=1e-6
    )
    assert not torch.allclose(flat(got, enc), sum(vectors))
    pa = [i for i, t in enumerate(tlps) if t.task == "pa"]
    nli = [i for i, t in enumerate(tlps) if t.task == "nli"]
    for n in ("heads.pa.weight", "heads.pa.bias"):
        assert torch.equal(got[n], ref[pa[0]][n])  # its own task's gradient, untouched
    for n in ("heads.nli.weight", "heads.nli.bias"):
        assert torch.equal(got[n], ref[nli[0]][n] + ref[nli[1]][n])  # the plain sum


def test_pcgrad_shared_mode_includes_a_head_every_task_shares():
    """Three languages of one task (Lee et al.'s setting): with `shared` the head is as shared as
    the encoder and is projected with it; with `encoder` it gets the plain sum."""
    tlps = ("nli/l0", "nli/l1", "nli/l2")
    for mode in ("shared", "encoder"):
        ctx = headed_context(tlps=tlps, seed=2)
        method = PCGrad(ctx, {**ctx.params, "tasks_per_step": 3, "surgery_params": mode})
        states = stream_states(ctx)
        got, logs, orders = run_captured(method)
        ref = replay(ctx, [TLP.parse(t) for t in logs["tlps"]], states)
        names = [n for n, _ in ctx.model.named_parameters()]
        head = [n for n in names if n.startswith("heads.")]
        enc = [n for n in names if n.startswith("encoder.")]
        assert logs["conflicts"] > 0
        if mode == "shared":
            want = pcgrad_reference([flat(r, names) for r in ref], orders)
            torch.testing.assert_close(flat(got, names), want, rtol=1e-5, atol=1e-6)
        else:
            want = pcgrad_reference([flat(r, enc) for r in ref], orders)
            torch.testing.assert_close(flat(got, enc), want, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(
                flat(got, head), sum(flat(r, head) for r in ref), rtol=1e-6, atol=1e-7
            )


def test_gradvac_step_matches_the_vector_algorithm_and_carries_targets():
    ctx = headed_context(seed=1)
    method = GradVac(ctx, {**ctx.params, "tasks_per_step": 3, "beta": 0.5})
    enc = ["encoder.weight", "encoder.bias"]
    for _ in range(3):
        targets = method.targets.copy()
        states = stream_states(ctx)
        got, logs, orders = run_captured(method)
        idx = [ctx.tlps.index(TLP.parse(t)) for t in logs["tlps"]]
        vectors = [flat(r, enc).numpy() for r in replay(ctx, [ctx.tlps[i] for i in idx], states)]
        # the vector form of Wang et al.'s Algorithm 1
        pc = [v.copy() for v in vectors]
        tgt = targets[np.ix_(idx, idx)].copy()
        for i, order in enumerate(orders):
            for j in order:
                gi, gj = pc[i], vectors[j]
                phi = gi @ gj / (np.linalg.norm(gi) * np.linalg.norm(gj))
                if phi < tgt[i, j]:
                    pc[i] = (
                        gi
                        + gradvac_coefficient(
                            np.linalg.norm(gi), np.linalg.norm(gj), phi, tgt[i, j]
                        )
                        * gj
                    )
                tgt[i, j] = 0.5 * tgt[i, j] + 0.5 * phi
        np.testing.assert_allclose(flat(got, enc).numpy(), sum(pc), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(method.targets[np.ix_(idx, idx)], tgt, atol=1e-6)
    assert np.count_nonzero(method.targets) == 6  # every ordered pair of the 3 TLPs met


def test_gradnorm_step_uses_current_weights_then_updates_them_summing_to_T():
    ctx = headed_context(seed=2)
    method = GradNorm(ctx, {**ctx.params, "tasks_per_step": 3, "weight_lr": 0.1, "alpha": 1.5})
    method.weights = np.array([0.5, 1.0, 1.5])
    assert [id(p) for p in last_shared_layer(ctx.model)] == [
        id(ctx.model.encoder.weight),
        id(ctx.model.encoder.bias),
    ]
    states = stream_states(ctx)
    got, logs, _ = run_captured(method)
    tlps = [TLP.parse(t) for t in logs["tlps"]]
    idx = [ctx.tlps.index(t) for t in tlps]
    w = np.array([0.5, 1.0, 1.5])[idx]
    ref = replay(ctx, tlps, states)
    names = [n for n, _ in ctx.model.named_parameters()]
    for n in names:  # Σ_i w_i(t) ∇L_i, heads included
        parts = [float(w[i]) * r[n] for i, r in enumerate(ref) if r[n] is not None]
        torch.testing.assert_close(got[n], sum(parts), rtol=1e-6, atol=1e-7)
    enc = ["encoder.weight", "encoder.bias"]
    norms = np.array([float(flat(r, enc).norm()) for r in ref])
    losses = np.array(
        [ctx.loss(t, batch_of(ctx.train[t], stream_at(ctx, t, states).next())).item() for t in tlps]
    )
    want = gradnorm_update(w, gradnorm_weight_grad(w, norms, losses, losses, 1.5), 0.1)
    np.testing.assert_allclose(method.weights[idx], want, rtol=1e-6)
    assert method.weights.sum() == pytest.approx(3.0)
    np.testing.assert_allclose(method.initial[idx], losses, rtol=1e-6)


# -- training: loss, determinism, resume ----------------------------------------------------


def extra(name: str) -> dict:
    """Settings that make a few toy steps train: RecAdam's λ near 1 from the start."""
    return {"anneal_k": 1.0, "anneal_t0": -5, "gamma": 1.0} if name == "recadam" else {}


def full_loss(ctx) -> float:
    with torch.no_grad():
        return sum(float(ctx.loss(t, d.tensors)) for t, d in ctx.train.items())


@pytest.mark.parametrize("name", METHODS)
def test_each_method_lowers_the_training_loss_and_is_deterministic(name):
    runs = []
    for _ in range(2):
        ctx = headed_context(lr=0.02, weight_decay=0.0)
        method = get_method(name)(ctx, {**ctx.params, "tasks_per_step": 3, **extra(name)})
        start = full_loss(ctx)
        for _ in range(15):
            logs = method.step()
        assert math.isfinite(logs["loss"])
        assert full_loss(ctx) < 0.9 * start
        runs.append(weights(ctx.model))
    assert same(runs[0], runs[1])


def snapshot_run(ctx, method) -> dict:
    return copy.deepcopy(
        {
            "model": weights(ctx.model),
            "optimizer": ctx.optimizer.state_dict(),
            "streams": stream_states(ctx),
            "method": method.state_dict(),
        }
    )


@pytest.mark.parametrize("name", METHODS)
def test_state_dict_round_trip_gives_the_identical_next_update(name):
    params = {"tasks_per_step": 2, **extra(name)}
    ctx = headed_context()
    method = get_method(name)(ctx, {**ctx.params, **params})
    for _ in range(3):
        method.step()
    saved = snapshot_run(ctx, method)
    for _ in range(2):
        method.step()
    # a fresh context and method (built before loading, as the Trainer does), then the state
    ctx2 = headed_context()
    method2 = get_method(name)(ctx2, {**ctx2.params, **params})
    ctx2.model.load_state_dict(saved["model"])
    ctx2.optimizer.load_state_dict(saved["optimizer"])
    for t, s in ctx2.streams.items():
        s.load_state_dict(saved["streams"][t])
    method2.load_state_dict(saved["method"])
    for _ in range(2):
        method2.step()
    assert same(weights(ctx.model), weights(ctx2.model))
    assert str(method.state_dict()) == str(method2.state_dict())


@pytest.mark.parametrize("name", METHODS)
def test_trainer_run_resumes_bit_identically(tiny_world, tmp_path, name):
    """Through the real Trainer on the tiny BERT (nli, ner, qa heads): a run killed at its 4th step
    and resumed ends with the weights and history of an uninterrupted one (same seed → same
    bits), the weights moved, and the options are recorded."""
    run = make_run(name, TLPS3, tasks_per_step=2, **extra(name))
    assert_resumes_bit_identically(tiny_world, run, tmp_path)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["options"]["tasks_per_step"] == 2
    assert summary["inner_steps"] == 6
    start = trainer(tiny_world, run, tmp_path / "fresh")
    trained = load_file(str(tmp_path / "out" / "model" / "encoder" / "model.safetensors"))
    enc = {k: v for k, v in weights(start.model.encoder).items() if k in trained}
    assert enc and not same(enc, {k: trained[k] for k in enc})


def seeded(fn, seed: int):
    torch.manual_seed(seed)
    return fn()


@pytest.mark.parametrize("name", ["pcgrad", "gradvac", "gradnorm"])
def test_one_task_per_step_is_the_plain_optimizer_step(tiny_world, tmp_path, name):
    """One TLP, one task per step: nothing to project or balance, so the step is STL's, bit for
    bit (same batches, same dropout, g written back as 1.0·g)."""
    stl = trainer(tiny_world, make_run("stl", ["ner/l0"]), tmp_path / "a")
    other = trainer(tiny_world, make_run(name, ["ner/l0"], tasks_per_step=1), tmp_path / "b")
    for i in range(2):
        seeded(stl.method.step, i)
        seeded(other.method.step, i)
        assert same(weights(stl.model), weights(other.model))


def test_recadam_with_lambda_one_is_mtl_bit_for_bit(tiny_world, tmp_path):
    mtl = trainer(
        tiny_world, make_run("mtl", TLPS3, tasks_per_step=2, temperature=5.0), tmp_path / "a"
    )
    rec = trainer(
        tiny_world, make_run("recadam", TLPS3, tasks_per_step=2, anneal_t0=-1000), tmp_path / "b"
    )
    for i in range(3):
        a, b = seeded(mtl.method.step, i), seeded(rec.method.step, i)
        assert a["tlps"] == b["tlps"] and b["lambda"] == 1.0
        assert same(weights(mtl.model), weights(rec.model))


# -- config and registry ---------------------------------------------------------------------


def test_registry_defaults_and_epoch_sizing():
    for name in METHODS:
        assert get_method(name).name == name
    assert method_defaults("pcgrad") == {
        "temperature": 5.0,
        "sampling_sizes": "examples",
        "tasks_per_step": 8,
        "reduction": "sum",
        "surgery_params": "shared",
    }
    assert method_defaults("gradvac")["beta"] == 0.5
    assert method_defaults("gradnorm")["alpha"] == 1.5
    d = method_defaults("recadam")
    assert (d["gamma"], d["anneal_k"], d["anneal_t0"], d["penalty"]) == (
        5000.0,
        1.0,
        1000.0,
        "decoupled",
    )
    batches = {TLP.parse(t): 10 for t in TLPS3}
    for name in ("pcgrad", "gradvac", "gradnorm"):
        cls = get_method(name)
        assert cls.batches_per_step({}, 3) == 3  # 8 capped at the 3 TLPs
        assert cls.batches_per_step({"tasks_per_step": 2}, 3) == 2
        assert cls.steps_per_epoch({}, batches) == 10
        assert cls.inner_steps_per_step({}) == 1
    assert RecAdam.batches_per_step({}, 3) == 8  # MTL's draws, with replacement


def test_config_accepts_the_baselines_and_rejects_bad_keys():
    cfg = load_params([REPO / "params.yaml"])
    exps = {
        "pc": {"method": "pcgrad", "steps": 3, "reduction": "mean", "surgery_params": "encoder"},
        "gv": {"method": "gradvac", "steps": 3, "beta": 0.01, "ema_update": "on-conflict"},
        "gn": {"method": "gradnorm", "epochs": 1, "alpha": 0.5, "norm_params": "encoder"},
        "ra": {"method": "recadam", "steps": 3, "penalty": "coupled", "anneal_t0": 250},
    }
    good = copy.deepcopy(cfg)
    good["experiments"].update(exps)
    validate(good)
    for exp in (
        {"method": "pcgrad", "steps": 3, "reduction": "max"},
        {"method": "gradvac", "steps": 3, "beta": 2},
        {"method": "gradnorm", "steps": 3, "norm_params": "all"},
        {"method": "recadam", "steps": 3, "anneal_k": 0},
    ):
        bad = copy.deepcopy(cfg)
        bad["experiments"]["x"] = exp
        with pytest.raises(ConfigError):
            validate(bad)
    assert set(METHODS) <= set(METHOD_PROPS)


# -- LibMTL on the same gradients --------------------------------------------------------------


@pytest.fixture
def libmtl(monkeypatch):
    """LibMTL's weighting modules, loaded from the installed package without running
    `LibMTL/__init__.py` (which imports torchvision for its ResNet models). Skipped when LibMTL
    is not installed (it is never a dependency)."""
    spec = importlib.util.find_spec("LibMTL")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("LibMTL is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, path in (("LibMTL", root), ("LibMTL.weighting", root / "weighting")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        monkeypatch.setitem(sys.modules, name, pkg)

    def load(name: str):
        full = f"LibMTL.weighting.{name}"
        s = importlib.util.spec_from_file_location(full, root / "weighting" / f"{name}.py")
        mod = importlib.util.module_from_spec(s)
        monkeypatch.setitem(sys.modules, full, mod)
        s.loader.exec_module(mod)
        return mod

    load("abstract_weighting")
    return load


def driver(cls, grads: torch.Tensor):
    """A LibMTL weighting object over one shared parameter θ whose task losses g_t·θ + c_t have
    exactly the gradients `grads`."""

    class Driver(cls):
        def __init__(self) -> None:
            super().__init__()
            self.theta = nn.Parameter(torch.zeros(grads.shape[1]))
            self.task_num, self.device, self.rep_grad = grads.shape[0], torch.device("cpu"), False

        def get_share_params(self):
            return [self.theta]

        def zero_grad_share_params(self):
            if self.theta.grad is not None:
                self.theta.grad.zero_()

        def losses(self, g: torch.Tensor, values=None):
            vals = values if values is not None else [0.0] * len(g)
            return [(gt * self.theta).sum() + v for gt, v in zip(g, vals)]

    return Driver()


def record_shuffles(monkeypatch, seed: int) -> list[list[int]]:
    """Replace random.shuffle (LibMTL's order source) by a seeded one that records each order."""
    rng, seen = random.Random(seed), []

    def shuffle(x):
        rng.shuffle(x)
        seen.append(list(x))

    monkeypatch.setattr(random, "shuffle", shuffle)
    return seen


def conflicting_grads(seed: int, t: int = 4, d: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(d, generator=g)
    return torch.stack(
        [torch.randn(d, generator=g) - (0.6 if i % 2 else -0.6) * base for i in range(t)]
    )


def test_libmtl_pcgrad_gives_the_same_update(libmtl, monkeypatch):
    mod = libmtl("PCGrad")
    for seed in range(3):
        grads = conflicting_grads(seed)
        gram = (grads @ grads.T).double().numpy()
        assert (gram < 0).any()
        seen = record_shuffles(monkeypatch, seed)
        d = driver(mod.PCGrad, grads)
        d.backward(d.losses(grads))
        orders = [[j for j in order if j != i] for i, order in enumerate(seen)]  # ours: j ≠ i
        ours = pcgrad_coefficients(gram, orders).sum(0) @ grads.double().numpy()
        np.testing.assert_allclose(d.theta.grad.numpy(), ours, rtol=1e-5, atol=1e-6)


def test_libmtl_gradvac_gives_the_same_updates_and_targets(libmtl, monkeypatch):
    """LibMTL 1.1.5 updates the EMA only on conflict: our `ema_update: on-conflict`."""
    mod = libmtl("GradVac")
    d = None
    targets = np.zeros((4, 4))
    adjusted_total = 0
    for step, seed in enumerate((10, 11, 12)):
        grads = conflicting_grads(seed) * (1 + step)
        seen = record_shuffles(monkeypatch, seed)
        if d is None:
            d = driver(mod.GradVac, grads)
        d.theta.grad = None  # LibMTL's trainer zeroes the gradients before each step
        d.backward(d.losses(grads), beta=0.5)
        gram = (grads @ grads.T).double().numpy()
        c, targets, adjusted = gradvac_coefficients(gram, seen, targets, 0.5, "on-conflict")
        adjusted_total += adjusted if step else 0
        np.testing.assert_allclose(
            d.theta.grad.numpy(), c.sum(0) @ grads.double().numpy(), rtol=1e-5, atol=1e-5
        )
        np.testing.assert_allclose(d.rho_T.numpy(), targets, atol=1e-6)
    assert adjusted_total > 0 and np.count_nonzero(targets) > 0  # non-zero targets were used


def test_libmtl_gradnorm_weight_gradient_matches_ours(libmtl):
    """LibMTL's weights are w = T·softmax(ℓ); its L_grad.backward() gives ∂L_grad/∂ℓ =
    Jᵀ ∂L_grad/∂w with J = T(diag(s) − s sᵀ). With its W (all shared parameters) and L_i(0) from
    its loss buffer, ours must give the same ∂L_grad/∂w and the same Σ_i w_i g_i."""
    mod = libmtl("GradNorm")
    grads = conflicting_grads(3)
    d = driver(mod.GradNorm, grads)
    d.init_param()
    with torch.no_grad():
        d.loss_scale.copy_(torch.tensor([0.3, -0.2, 0.5, 0.1]))
    d.epoch = 1
    initial = np.array([2.0, 1.5, 3.0, 1.0])
    d.train_loss_buffer = initial[:, None]
    values = [1.2, 1.4, 1.1, 0.9]
    d.backward(d.losses(grads, values), alpha=1.5)
    s = torch.softmax(d.loss_scale.detach().double(), 0).numpy()
    w = 4 * s
    norms = grads.double().norm(dim=1).numpy()
    dw = gradnorm_weight_grad(w, norms, np.array(values), initial, 1.5)
    jac = 4 * (np.diag(s) - np.outer(s, s))
    np.testing.assert_allclose(d.loss_scale.grad.double().numpy(), jac.T @ dw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        d.theta.grad.numpy(), w @ grads.double().numpy(), rtol=1e-5, atol=1e-6
    )
