"""End to end: a fresh clone runs the README's demo path (`make demo`) on a shrunken config.

One module-scoped clone and demo, then: the demo computed everything it printed (nothing
committed stands in for a run); a rerun does nothing; a params change reruns only the steps
that read it, a new seed only the new seed's runs; DVC adopts what Snakemake computed; bad params
fail before any work with the key named.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import sys
import time

import pytest
import yaml

from tests.e2e import dry_run_jobs, forked_jobs, make_project, run, snakemake, write_params

pytestmark = pytest.mark.e2e

EXPERIMENTS = {"stl", "mtl", "reptile", "en", "xmaml.l1", "xla_maml.l1"}
EXPERIMENTS |= {"mono", "ft", "ft_en", "xmetra", "xmetra_ada", "jt", "metaxl"}
EXPERIMENTS |= {"pcgrad", "recadam", "zs_mtl"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("clone") / "project")
    started = time.time()
    venv = str(__import__("pathlib").Path(sys.executable).parent.parent)
    demo = run(["make", "demo", f"VENV={venv}", "CORES=2"], proj, timeout=1500)
    return proj, demo.stdout, started


def test_fresh_clone_holds_no_results_and_a_dvc_project(project):
    proj, _, _ = project
    tracked = run(["git", "ls-files"], proj).stdout.split()
    assert not [f for f in tracked if f.startswith(("results/", "models/", "data/prepared"))]
    assert {".dvc/config", ".dvcignore", "dvc.yaml"} <= set(tracked)
    assert "analytics = false" in (proj / ".dvc/config").read_text()


def test_demo_ran_every_job_and_printed_what_it_computed(project):
    proj, out, started = project
    metrics = json.loads((proj / "results/metrics.json").read_text())
    assert (proj / "results/metrics.json").stat().st_mtime > started
    exps = metrics["experiments"]
    assert set(exps) == EXPERIMENTS and metrics["seeds"] == [1, 2]
    runs = json.loads(run([sys.executable, "-m", "pipeline", "validate"], proj).stdout)
    for r in runs:  # every run trained in this clone, with its own log, model and scores
        assert (proj / "logs/train" / f"{r['id']}.log").stat().st_mtime > started, r["id"]
        assert (proj / "results/scores" / f"{r['id']}.json").exists(), r["id"]
    # ...each job forked from the run's warm interpreter (none refused: the speed is not lost)
    forked = forked_jobs(proj / "logs/forkserver.log")
    assert {f"train {r['id']}" for r in runs} <= set(forked)
    assert {"generate", "prepare synthetic", "pretrain", "report"} <= set(forked)
    # `python -m pipeline summary` printed the numbers this run wrote (cells.csv), as mean ± sd
    # over the two seeds, each row on one line, then the path of the page of everything
    cells = list(csv.DictReader(open(proj / "results/tables/cells.csv", encoding="utf-8")))
    mtl = [c for c in cells if c["experiment"] == "mtl" and c["split"] == "test"]
    mtl_line = next(ln for ln in out.splitlines() if ln.strip("│ ").startswith("mtl "))
    assert len(mtl) == 3 and all(
        f"{float(c['mean']):.1f} ± {float(c['sd']):.1f}" in mtl_line for c in mtl
    ), (mtl, mtl_line)
    assert "Report: results/report.html" in out
    page = (proj / "results/report.html").read_text("utf-8")
    assert page.count('<img src="data:image/png;base64,') >= 3 and "<td>mtl</td>" in page
    assert re.search(r"train\s+\d+\s+[\d.]+", out), "per-stage job counts and times"


def test_full_dag_produces_metrics_tables_and_plots(project):
    proj, _, _ = project
    exps = json.loads((proj / "results/metrics.json").read_text())["experiments"]
    assert set(exps["stl"]["test"]) == {"nli/l0", "ner/l0", "qa/l1"}
    for exp in exps.values():
        assert all(0 <= v <= 100 for v in exp["test"].values())
        assert "test_sd" in exp  # two seeds
    assert "zero_shot_test_mean" in exps["mtl"]  # l2 never trained on
    # the selected model and its predictions exist per seed
    for s in (1, 2):
        assert (proj / f"models/runs/mtl.s{s}/model/heads.safetensors").exists()
        assert (proj / f"results/predictions/mtl.s{s}/ner.l0.test.json").exists()
    summary = json.loads((proj / "models/runs/mtl.s1/summary.json").read_text())
    assert summary["best_step"] in (4, 8) and summary["run"]["seed"] == 1
    # the meta run is fine-tuned on each TLP in one job (QA with two learning rates, on dev)
    ft = json.loads((proj / "models/runs/reptile.s1.ft.all/qa.l1/summary.json").read_text())
    assert ft["finetune"]["init"] == "reptile.s1" and len(ft["finetune"]["candidates"]) == 2
    assert set(exps["reptile"]["test"]) == {"nli/l0", "ner/l0", "qa/l1"}
    per_seed = (proj / "results/tables/per_seed.csv").read_text().splitlines()
    assert per_seed[0] == "experiment,seed,run,split,tlp,value"
    assert any(line.startswith("reptile,2,reptile.s2.ft.all,test,qa/l1,") for line in per_seed)
    assert (proj / "results/tables/paper_table2.md").exists()
    # X-MAML / XLA-MAML start from the English stage's model of their seed, meta-train on the
    # auxiliary's dev split and are selected on the unseen language's dev set
    xla = json.loads((proj / "models/runs/xla_maml.l1.s2/summary.json").read_text())
    assert xla["run"]["init"] == "en.s2" and xla["train_split"] == "dev"
    assert xla["selection_tlps"] == ["nli/l2"] and xla["options"]["query"] == ["l1"]
    assert set(exps["xla_maml.l1"]["test"]) == {"nli/l0", "nli/l1"}
    assert "zero_shot_test_mean" in exps["xmaml.l1"]  # l2: unseen
    maml = (proj / "results/tables/xla_maml.md").read_text()
    assert "| X-MAML l1→X |" in maml and "| XLA-MAML l1→X |" in maml
    assert "## nli: zero-shot" in maml
    # X-METRA-ADA from PRE on its pseudo-tasks (a tracked artifact), English train + l1 dev,
    # kept at its last step; the M'hamdi-shaped tables and the sweep's DVC plot files
    xa = json.loads((proj / "models/runs/xmetra_ada.l1.s2/summary.json").read_text())
    assert xa["run"]["init"] == "en.s2" and xa["selection"] == "last"
    assert xa["train_split"] == {
        "mtod/l0": "train",
        "mtod/l1": "dev",
        "qa/l0": "train",
        "qa/l1": "dev",
    }
    assert xa["options"]["stages"] == "sequential" and xa["total_steps"] == 3
    tasks = json.loads((proj / "data/tasks/xmetra_ada.l1.s2.json").read_text())
    assert tasks["meta_train"] and tasks["meta_adapt"]
    xt = (proj / "results/tables/xmetra_ada.md").read_text()
    assert "| X-METRA-ADA |" in xt and "| p, X-METRA-ADA vs FT |" in xt and "| l1 F1 |" in xt
    assert (proj / "results/plots/sweeps/xmetra_sweep.mtod.l1.intent_accuracy.csv").exists()
    assert (proj / "results/plots/grad_cosine/mtl.s1.csv").exists()
    assert (proj / "results/plots/dev_score/reptile.s2.ft.qa.l1.csv").exists()
    # Lee et al.: the baselines' multi-task table, and the zero-shot run on GMM clusters of
    # nli/l0 (a tracked artifact), whose tasks are the clusters and which is scored on l1, l2
    clusters = json.loads((proj / "data/clusters/nli.l0.synthetic.k2.s13.json").read_text())
    assert clusters["summary"]["dataset"] == "synthetic" and len(clusters["summary"]["sizes"]) == 2
    zs = json.loads((proj / "models/runs/zs_mtl.s1/summary.json").read_text())
    assert list(zs["cluster_sizes"]) == ["nli/l0~c0", "nli/l0~c1"]
    assert sum(zs["cluster_sizes"].values()) == len(clusters["assignments"])
    cos = json.loads((proj / "models/runs/zs_mtl.s1/history.json").read_text())[-1]
    assert list(cos["grad_cosine"]["pairs"]) == ["nli/l0~c0|nli/l0~c1"]
    zs_cells = {
        line.split(",")[4] for line in per_seed if line.startswith("zs_mtl,1,zs_mtl.s1,zs_test,")
    }
    assert zs_cells == {"nli/l1", "nli/l2"} and "zero_shot_test_mean" in exps["zs_mtl"]
    lee = (proj / "results/tables/lee_multitask.md").read_text()
    assert "| PCGrad |" in lee and "| RecAdam |" in lee and "| All TLPs MTL |" in lee
    assert "| ZS MTL |" in (proj / "results/tables/lee_zero_shot.md").read_text()
    assert (proj / "results/plots/efficiency/pcgrad.s1.csv").exists()
    # the 2-D study (Fig. 3): a verdict per claim
    # forgetting (Figs. 5-6): the MLM loss of each trained encoder, seen and unseen languages
    fg = json.loads((proj / "results/forgetting/pcgrad.s1.json").read_text())
    assert fg["l2"] > 0 and set(fg["mlm_loss"]) == set(fg["seen"]) | set(fg["unseen"])
    assert "| pcgrad |" in (proj / "results/tables/forgetting.md").read_text()
    toy = json.loads((proj / "results/toy2d/summary.json").read_text())
    assert len(toy["analysis"]["claims"]) == 3 and toy["settings"]["steps"] == 30


def test_same_params_and_seed_give_the_same_numbers(project, tmp_path):
    proj, _, _ = project
    again = make_project(tmp_path / "again")
    snakemake(again)
    for f in (
        "results/metrics.json",
        "results/tables/test.md",
        "results/tables/cells.csv",
        "models/runs/mtl.s2/history.json",
    ):
        assert (again / f).read_text() == (proj / f).read_text(), f
    # forked jobs compute what fresh processes do: some runs again, without the fork server
    fresh = make_project(tmp_path / "fresh")
    runs = ["mtl.s2", "reptile.s1.ft.all", "metaxl.l1.s1", "xla_maml.l1.s1"]
    targets = [f"results/scores/{r}.json" for r in runs]
    snakemake(fresh, *targets, extra_env={"PIPELINE_FORKSERVER": "0"})
    assert not (fresh / "logs/forkserver.log").exists()
    for f in [*targets, "models/runs/mtl.s2/history.json", "models/runs/metaxl.l1.s1/history.json"]:
        assert (fresh / f).read_text() == (proj / f).read_text(), f


def test_second_run_does_nothing(project):
    proj, _, _ = project
    res = snakemake(proj)
    assert "Nothing to be done" in res.stdout + res.stderr


def test_dvc_adopts_what_snakemake_computed(project):
    proj, _, _ = project
    dvc = [sys.executable, "-m", "dvc"]
    before = run([*dvc, "status"], proj).stdout
    assert "changed outs" in before or "deleted" in before or "new" in before, before
    run([*dvc, "commit", "-f"], proj)
    assert "up to date" in run([*dvc, "status"], proj).stdout.lower()
    shown = run([*dvc, "metrics", "show", "--json"], proj).stdout
    assert "test_mean" in shown


def test_params_change_reruns_only_readers(project):
    proj, _, _ = project
    original = yaml.safe_load((proj / "params.yaml").read_text())
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["experiments"]["mtl"]["steps"] = 12
    write_params(proj, params)
    jobs = dry_run_jobs(proj)
    # mtl, both seeds, and their forgetting analyses (Lee et al. Fig. 5: they read the models)
    assert jobs == {"train": 2, "forgetting": 2, "report": 1, "all": 1}, jobs
    params = copy.deepcopy(original)
    params["training"]["lr"] = 0.002  # every run reads the shared training defaults
    write_params(proj, params)
    jobs = dry_run_jobs(proj)
    # (the X-METRA pseudo-tasks do not read learning rates: not rebuilt)
    assert jobs.get("train") == 38 and jobs.get("finetune") == 2, jobs
    assert "pseudo_tasks" not in jobs, jobs
    assert "pretrain" not in jobs and "prepare" not in jobs, jobs
    write_params(proj, original)


def test_a_new_seed_reruns_only_the_new_seed(project):
    proj, _, _ = project
    original = yaml.safe_load((proj / "params.yaml").read_text())
    params = copy.deepcopy(original)
    params["seeds"] = [1, 2, 3]
    write_params(proj, params)
    res = snakemake(proj, "-n", "--printshellcmds")
    trained = set(re.findall(r"--run (\S+)", res.stdout))
    assert trained == {
        "stl.nli.l0.s3",
        "stl.ner.l0.s3",
        "stl.qa.l1.s3",
        "mtl.s3",
        "reptile.s3",
        "reptile.s3.ft.all",
        "en.s3",
        "xmaml.l1.s3",
        "xla_maml.l1.s3",
    }, trained  # (the X-METRA group has seeds of its own)
    jobs = dry_run_jobs(proj)
    assert jobs == {"train": 8, "finetune": 1, "forgetting": 2, "report": 1, "all": 1}, jobs
    params["experiments"]["mtl"]["seeds"] = [1]  # an experiment's own seeds win
    write_params(proj, params)
    ids = {
        r["id"]
        for r in json.loads(run([sys.executable, "-m", "pipeline", "validate"], proj).stdout)
    }
    assert "mtl.s1" in ids and "mtl.s2" not in ids and "zs_mtl.s2" in ids
    write_params(proj, original)


def test_bad_params_fail_before_any_work(tmp_path):
    proj = make_project(tmp_path / "bad", {"training": {"lr": "fast"}}, commit=False)
    res = snakemake(proj, check=False)
    assert res.returncode != 0
    assert "training.lr: expected number > 0, got 'fast'" in res.stdout + res.stderr
    assert not (proj / "data/raw").exists() and not (proj / "models").exists()


def bare_python(tmp_path):
    """A `python` without the project's packages (a venv with the standard library only)."""
    run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], tmp_path)
    return tmp_path / "bare" / "bin"


