"""configs/seq_reptile.yaml (Lee et al. 2022) end to end: tests/test_presets.py's smoke harness
(real Snakemake, generated data in each dataset's real layout and language codes: TyDiQA-GoldP,
PAN-X, SQuAD, MLQA, MultiNLI, XNLI), in a file of its own so that it runs beside the other
presets' smokes on another worker.

On top of the shared overlay only sizes shrink: Reptile's k (m·k inner steps per meta-step), the
clustering's PCA size and text length (16 generated examples, a 16-dimensional encoder), the
forgetting analysis' sentence count; the held-out text the synthetic benchmark writes stands in
for CC-100 at the preset's own `forgetting.text` path. Every table, method, language and source
is the preset's.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys

import pytest
import yaml

from pipeline.config import (
    active_experiments,
    data_sources,
    experiment_runs,
    load_params,
    read_yaml,
)
from pipeline.data.store import locate
from pipeline.records import TLP
from tests.conftest import REPO
from tests.e2e import make_project, run
from tests.test_presets import overlay, write_raw

PRESET = REPO / "configs" / "seq_reptile.yaml"
#: the experiments of Table 1 (TyDiQA, `sources` of their own) and Tables 4-5 (clusters)
TABLE1 = [
    "qa_stl",
    "qa_mtl",
    "qa_recadam",
    "qa_gradnorm",
    "qa_pcgrad",
    "qa_gradvac",
    "qa_reptile",
    "qa_seq_reptile",
    "qa_seq_reptile_lr",
]
ROWS = ("STL", "MTL", "RecAdam", "GradNorm", "PCGrad", "GradVac", "Reptile", "Seq. Reptile")


def _cfg() -> dict:
    return load_params([REPO / "params.yaml", PRESET])


def test_preset_replaces_every_default_experiment():
    exps = set(read_yaml(REPO / "params.yaml")["experiments"])
    assert exps.isdisjoint(r.experiment for r in experiment_runs(_cfg()))


def test_each_table_reads_its_own_qa_sources(tmp_path, monkeypatch):
    """Table 1's runs look qa/en and qa/ar up in TyDiQA, Table 4's in SQuAD and MLQA."""
    cfg = _cfg()
    monkeypatch.chdir(tmp_path)
    for name in TABLE1:
        src = data_sources(cfg, name)
        assert [p.name for p in src.candidates("qa", "train")] == ["tydiqa"], name
        assert [p.name for p in src.candidates("qa", "test")] == ["tydiqa", "mlqa"], name
    for name in ("squad_mtl", "squad_seq_reptile", "ner_mtl", "mnli_mtl"):
        src = data_sources(cfg, name)
        assert [p.name for p in src.candidates("qa", "train")] == ["squad"], name
        assert [p.name for p in src.candidates("qa", "test")] == ["mlqa"], name
    runs = {r.experiment: r for r in experiment_runs(cfg)}
    squad = runs["squad_seq_reptile"]
    assert squad.train_tlps == (TLP("qa", "en"),) and squad.params["clusters"] == {"k": 4}
    assert {t.lang for t in squad.eval_tlps} == {"en", "ar", "de", "es", "hi", "vi", "zh"}
    assert {t.lang for t in runs["qa_mtl"].eval_tlps} >= {"de", "es", "hi", "vi", "zh"}  # Table 3
    assert len([t for t in runs["mnli_seq_reptile"].eval_tlps if t.lang != "en"]) == 14


def test_generated_multinli_release_is_prepared_as_mnli(tmp_path):
    """write_release's MultiNLI layout (Table 5's source): the source language's NLI as train,
    dev matched (dev) and dev mismatched (test)."""
    from pipeline.data.prepare import prepare
    from pipeline.data.synthetic import generate, write_release

    raw = tmp_path / "raw"
    generate(
        raw,
        languages=2,
        zero_shot=1,
        tasks=["nli"],
        codes=["en", "de"],
        sizes={"nli/en": {"train": 6}},
        eval_size=4,
        text_sentences=0,
        verbose=False,
    )
    write_release(raw, "mnli", tmp_path / "mnli")
    files = sorted(p.name for p in (tmp_path / "mnli" / "multinli_1.0").iterdir())
    assert files == [f"multinli_1.0_{s}.jsonl" for s in ("dev_matched", "dev_mismatched", "train")]
    res = prepare("mnli", tmp_path / "mnli", tmp_path / "prepared")
    assert res["counts"] == {"nli/en": {"train": 6, "dev": 4, "test": 4}}  # no de: English only


def smoke_overlay(cfg: dict) -> dict:
    """The shared overlay plus this preset's sizes (see the module docstring)."""
    over = overlay(cfg)
    for name, exp in active_experiments(cfg).items():
        if exp["method"] == "reptile":
            over["experiments"][name]["k"] = 1
    over["clustering"] = {"pca_components": 4, "max_length": 64, "batch_size": 16}
    over["forgetting"] = {"sentences": 8, "max_length": 32, "batch_size": 8}
    return over


