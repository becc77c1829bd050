"""Experiment grids (`aux`, `target`), `init` from another experiment, dev-split training and
few-shot fine-tuning (`finetune_tlps`, `finetune_split`): the runs they expand to."""

from __future__ import annotations

import copy

import pytest

from pipeline.config import experiment_runs, load_params, validate
from pipeline.data.plan import needed_splits
from pipeline.errors import ConfigError
from pipeline.records import TLP
from tests.conftest import REPO


@pytest.fixture()
def cfg():
    c = load_params([REPO / "params.yaml"])
    c["experiments"] = {
        "en": {"method": "mtl", "steps": 5, "tlps": ["nli/l0", "qa/l0"], "row": "EN"},
        "xla": {
            "method": "xla_maml",
            "init": "en",
            "train_split": "dev",
            "aux": ["l2", "l2+l3"],
            "tlps": ["nli/l0", "nli/aux"],
            "support": ["l0"],
            "query": ["aux"],
            "steps": 3,
            "row": "XLA",
        },
    }
    c["seeds"] = [13, 14]
    return c


def runs_of(cfg):
    validate(cfg)
    return {r.id: r for r in experiment_runs(cfg)}


def test_aux_grid_expands_placeholders_into_one_run_per_entry(cfg):
    runs = runs_of(cfg)
    pair = runs["xla.l2-l3.s14"]
    assert [str(t) for t in pair.train_tlps] == ["nli/l0", "nli/l2", "nli/l3"]
    assert pair.params["query"] == ["l2", "l3"] and pair.params["support"] == ["l0"]
    assert pair.grid == {"aux": "l2+l3"} and pair.row == "xla.l2-l3"
    assert "aux" not in pair.params  # adding an entry leaves the other runs' params alone
    single = runs["xla.l2.s13"]
    assert single.params["query"] == ["l2"]
    # evaluated on its TLPs and the unseen languages; selected on the unseen ones only
    assert [str(t) for t in single.eval_tlps] == ["nli/l0", "nli/l2", "nli/l4"]
    assert single.params["train_split"] == "dev"
    more = copy.deepcopy(cfg)
    more["experiments"]["xla"]["aux"].append("l3")
    assert runs_of(more)["xla.l2.s13"].params == single.params


def test_init_is_the_same_seed_or_the_only_seed(cfg):
    runs = runs_of(cfg)
    assert runs["xla.l2.s13"].init == "en.s13" and runs["xla.l2.s14"].init == "en.s14"
    cfg["experiments"]["en"]["seeds"] = [7]
    runs = runs_of(cfg)
    assert {runs[f"xla.l2.s{s}"].init for s in (13, 14)} == {"en.s7"}
    cfg["experiments"]["en"]["seeds"] = [7, 8]
    with pytest.raises(ConfigError, match=r"experiments.xla.init: 'en' has no run of seed 13"):
        runs_of(cfg)


def test_init_errors_name_the_key(cfg):
    bad = copy.deepcopy(cfg)
    bad["experiments"]["xla"]["init"] = "nope"
    with pytest.raises(ConfigError, match="experiments.xla.init: 'nope' is not an active"):
        runs_of(bad)
    bad = copy.deepcopy(cfg)
    bad["experiments"]["en"]["tlps"] = ["qa/l0"]
    with pytest.raises(ConfigError, match="trains no nli head"):
        runs_of(bad)
    bad = copy.deepcopy(cfg)
    bad["experiments"]["en"]["tlps"] = "each-task"
    with pytest.raises(ConfigError, match="trains 5 models per seed"):
        runs_of(bad)
    bad = copy.deepcopy(cfg)
    bad["experiments"]["en"]["init"] = "xla"
    with pytest.raises(ConfigError, match="a cycle"):
        runs_of(bad)


def test_placeholders_need_their_grid(cfg):
    del cfg["experiments"]["xla"]["aux"]
    with pytest.raises(ConfigError, match="'aux' stands for a grid entry, but `aux` is not set"):
        runs_of(cfg)


def test_dev_trained_runs_need_dev_splits_only(cfg):
    need = needed_splits(list(runs_of(cfg).values()))
    assert need[TLP("nli", "l3")] == {"dev", "test"}  # no train split of the auxiliary
    assert need[TLP("nli", "l0")] == {"train", "dev", "test"}  # the English stage's


def test_target_grid_and_few_shot_finetuning(cfg):
    cfg["experiments"]["fs"] = {
        "method": "xla_maml",
        "init": "en",
        "train_split": "dev",
        "aux": ["l2"],
        "target": ["l1", "l4"],
        "tlps": ["nli/target", "nli/aux"],
        "support": ["target"],
        "query": ["aux"],
        "finetune_tlps": ["nli/target"],
        "finetune_split": "dev",
        "steps": 2,
        "row": "FS",
    }
    runs = runs_of(cfg)
    meta = runs["fs.l2.l4.s13"]
    assert meta.params["support"] == ["l4"] and meta.grid == {"aux": "l2", "target": "l4"}
    assert not meta.report  # its fine-tuning run is the result
    ft = runs["fs.l2.l4.s13.ft.all"]
    assert ft.init == "fs.l2.l4.s13" and [str(t) for t in ft.train_tlps] == ["nli/l4"]
    assert ft.params["train_split"] == "dev" and ft.row == "fs.l2.ft" and ft.report
    # the English stage's seeds are reused: the few-shot baseline fine-tunes it the same way
    cfg["experiments"]["en"].update(finetune_tlps=["nli/l1", "nli/l4"], finetune_split="dev")
    runs = runs_of(cfg)
    assert [str(t) for t in runs["en.s13.ft.all"].train_tlps] == ["nli/l1", "nli/l4"]
    assert {"nli/l0", "nli/l1", "nli/l4"} <= {str(t) for t in runs["en.s13"].eval_tlps}


def test_few_shot_on_dev_takes_one_learning_rate(cfg):
    cfg["experiments"]["en"].update(finetune_tlps=["qa/l1"], finetune_split="dev")
    cfg["finetune"]["tasks"]["qa"]["lrs"] = [1e-3, 3e-4]
    with pytest.raises(ConfigError, match="finetune_split: dev leaves no dev set to choose"):
        runs_of(cfg)


def test_stl_takes_no_grid(cfg):
    cfg["experiments"]["s"] = {"method": "stl", "steps": 1, "aux": ["l2"], "tlps": ["nli/l0"]}
    with pytest.raises(ConfigError, match="stl takes no aux/target grid"):
        runs_of(cfg)


def test_the_presets_grids_expand(cfg):
    merged = load_params([REPO / "params.yaml", REPO / "configs/xla_maml.yaml"])
    runs = runs_of(merged)
    assert runs["xla_nli.hi.s1"].init == "en_nli.s1"
    assert runs["xla_nli.hi.s1"].params["inner_lr"] == 1e-5
    assert runs["xmaml_nli.hi.s1"].params["support_query"] == "halves"
    ft = runs["xla_nli_fs.sw.ar.s1.ft.nli.ar"]
    assert ft.params["tasks"]["nli"] == {"epochs": 1, "lrs": [2e-5], "batch_size": 8}


def test_unknown_task_in_finetune_tlps_names_the_key(cfg):
    cfg["experiments"]["en"]["finetune_tlps"] = ["zz/l1"]
    with pytest.raises(ConfigError, match=r"experiments.en.finetune_tlps.0: unknown task 'zz'"):
        validate(cfg)