def test_a_python_without_the_packages_says_so_in_one_line(project, tmp_path):
    proj, _, _ = project
    res = run(
        [str(bare_python(tmp_path) / "python"), "-m", "pipeline", "validate"], proj, check=False
    )
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert "cannot import" in line and ". .venv/bin/activate" in line


def test_rules_use_the_interpreter_of_snakemake_without_activation(project, tmp_path):
    """`.venv/bin/snakemake` run with a PATH whose `python` lacks the project's packages."""
    proj, _, _ = project
    path = f"{bare_python(tmp_path)}:/usr/bin:/bin"
    res = run(
        [
            "env",
            f"PATH={path}",
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "1",
            "--forcerun",
            "report",
            "results/metrics.json",
        ],
        proj,
    )
    finished = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", res.stderr)
    # the report ran, with this interpreter, and nothing else but the `all` target it feeds
    assert sorted(finished) == ["all", "report"], res.stderr[-2000:]
    assert "2 of 2 steps (100%) done" in res.stderr, res.stderr[-2000:]


def test_a_missing_split_stops_the_dag_before_any_training(tmp_path):
    """A TLP the benchmark lacks (nli/l9) fails the plan right after prepare, in one line naming
    the TLP, the split and the dataset; nothing is trained."""
    proj = make_project(tmp_path / "missing", {"tlps": ["nli/l0", "nli/l9"]}, commit=False)
    res = snakemake(proj, check=False)
    assert res.returncode != 0
    (line,) = [
        x for x in (proj / "logs/plan.log").read_text().splitlines() if x.startswith("error")
    ]
    assert (
        line
        == "error: nli/l9: no labelled train split in synthetic; nli has languages l0, l1, l2 there"
    )
    assert not (proj / "logs/train").exists() and not (proj / "models/encoder").exists()
