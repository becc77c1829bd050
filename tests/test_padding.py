"""Dynamic padding, length-grouped batches, inference mode and the acceleration switches.

What must hold: cutting a batch to its longest row changes the losses, gradients and
predictions only by float rounding (every cut position is padding: attention mask 0, label
ignored); length grouping visits exactly the examples of the ungrouped epoch; evaluation runs
without autograd; fused AdamW, torch.compile and bf16 autocast run the same training.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from pipeline.engine import BatchStream
from pipeline.evaluation import model_outputs, predict
from pipeline.features import lengths, load_split_data, take, trim_padding
from pipeline.records import TLP
from pipeline.runtime import acceleration
from tests.meta_helpers import SETTINGS, make_run, trainer, weights

TLPS = ["nli/l0", "ner/l1", "qa/l0"]
#: a parameter whose gradient is 0 in exact arithmetic: the QA head's bias shifts every start
#: (end) logit of a window alike, which a softmax does not see; its float gradient is rounding
#: noise that AdamW scales up to lr-sized steps of either sign, under any padding
ZERO_GRADIENT = {"heads.qa.out.bias"}


def no_dropout(model: nn.Module) -> None:
    """Dropout off everywhere: its masks are drawn for the batch's shape, so a cut batch draws
    other masks than a full one (same distribution, other numbers)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0


def split(world, tlp: str, train: bool, part: str = "train"):
    t = trainer(world, make_run("stl", [tlp], steps=1), world["root"] / "ckpt-pad")
    data = load_split_data(
        TLP.parse(tlp),
        part,
        [world["prepared"]],
        t.tokenizer,
        t.labels,
        SETTINGS,
        train,
        cache_dir=world["root"] / "features",
    )
    return t, data


def test_trim_padding_cuts_sequence_columns_only():
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    batch = {
        "input_ids": torch.arange(12).view(2, 6),
        "attention_mask": mask,
        "labels": torch.tensor([[5, 6, -100, -100, -100, -100], [7, -100, -100, -100, -100, -100]]),
        "start_positions": torch.tensor([1, 2]),
        "class_labels": torch.tensor([0, 1]),
    }
    out = trim_padding(batch)
    assert out["input_ids"].shape == (2, 3) and out["labels"].shape == (2, 3)
    assert torch.equal(out["attention_mask"], mask[:, :3])
    assert torch.equal(out["start_positions"], batch["start_positions"])
    assert torch.equal(out["class_labels"], batch["class_labels"])
    full = {"attention_mask": torch.ones(2, 4, dtype=torch.long), "x": torch.zeros(2, 4)}
    assert trim_padding(full) is full
    fixed = take(batch, torch.tensor([1]), torch.device("cpu"), "fixed")
    assert fixed["input_ids"].shape == (1, 6)
    assert take(batch, torch.tensor([1]), torch.device("cpu"))["input_ids"].shape == (1, 2)
    with pytest.raises(ValueError, match="padding"):
        take(batch, torch.tensor([1]), torch.device("cpu"), "ragged")


