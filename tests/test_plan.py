"""The data plan: every split the runs need is found before any training, or one line says which
TLP, split and datasets; the plan records where each split comes from."""

from __future__ import annotations

import copy

import pytest

from pipeline.config import load_params
from pipeline.data.plan import describe_sources, make_plan
from pipeline.data.store import save_prepared
from pipeline.errors import ConfigError
from pipeline.records import TLP
from tests.conftest import REPO, make_records


@pytest.fixture()
def world(tmp_path, monkeypatch):
    """Two prepared datasets: `a` with every TLP of the tiny records, `b` with qa/l0 dev only."""
    monkeypatch.chdir(tmp_path)
    recs = make_records(n_train=4, n_eval=3)
    save_prepared(tmp_path / "data/prepared/a", recs)
    only_dev = {TLP("qa", "l0"): {"dev": recs[TLP("qa", "l0")]["dev"][:2]}}
    save_prepared(tmp_path / "data/prepared/b", only_dev)
    cfg = copy.deepcopy(load_params([REPO / "params.yaml"]))
    cfg["data"]["datasets"] = ["a", "b"]
    cfg["tlps"] = ["nli/l0", "qa/l0"]
    cfg["zero_shot_langs"] = ["l1"]
    cfg["seeds"] = [1]
    cfg["experiments"] = {"mtl": {"method": "mtl", "steps": 1}}
    return cfg


def test_plan_records_the_dataset_of_every_split(world):
    plan = make_plan(world)["splits"]
    assert set(plan) == {"nli/l0", "qa/l0", "nli/l1", "qa/l1"}  # trained + zero-shot
    assert set(plan["nli/l0"]) == {"train", "dev", "test"} and set(plan["qa/l1"]) == {"dev", "test"}
    assert plan["qa/l0"]["dev"] == {"dataset": "a", "n": 3}  # first dataset that has it


def test_explicit_sources_pick_another_dataset(world):
    world["data"]["sources"] = {"qa": {"dev": ["b", "a"]}}  # in order: the first that has it
    plan = make_plan(world)["splits"]
    assert plan["qa/l0"]["dev"] == {"dataset": "b", "n": 2}
    assert plan["qa/l1"]["dev"]["dataset"] == "a" and plan["qa/l0"]["test"]["dataset"] == "a"
    assert describe_sources(world)[1] == "qa: train <- a | b; dev <- b | a; test <- a | b"


def test_a_missing_split_is_one_line_naming_tlp_split_and_datasets(world):
    world["data"]["sources"] = {"qa": {"test": "b"}}  # b has no qa test split
    with pytest.raises(ConfigError) as e:
        make_plan(world)
    assert str(e.value) == "qa/l0: no labelled test split in b; qa has languages l0 there"
    world["data"]["sources"] = {}
    world["tlps"] = ["nli/l0", "nli/l9"]  # a language the benchmark lacks
    with pytest.raises(
        ConfigError,
        match=r"^nli/l9: no labelled train split in a, b; "
        r"nli has languages l0, l1 there$",
    ):
        make_plan(world)


def test_zero_shot_languages_a_task_lacks_are_caught(world):
    world["zero_shot_langs"] = {"qa": ["l1"], "nli": ["l7"]}
    with pytest.raises(ConfigError, match="^nli/l7: no labelled dev split"):
        make_plan(world)
