"""params.yaml schema: bad values fail early, naming the key; selections and runs."""

from __future__ import annotations

import copy

import pytest

from pipeline.config import (
    deep_merge,
    experiment_runs,
    get_run,
    load_params,
    select_tlps,
    validate,
)
from pipeline.errors import ConfigError
from pipeline.records import TLP
from tests.conftest import REPO


@pytest.fixture()
def cfg():
    return load_params([REPO / "params.yaml"])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["training"].__setitem__("lr", "fast"), "training.lr: expected number > 0"),
        (lambda c: c["training"].__setitem__("lr", -1), "training.lr: expected number > 0"),
        (lambda c: c["training"].__setitem__("bogus", 1), "training.bogus: unknown key"),
        (lambda c: c.__setitem__("bogus", 1), "bogus: unknown key"),
        (
            lambda c: c["encoder"]["pretrain"].pop("steps"),
            "encoder.pretrain: 'steps' is a required",
        ),
        (
            lambda c: c["experiments"]["mtl"].__setitem__("method", "magic"),
            "experiments.mtl.method",
        ),
        (
            lambda c: c["experiments"]["mtl"].__setitem__("temperature", 0),
            "experiments.mtl.temperature",
        ),
        (
            lambda c: c["experiments"]["stl"].__setitem__("temperature", 2),
            "experiments.stl.temperature: unknown key",
        ),
        (
            lambda c: c["data"].__setitem__("layout", "zip"),
            "data.layout: expected one of original, xtreme",
        ),
        (lambda c: c.__setitem__("tlps", ["ner/l0", "bad"]), "tlps.1: expected a string matching"),
        (lambda c: c.__setitem__("tlps", ["ner/l0", "dance/l0"]), "unknown task 'dance'"),
        (  # (a list may name TLPs outside the pool: the plan checks they are prepared)
            lambda c: c["experiments"]["mtl"].__setitem__("tlps", ["ner/l0", "dance/l0"]),
            "experiments.mtl.tlps.1: unknown task 'dance'",
        ),
        (lambda c: c["experiments"]["mtl"].__setitem__("tlps", "task:mtod"), "matches no TLP"),
        (lambda c: c.__setitem__("zero_shot_langs", ["l0"]), "also a training language"),
    ],
)
def test_bad_values_name_the_key(cfg, mutate, message):
    bad = copy.deepcopy(cfg)
    mutate(bad)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        validate(bad)


def test_error_is_one_line(cfg):
    bad = copy.deepcopy(cfg)
    bad["training"]["batch_size"] = 0
    with pytest.raises(ConfigError) as e:
        validate(bad)
    assert "\n" not in str(e.value)


def test_invalid_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("seed: 1\ntraining: [\n")
    with pytest.raises(ConfigError, match=r"p\.yaml:\d+: invalid YAML"):
        load_params([p])


def test_presets_overlay_key_by_key(cfg, tmp_path):
    preset = tmp_path / "preset.yaml"
    preset.write_text("training:\n  lr: 0.5\nexperiments:\n  mtl:\n    steps: 7\n")
    merged = load_params([REPO / "params.yaml", preset])
    assert merged["training"]["lr"] == 0.5
    assert merged["training"]["batch_size"] == cfg["training"]["batch_size"]
    assert merged["experiments"]["mtl"]["steps"] == 7
    assert merged["experiments"]["mtl"]["method"] == "mtl"
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_selections(cfg):
    cfg = copy.deepcopy(cfg)
    cfg["tlps"] = ["ner/l0", "ner/l1", "pos/l0", "qa/l1"]
    assert select_tlps(cfg, "all") == [TLP.parse(t) for t in cfg["tlps"]]
    assert select_tlps(cfg, "task:ner") == [TLP("ner", "l0"), TLP("ner", "l1")]
    assert select_tlps(cfg, "lang:l0") == [TLP("ner", "l0"), TLP("pos", "l0")]
    assert select_tlps(cfg, ["qa/l1"]) == [TLP("qa", "l1")]


