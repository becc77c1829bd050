"""End to end: the real DAG through real Snakemake on a shrunken config.

One module-scoped run of the whole pipeline, then: a rerun does nothing; a params change reruns
only the steps that read it; bad params fail before any work with the key named.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.e2e import dry_run_jobs, make_project, snakemake, write_params

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("smk"))
    snakemake(proj)
    return proj


def test_full_dag_produces_metrics_tables_and_plots(project):
    metrics = json.loads((project / "results/metrics.json").read_text())
    exps = metrics["experiments"]
    assert set(exps) == {"stl", "mtl", "reptile"}
    assert set(exps["stl"]["test"]) == {"nli/l0", "ner/l0", "qa/l1"}
    for exp in exps.values():
        assert all(0 <= v <= 100 for v in exp["test"].values())
    assert "zero_shot_test_mean" in exps["mtl"]  # l2 never trained on
    table = (project / "results/tables/test.md").read_text()
    assert "| mtl |" in table and "| stl |" in table and "mean" in table
    assert (project / "results/plots/train_loss/mtl.csv").read_text().startswith("step,loss")
    # the selected model and every log exist
    assert (project / "models/runs/mtl/model/heads.safetensors").exists()
    assert (project / "logs/train/mtl.log").exists()
    summary = json.loads((project / "models/runs/mtl/summary.json").read_text())
    assert summary["best_step"] in (4, 8)
    # the meta run is fine-tuned per TLP (QA with two learning rates, chosen on dev)
    ft = json.loads((project / "models/runs/reptile.ft.qa.l1/summary.json").read_text())
    assert ft["finetune"]["init"] == "reptile" and len(ft["finetune"]["candidates"]) == 2
    assert set(exps["reptile"]["test"]) == {"nli/l0", "ner/l0", "qa/l1"}
    assert (project / "results/tables/paper_table2.md").exists()
    assert (project / "results/plots/grad_cosine/mtl.csv").exists()


def test_same_params_and_seed_give_the_same_numbers(project, tmp_path):
    again = make_project(tmp_path / "again")
    snakemake(again)
    for f in ("results/metrics.json", "results/tables/test.md", "models/runs/mtl/history.json"):
        assert (again / f).read_text() == (project / f).read_text(), f


def test_second_run_does_nothing(project):
    res = snakemake(project)
    assert "Nothing to be done" in res.stdout + res.stderr


def test_params_change_reruns_only_readers(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["mtl"]["steps"] = 12
    write_params(project, params)
    jobs = dry_run_jobs(project)
    assert jobs == {"train": 1, "predict": 1, "score": 1, "report": 1, "all": 1}, jobs
    params["experiments"]["mtl"]["steps"] = 8
    params["report"]["metric"] = "main"
    params["training"]["lr"] = 0.002  # every run reads the shared training defaults
    write_params(project, params)
    jobs = dry_run_jobs(project)
    assert jobs.get("train") == 5 and jobs.get("finetune") == 3, jobs
    assert "pretrain" not in jobs and "prepare" not in jobs, jobs
    params["training"]["lr"] = yaml.safe_load((project / "params.yaml").read_text())["training"][
        "lr"
    ]


def test_bad_params_fail_before_any_work(tmp_path):
    proj = make_project(tmp_path / "bad", {"training": {"lr": "fast"}})
    res = snakemake(proj, check=False)
    assert res.returncode != 0
    assert "training.lr: expected number > 0, got 'fast'" in res.stdout + res.stderr
    assert not (proj / "data").exists() and not (proj / "models").exists()