def _has_rule(name: str) -> bool:
    return any(f"rule {name}:" in p.read_text() for p in (REPO / "rules").glob("*.smk"))


@pytest.mark.e2e
def test_seq_reptile_preset_runs_end_to_end(tmp_path):
    proj = make_project(tmp_path / "project", commit=False)
    (proj / "params.yaml").write_text((REPO / "params.yaml").read_text())  # the real default
    rel = f"configs/{PRESET.name}"
    cfg = load_params([proj / "params.yaml", proj / rel])
    (proj / "smoke.yaml").write_text(yaml.safe_dump(smoke_overlay(cfg), sort_keys=False))
    write_raw(cfg, proj)
    # CC-100 stand-in: the generated held-out text, where the preset's forgetting.text points
    shutil.copytree(proj.parent / "synthetic" / "heldout_text", proj / cfg["forgetting"]["text"])
    smk = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", rel, "smoke.yaml"]
    res = run(smk, proj, timeout=3000)
    merged = load_params([proj / "params.yaml", proj / rel, proj / "smoke.yaml"])
    runs = experiment_runs(merged)
    results = proj / "results"

    # every run trained and scored, each split from its experiment's sources
    scores = {}
    for r in runs:
        f = results / "scores" / f"{r.id}.json"
        assert f.exists(), r.id
        scores[r.id] = json.loads(f.read_text())
    by_exp = {r.experiment: scores[r.id] for r in runs if r.method != "finetune"}
    for name in ("qa_mtl", "qa_seq_reptile"):
        sc = by_exp[name]["scores"]
        assert (
            sc["qa/en"]["dev"]["source"] == "tydiqa" and sc["qa/ar"]["test"]["source"] == "tydiqa"
        )
        assert sc["qa/de"]["test"]["source"] == "mlqa"  # Table 3: MLQA, zero-shot
    for name in ("squad_mtl", "squad_seq_reptile"):
        sc = by_exp[name]["scores"]
        assert sc["qa/en"]["dev"]["source"] == "squad" and sc["qa/ar"]["test"]["source"] == "mlqa"
    assert by_exp["mnli_seq_reptile"]["scores"]["nli/en"]["dev"]["source"] == "mnli"
    assert by_exp["mnli_seq_reptile"]["scores"]["nli/th"]["test"]["source"] == "xnli"
    assert by_exp["ner_seq_reptile"]["scores"]["ner/yo"]["test"]["source"] == "panx"

    # the plan: Table 1's source set apart from the rest
    plan = json.loads((proj / "data/plan.json").read_text())
    (tydiqa,) = plan["source_sets"]
    assert tydiqa["experiments"] == TABLE1
    assert tydiqa["splits"]["qa/en"]["train"]["dataset"] == "tydiqa"
    assert plan["splits"]["qa/en"]["train"]["dataset"] == "squad"
    assert plan["splits"]["nli/en"]["train"]["dataset"] == "mnli"
    with pytest.MonkeyPatch.context() as mp:  # the train steps' lookups agree with the plan
        mp.chdir(proj)
        for name, want in (("qa_mtl", "tydiqa"), ("squad_mtl", "squad")):
            assert locate(TLP("qa", "en"), data_sources(merged, name), "train").name == want
    assert "data sources: qa (qa_stl, qa_mtl," in res.stderr

    # the per-seed table has the preset's rows
    with open(results / "tables/per_seed.csv") as f:
        assert {r["experiment"] for r in csv.DictReader(f)} == {r.row for r in runs if r.report}

    # Lee et al.'s tables (pipeline/report/lee_tables.py), where the report writes them
    text = (results / "tables/lee_multitask.md").read_text()
    for row in ROWS:
        assert f"| {row} |" in text, row
    zero_shot = (results / "tables/lee_zero_shot.md").read_text()
    for row in ROWS[1:]:
        assert f"| {row} |" in zero_shot, row

    # Figures 5-6: one forgetting file per forgetting run
    if _has_rule("forgetting"):
        wanted = [r.id for r in runs if r.params.get("forgetting") and r.report]
        assert wanted
        for rid in wanted:
            assert (results / "forgetting" / f"{rid}.json").exists(), rid
    # Figure 3: the 2-D study, kept on (the `toy2d:` section of params.yaml)
    if _has_rule("toy2d") and merged.get("toy2d") is not None:
        assert (results / "toy2d").exists()
