"""DVC at scale, end to end: the cluster cycle through a remote, and queued experiments.

Why: on a cluster the DAG runs under Snakemake (`snakemake --profile profiles/slurm`), not `dvc
repro`; DVC then adopts what Snakemake wrote (`dvc commit`), ships it to a shared remote (`dvc
push`), and a laptop's fresh clone gets the very same bytes back (`dvc pull`). Sweeps go through
DVC's experiment queue (`dvc exp run --queue`, `dvc queue start -j N`), whose workers are detached
daemons known to hang or report a wrong status (iterative/dvc #8165, #10398, #10427): every wait
here is bounded, and the workers and everything they started are stopped even when a test fails.

One shared baseline (a fresh clone, a config much smaller than TINY: two training runs, one seed,
no toy2d), computed by Snakemake and committed by DVC, serves both halves.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.e2e import TINY, env, make_project, run, snakemake

pytestmark = pytest.mark.e2e

#: every experiment of the embedded default and of TINY switched off, but two cheap ones
_OFF = {
    name: None
    for name in {
        **yaml.safe_load((REPO / "params.yaml").read_text())["experiments"],
        **TINY["experiments"],
    }
}
SMALL: dict[str, Any] = {
    "seeds": [1],
    "benchmark": {"languages": 2, "zero_shot": 1, "tasks": ["nli", "ner"], "text_sentences": 80},
    "tlps": ["nli/l0", "ner/l0"],
    "zero_shot_langs": ["l1"],
    "experiments": {
        **_OFF,
        "stl": {"method": "stl", "steps": 4, "tlps": ["nli/l0"]},
        "mtl": {"method": "mtl", "steps": 8, "temperature": 2.0, "forgetting": False},
    },
    "report": {"bootstrap": 50},
    "toy2d": None,
}
#: the two queued experiments: only train@mtl.s1 and report read experiments.mtl.steps
QUEUED = {"q-steps2": 2, "q-steps24": 24}
#: bound on the whole queue (two runs of two stages each take ~1 min on 2 cores)
QUEUE_TIMEOUT_S = 300


def dvc(proj: Path, *args: str, check: bool = True, timeout: int = 300):
    return run([sys.executable, "-m", "dvc", *args], proj, check=check, timeout=timeout)


def lock_outs(proj: Path) -> list[str]:
    """Every output path dvc.lock records (what `dvc pull` must restore)."""
    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    return sorted({o["path"] for s in lock["stages"].values() for o in s.get("outs", [])})


def same_tree(a: Path, b: Path) -> list[str]:
    """Relative paths that differ (missing on a side, or other bytes) between two files/trees."""
    if a.is_file() or b.is_file():
        return [] if a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False) else ["."]
    files = lambda root: {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}  # noqa: E731
    fa, fb = files(a), files(b)
    bad = sorted(fa ^ fb)
    return bad + [f for f in sorted(fa & fb) if not filecmp.cmp(a / f, b / f, shallow=False)]


def processes_under(root: Path) -> list[int]:
    """Pids whose working directory is inside `root` (queue workers, experiment runs, their
    stages and fork servers all run there; a removed experiment folder reads '(deleted)')."""
    top, pids = str(root.resolve()), []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(p / "cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        if int(p.name) != os.getpid() and (cwd == top or cwd.startswith(top + os.sep)):
            pids.append(int(p.name))
    return pids


def kill_under(root: Path, grace_s: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL after `grace_s`, every process running inside `root`."""
    pids = processes_under(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while (pids := processes_under(root)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not pids:
            break
    return processes_under(root)


def stop_queue(proj: Path) -> str:
    """Stop the queue's workers and kill its running tasks, bounded; then kill whatever is
    still running inside the project (`dvc queue stop` itself can hang: #8165)."""
    said = ""
    try:
        said = dvc(proj, "queue", "stop", "--kill", check=False, timeout=60).stdout
    except Exception as e:  # noqa: BLE001 - a hung stop must not keep the workers alive
        said = f"dvc queue stop --kill: {e!r}"
    left = kill_under(proj)
    # the auto-started fork servers of the experiments' stages leave their socket folders
    for log in Path(tempfile.gettempdir()).glob(f"pipeline-fs-{os.getuid()}-*/log"):
        if str(proj.resolve()) in log.read_text(errors="replace"):
            shutil.rmtree(log.parent, ignore_errors=True)
    assert not left, f"processes survived the cleanup: {left}"
    return said


def start_queue(proj: Path, workers: int) -> str:
    """`dvc queue start -j N`, its output to a file rather than a pipe.

    Why: the workers it forks are daemons that can inherit its stdout/stderr; reading those
    through a pipe waits for every worker to exit (the CI run saw `dvc queue start` return 0
    and the pipe stay open past a 60 s timeout). A file has no such end to wait for.
    """
    log = proj / ".dvc/tmp/queue-start.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        res = subprocess.run(
            [sys.executable, "-m", "dvc", "queue", "start", "-j", str(workers)],
            cwd=proj,
            env=env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
    said = log.read_text(errors="replace")
    assert res.returncode == 0, f"dvc queue start failed ({res.returncode}): {said[-2000:]}"
    assert f"Started '{workers}'" in said or "worker" in said.lower(), said
    return said


def queue_logs(proj: Path) -> str:
    """What the queue and its workers said (for a failure message)."""
    parts = [dvc(proj, "queue", "status", check=False, timeout=60).stdout]
    for name in QUEUED:
        res = dvc(proj, "queue", "logs", name, check=False, timeout=60)
        parts.append(f"--- dvc queue logs {name}\n{res.stdout[-3000:]}{res.stderr[-1500:]}")
    for out in (proj / ".dvc/tmp/exps/celery").glob("*.out"):
        parts.append(f"--- {out.name}\n{out.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def queue_states(proj: Path) -> dict[str, str]:
    """Experiment name -> status (Queued, Running, Success, Failed) from `dvc queue status`."""
    states = {}
    for line in dvc(proj, "queue", "status", timeout=60).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in QUEUED:
            states[parts[1]] = parts[-1]
    return states


def shown_experiments(proj: Path) -> dict[str, dict[str, Any]]:
    """Experiment name -> its `dvc exp show --json` entry (rev, status, params, metrics)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("name") in QUEUED and "data" in node:
                found[node["name"]] = node["data"] | {"rev": node.get("rev")}
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(dvc(proj, "exp", "show", "--json", timeout=120).stdout))
    return found


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Iterator[tuple[Path, dict[str, float]]]:
    """The cluster side: Snakemake computes the DAG, `dvc commit` records it, git keeps dvc.lock."""
    proj = make_project(tmp_path_factory.mktemp("dvcscale") / "project", SMALL)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    snakemake(proj)
    times["snakemake --cores 2"] = time.perf_counter() - t0
    assert not (proj / "dvc.lock").exists()
    t0 = time.perf_counter()
    dvc(proj, "commit", "-f")
    times["dvc commit -f"] = time.perf_counter() - t0
    run(["git", "add", "dvc.lock"], proj)
    run(["git", "commit", "-qm", "baseline computed by snakemake"], proj)
    yield proj, times
    print("\n" + "\n".join(f"{k:<28}{v:>8.1f} s" for k, v in times.items()))
    kill_under(proj.parent)


def test_commit_adopts_snakemake_outputs(baseline):
    proj, _ = baseline
    assert "up to date" in dvc(proj, "status").stdout.lower()
    outs = lock_outs(proj)
    assert {"models/runs/mtl.s1", "models/runs/stl.nli.l0.s1", "results/metrics.json"} <= set(outs)
    assert any(o.startswith("results/scores") for o in outs), outs
    # nothing to recompute: `dvc repro` agrees the outputs Snakemake wrote are the stages' own
    assert "Running stage" not in dvc(proj, "repro").stdout


def test_push_then_pull_in_a_fresh_clone_restores_the_same_bytes(baseline, tmp_path):
    proj, times = baseline
    remote = tmp_path / "remote"
    dvc(proj, "remote", "add", "-d", "local", str(remote))
    run(["git", "commit", "-qam", "shared remote"], proj)  # .dvc/config travels with git
    t0 = time.perf_counter()
    dvc(proj, "push")
    times["dvc push"] = time.perf_counter() - t0
    assert any(remote.rglob("*")), "push wrote nothing to the remote"
    assert "in sync" in dvc(proj, "status", "--cloud").stdout.lower()

    clone = tmp_path / "laptop"
    run(["git", "clone", "-q", str(proj), str(clone)], tmp_path)
    assert not (clone / "models").exists() and not (clone / "results").exists()
    assert f"url = {remote}" in (clone / ".dvc/config").read_text()
    t0 = time.perf_counter()
    dvc(clone, "pull")
    times["dvc pull (fresh clone)"] = time.perf_counter() - t0
    for out in lock_outs(proj):
        assert (clone / out).exists(), out
        assert not same_tree(proj / out, clone / out), (out, same_tree(proj / out, clone / out))
    assert (clone / "models/runs/mtl.s1/model").is_dir()
    assert json.loads((clone / "results/metrics.json").read_text())["experiments"]["mtl"]
    assert "up to date" in dvc(clone, "status").stdout.lower()
    assert not run(["git", "status", "--porcelain"], clone).stdout.strip()


def test_queued_experiments_run_in_parallel_workers(baseline):
    proj, times = baseline
    base = json.loads((proj / "results/metrics.json").read_text())["experiments"]
    for name, steps in QUEUED.items():
        dvc(proj, "exp", "run", "--queue", "-n", name, "-S", f"experiments.mtl.steps={steps}")
    assert set(queue_states(proj).values()) == {"Queued"}, queue_states(proj)
    t0 = time.perf_counter()
    try:
        start_queue(proj, workers=2)
        deadline = time.monotonic() + QUEUE_TIMEOUT_S
        while True:
            states = queue_states(proj)
            done = {n for n, s in states.items() if s in ("Success", "Failed")}
            if done == set(QUEUED):
                break
            # `dvc queue status` can lag behind finished runs (#10427); an experiment's git ref
            # exists only once it finished and was committed (`exp show` is no such signal: it
            # lists a running experiment with metrics too)
            listed = set(dvc(proj, "exp", "list", "--name-only", timeout=60).stdout.split())
            if set(QUEUED) <= listed:
                states = {n: "Success" for n in QUEUED}
                break
            if time.monotonic() > deadline:
                logs = queue_logs(proj)
                pytest.fail(f"queue not done after {QUEUE_TIMEOUT_S} s: {states}\n{logs}")
            time.sleep(3)
        times["queue: 2 exps, -j 2"] = time.perf_counter() - t0
        assert all(states.get(n, "Success") == "Success" for n in QUEUED), queue_logs(proj)
        shown = shown_experiments(proj)
        assert set(shown) == set(QUEUED), shown.keys()
        results = {}
        for name, steps in QUEUED.items():
            params = shown[name]["params"]["params.yaml"]["data"]
            assert params["experiments"]["mtl"]["steps"] == steps
            results[name] = shown[name]["metrics"]["results/metrics.json"]["data"]["experiments"]
            # each ran only what reads experiments.mtl: the STL baseline is the committed one
            # (DVC shows the numeric metrics only: no `seeds` list)
            stl = results[name]["stl"]
            assert "test_mean" in stl and stl == {k: base["stl"][k] for k in stl}, name
            ran = dvc(proj, "queue", "logs", name, timeout=60).stdout
            assert "Running stage 'train@mtl.s1'" in ran, ran[-2000:]
            assert "Running stage 'train@stl" not in ran and "Running stage 'pretrain'" not in ran
        a, b = (results[n]["mtl"] for n in QUEUED)
        assert a != b, "different steps gave the same MTL metrics"
        # the workspace is still the baseline (experiments ran in their own folders)
        assert "up to date" in dvc(proj, "status").stdout.lower()
    finally:
        stop_queue(proj)
