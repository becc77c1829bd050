"""Trainer: STL/MTL runs end to end on a tiny model, exact resume, and same-seed reproducibility."""

from __future__ import annotations

import copy

import pytest
import torch

from pipeline.config import Run
from tests.meta_helpers import Killed, kill_at, make_run, trainer, weights


def test_mtl_trains_and_writes_outputs(tiny_world, tmp_path):
    run = make_run("mtl", ["nli/l0", "ner/l0", "qa/l1"], temperature=2.0)
    t = trainer(tiny_world, run, tmp_path / "ckpt")
    before = weights(t.model)
    summary = t.fit(tmp_path / "out")
    after = weights(t.model)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert summary["inner_steps"] == 6
    assert set(summary["best_dev"]) == {"nli/l0", "ner/l0", "qa/l1"}
    assert summary["options"]["temperature"] == 2.0
    assert (tmp_path / "out" / "model" / "heads.safetensors").exists()
    assert (tmp_path / "out" / "model" / "encoder" / "config.json").exists()
    assert (tmp_path / "out" / "history.json").exists()


@pytest.mark.parametrize(
    "method, tlps, over",
    [
        ("stl", ["ner/l0"], {}),
        ("mtl", ["nli/l0", "ner/l1", "qa/l0"], {}),
        ("mtl", ["nli/l0", "ner/l1", "qa/l0"], {"selection": "per-task"}),
    ],
)
def test_resume_after_kill_gives_identical_weights(tiny_world, tmp_path, method, tlps, over):
    run = make_run(method, tlps, steps=7, checkpoint_every=2, eval_every=3, **over)
    full = trainer(tiny_world, run, tmp_path / "ckpt-full")
    full.fit(tmp_path / "out-full")
    expected = weights(full.model)

    killed = trainer(tiny_world, run, tmp_path / "ckpt")
    kill_at(killed, 6)  # after the checkpoint at step 4, before the one at step 6
    with pytest.raises(Killed):
        killed.fit(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # no partial output

    resumed = trainer(tiny_world, run, tmp_path / "ckpt")
    resumed.fit(tmp_path / "out")
    got = weights(resumed.model)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    for d in (tmp_path / "out-full").glob("model*"):  # every kept checkpoint, per task too
        assert (d / "heads.safetensors").read_bytes() == (
            tmp_path / "out" / d.name / "heads.safetensors"
        ).read_bytes(), d.name


def test_same_seed_same_numbers_and_different_seed_differs(tiny_world, tmp_path):
    run = make_run("mtl", ["nli/l0", "ner/l0"])
    a = trainer(tiny_world, run, tmp_path / "a")
    a.fit(tmp_path / "oa")
    b = trainer(tiny_world, run, tmp_path / "b")
    b.fit(tmp_path / "ob")
    wa, wb = weights(a.model), weights(b.model)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    other = copy.deepcopy(run.params)
    other["seed"] = 4
    c = trainer(
        tiny_world,
        Run(run.id, run.experiment, run.method, run.train_tlps, run.eval_tlps, other),
        tmp_path / "c",
    )
    c.fit(tmp_path / "oc")
    wc = weights(c.model)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_checkpoint_of_another_config_is_not_resumed(tiny_world, tmp_path):
    run = make_run("stl", ["ner/l0"], steps=4, checkpoint_every=2)
    t = trainer(tiny_world, run, tmp_path / "ckpt")
    kill_at(t, 3)
    with pytest.raises(Killed):
        t.fit(tmp_path / "o1")
    assert trainer(tiny_world, run, tmp_path / "ckpt")._resume()[0] == 2  # same config: resumes
    other = make_run("stl", ["ner/l0"], steps=4, checkpoint_every=2, lr=5e-4)
    step, history, _ = trainer(tiny_world, other, tmp_path / "ckpt")._resume()
    assert step == 0 and history == []


def test_finished_run_clears_its_checkpoint(tiny_world, tmp_path):
    run = make_run("stl", ["ner/l0"], steps=4, checkpoint_every=2)
    trainer(tiny_world, run, tmp_path / "ckpt").fit(tmp_path / "out")
    assert not (tmp_path / "ckpt").exists() and (tmp_path / "out" / "summary.json").exists()


def test_mtl_concat_visits_every_batch_once_per_epoch(tiny_world, tmp_path):
    run = make_run("mtl", ["nli/l0", "ner/l0", "qa/l1"], mixing="concat", epochs=2)
    del run.params["steps"]
    t = trainer(tiny_world, run, tmp_path / "ckpt")
    per_epoch = {str(x): s.batches_per_epoch() for x, s in t.ctx.streams.items()}
    assert t.total_steps == 2 * sum(per_epoch.values())
    drawn = [t.method.step()["tlps"][0] for _ in range(sum(per_epoch.values()))]
    assert {x: drawn.count(x) for x in per_epoch} == per_epoch  # each TLP's batches once
    assert drawn != sorted(drawn)  # interleaved, not one dataset after another
    assert t.method.options() == {"mixing": "concat", "tasks_per_step": 1}


def test_mtl_concat_resumes_exactly(tiny_world, tmp_path):
    run = make_run("mtl", ["nli/l0", "ner/l0"], mixing="concat", steps=7, checkpoint_every=2)
    full = trainer(tiny_world, run, tmp_path / "a")
    full.fit(tmp_path / "oa")
    killed = trainer(tiny_world, run, tmp_path / "b")
    kill_at(killed, 6)
    with pytest.raises(Killed):
        killed.fit(tmp_path / "ob")
    resumed = trainer(tiny_world, run, tmp_path / "b")
    resumed.fit(tmp_path / "ob")
    a, b = weights(full.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_per_task_selection_keeps_each_tasks_best_checkpoint(tiny_world, tmp_path):
    """`selection: per-task` keeps, per task, the checkpoint with that task's best mean dev
    score (the weights of that very evaluation), besides the overall best."""
    from pipeline.models.multitask import MultiTaskModel
    from pipeline.trainer import model_dir_for

    run = make_run("mtl", ["nli/l0", "ner/l0"], steps=9, eval_every=1, selection="per-task")
    t = trainer(tiny_world, run, tmp_path / "ckpt")
    seen = {}  # step -> weights at each evaluation
    dev_scores = t.dev_scores

    def recording():
        scores = dev_scores()
        seen[len(seen) + 1] = weights(t.model)
        return scores

    t.dev_scores = recording
    summary = t.fit(tmp_path / "out")
    hist = [h for h in __import__("json").loads((tmp_path / "out/history.json").read_text())]
    for task, tlp in (("nli", "nli/l0"), ("ner", "ner/l0")):
        best = max(hist, key=lambda h: (h["dev"][tlp], -h["step"]))  # first of the maxima
        assert summary["best_by_task"][task] == {"step": best["step"], "dev_mean": best["dev"][tlp]}
        saved, _ = MultiTaskModel.from_pretrained(model_dir_for(tmp_path / "out", task))
        got = weights(saved)
        assert all(torch.equal(got[k], seen[best["step"]][k]) for k in got)
    assert model_dir_for(tmp_path / "out", "qa").name == "model"  # no such task: the overall best
    assert summary["selection"] == "per-task"


def test_the_main_metric_option_drives_dev_selection(tiny_world, tmp_path):
    """`metrics.main: {ner: accuracy}` (a run's params carry it): selection and the recorded dev
    scores use NER token accuracy instead of seqeval F1, and nothing else changes."""
    base = make_run("mtl", ["nli/l0", "ner/l0"], steps=4, eval_every=2)
    over = make_run(
        "mtl", ["nli/l0", "ner/l0"], steps=4, eval_every=2, metrics={"main": {"ner": "accuracy"}}
    )
    a = trainer(tiny_world, base, tmp_path / "a").fit(tmp_path / "out-a")
    b = trainer(tiny_world, over, tmp_path / "b").fit(tmp_path / "out-b")
    for s, key in ((a, "f1"), (b, "accuracy")):
        for step in s["best_dev"].values():
            assert "main" in step
        assert s["best_dev"]["ner/l0"]["main"] == s["best_dev"]["ner/l0"][key]
        assert s["best_dev"]["nli/l0"]["main"] == s["best_dev"]["nli/l0"]["accuracy"]
    assert a["best_dev"]["ner/l0"]["accuracy"] != a["best_dev"]["ner/l0"]["f1"]
