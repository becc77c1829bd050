"""The MAML core and X-MAML: meta-gradients by hand and by finite differences, exact identities,
comparison with `higher`, resume, options."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pipeline.config import method_defaults
from pipeline.engine import BatchStream
from pipeline.errors import ConfigError
from pipeline.methods import get_method, maml_core
from pipeline.methods.maml_core import MetaTask
from pipeline.records import TLP
from tests.meta_helpers import (
    TLPS3,
    Headed,
    Killed,
    kill_at,
    make_run,
    same,
    toy_context,
    toy_split,
    trainer,
    weights,
)

A, B = TLP("nli", "l0"), TLP("nli", "l1")


class LinearModel(nn.Module):
    """logits = x Wᵀ + b (float64), the same forward signature as MultiTaskModel."""

    def __init__(self, dim: int, classes: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(classes, dim, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(classes, generator=g, dtype=torch.float64))

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": batch["x"] @ self.w.T + self.b}


def batches(k: int, n: int = 6, dim: int = 4, classes: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "x": torch.randn(n, dim, generator=g, dtype=torch.float64),
            "labels": torch.randint(0, classes, (n,), generator=g),
        }
        for _ in range(k)
    ]


def ctx_for(model: nn.Module, lr: float = 0.1, **params):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    data = {A: toy_split(A, {"x": torch.zeros(4, 4)})}
    return toy_context(model, opt, data, {"seed": 0, "batch_size": 4, **params})


# -- hand-written MAML on the linear model: the gradient of mean cross-entropy is
#    dL/dW = (softmax(XWᵀ+b) − Y)ᵀ X / N,  dL/db = mean(softmax − Y)


def ce(w, b, batch):
    logits = batch["x"] @ w.T + b
    return torch.nn.functional.cross_entropy(logits, batch["labels"])


def ce_grad(w, b, batch):
    x, y = batch["x"], batch["labels"]
    p = torch.softmax(x @ w.T + b, dim=-1)
    d = (p - torch.nn.functional.one_hot(y, p.shape[-1]).to(p.dtype)) / len(x)
    return d.T @ x, d.sum(0)


def hand_adapt(w, b, support, lr):
    for batch in support:
        gw, gb = ce_grad(w, b, batch)
        w, b = w - lr * gw, b - lr * gb
    return w, b


def hand_meta_grad(model, support, query, lr, first_order):
    w0, b0 = model.w.detach().clone(), model.b.detach().clone()
    if first_order:
        w, b = hand_adapt(w0, b0, support, lr)
        return ce_grad(w, b, query)
    w0.requires_grad_(True)
    b0.requires_grad_(True)
    w, b = hand_adapt(w0, b0, support, lr)  # the closed-form inner gradient, differentiated
    return torch.autograd.grad(ce(w, b, query), (w0, b0))


@pytest.mark.parametrize("first_order", [True, False])
@pytest.mark.parametrize("n", [1, 3])
def test_meta_gradient_equals_the_hand_written_computation(first_order, n):
    model = LinearModel(4, 3, seed=0)
    ctx = ctx_for(model)
    *support, query = batches(n + 1)
    task = MetaTask([(A, s) for s in support], (A, query))
    maml_core.accumulate_meta_gradient(ctx, [task], lr=0.5, first_order=first_order)
    gw, gb = hand_meta_grad(model, support, query, 0.5, first_order)
    torch.testing.assert_close(model.w.grad, gw, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(model.b.grad, gb, rtol=1e-10, atol=1e-12)


def test_first_and_second_order_differ_when_the_inner_step_matters():
    grads = {}
    for fo in (True, False):
        model = LinearModel(4, 3, seed=0)
        *support, query = batches(3)
        maml_core.accumulate_meta_gradient(
            ctx_for(model), [MetaTask([(A, s) for s in support], (A, query))], 0.5, fo
        )
        grads[fo] = model.w.grad.clone()
    assert (grads[True] - grads[False]).abs().max() > 1e-4


def test_second_order_meta_gradient_matches_finite_differences():
    model = LinearModel(3, 2, seed=4)
    *support, query = batches(3, n=5, dim=3, classes=2, seed=7)
    maml_core.accumulate_meta_gradient(
        ctx_for(model), [MetaTask([(A, s) for s in support], (A, query))], 0.7, False
    )

    def meta_loss(w, b):
        w2, b2 = hand_adapt(w, b, support, 0.7)
        return float(ce(w2, b2, query))

    eps = 1e-6
    w0, b0 = model.w.detach().clone(), model.b.detach().clone()
    for idx in [(0, 0), (1, 2), (0, 1)]:
        dw = torch.zeros_like(w0)
        dw[idx] = eps
        fd = (meta_loss(w0 + dw, b0) - meta_loss(w0 - dw, b0)) / (2 * eps)
        assert model.w.grad[idx].item() == pytest.approx(fd, rel=1e-6, abs=1e-9)
    for i in range(2):
        db = torch.zeros_like(b0)
        db[i] = eps
        fd = (meta_loss(w0, b0 + db) - meta_loss(w0, b0 - db)) / (2 * eps)
        assert model.b.grad[i].item() == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_adapt_leaves_the_model_untouched_and_copies_nothing():
    model = LinearModel(4, 3, seed=0)
    before = weights(model)
    ctx = ctx_for(model)
    theta = maml_core.trainable(model)
    adapted = maml_core.adapt(ctx, theta, [(A, b) for b in batches(2)], 0.5, False)
    assert same(before, weights(model))
    assert set(adapted) == {"w", "b"} and all(
        a is not p for a, p in zip(adapted.values(), theta.values())
    )
    assert theta["w"] is model.w  # θ is the model's own tensors: no copy of the model


def test_reduce_sum_is_the_number_of_tasks_times_mean():
    def grad(reduce):
        model = LinearModel(4, 3, seed=0)
        bs = batches(4)
        tasks = [MetaTask([(A, bs[0])], (A, bs[1])), MetaTask([(B, bs[2])], (B, bs[3]))]
        maml_core.accumulate_meta_gradient(ctx_for(model), tasks, 0.3, False, reduce)
        return model.w.grad.clone()

    torch.testing.assert_close(grad("sum"), 2 * grad("mean"), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="reduce"):
        grad("max")


def test_zero_inner_steps_is_plain_training_on_the_query_bit_for_bit():
    """n = 0: the outer step is the engine's inner step on the query batch (AdamW, clipping)."""

    def run(meta: bool):
        torch.manual_seed(0)
        model = Headed(5, 4, ("nli",), seed=3)
        opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
        x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
        y = torch.randint(0, 2, (8,), generator=torch.Generator().manual_seed(2))
        data = {A: toy_split(A, {"x": x, "labels": y})}
        ctx = toy_context(model, opt, data, {"seed": 0, "batch_size": 4, "max_grad_norm": 0.5})
        for _ in range(3):
            if meta:
                maml_core.meta_step(ctx, [MetaTask([], (A, ctx.batch(A)))], 0.1, False)
            else:
                ctx.inner_step(A)
        return weights(model), ctx.inner_steps_done

    (w_meta, n_meta), (w_plain, n_plain) = run(True), run(False)
    assert same(w_meta, w_plain) and n_meta == n_plain == 3