def test_runs(cfg):
    runs = experiment_runs(cfg)
    stl = [r for r in runs if r.method == "stl" and r.seed == cfg["seeds"][0]]  # stl, stl_qa
    assert [r.train_tlps for r in stl] == [(TLP.parse(t),) for t in cfg["tlps"]]
    assert stl[0].id == f"stl.{TLP.parse(cfg['tlps'][0]).slug}.s{cfg['seeds'][0]}"
    mtl = get_run(cfg, f"mtl.s{cfg['seeds'][0]}")
    assert list(mtl.train_tlps) == [TLP.parse(t) for t in cfg["tlps"]]
    zs = [t for t in mtl.eval_tlps if t not in mtl.train_tlps]
    assert zs and {t.lang for t in zs} == set(cfg["zero_shot_langs"])
    assert mtl.params["lr"] == cfg["training"]["lr"]  # defaults inherited
    with pytest.raises(ConfigError, match="unknown run"):
        get_run(cfg, "nope")


def test_lang_limited_selection_has_no_zero_shot(cfg):
    cfg = copy.deepcopy(cfg)
    cfg["experiments"] = {"ll": {"method": "mtl", "steps": 1, "tlps": "lang:l0"}}
    cfg["seeds"] = [5]
    (run,) = experiment_runs(cfg)
    assert run.id == "ll.s5"
    assert run.eval_tlps == run.train_tlps


def _pool(cfg, exps):
    cfg = copy.deepcopy(cfg)
    cfg["tlps"] = ["ner/l0", "ner/l1", "pos/l0", "qa/l1"]
    cfg["zero_shot_langs"] = ["l9"]
    cfg["experiments"] = exps
    cfg["seeds"] = [1]
    validate(cfg)
    return cfg


def test_meta_runs_are_fine_tuned_per_tlp_and_evaluated_zero_shot(cfg):
    cfg = _pool(cfg, {"rep": {"method": "reptile", "steps": 2, "m": 2, "k": 1}})
    runs = {r.id: r for r in experiment_runs(cfg)}
    meta = runs["rep.s1"]
    assert [str(t) for t in meta.eval_tlps] == ["ner/l9", "pos/l9", "qa/l9"]  # zero-shot only
    ft = runs["rep.s1.ft.all"]  # one job fine-tunes every target TLP (a model each)
    assert ft.method == "finetune" and ft.init == "rep.s1" and ft.seed == 1
    assert ft.train_tlps == ft.eval_tlps == tuple(TLP.parse(t) for t in cfg["tlps"])
    assert ft.params["tasks"]["ner"]["epochs"] == cfg["finetune"]["default"]["epochs"]
    assert ft.params["tasks"]["qa"]["lrs"] == cfg["finetune"]["tasks"]["qa"]["lrs"]
    assert len([r for r in runs.values() if r.method == "finetune"]) == 1
    cfg["finetune"]["jobs"] = "per-tlp"  # clusters: one job per (meta model, TLP)
    runs = {r.id: r for r in experiment_runs(cfg)}
    ft = runs["rep.s1.ft.ner.l1"]
    assert ft.init == "rep.s1" and ft.train_tlps == (TLP("ner", "l1"),)
    assert list(ft.params["tasks"]) == ["ner"]
    assert len([r for r in runs.values() if r.method == "finetune"]) == 4


def test_seeds_repeat_every_run_and_stay_out_of_the_other_runs_params(cfg):
    cfg = _pool(
        cfg, {"rep": {"method": "reptile", "steps": 1}, "stl": {"method": "stl", "steps": 1}}
    )
    cfg["seeds"] = [1, 2]
    ids = [r.id for r in experiment_runs(cfg)]
    assert ids[:2] == ["rep.s1", "rep.s1.ft.all"] and "rep.s2.ft.all" in ids
    assert "stl.ner.l0.s1" in ids and "stl.ner.l0.s2" in ids and len(ids) == 4 + 8
    before = {r.id: r.to_json() for r in experiment_runs(cfg)}
    assert before["rep.s2"]["params"]["seed"] == 2 and before["rep.s2"]["seed"] == 2
    assert "seeds" not in before["rep.s2"]["params"]
    cfg["seeds"] = [1, 2, 3]  # a new seed adds runs and changes none of the old ones
    after = {r.id: r.to_json() for r in experiment_runs(cfg)}
    assert {k: after[k] for k in before} == before and len(after) == len(before) + 6
    cfg["experiments"]["rep"]["seeds"] = [7]  # an experiment's own seeds win
    validate(cfg)
    reps = [r.id for r in experiment_runs(cfg) if r.experiment == "rep"]
    assert reps == ["rep.s7", "rep.s7.ft.all"]
    bad = copy.deepcopy(cfg)
    bad["seeds"] = [1, 1]
    with pytest.raises(ConfigError, match="seeds"):
        validate(bad)


