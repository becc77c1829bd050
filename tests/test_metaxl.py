"""MetaXL (Xia et al. 2021) and its joint-training baselines: the RTN (Eq. 1), the look-ahead
hypergradient (Algorithm 1, Eq. 4) against finite differences, the identities with joint
training, exact resume, and the named options."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.methods.metaxl import MetaXL
from pipeline.models import rtn as rtn_lib
from pipeline.models.multitask import MultiTaskModel
from tests.meta_helpers import assert_resumes_bit_identically, make_run, same, trainer, weights

PAIR = ["ner/l0", "ner/l1"]  # source l0 (through the RTN), target l1
TWO = ["ner/l0", "ner/l1", "nli/l0", "nli/l1"]


def run(method: str, tlps=PAIR, **over):
    base = {"targets": ["l1"], "dropout": 0.1, "lr": 1e-3, "meta_lr": 1e-2}
    if method == "jt":
        base.pop("meta_lr")
    return make_run(method, tlps, **{**base, **over})


def phi(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith("rtn.")}


def theta(model):
    return {k: v for k, v in weights(model).items() if not k.startswith("rtn.")}


# -- the RTN --------------------------------------------------------------------------------


def test_rtn_is_eq1_and_the_reference_variant_gates_a_detached_residual():
    torch.manual_seed(0)
    net = rtn_lib.RTN(6, 3, "eq1")
    h = torch.randn(2, 5, 6)
    w1, b1, w2, b2 = net.down.weight, net.down.bias, net.up.weight, net.up.bias
    expected = torch.relu(h @ w1.T + b1) @ w2.T + b2  # w2ᵀ ReLU(w1ᵀ h + b1) + b2
    assert torch.allclose(net(h), expected)
    gated = rtn_lib.RTN(6, 3, "residual_gate")
    assert gated.up.out_features == 7  # d values and the gate
    h.requires_grad_(True)
    out = gated(h)
    mlp = gated.up(torch.relu(gated.down(h.detach())))
    assert torch.allclose(out, h + torch.sigmoid(mlp[..., -1:]) * mlp[..., :-1])
    (g,) = torch.autograd.grad(out.sum(), h)
    assert torch.equal(g, torch.ones_like(h))  # only the residual passes gradient down
    with pytest.raises(ConfigError, match="bottleneck"):
        rtn_lib.RTN(6, 6, "eq1")


def test_rtn_applies_to_source_examples_only_and_is_discarded_on_save(tiny_world, tmp_path):
    t = trainer(tiny_world, run("metaxl"), tmp_path / "ck")
    model = t.model
    assert rtn_lib.rtn_of(model).layers == [1]  # `last` of the one-layer encoder
    batch = t.ctx.batch(t.ctx.tlps[0])
    model.eval()
    plain = model("ner", batch)["logits"]
    with rtn_lib.applied(model):
        moved = model("ner", batch)["logits"]
    again = model("ner", batch)["logits"]
    assert not torch.allclose(plain, moved)
    assert torch.equal(plain, again)
    model.save_pretrained(tmp_path / "saved", t.tokenizer)
    loaded, _ = MultiTaskModel.from_pretrained(tmp_path / "saved")
    assert not any(k.startswith("rtn.") for k in loaded.state_dict())
    loaded.eval()
    assert torch.allclose(loaded("ner", batch)["logits"], plain, atol=1e-6)


def test_rtn_after_the_embeddings_changes_what_the_layers_see(tiny_world, tmp_path):
    t = trainer(tiny_world, run("jt", rtn=True, rtn_layers=[0, "last"]), tmp_path / "ck")
    assert rtn_lib.rtn_of(t.model).layers == [0, 1]
    with pytest.raises(ConfigError, match="rtn_layers"):
        trainer(tiny_world, run("jt", rtn=True, rtn_layers=[5]), tmp_path / "ck2")


# -- the look-ahead --------------------------------------------------------------------------


def _double_trainer(world, tmp_path, **over):
    """A MetaXL trainer in float64 with every dropout off (finite differences need a
    deterministic, smooth enough loss)."""
    t = trainer(world, run("metaxl", dropout=0.0, **over), tmp_path / "ck")
    for mod in t.model.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    t.model.double()
    return t


def test_hypergradient_equals_finite_differences(tiny_world, tmp_path):
    t = _double_trainer(tiny_world, tmp_path, inner_lr=0.5)
    m: MetaXL = t.method
    batches = m._batches()
    grads, _, _ = m.meta_gradient(batches, 0.5)
    g = torch.cat([x.reshape(-1) for x in grads])
    assert g.abs().sum() > 0

    def meta_loss() -> float:
        named = dict(t.model.named_parameters())
        th = {k: named[k] for k in m.theta_names}
        (s, src, tt, _, meta) = batches[0]
        inner = m.source_loss(th, s, src)
        gr = torch.autograd.grad(inner, list(th.values()), allow_unused=True)
        adapted = {k: v if d is None else v - 0.5 * d for (k, v), d in zip(th.items(), gr)}
        return float(t.ctx.functional_loss(adapted, tt, meta).detach())

    gen = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in m.phi]
    eps = 1e-5
    with torch.no_grad():
        for p, d in zip(m.phi, v):
            p.add_(eps * d)
    up = meta_loss()
    with torch.no_grad():
        for p, d in zip(m.phi, v):
            p.sub_(2 * eps * d)
    down = meta_loss()
    with torch.no_grad():
        for p, d in zip(m.phi, v):
            p.add_(eps * d)
    fd = (up - down) / (2 * eps)
    analytic = float(sum((a * b).sum() for a, b in zip(grads, v)))
    assert analytic == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_lookahead_leaves_theta_bit_identical_and_no_grad(tiny_world, tmp_path):
    t = trainer(tiny_world, run("metaxl", tlps=TWO, targets=["l1"]), tmp_path / "ck")
    before = weights(t.model)
    rng = torch.get_rng_state()
    t.method.meta_gradient(t.method._batches(), 1e-3)
    assert same(before, weights(t.model))
    assert all(p.grad is None for p in t.model.parameters())
    del rng
    # α = 0: θ' = θ, so no meta-gradient, and the meta loss is the target loss at θ
    d = _double_trainer(tiny_world, tmp_path / "d")
    batches = d.method._batches()
    grads, _, meta = d.method.meta_gradient(batches, 0.0)
    assert grads == [None] * len(d.method.phi)
    _, _, tt, _, mb = batches[0]
    assert meta == pytest.approx(float(d.ctx.loss(tt, mb).detach()), rel=1e-12)


def test_phi_learns_only_from_the_meta_loss(tiny_world, tmp_path):
    t = trainer(tiny_world, run("metaxl"), tmp_path / "ck")
    before_phi, before_theta = phi(t.model), theta(t.model)
    t.method.step()
    assert not same(before_phi, phi(t.model))
    assert not same(before_theta, theta(t.model))
    # β = 0: φ does not move, bit for bit
    t0 = trainer(tiny_world, run("metaxl", meta_lr=0.0), tmp_path / "ck0")
    start = phi(t0.model)
    for _ in range(3):
        t0.method.step()
    assert same(start, phi(t0.model))


@pytest.mark.parametrize("tlps", [PAIR, TWO], ids=["one-task", "two-tasks"])
def test_metaxl_with_zero_meta_lr_is_joint_training_with_the_same_frozen_rtn(
    tiny_world, tmp_path, tlps
):
    """With β = 0 MetaXL's real updates are JT w/ RTN's with φ frozen, step for step (dropout
    on: the look-ahead replays the real update's masks and leaves the RNG as it found it)."""
    meta = trainer(tiny_world, run("metaxl", tlps=tlps, meta_lr=0.0), tmp_path / "a")
    jt = trainer(tiny_world, run("jt", tlps=tlps, rtn=True), tmp_path / "b")
    for p in jt.model.rtn.parameters():
        p.requires_grad_(False)
    assert same(weights(meta.model), weights(jt.model))  # the same seeded RTN
    rng = {"a": torch.get_rng_state(), "b": torch.get_rng_state()}  # one generator per run

    def step(t, key):
        torch.set_rng_state(rng[key])
        out = t.method.step()
        rng[key] = torch.get_rng_state()
        return out

    for _ in range(4):
        a, b = step(meta, "a"), step(jt, "b")
        assert a["loss"] == b["loss"]
        assert same(weights(meta.model), weights(jt.model))


def test_jt_with_rtn_trains_phi_jointly_and_plain_jt_has_none(tiny_world, tmp_path):
    t = trainer(tiny_world, run("jt", rtn=True), tmp_path / "a")
    start = phi(t.model)
    t.method.step()
    assert not same(start, phi(t.model))
    plain = trainer(tiny_world, run("jt"), tmp_path / "b")
    assert rtn_lib.rtn_of(plain.model) is None
    assert plain.method.options()["rtn"] is None


def test_options_change_what_a_step_reads(tiny_world, tmp_path):
    t = trainer(tiny_world, run("metaxl", target_split="halves"), tmp_path / "a")
    batch = t.ctx.batch(t.ctx.tlps[1])
    train, meta = t.method._split(batch)
    n = len(batch["input_ids"])
    assert len(train["input_ids"]) == n // 2 and len(meta["input_ids"]) == n - n // 2
    assert torch.equal(torch.cat([train["input_ids"], meta["input_ids"]]), batch["input_ids"])
    # the scheduled look-ahead step is the main optimizer's lr (warm-up: 1/2, then 2/2 of lr)
    s = trainer(tiny_world, run("metaxl", lookahead_lr="scheduled"), tmp_path / "b")
    alphas = [s.method.step()["lookahead_lr"] for _ in range(3)]
    assert alphas[0] == pytest.approx(0.5e-3) and alphas[1] == pytest.approx(1e-3)
    # the target term in the look-ahead changes the meta-gradient
    a = _double_trainer(tiny_world, tmp_path / "c")
    b = _double_trainer(tiny_world, tmp_path / "d", inner_target=True)
    ga, _, _ = a.method.meta_gradient(a.method._batches(), 1e-2)
    gb, _, _ = b.method.meta_gradient(b.method._batches(), 1e-2)
    assert not all(torch.allclose(x, y) for x, y in zip(ga, gb))


def test_options_are_recorded(tiny_world, tmp_path):
    o = trainer(tiny_world, run("metaxl", transform="residual_gate"), tmp_path / "a").method
    opts = o.options()
    assert opts["pairs"] == {"ner/l1": "ner/l0"}
    assert opts["rtn"]["transform"] == "residual_gate" and opts["rtn"]["bottleneck"] == 8
    assert opts["lookahead_lr"] == "fixed" and opts["inner_lr"] == 1e-3
    assert opts["inner_target"] is False and opts["target_split"] == "whole"


def test_a_task_needs_one_source_and_one_target(tiny_world, tmp_path):
    with pytest.raises(ConfigError, match="one source and one target"):
        trainer(tiny_world, run("metaxl", targets=["l2"]), tmp_path / "a")


def test_epochs_are_passes_over_the_source_data(tiny_world, tmp_path):
    r = run("jt", epochs=2)
    r.params.pop("steps")
    t = trainer(tiny_world, r, tmp_path / "a")
    assert t.total_steps == 2 * t.ctx.streams[t.ctx.tlps[0]].batches_per_epoch()


def test_metaxl_resumes_bit_identically(tiny_world, tmp_path):
    assert_resumes_bit_identically(tiny_world, run("metaxl"), tmp_path)


def test_xlmr_keeps_its_own_special_tokens_pad_id_and_positions():
    """The reference fed XLM-R BERT's `[CLS]`/`[SEP]` strings, pad id 0 and positions from 0
    (seed-implementations §3.3, X3-X4); here the tokenizer's own `<s>`/`</s>` and pad id 1
    reach the features, the model's own embeddings number positions from padding_idx + 1, and
    the RTN hooks an XLM-R encoder like a BERT one."""
    import datasets
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    from pipeline.tasks import FeatureSettings, for_task

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "good": 4, "bad": 5, "film": 6}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    records = datasets.Dataset.from_dict(
        {
            "id": ["a", "b"],
            "lang": ["te", "te"],
            "text": ["good film", "bad"],
            "label": ["positive", "negative"],
        }
    )
    labels = {"label": ["negative", "positive"]}
    feats = for_task("sa").featurize(records, tok, labels, FeatureSettings(max_length=8), True)
    ids = feats["input_ids"]
    assert ids[0][:4] == [0, 4, 6, 2] and ids[1][:3] == [0, 5, 2]
    assert set(ids[1][3:]) == {1} and feats["attention_mask"][1][3:] == [0] * 5
    config = XLMRobertaConfig(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        pad_token_id=1,
    )
    encoder = XLMRobertaModel(config, add_pooling_layer=False)
    assert encoder.embeddings.padding_idx == tok.pad_token_id  # positions start at 2
    model = MultiTaskModel(encoder, {"sa": labels}, 0.0)
    rtn_lib.attach(model, [0, "last"], None, "eq1", seed=0)
    batch = {k: torch.tensor(feats[k]) for k in ("input_ids", "attention_mask")}
    model.eval()
    plain = model("sa", batch)["logits"]
    with rtn_lib.applied(model):
        moved = model("sa", batch)["logits"]
    assert plain.shape == (2, 2) and not torch.allclose(plain, moved)
