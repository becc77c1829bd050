"""End to end through DVC in a fresh clone: the README's DVC commands as written.

`dvc repro`, `dvc status`, `dvc exp run -S`, `dvc exp show`, `dvc metrics show/diff` and
`dvc plots show` in a `git clone` of the project (which carries the DVC project files) with a
shrunken params.yaml, offline (analytics and update checks are off in the committed .dvc/config).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.e2e import forked_jobs, make_project, run

pytestmark = pytest.mark.e2e


def dvc(proj, *args, check=True):
    return run([sys.executable, "-m", "dvc", *args], proj, check=check)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("dvc") / "project")
    out = dvc(proj, "repro")
    run(["git", "add", "dvc.lock"], proj)
    run(["git", "commit", "-qm", "baseline"], proj)
    return proj, out.stdout


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_repro_runs_every_stage_and_writes_metrics(repo):
    proj, out = repo
    ran = stages_run(out)
    assert {
        "generate",
        "prepare@synthetic",
        "tokenizer",
        "pretrain",
        "train@mtl.s1",
        "report",
    } <= ran
    assert {"train@stl.ner.l0.s1", "train@stl.ner.l0.s2", "finetune@reptile.s2.ft.all"} <= ran
    # runs with `init` are a stage of their own whose dep is the model they start from
    assert {"train@en.s1", "train_init@xla_maml.l1.s1", "train_init@xmaml.l1.s2"} <= ran
    stage = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]["train_init"]
    assert stage["foreach"]["xla_maml.l1.s1"]["init"] == "en.s1"
    assert "models/runs/${item.init}" in stage["do"]["deps"]
    # X-METRA runs also read their pseudo-tasks, written by a stage of their own
    assert {"pseudo_tasks@xmetra_ada.l1.s1", "train_init_tasks@xmetra_ada.l1.s1"} <= ran
    both = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]["train_init_tasks"]
    assert "data/tasks/${item.tasks}.json" in both["do"]["deps"]
    metrics = json.loads((proj / "results/metrics.json").read_text())
    assert set(metrics["experiments"]) == {
        *("stl", "mtl", "reptile", "en", "xmaml.l1", "xla_maml.l1"),
        *("mono", "ft", "ft_en", "xmetra", "xmetra_ada", "jt", "metaxl"),
        *("pcgrad", "recadam", "zs_mtl"),
    }
    # a clusters run reads its TLP's GMM clusters, written by a stage of their own
    assert {"clusters@nli.l0.synthetic.k2.s13", "train_clusters@zs_mtl.s1"} <= ran
    clustered = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]["train_clusters"]
    assert "data/clusters/${item.clusters}.json" in clustered["do"]["deps"]
    assert {"train@metaxl.l1.s1", "represent@metaxl.l1.s2"} <= ran  # MetaXL + its analysis
    # the first stage started a fork server for the others (warm imports), none refused
    (log,) = [
        p
        for p in Path(tempfile.gettempdir()).glob(f"pipeline-fs-{os.getuid()}-*/log")
        if f"for {proj.resolve()}\n" in p.read_text()
    ]
    assert {"train mtl.s1", "train metaxl.l1.s1", "report"} <= set(forked_jobs(log))
    # computed outputs are DVC's, not git's
    assert not run(["git", "status", "--porcelain"], proj).stdout.strip()


def test_second_repro_is_a_no_op(repo):
    proj, _ = repo
    out = dvc(proj, "repro").stdout
    assert not stages_run(out)
    assert "up to date" in out.lower() or "didn't change" in out.lower()
    assert "up to date" in dvc(proj, "status").stdout.lower()


def test_metrics_and_plots_show(repo):
    proj, _ = repo
    shown = dvc(proj, "metrics", "show", "--json").stdout
    assert "test_mean" in shown and "test_sd" in shown
    plots = dvc(proj, "plots", "show", "--json").stdout
    assert "train_loss" in plots and "dev_score" in plots


def test_exp_run_reruns_only_what_reads_the_param(repo):
    proj, _ = repo
    out = dvc(proj, "exp", "run", "-n", "flat-mtl", "-S", "experiments.mtl.temperature=1.0")
    ran = stages_run(out.stdout)
    assert {"train@mtl.s1", "train@mtl.s2", "report"} <= ran
    assert not any(s.startswith(("train@stl", "train@reptile", "finetune@")) for s in ran), ran
    assert "pretrain" not in ran and "generate" not in ran
    table = dvc(proj, "exp", "show", "--md").stdout
    assert "flat-mtl" in table
    assert "experiments.mtl.temperature" in table
    assert "test_mean" in table
    diff = dvc(proj, "metrics", "diff", "--json").stdout  # workspace (the experiment) vs HEAD
    assert "experiments.mtl.test_mean" in diff