def test_each_task_and_each_lang_train_one_model_per_group(cfg):
    cfg = _pool(
        cfg,
        {
            "mt": {"method": "mtl", "steps": 1, "tlps": "each-task"},
            "ml": {"method": "mtl", "steps": 1, "tlps": "each-lang"},
        },
    )
    runs = {r.id.removesuffix(".s1"): r for r in experiment_runs(cfg)}
    assert runs["mt.ner"].train_tlps == (TLP("ner", "l0"), TLP("ner", "l1"))
    assert TLP("ner", "l9") in runs["mt.ner"].eval_tlps  # language-agnostic: zero-shot
    assert runs["ml.l0"].train_tlps == (TLP("ner", "l0"), TLP("pos", "l0"))
    assert runs["ml.l0"].eval_tlps == runs["ml.l0"].train_tlps  # language-specific: none


def test_multidds_dev_target_and_each_task_expand(cfg):
    cfg = _pool(
        cfg,
        {
            "a": {
                "method": "reptile",
                "steps": 1,
                "tlps": "each-lang",
                "sampler": "multidds",
                "multidds": {"dev": "target"},
            },
            "d": {
                "method": "reptile",
                "steps": 1,
                "sampler": "multidds",
                "multidds": {"dev": "each-task"},
            },
        },
    )
    runs = {r.id: r for r in experiment_runs(cfg)}
    a = runs["a.l0.pos.l0.s1"]  # setting (a): Lang-Limited train, D_dev = the target TLP
    assert (
        a.train_tlps == (TLP("ner", "l0"), TLP("pos", "l0"))
        and a.params["multidds"]["dev"] == "pos/l0"
    )
    assert runs["a.l0.pos.l0.s1.ft.all"].train_tlps == (TLP("pos", "l0"),)  # its target only
    d = runs["d.ner.s1"]  # setting (d): All TLPs train, D_dev = Task-Limited dev
    assert len(d.train_tlps) == 4 and d.params["multidds"]["dev"] == "task:ner"
    assert d.eval_tlps == (TLP("ner", "l9"),)
    assert runs["d.ner.s1.ft.all"].train_tlps == (TLP("ner", "l0"), TLP("ner", "l1"))


