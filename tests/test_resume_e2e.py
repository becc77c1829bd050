"""Killed runs resume through Snakemake, bit-identically on CPU (and across processes).

A meta-training job (parallel Reptile) is SIGKILLed at a random step, as a crashed node would
leave it: the failed job's outputs are not taken as complete (Snakemake reruns it), and the
rerun resumes from the last checkpoint to the same weights and scores as an uninterrupted run
in another clone, i.e. another set of processes. Then SIGTERM, as SLURM sends at a time limit
(here through the fork server, which relays it): the job checkpoints the step in progress,
exits 143, and the rerun resumes from exactly that step.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e import env, make_project, snakemake

pytestmark = pytest.mark.e2e

RUN = "reptile.s1"
TARGET = f"results/scores/{RUN}.json"
OVERRIDES = {
    "seeds": [1],
    "training": {"checkpoint_every": 5, "eval_every": 100},
    "experiments": {"reptile": {"method": "reptile", "steps": 300, "m": 2, "k": 2}},
    "toy2d": None,
}


def _train_pids() -> list[int]:
    """The `python -m pipeline train --run RUN` processes (not the shell that started them)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 4 and argv[1:4] == [b"-m", b"pipeline", b"train"] and RUN.encode() in argv:
            pids.append(int(d.name))
    return pids


def _step(proj: Path) -> int:
    try:
        return json.loads((proj / "checkpoints" / RUN / "manifest.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


def _interrupt(proj: Path, sig: int, at: int, extra_env: dict[str, str]) -> tuple[int, str]:
    """Start the job, send `sig` to its training process once a checkpoint of step >= `at`
    exists; return Snakemake's exit status and output."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", TARGET]
    if sig == signal.SIGTERM:
        cmd += ["--forcerun", "train"]
    proc = subprocess.Popen(
        cmd,
        cwd=proj,
        env={**env(), **extra_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while _step(proj) < at:
            assert proc.poll() is None, f"finished before step {at}:\n{proc.stdout.read()}"
            assert time.time() < deadline, "no checkpoint in time"
            time.sleep(0.02)
        pids = _train_pids()
        assert pids, "training process not found"
        for pid in pids:
            os.kill(pid, sig)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def _outputs(proj: Path) -> dict[str, bytes]:
    files = {TARGET: (proj / TARGET).read_bytes()}
    for f in sorted((proj / "models/runs" / RUN).rglob("*.safetensors")):
        files[str(f.relative_to(proj))] = f.read_bytes()
    return files


def test_killed_and_preempted_training_resumes_bit_identically(tmp_path):
    base = make_project(tmp_path / "base", OVERRIDES)
    snakemake(base, TARGET)
    expected = _outputs(base)

    proj = make_project(tmp_path / "proj", OVERRIDES)
    snakemake(proj, "data/plan.json", "models/encoder")  # what the job reads, first
    at = random.Random().randint(20, 200)
    rc, out = _interrupt(proj, signal.SIGKILL, at, {"PIPELINE_FORKSERVER": "0"})
    assert rc != 0, out
    killed_at = _step(proj)
    assert killed_at >= at and not (proj / TARGET).exists(), (at, killed_at)
    pending = snakemake(proj, "-n", TARGET).stdout
    assert "train" in pending and RUN in pending  # the failed job is not taken as complete
    snakemake(proj, TARGET)
    log = (proj / "logs/train" / f"{RUN}.log").read_text()
    assert f"{RUN}: resuming at step {killed_at}" in log, (at, log[-2000:])
    assert _outputs(proj) == expected, f"killed at step {killed_at} (target {at})"

    at = random.Random().randint(20, 200)
    rc, out = _interrupt(proj, signal.SIGTERM, at, {})
    assert rc != 0, out
    log = (proj / "logs/train" / f"{RUN}.log").read_text()
    assert "SIGTERM at step" in log, log[-2000:]
    stopped = _step(proj)
    assert stopped >= at and f"SIGTERM at step {stopped} of 300" in log
    snakemake(proj, TARGET)
    log = (proj / "logs/train" / f"{RUN}.log").read_text()
    assert f"{RUN}: resuming at step {stopped}" in log
    assert _outputs(proj) == expected, f"preempted at step {stopped} (target {at})"
    prov = json.loads((proj / "models/runs" / RUN / "provenance.json").read_text())
    assert prov["seed"] == 1 and len(prov["git"]["commit"]) == 40
    assert prov["device"]["type"] == "cpu" and prov["packages"]["torch"]
