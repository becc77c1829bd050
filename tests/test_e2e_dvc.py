"""End to end through DVC: `dvc repro`, `dvc exp run -S`, `dvc exp show`, metrics and plots.

Runs in a temporary git repository holding a copy of the project with a shrunken params.yaml,
offline (DVC_NO_ANALYTICS, analytics and update checks off).
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from tests.e2e import make_project, run

pytestmark = pytest.mark.e2e


def dvc(proj, *args, check=True):
    return run([sys.executable, "-m", "dvc", *args], proj, check=check)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("dvc"))
    run(["git", "init", "-q"], proj)
    run(["git", "config", "user.email", "ci@example.org"], proj)
    run(["git", "config", "user.name", "CI"], proj)
    dvc(proj, "init", "-q")
    dvc(proj, "config", "core.analytics", "false")
    dvc(proj, "config", "core.check_update", "false")
    run([sys.executable, "-m", "pipeline", "dvc-yaml"], proj)  # generated from the copied DAG
    (proj / ".gitignore").write_text(
        "/data/raw/\n/data/prepared/\n/data/features/\n/models/\n/checkpoints/\n/logs/\n"
        "/results/predictions/\n/results/scores/\n/benchmarks/\n/.snakemake/\n__pycache__/\n"
    )
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "baseline"], proj)
    out = dvc(proj, "repro")
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "repro"], proj)
    return proj, out.stdout


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_repro_runs_every_stage_and_writes_metrics(repo):
    proj, out = repo
    ran = stages_run(out)
    assert {"generate", "prepare@synthetic", "tokenizer", "pretrain", "train@mtl", "report"} <= ran
    assert "train@stl.ner.l0" in ran
    metrics = json.loads((proj / "results/metrics.json").read_text())
    assert set(metrics["experiments"]) == {"stl", "mtl", "reptile"}
    assert "finetune@reptile.ft.ner.l0" in ran


def test_second_repro_is_a_no_op(repo):
    proj, _ = repo
    out = dvc(proj, "repro").stdout
    assert not stages_run(out)
    assert "up to date" in out.lower() or "didn't change" in out.lower()


def test_metrics_and_plots_show(repo):
    proj, _ = repo
    shown = dvc(proj, "metrics", "show", "--json").stdout
    assert "test_mean" in shown
    plots = dvc(proj, "plots", "show", "--json").stdout
    assert "train_loss" in plots and "dev_score" in plots


def test_exp_run_reruns_only_what_reads_the_param(repo):
    proj, _ = repo
    out = dvc(proj, "exp", "run", "-n", "longer-mtl", "-S", "experiments.mtl.steps=12")
    ran = stages_run(out.stdout)
    assert "train@mtl" in ran and "report" in ran
    assert not any(s.startswith(("train@stl", "train@reptile", "finetune@")) for s in ran), ran
    assert "pretrain" not in ran and "generate" not in ran
    table = dvc(proj, "exp", "show", "--md").stdout
    assert "longer-mtl" in table
    assert "experiments.mtl.steps" in table and "12" in table
    assert "mtl.test_mean" in table or "test_mean" in table
