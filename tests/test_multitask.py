"""MultiTaskModel: heads on the raw [CLS] state (default) or on BERT's pooler (`encoder.pooler`)."""

from __future__ import annotations

import copy
import json
import logging

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from pipeline.errors import PipelineError
from pipeline.models.multitask import MultiTaskModel
from pipeline.tasks import for_task

#: one task of each task type
LABELS = {
    "nli": {"label": ["contradiction", "entailment", "neutral"]},
    "sa": {"label": ["negative", "positive"]},
    "ner": {"tags": ["B-PER", "I-PER", "O"]},
    "qa": {},
    "mtod": {"intent": ["a", "b", "c", "d"], "slots": ["B-x", "O"]},
}
CLASSIFICATION = ("nli", "sa")
OTHERS = ("ner", "qa", "mtod")


@pytest.fixture(scope="module")
def encoder(tiny_world):
    """The tiny encoder: a BertForMaskedLM saved with save_pretrained (no pooler weights)."""
    return tiny_world["encoder"]


@pytest.fixture(scope="module")
def batch(encoder) -> dict[str, torch.Tensor]:
    tok = AutoTokenizer.from_pretrained(str(encoder))
    enc = tok(
        ["alpha beta gamma", "delta", "omega sigma kappa zeta"],
        ["iota", "theta theta", "beta"],
        padding="max_length",
        max_length=16,
        return_tensors="pt",
    )
    return dict(enc)


def build(encoder, **kw) -> MultiTaskModel:
    torch.manual_seed(0)
    return MultiTaskModel.build(encoder, LABELS, 0.1, **kw).eval()


def outputs(model: MultiTaskModel, batch) -> dict[str, dict[str, torch.Tensor]]:
    with torch.no_grad():
        return {t: model(t, batch) for t in LABELS}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for t in a:
        assert a[t].keys() == b[t].keys()
        for k in a[t]:
            assert torch.equal(a[t][k], b[t][k]), (t, k)


def test_pooler_off_is_todays_model(encoder, batch):
    """Default (pooler=False): the encoder has no pooler, every head reads the hidden states as
    before (same weights from the same seed, same outputs as the pre-pooler forward)."""
    model = build(encoder)
    assert model.pooler is False and model.encoder.pooler is None
    assert not any("pooler" in k for k in model.state_dict())
    assert_same(outputs(model, batch), outputs(build(encoder, pooler=False), batch))
    # the forward as it was: AutoModel(add_pooling_layer=False) + heads on last_hidden_state
    torch.manual_seed(0)
    enc = AutoModel.from_pretrained(str(encoder), add_pooling_layer=False).eval()
    heads = {t: for_task(t).head(enc.config.hidden_size, LABELS[t], 0.1) for t in sorted(LABELS)}
    with torch.no_grad():
        hidden = enc(**batch).last_hidden_state
        want = {t: heads[t].eval()(hidden, batch["attention_mask"]) for t in LABELS}
    assert_same(outputs(model, batch), want)
    # classification logits = linear(h_[CLS])
    with torch.no_grad():
        got = model("nli", batch)["logits"]
        assert torch.equal(got, model.heads["nli"].out(hidden[:, 0]))


def test_pooler_on_classification_reads_tanh_dense_cls(encoder, batch, caplog):
    with caplog.at_level(logging.WARNING, logger="pipeline.models.multitask"):
        model = build(encoder, pooler=True)
    # the tiny encoder has no pooler weights: the fresh pooler is announced
    assert any("pooler" in r.getMessage() and "freshly" in r.getMessage() for r in caplog.records)
    assert model.pooler is True and model.encoder.pooler is not None
    assert model.pooled_tasks == frozenset(CLASSIFICATION)
    dense = model.encoder.pooler.dense
    with torch.no_grad():
        hidden = model.encoder(**batch).last_hidden_state
        h_cls = hidden[:, 0]
        before = outputs(model, batch)
        for t in CLASSIFICATION:
            want = model.heads[t].out(torch.tanh(h_cls @ dense.weight.T + dense.bias))
            assert torch.allclose(before[t]["logits"], want, atol=1e-6)
            assert not torch.allclose(before[t]["logits"], model.heads[t].out(h_cls), atol=1e-3)
        # the other heads still read the hidden states (MTOD's intent head: raw [CLS])
        assert torch.equal(before["mtod"]["intent_logits"], model.heads["mtod"].intent(h_cls))
        assert torch.equal(before["ner"]["logits"], model.heads["ner"].out(hidden))
        # perturb the pooler: classification logits move, the others do not
        dense.weight.add_(0.5 * torch.randn_like(dense.weight))
        after = outputs(model, batch)
    for t in CLASSIFICATION:
        assert not torch.allclose(before[t]["logits"], after[t]["logits"], atol=1e-3)
    for t in OTHERS:
        assert_same({t: before[t]}, {t: after[t]})


def test_pooler_on_gradients_reach_pooler_only_from_classification(encoder, batch):
    model = build(encoder, pooler=True).train()
    dense = model.encoder.pooler.dense
    model("ner", batch)["logits"].sum().backward()
    assert dense.weight.grad is None
    model("nli", batch)["logits"].sum().backward()
    assert dense.weight.grad is not None and dense.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("pooler", [False, True])
def test_save_load_round_trip_keeps_pooler_and_outputs(encoder, batch, tmp_path, caplog, pooler):
    model = build(encoder, pooler=pooler)
    if pooler:  # weights no fresh initialization would reproduce
        with torch.no_grad():
            model.encoder.pooler.dense.weight.mul_(3.0)
    tok = AutoTokenizer.from_pretrained(str(encoder))
    model.save_pretrained(tmp_path / "m", tok)
    assert json.loads((tmp_path / "m" / "multitask.json").read_text())["pooler"] is pooler
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipeline.models.multitask"):
        loaded, _ = MultiTaskModel.from_pretrained(tmp_path / "m")
    # the saved encoder holds its pooler: nothing freshly initialized
    assert not [r for r in caplog.records if r.name == "pipeline.models.multitask"]
    assert loaded.pooler is pooler and loaded.pooled_tasks == model.pooled_tasks
    assert_same(outputs(model, batch), outputs(loaded.eval(), batch))


def test_model_saved_without_pooler_key_loads_without_pooler(encoder, batch, tmp_path):
    model = build(encoder)
    model.save_pretrained(tmp_path / "m", AutoTokenizer.from_pretrained(str(encoder)))
    meta_path = tmp_path / "m" / "multitask.json"
    meta = json.loads(meta_path.read_text())
    del meta["pooler"]
    meta_path.write_text(json.dumps(meta))
    loaded, _ = MultiTaskModel.from_pretrained(tmp_path / "m")
    assert loaded.pooler is False and loaded.encoder.pooler is None
    assert_same(outputs(model, batch), outputs(loaded.eval(), batch))


def test_pooler_needs_a_pooling_layer(encoder):
    enc = AutoModel.from_pretrained(str(encoder), add_pooling_layer=False)
    with pytest.raises(PipelineError, match="pooler"):
        MultiTaskModel(copy.deepcopy(enc), LABELS, 0.1, pooler=True)
    assert MultiTaskModel(enc, LABELS, 0.1).pooler is False