@pytest.mark.parametrize("tlp", TLPS)
def test_loss_and_gradients_equal_with_fixed_padding(tiny_world, tlp):
    t, data = split(tiny_world, tlp, train=True)
    model = t.model.eval()
    rows = torch.arange(min(8, len(data)))
    results = {}
    for padding in ("fixed", "dynamic"):
        batch = take(data.tensors, rows, torch.device("cpu"), padding)
        model.zero_grad()
        loss = t.ctx.loss(TLP.parse(tlp), batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[padding] = (float(loss), grads, batch["input_ids"].shape[1])
    (lf, gf, wf), (ld, gd, wd) = results["fixed"], results["dynamic"]
    assert wd < wf == SETTINGS.max_length  # the tiny data is shorter than max_length: it cut
    assert ld == pytest.approx(lf, rel=1e-5, abs=1e-6)
    assert gf.keys() == gd.keys()
    for n in gf:
        torch.testing.assert_close(gd[n], gf[n], rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.parametrize("tlp", TLPS)
def test_predictions_equal_with_fixed_padding(tiny_world, tlp):
    t, data = split(tiny_world, tlp, train=False, part="dev")
    model = t.model
    cpu = torch.device("cpu")
    fixed = model_outputs(model, data, 3, cpu, "fixed")
    dynamic = model_outputs(model, data, 3, cpu, "dynamic")
    assert fixed.keys() == dynamic.keys()
    mask = data.tensors["attention_mask"].bool().numpy()
    for k in fixed:
        assert fixed[k].shape == dynamic[k].shape, k  # padded back to max_length, feature order
        if fixed[k].ndim >= 2 and fixed[k].shape[1] == mask.shape[1]:
            a, b = fixed[k][mask], dynamic[k][mask]  # the real positions
        else:
            a, b = fixed[k], dynamic[k]
        torch.testing.assert_close(torch.from_numpy(b), torch.from_numpy(a), rtol=1e-4, atol=1e-5)
    labels = t.labels[data.tlp.task]
    assert predict(model, data, labels, 3, cpu, "dynamic") == predict(
        model, data, labels, 3, cpu, "fixed"
    )


def test_evaluation_runs_in_inference_mode(tiny_world):
    t, data = split(tiny_world, "nli/l0", train=False, part="dev")
    seen = []
    hook = t.model.encoder.register_forward_hook(
        lambda *_: seen.append(torch.is_inference_mode_enabled())
    )
    try:
        model_outputs(t.model, data, 4, torch.device("cpu"))
    finally:
        hook.remove()
    assert seen and all(seen)


def test_length_grouped_epoch_visits_the_same_examples():
    n, bs = 103, 4
    lens = torch.randint(3, 128, (n,), generator=torch.Generator().manual_seed(0))
    plain = BatchStream(n, bs, seed=7)
    grouped = BatchStream(n, bs, seed=7, lengths=lens, group_by_length=True)
    per_epoch = n // bs
    for _epoch in range(3):
        a = [plain.next() for _ in range(per_epoch)]
        b = [grouped.next() for _ in range(per_epoch)]
        assert sorted(torch.cat(a).tolist()) == sorted(torch.cat(b).tolist())
        # the padding a batch carries (longest minus each row) is far smaller when grouped
        waste = lambda bb: sum(int((lens[i].max() - lens[i]).sum()) for i in bb)  # noqa: E731
        assert waste(b) < 0.25 * waste(a)
    # resumable from its two integers, like the plain stream
    state = grouped.state_dict()
    nxt = [grouped.next() for _ in range(5)]
    again = BatchStream(n, bs, seed=7, lengths=lens, group_by_length=True)
    again.load_state_dict(state)
    assert all(torch.equal(x, again.next()) for x in nxt)
    with pytest.raises(ValueError, match="length"):
        BatchStream(n, bs, 7, lengths=lens[:5], group_by_length=True)


def close(a: dict, b: dict, rtol: float, atol: float) -> None:
    """Equal to tolerance; ZERO_GRADIENT ones at most 2 · 5 steps · lr (1e-3) apart (AdamW moves
    a parameter by at most about lr per step, the two runs possibly in opposite directions)."""
    for k in a:
        if k in ZERO_GRADIENT:
            assert float((a[k] - b[k]).abs().max()) <= 2 * 5 * 1e-3 + 1e-6, k
        else:
            torch.testing.assert_close(b[k], a[k], rtol=rtol, atol=atol, msg=k)


def fit_weights(world, tmp_path, name: str, **over) -> tuple[dict, dict]:
    run = make_run("mtl", TLPS, steps=5, eval_every=5, checkpoint_every=5, **over)
    t = trainer(world, run, tmp_path / f"ckpt-{name}")
    no_dropout(t.model)
    summary = t.fit(tmp_path / f"out-{name}")
    summary["history"] = json.loads((tmp_path / f"out-{name}" / "history.json").read_text())
    return weights(t.model), summary


def test_training_with_dynamic_padding_matches_fixed(tiny_world, tmp_path):
    fixed, sf = fit_weights(tiny_world, tmp_path, "fixed", padding="fixed")
    dynamic, sd = fit_weights(tiny_world, tmp_path, "dynamic", padding="dynamic")
    close(fixed, dynamic, rtol=1e-4, atol=1e-5)
    assert [h["loss"] for h in sd["history"] if "loss" in h] == pytest.approx(
        [h["loss"] for h in sf["history"] if "loss" in h], rel=1e-4
    )
    assert sd["options"]["acceleration"]["padding"] == "dynamic"
    assert sf["options"]["acceleration"]["padding"] == "fixed"


def test_group_by_length_trains_on_grouped_batches(tiny_world, tmp_path):
    run = make_run("stl", ["ner/l1"], steps=3, group_by_length=True)
    t = trainer(tiny_world, run, tmp_path / "ckpt-g")
    stream = t.ctx.streams[TLP.parse("ner/l1")]
    assert stream.lengths is not None
    assert torch.equal(stream.lengths, lengths(t.ctx.train[TLP.parse("ner/l1")]))
    assert t.fit(tmp_path / "out-g")["options"]["acceleration"]["group_by_length"] is True


def test_fused_adamw_compile_and_bf16_train_alike(tiny_world, tmp_path):
    base, _ = fit_weights(tiny_world, tmp_path, "base")
    fused, s = fit_weights(tiny_world, tmp_path, "fused", fused_adamw=True)
    assert s["options"]["acceleration"]["fused_adamw"] is True
    close(base, fused, rtol=1e-4, atol=1e-5)
    compiled, s = fit_weights(tiny_world, tmp_path, "compiled", compile="aot_eager")
    assert s["options"]["acceleration"]["compile"] == "aot_eager"
    close(base, compiled, rtol=1e-4, atol=1e-5)
    bf16, s = fit_weights(tiny_world, tmp_path, "bf16", precision="bf16")
    assert s["options"]["acceleration"]["precision"] == "bf16"
    assert any(not torch.equal(base[k], bf16[k]) for k in base)  # it really ran in bf16
    close(base, bf16, rtol=0.05, atol=5e-3)  # ... and trained the same model, to bf16 precision


def test_acceleration_defaults_are_cpu_safe():
    cpu = acceleration.options({}, torch.device("cpu"))
    assert cpu == {
        "precision": "fp32",
        "compile": None,
        "fused_adamw": False,
        "pin_memory": False,
        "padding": "dynamic",
        "group_by_length": False,
    }
    assert acceleration.options({}, torch.device("cuda"))["fused_adamw"] is True
    with pytest.raises(ValueError, match="precision"):
        acceleration.autocast(torch.device("cpu"), "fp8")


def test_qa_loss_gives_padding_no_probability():
    """Hand-computed: logits (0, 0, 5) with the last position padding and the answer at 0 cost
    log 2 (two real positions), not log(2 + e^5); the same logits cut to the real positions cost
    the same."""
    from pipeline.tasks import get_task_type

    qa = get_task_type("qa")
    logits = torch.tensor([[0.0, 0.0, 5.0]])
    batch = {
        "attention_mask": torch.tensor([[1, 1, 0]]),
        "start_positions": torch.tensor([0]),
        "end_positions": torch.tensor([0]),
    }
    full = qa.loss({"start_logits": logits, "end_logits": logits}, batch)
    assert float(full) == pytest.approx(math.log(2))
    cut = trim_padding({**batch, "start_logits": logits})
    short = cut.pop("start_logits")
    assert float(qa.loss({"start_logits": short, "end_logits": short}, cut)) == pytest.approx(
        math.log(2)
    )
