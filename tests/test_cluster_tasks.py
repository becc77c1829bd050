"""GMM clusters as the tasks of a run (Lee et al. 2022 §4.3): config, the split of one TLP's
training data into cluster tasks, and a run training on them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from meta_helpers import make_run, trainer

from pipeline.config import cluster_name, cluster_tlp, experiment_runs, load_params, validate
from pipeline.errors import ConfigError, PipelineError
from pipeline.features import cluster_split
from pipeline.records import TLP

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cfg():
    return load_params([REPO / "params.yaml"])


def with_experiment(cfg, **exp):
    c = copy.deepcopy(cfg)
    c["experiments"]["probe"] = {"steps": 2, **exp}
    return c


def test_cluster_file_name_and_task_keys(cfg):
    c = with_experiment(cfg, method="mtl", tlps=["nli/l0"], clusters={"k": 3})
    validate(c)
    run = next(r for r in experiment_runs(c) if r.experiment == "probe")
    nli = TLP.parse("nli/l0")
    assert cluster_name(c, run, nli) == "nli.l0.synthetic.k3.s13"  # default seed 13
    # the datasets the train split may come from name the file: other data, other clusters
    c2 = copy.deepcopy(c)
    c2["data"]["datasets"] = ["synthetic", "xnli"]
    c2["experiments"]["probe"].update(
        clusters={"k": 2, "seed": 5}, sources={"nli": {"train": "xnli"}}
    )
    run2 = next(r for r in experiment_runs(c2) if r.experiment == "probe")
    assert cluster_name(c2, run2, nli) == "nli.l0.xnli.k2.s5"
    plain = next(r for r in experiment_runs(c) if r.experiment == "mtl")
    assert cluster_name(c, plain, nli) is None
    assert str(cluster_tlp(TLP.parse("qa/en"), 2)) == "qa/en~c2"
    assert cluster_tlp(TLP.parse("qa/en"), 2).task == "qa"  # the head stays the task's


@pytest.mark.parametrize(
    "exp, message",
    [
        ({"method": "stl", "tlps": ["nli/l0"]}, "experiments.probe.clusters: needs a multi-task"),
        ({"method": "mtl", "tlps": ["nli/l0", "nli/l1"]}, "splits one training TLP"),
        (
            {"method": "reptile", "tlps": ["nli/l0"], "sampler": "multidds"},
            "with sampler multidds",
        ),
        (
            {"method": "mtl", "tlps": ["nli/l0"], "clusters": {"k": 1}},
            "experiments.probe.clusters.k",
        ),
    ],
)
def test_bad_cluster_experiments_name_the_key(cfg, exp, message):
    exp = {"clusters": {"k": 4}, **exp}
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate(with_experiment(cfg, **exp))


def _assignments(ids, k):
    return {str(i): n % k for n, i in enumerate(ids)}


@pytest.mark.parametrize("tlp", ["qa/l0", "ner/l0"])
def test_split_keeps_every_feature_with_its_record(tiny_world, tmp_path, tlp):
    """QA records may have several windows: each cluster holds all windows of its records, the
    clusters partition the features and the records, and the tensors follow the features."""
    t = trainer(tiny_world, make_run("mtl", [tlp]), tmp_path / "ck")
    data = t.train_data[TLP.parse(tlp)]
    rec_ids = [str(i) for i in data.records["id"]]
    assign = _assignments(rec_ids, 3)
    parts = cluster_split(data, assign, 3, lambda c: cluster_tlp(data.tlp, c))
    assert list(parts) == [cluster_tlp(data.tlp, c) for c in range(3)]
    assert sum(len(p) for p in parts.values()) == len(data)
    seen_records = []
    for c, part in enumerate(parts.values()):
        assert {assign[str(i)] for i in part.features["example_id"]} == {c}
        assert {assign[str(i)] for i in part.records["id"]} == {c}
        seen_records += [str(i) for i in part.records["id"]]
        rows = [j for j, i in enumerate(data.features["example_id"]) if assign[str(i)] == c]
        for col, tensor in part.tensors.items():
            assert torch.equal(tensor, data.tensors[col][rows]), col
    assert sorted(seen_records) == sorted(rec_ids)


def test_split_refuses_unassigned_records_and_empty_clusters(tiny_world, tmp_path):
    t = trainer(tiny_world, make_run("mtl", ["nli/l0"]), tmp_path / "ck")
    data = t.train_data[TLP.parse("nli/l0")]
    ids = [str(i) for i in data.records["id"]]
    with pytest.raises(PipelineError, match="have no cluster"):
        cluster_split(data, _assignments(ids[1:], 2), 2, str)
    with pytest.raises(PipelineError, match="cluster 2 of 3 has no example"):
        cluster_split(data, _assignments(ids, 2), 3, str)


def test_run_trains_on_cluster_tasks(tiny_world, tmp_path):
    """The method sees the k clusters as its tasks (sampling, streams, gradient cosines), and
    the data it trains on is exactly the TLP's training set."""
    run = make_run(
        "pcgrad",
        ["nli/l0"],
        clusters={"k": 3},
        tasks_per_step=8,
        temperature="inf",
        grad_cosine_batches=1,
        steps=3,
        eval_every=3,
    )
    plain = trainer(tiny_world, make_run("mtl", ["nli/l0"]), tmp_path / "plain")
    ids = [str(i) for i in plain.train_data[TLP.parse("nli/l0")].records["id"]]
    clusters = {TLP.parse("nli/l0"): {"assignments": _assignments(ids, 3)}}
    t = trainer(tiny_world, run, tmp_path / "ck", clusters=clusters)
    want = [TLP("nli", f"l0~c{c}") for c in range(3)]
    assert t.ctx.tlps == want
    assert sum(len(d) for d in t.train_data.values()) == len(ids)
    assert t.method.T == 3  # eight tasks per step, capped at the run's three clusters
    summary = t.fit(tmp_path / "out")
    assert summary["cluster_sizes"] == {str(w): len(t.train_data[w]) for w in want}
    hist = [h for h in summary_history(tmp_path / "out") if "grad_cosine" in h]
    assert hist[-1]["batches"] == 3 * 3  # one batch per cluster per step (Fig. 7c's x axis)
    assert hist and set(hist[-1]["grad_cosine"]["pairs"]) == {
        f"{a}|{b}" for i, a in enumerate(want) for b in want[i + 1 :]
    }
    # the checkpoint key changes with the assignment: a resumed run never mixes clusterings
    other = {TLP.parse("nli/l0"): {"assignments": {i: (n + 1) % 3 for n, i in enumerate(ids)}}}
    assert trainer(tiny_world, run, tmp_path / "ck2", clusters=other).key != t.key


def summary_history(out: Path) -> list[dict]:
    import json

    return json.loads((out / "history.json").read_text())