def test_null_experiment_in_a_preset_removes_it(cfg, tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("experiments:\n  stl: null\n")
    merged = load_params([REPO / "params.yaml", preset])
    assert all(r.experiment != "stl" for r in experiment_runs(merged))
    preset.write_text(
        "experiments:\n  " + "\n  ".join(f"{e}: null" for e in cfg["experiments"]) + "\n"
    )
    with pytest.raises(ConfigError, match="every experiment is null"):
        load_params([REPO / "params.yaml", preset])


def test_steps_or_epochs(cfg):
    bad = copy.deepcopy(cfg)
    bad["experiments"]["mtl"]["epochs"] = 2
    with pytest.raises(ConfigError, match="exactly one of steps, epochs"):
        validate(bad)


def test_tarunesh_preset_is_valid_and_complete():
    cfg = load_params([REPO / "params.yaml", REPO / "configs/tarunesh2021.yaml"])
    assert len(cfg["tlps"]) == 24
    runs = experiment_runs(cfg)
    exps = {r.experiment for r in runs}
    default = load_params([REPO / "params.yaml"])["experiments"]
    assert set(default).isdisjoint(exps)  # none of the embedded default's experiments leaks in
    assert {f"rep_all_t{t}" for t in ("1", "2", "5", "inf")} <= exps
    m = next(r for r in runs if r.id == "rep_all_t1.s1").params
    assert (m.get("m", 8), m.get("k", 3), m.get("beta", 1.0), m["lr"]) == (8, 3, 1.0, 3e-5)


def test_per_task_feature_settings():
    from pipeline.steps import feature_settings

    cfg = load_params([REPO / "params.yaml", REPO / "configs/tarunesh2021.yaml"])
    fs = feature_settings(cfg)
    assert fs.for_task("qa").max_length == 384 and fs.for_task("qa").doc_stride == 128
    assert fs.for_task("ner").max_length == 128
    bad = copy.deepcopy(cfg)
    bad["features"]["tasks"] = {"qa": {"max_len": 3}}
    with pytest.raises(ConfigError, match="features.tasks.qa.max_len: unknown key"):
        validate(bad)


def test_a_misspelt_key_is_named_with_the_closest_valid_one(cfg):
    bad = copy.deepcopy(cfg)
    bad["training"]["batch_sise"] = bad["training"].pop("batch_size")
    with pytest.raises(ConfigError) as e:
        validate(bad)
    msg = str(e.value)
    assert "training.batch_sise: unknown key (did you mean 'batch_size'?" in msg
    assert "required" not in msg and "\n" not in msg
    bad = copy.deepcopy(cfg)
    bad["experiments"]["mtl"]["temprature"] = 2
    with pytest.raises(ConfigError, match="temprature: unknown key \\(did you mean 'temperature'"):
        validate(bad)
    bad = copy.deepcopy(cfg)
    bad["zzz"] = 1  # nothing close: no suggestion
    with pytest.raises(ConfigError, match=r"zzz: unknown key \(allowed here"):
        validate(bad)


def test_zero_shot_languages_per_task(cfg):
    cfg = _pool(cfg, {"rep": {"method": "reptile", "steps": 1}})
    cfg["zero_shot_langs"] = {"qa": ["l8", "l9"], "ner": ["l9"]}
    validate(cfg)
    meta = get_run(cfg, "rep.s1")
    assert [str(t) for t in meta.eval_tlps] == ["ner/l9", "qa/l8", "qa/l9"]  # no pos/l9
    cfg["zero_shot_langs"] = {"qa": ["l0"]}  # per task: ner/l0 trains, qa/l0 is unseen
    validate(cfg)
    assert "qa/l0" in [str(t) for t in get_run(cfg, "rep.s1").eval_tlps]
    cfg["zero_shot_langs"] = {"qa": ["l1"]}
    with pytest.raises(ConfigError, match="zero_shot_langs.qa: 'l1' is also a training language"):
        validate(cfg)
    cfg["zero_shot_langs"] = ["l0"]  # one list for every task: no task may train it
    with pytest.raises(ConfigError, match="zero_shot_langs: 'l0' is also a training language"):
        validate(cfg)


def test_main_metric_per_task_reaches_the_runs_that_need_it(cfg):
    cfg = _pool(cfg, {"stl": {"method": "stl", "steps": 1}})
    cfg["metrics"] = {"main": {"ner": "accuracy"}, "qa_normalization": "squad"}
    validate(cfg)
    runs = {r.id: r for r in experiment_runs(cfg)}
    assert runs["stl.ner.l0.s1"].params["metrics"] == {"main": {"ner": "accuracy"}}
    assert runs["stl.qa.l1.s1"].params["metrics"] == {"qa_normalization": "squad"}
    assert "metrics" not in runs["stl.pos.l0.s1"].params  # nothing of it concerns POS
    cfg["metrics"] = {"main": {"ner": "acc"}}
    with pytest.raises(ConfigError, match="metrics.main.ner: expected one of f1, .*accuracy"):
        validate(cfg)


def test_layout_and_sources_name_prepared_datasets(cfg):
    from pipeline.config import data_sources, layout

    cfg = copy.deepcopy(cfg)
    cfg["data"]["datasets"] = ["squad", "mlqa"]
    cfg["data"]["layout"] = {"squad": "xtreme"}
    cfg["data"]["sources"] = {"qa": {"dev": "mlqa", "test": ["mlqa"]}}
    validate(cfg)
    assert layout(cfg, "squad") == "xtreme" and layout(cfg, "mlqa") == "original"
    src = data_sources(cfg)
    assert [p.name for p in src.candidates("qa", "dev")] == ["mlqa"]
    assert [p.name for p in src.candidates("qa", "train")] == ["squad", "mlqa"]
    cfg["data"]["sources"] = {"qa": {"dev": "squadd"}}
    with pytest.raises(ConfigError, match="data.sources.qa.dev: 'squadd' is not one of"):
        validate(cfg)