def test_heads_of_other_tasks_keep_their_value_in_the_inner_loop():
    model = Headed(5, 4, ("nli", "pa"), seed=0)
    ctx = ctx_for(model)
    x = torch.randn(4, 5, dtype=torch.float32)
    batch = {"x": x, "labels": torch.tensor([0, 1, 0, 1])}
    theta = maml_core.trainable(model)
    adapted = maml_core.adapt(ctx, theta, [(A, batch)], 0.5, False)
    assert adapted["heads.pa.weight"] is theta["heads.pa.weight"]
    assert not torch.equal(adapted["heads.nli.weight"], theta["heads.nli.weight"])


def test_matches_higher_when_it_installs():
    higher = pytest.importorskip("higher")
    print(f"comparing with higher {getattr(higher, '__version__', '')}")
    for first_order in (False, True):
        model = LinearModel(4, 3, seed=5)
        ref = LinearModel(4, 3, seed=5)
        *support, query = batches(4, seed=9)
        maml_core.accumulate_meta_gradient(
            ctx_for(model), [MetaTask([(A, s) for s in support], (A, query))], 0.4, first_order
        )
        inner = torch.optim.SGD(ref.parameters(), lr=0.4)
        with higher.innerloop_ctx(
            ref, inner, copy_initial_weights=False, track_higher_grads=not first_order
        ) as (fmodel, diffopt):
            for s in support:
                diffopt.step(ce(fmodel.w, fmodel.b, s))
            loss = ce(fmodel.w, fmodel.b, query)
            if first_order:  # higher without tracking: the gradient at θ', taken there
                gw, gb = torch.autograd.grad(loss, (fmodel.w, fmodel.b))
            else:
                gw, gb = torch.autograd.grad(loss, (ref.w, ref.b))
        torch.testing.assert_close(model.w.grad, gw, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(model.b.grad, gb, rtol=1e-10, atol=1e-12)


# -- X-MAML through the trainer ---------------------------------------------------------------


def test_xmaml_defaults_and_options_are_recorded(tiny_world, tmp_path):
    d = method_defaults("xmaml")
    assert d["inner_steps"] == 1 and d["first_order"] is False and d["reduce"] == "mean"
    run = make_run("xmaml", TLPS3, steps=2, eval_every=2)
    t = trainer(tiny_world, run, tmp_path / "ckpt")
    t.fit(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    opts = summary["options"]
    assert opts["order"] == "second" and opts["support_query"] == "batches"
    assert opts["meta_batch"] == "all" and opts["meta_batch_reduce"] == "mean"
    hist = json.loads((tmp_path / "out" / "history.json").read_text())
    steps = [h for h in hist if "tlps" in h]
    assert steps and all(sorted(h["tlps"]) == sorted(TLPS3) for h in steps)


@pytest.mark.parametrize(
    ("support_query", "inner_steps", "reads"), [("halves", 2, 1), ("batches", 2, 3)]
)
def test_xmaml_reads_the_batches_it_says(tiny_world, tmp_path, support_query, inner_steps, reads):
    """`halves`: one batch per TLP per meta-step, split; `batches`: inner_steps + 1 batches."""
    run = make_run("xmaml", TLPS3, steps=1, support_query=support_query, inner_steps=inner_steps)
    t = trainer(tiny_world, run, tmp_path / "ckpt")
    before = {tlp: s.state_dict() for tlp, s in t.ctx.streams.items()}
    t.method.step()
    for tlp, s in t.ctx.streams.items():
        ref = BatchStream(s.n, s.batch_size, s.seed)
        ref.load_state_dict(before[tlp])
        for _ in range(reads):
            ref.next()
        assert s.state_dict() == ref.state_dict(), tlp
    assert get_method("xmaml").batches_per_step(run.params, n_tlps=3) == 3 * reads


def test_xmaml_epochs_count_support_and_query_batches():
    cls = get_method("xmaml")
    assert cls.batches_per_step({"inner_steps": 2}, n_tlps=3) == 9
    assert cls.batches_per_step({"support_query": "halves"}, n_tlps=3) == 3
    assert cls.batches_per_step({"meta_batch": 2, "inner_steps": 1}, n_tlps=5) == 4


def test_xmaml_resumes_bit_identically(tiny_world, tmp_path):
    run = make_run("xmaml", TLPS3, steps=5, checkpoint_every=2, eval_every=3, meta_batch=2)
    full = trainer(tiny_world, run, tmp_path / "ckpt-full")
    full.fit(tmp_path / "out-full")
    killed = trainer(tiny_world, run, tmp_path / "ckpt")
    kill_at(killed, 4)  # after the checkpoint at step 2, before the one at step 4
    with pytest.raises(Killed):
        killed.fit(tmp_path / "out")
    resumed = trainer(tiny_world, run, tmp_path / "ckpt")
    resumed.fit(tmp_path / "out")
    assert same(weights(full.model), weights(resumed.model))
    assert json.loads((tmp_path / "out" / "history.json").read_text()) == json.loads(
        (tmp_path / "out-full" / "history.json").read_text()
    )


def test_xmaml_rejects_bad_options(tiny_world, tmp_path):
    for bad in ("some", 0, True):
        with pytest.raises(ConfigError, match="meta_batch"):
            trainer(tiny_world, make_run("xmaml", TLPS3, meta_batch=bad), tmp_path / "a")
