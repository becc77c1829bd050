"""Code stamps: one logs/code/<group>.sha256 per group of steps stands for that group's
pipeline/ files as its jobs' code input (pipeline/workflow/code_stamps.py, rules/common.smk),
while dvc.yaml still lists the files themselves.

The end-to-end test gives a fresh clone of the shrunken project a placeholder for every output,
marked up to date (`snakemake --touch`), so the DAG's rerun decisions are checked in seconds
without training anything: nothing to do, also with the stamps deleted; an edit of a train-group
file reruns the train-group jobs (and what reads their outputs), not the data or encoder jobs,
with its stamps present or deleted; the edited group's stamp changes, another group's does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.workflow.code_stamps import write_stamp
from pipeline.workflow.dvc_yaml import _paths, code_stamps
from tests.e2e import dry_run_jobs, make_project, run, snakemake

#: a file of the train group (TRAIN_CODE) that no data, encoder, toy2d or forgetting step runs
EDITED = "pipeline/finetune.py"

#: every job's rule and outputs (path, is a folder), from the DAG dvc_yaml builds
LIST_JOBS = r"""
import contextlib, io, json
from pathlib import Path
from pipeline.workflow.dvc_yaml import _build_dag
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    wf = _build_dag(Path("Snakefile").resolve(), Path(".").resolve())
print(json.dumps([(j.rule.name, [(str(f), f.is_directory) for f in j.output]) for j in wf.dag.jobs]))
"""


def test_dvc_paths_write_a_stamp_as_its_files():
    stamps = {"logs/code/train.sha256": ["pipeline/cli.py", "pipeline/trainer.py"]}
    files = ["data/plan.json", "pipeline/cli.py", "logs/code/train.sha256", "models/{run}"]
    assert _paths(files, ["run"], stamps=stamps) == [
        "data/plan.json",
        "pipeline/cli.py",
        "pipeline/trainer.py",
        "models/${item.run}",
    ]
    assert _paths(["logs/code/train.sha256"], []) == ["logs/code/train.sha256"]  # no stamps

    class Workflow:
        globals = {"CODE_STAMP": "logs/code/{group}.sha256", "CODE_GROUPS": {"a": ["x.py"]}}

    assert code_stamps(Workflow()) == {"logs/code/a.sha256": ["x.py"]}


def test_a_stamp_changes_with_its_files_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.py", "b.py", "c.py"):
        Path(name).write_text(f"# {name}\n")
    old_time, older_time = 1_700_000_000 * 10**9, 1_600_000_000 * 10**9
    os.utime("a.py", ns=(old_time, old_time))  # the newest file of the group
    os.utime("b.py", ns=(older_time, older_time))
    assert write_stamp("s/ab.sha256", ["a.py", "b.py"]) and write_stamp("s/c.sha256", ["c.py"])
    ab, c = Path("s/ab.sha256"), Path("s/c.sha256")
    sha = {n: hashlib.sha256(Path(n).read_bytes()).hexdigest() for n in ("a.py", "b.py")}
    assert ab.read_text() == f"{sha['a.py']}  a.py\n{sha['b.py']}  b.py\n"  # sha256sum's format
    # a missing stamp takes its newest file's time: outputs newer than the code stay up to date
    assert ab.stat().st_mtime_ns == old_time
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (ab, c)}
    os.utime("b.py")  # touched, not changed: no stamp is written
    assert not write_stamp(ab, ["a.py", "b.py"]) and not write_stamp(c, ["c.py"])
    Path("b.py").write_text("# b.py, edited\n")
    assert write_stamp(ab, ["a.py", "b.py"]) and not write_stamp(c, ["c.py"])
    assert (c.read_bytes(), c.stat().st_mtime_ns) == before[c]
    old, new = before[ab][0].decode().splitlines(), ab.read_text().splitlines()
    assert new[0] == old[0] and new[1] != old[1] and new[1].endswith("  b.py")
    assert ab.stat().st_mtime_ns > old_time  # written now: newer than the group's outputs
    assert write_stamp(ab, ["a.py"])  # a file dropped from the group changes it too
    with pytest.raises(PipelineError, match="gone.py does not exist"):
        write_stamp(ab, ["a.py", "gone.py"])


def stamp_files(proj: Path, group: str) -> dict[str, str]:
    """file -> sha256 as the group's stamp records them (sha256sum's format)."""
    lines = (proj / "logs/code" / f"{group}.sha256").read_text().splitlines()
    return {path: digest for digest, path in (line.split(maxsplit=1) for line in lines)}


@pytest.mark.e2e
def test_a_code_edit_reruns_only_its_group(tmp_path):
    proj = make_project(tmp_path / "project", commit=False)
    jobs = json.loads(run([sys.executable, "-c", LIST_JOBS], proj).stdout.splitlines()[-1])
    for _, outputs in jobs:  # every output: a placeholder, then marked up to date
        for path, is_dir in outputs:
            (proj / path).parent.mkdir(parents=True, exist_ok=True)
            (proj / path).mkdir() if is_dir else (proj / path).write_text("{}")
    snakemake(proj, "--touch")
    assert "Nothing to be done" in snakemake(proj, "-n").stdout
    # a stamp is the sha256 of each file of its group (written as the rules were read)
    train = stamp_files(proj, "train")
    assert {EDITED, "pipeline/trainer.py", "pipeline/cli.py"} <= set(train)
    for path, digest in train.items():
        assert hashlib.sha256((proj / path).read_bytes()).hexdigest() == digest, path
    assert EDITED not in stamp_files(proj, "generate")
    # deleted stamps (`rm -rf logs`, a fresh clone after `dvc pull`) rerun nothing either
    stamps = {p.name: p.read_bytes() for p in (proj / "logs/code").iterdir()}
    shutil.rmtree(proj / "logs/code")
    assert "Nothing to be done" in snakemake(proj, "-n").stdout
    assert {p.name: p.read_bytes() for p in (proj / "logs/code").iterdir()} == stamps

    others = {g: proj / f"logs/code/{g}.sha256" for g in ("generate", "prepare", "toy2d")}
    before = {g: (p.read_bytes(), p.stat().st_mtime_ns) for g, p in others.items()}
    with (proj / EDITED).open("a") as f:
        f.write("# an edit\n")
    count = Counter(rule for rule, _ in jobs)
    rerun = {
        "train": count["train"],
        "finetune": count["finetune"],
        "represent": count["represent"],  # reads the models (and runs the train group's files)
        "forgetting": count["forgetting"],  # reads the models
        "report": 1,
        "all": 1,
    }
    assert rerun["train"] > 10 and rerun["finetune"] and rerun["represent"]
    assert dry_run_jobs(proj) == rerun
    # the edited group's stamp changed in that file's line only; other groups' are untouched
    edited = stamp_files(proj, "train")
    assert set(edited) == set(train)
    assert {p for p in edited if edited[p] != train[p]} == {EDITED}
    assert {g: (p.read_bytes(), p.stat().st_mtime_ns) for g, p in others.items()} == before
    # ...and with the stamps deleted the edit reruns the same jobs
    shutil.rmtree(proj / "logs/code")
    assert dry_run_jobs(proj) == rerun

    # dvc.yaml lists the real files, not the stamps
    dvc = yaml.safe_load((proj / "dvc.yaml").read_text())
    assert set(train) <= set(dvc["stages"]["train"]["do"]["deps"])
    for stage in dvc["stages"].values():
        deps = stage.get("do", stage).get("deps", [])
        assert not [d for d in deps if d.startswith("logs/")], deps
    assert "results/bench" in dvc["metrics"]
