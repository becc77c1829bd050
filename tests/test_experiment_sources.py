"""An experiment's own `sources` over `data.sources`: validated, resolved per distinct source set
in data/plan.json, and what that experiment's train, predict and score steps read (Lee et al.'s
qa/en comes from TyDiQA in one table and from SQuAD in another)."""

from __future__ import annotations

import copy

import pytest
import yaml

from pipeline import steps
from pipeline.config import data_sources, experiment_sources, load_params, validate
from pipeline.data.plan import describe_sources, make_plan, plan_splits
from pipeline.data.store import locate, save_prepared
from pipeline.errors import ConfigError
from pipeline.io import read_json
from pipeline.records import TLP
from tests.conftest import REPO, make_records

QA0 = TLP("qa", "l0")


@pytest.fixture()
def world(tmp_path, monkeypatch):
    """Prepared `a` (every tiny TLP) and `b` (qa/l0 train and dev only, other records); two
    experiments: `own` reads qa/l0's train and dev from b, `plain` from `data.sources`."""
    monkeypatch.chdir(tmp_path)
    recs = make_records(n_train=4, n_eval=3)
    save_prepared(tmp_path / "data/prepared/a", recs)
    other = make_records(n_train=2, n_eval=2)[QA0]
    save_prepared(
        tmp_path / "data/prepared/b", {QA0: {"train": other["train"], "dev": other["dev"]}}
    )
    cfg = copy.deepcopy(load_params([REPO / "params.yaml"]))
    cfg["data"]["datasets"] = ["a", "b"]
    cfg["data"]["sources"] = {"qa": {"dev": "a"}}
    cfg["tlps"] = ["nli/l0", "qa/l0"]
    cfg["zero_shot_langs"] = ["l1"]
    cfg["seeds"] = [1]
    cfg["experiments"] = {
        "plain": {"method": "mtl", "steps": 1},
        "own": {"method": "mtl", "steps": 1, "sources": {"qa": {"train": "b", "dev": ["b", "a"]}}},
    }
    validate(cfg)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


def test_sources_override_data_sources_split_by_split(world):
    assert experiment_sources(world, "own") == {"qa": {"train": "b", "dev": ["b", "a"]}}
    assert experiment_sources(world, "plain") == {"qa": {"dev": "a"}}
    world["experiments"]["own"]["sources"] = {"qa": {"train": "b"}}  # dev stays data.sources'
    assert experiment_sources(world, "own") == {"qa": {"dev": "a", "train": "b"}}
    assert [p.name for p in data_sources(world, "own").candidates("qa", "dev")] == ["a"]
    assert [p.name for p in data_sources(world, "own").candidates("nli", "dev")] == ["a", "b"]


def test_each_source_set_is_resolved_on_its_own_in_the_plan(world):
    res = steps.plan(["p.yaml"], "data/plan.json")
    plan = read_json("data/plan.json")
    assert res["out"] == "data/plan.json"
    assert plan["splits"]["qa/l0"]["train"] == {"dataset": "a", "n": 4}  # `plain`: unchanged
    assert plan["splits"]["qa/l0"]["dev"] == {"dataset": "a", "n": 3}
    (entry,) = plan["source_sets"]
    assert entry["experiments"] == ["own"] and entry["sources"]["qa"]["train"] == "b"
    assert entry["splits"]["qa/l0"]["train"] == {"dataset": "b", "n": 2}
    assert entry["splits"]["qa/l0"]["dev"] == {"dataset": "b", "n": 2}
    assert entry["splits"]["qa/l0"]["test"]["dataset"] == "a"  # b has none: the next candidate
    assert entry["splits"]["qa/l1"]["dev"]["dataset"] == "a"  # zero-shot: b lacks l1
    assert plan_splits(plan, "own") is not plan_splits(plan, "plain")
    assert plan_splits(plan, "plain") == plan["splits"]
    assert any(
        line.startswith("qa (own): train <- b; dev <- b | a") for line in describe_sources(world)
    )


def test_sources_equal_to_the_default_add_no_set(world):
    world["experiments"]["own"]["sources"] = {"qa": {"dev": ["a"]}}  # = data.sources
    plan = make_plan(world)
    assert "source_sets" not in plan and plan["splits"]["qa/l0"]["train"]["dataset"] == "a"
    del world["experiments"]["own"]["sources"]
    assert "source_sets" not in make_plan(world)


def test_a_split_no_source_of_the_experiment_has_stops_the_plan(world):
    world["experiments"]["own"]["sources"] = {"qa": {"test": "b"}}  # b has no qa test split
    with pytest.raises(ConfigError, match="^qa/l0: no labelled test split in b;"):
        make_plan(world)


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (
            {"qa": {"train": "squadd"}},
            "experiments.own.sources.qa.train: 'squadd' is not one of data.datasets (a, b)",
        ),
        ({"qa": {"dev": ["a", "zz"]}}, "experiments.own.sources.qa.dev: 'zz' is not one of"),
        ({"qa": {"tset": "a"}}, "experiments.own.sources.qa.tset: unknown key"),
        ({"dance": {"train": "a"}}, "experiments.own.sources: expected"),
    ],
)
def test_unknown_datasets_name_the_experiment_key(world, sources, message):
    world["experiments"]["own"]["sources"] = sources
    with pytest.raises(ConfigError) as e:
        validate(world)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_sources_cannot_be_swept(world):
    world["experiments"]["plain"]["sweep"] = [{"sources": {"qa": {"train": "b"}}}]
    with pytest.raises(ConfigError, match="experiments.plain.sweep.0: sources cannot be swept"):
        validate(world)


class _Stop(Exception):
    pass


def test_train_predict_and_score_steps_read_their_experiments_sources(world, monkeypatch):
    """Each run's training job, its predictions and its scores look splits up in its own
    experiment's sources."""
    import pipeline.evaluation
    import pipeline.trainer

    seen: dict[str, object] = {}

    class Trainer:
        def __init__(self, run, encoder, sources, *args, **kwargs):
            seen[run.experiment] = sources
            raise _Stop

    monkeypatch.setattr(pipeline.trainer, "Trainer", Trainer)
    for rid in ("plain.s1", "own.s1"):
        with pytest.raises(_Stop):
            steps.train(["p.yaml"], rid, "models/runs/x", "checkpoints/x")
    assert locate(QA0, seen["own"], "train").name == "b"
    assert locate(QA0, seen["own"], "dev").name == "b"
    assert locate(QA0, seen["plain"], "train").name == "a"
    assert locate(QA0, seen["plain"], "dev").name == "a"

    def predict_splits(model, tok, tlps, splits, sources, *args, **kwargs):
        seen["predicted"] = sources
        return {}

    monkeypatch.setattr(pipeline.evaluation, "predict_splits", predict_splits)
    steps.predict_models(world, {(QA0,): (_Model(), None)}, "own")
    assert locate(QA0, seen["predicted"], "dev").name == "b"

    def score_run_predictions(run, preds, sources):
        seen["scored"] = sources
        return {"scores": {}}

    monkeypatch.setattr(pipeline.evaluation, "score_run_predictions", score_run_predictions)
    from pipeline.config import get_run

    steps.write_scores(world, get_run(world, "own.s1"), {}, "scores.json")
    assert locate(QA0, seen["scored"], "train").name == "b"


class _Model:
    def to(self, device):
        return self
