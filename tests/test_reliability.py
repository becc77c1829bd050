"""Faults a run survives: damaged checkpoints refused, a full disk or unwritable folder named,
a non-finite loss stopped with the last good checkpoint kept, SIGTERM checkpointed and resumed,
checkpoints loadable with `weights_only=True` (no pickled code), provenance recorded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.checkpoint import (
    MANIFEST_FILE,
    MODEL_FILE,
    STATE_FILE,
    CheckpointError,
    checkpoint_key,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    verify_checkpoint,
)
from pipeline.errors import TrainingError
from pipeline.runtime.provenance import git_state, params_sha256
from pipeline.runtime.signals import Interrupted
from tests.meta_helpers import make_run, trainer, weights

REPO = Path(__file__).resolve().parent.parent


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(64, 64)


def _state() -> dict:
    return {
        "key": "k1",
        "step": 3,
        "rng": rng_state(),  # numpy's MT19937 state holds an ndarray
        "history": [{"loss": np.float64(0.5), "probs": np.arange(3.0)}],
    }


def test_checkpoint_state_loads_with_weights_only_and_round_trips(tmp_path):
    save_checkpoint(tmp_path / "c", _model(), _state(), {"best.w": torch.ones(2)})
    raw = torch.load(tmp_path / "c" / STATE_FILE, weights_only=True)  # no pickled code
    assert raw["history"] == [{"loss": 0.5, "probs": [0.0, 1.0, 2.0]}]
    m = torch.nn.Linear(64, 64)
    state, extra = load_checkpoint(tmp_path / "c", m)
    assert torch.equal(m.weight, _model().weight) and torch.equal(extra["best.w"], torch.ones(2))
    manifest = json.loads((tmp_path / "c" / MANIFEST_FILE).read_text())
    assert manifest["key"] == "k1" and manifest["step"] == 3
    assert set(manifest["files"]) == {MODEL_FILE, STATE_FILE, "extra.safetensors"}
    assert checkpoint_key(tmp_path / "c") == "k1"


@pytest.mark.parametrize("victim", [MODEL_FILE, STATE_FILE])
def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path, victim):
    save_checkpoint(tmp_path / "c", _model(), _state())
    f = tmp_path / "c" / victim
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"damaged checkpoint \\({victim}: \\d+ bytes"):
        load_checkpoint(tmp_path / "c", torch.nn.Linear(64, 64))


def test_same_size_corruption_and_missing_manifest_are_refused(tmp_path):
    save_checkpoint(tmp_path / "c", _model(), _state())
    f = tmp_path / "c" / MODEL_FILE
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 differs"):
        load_checkpoint(tmp_path / "c", torch.nn.Linear(64, 64))
    (tmp_path / "c" / MANIFEST_FILE).unlink()
    with pytest.raises(CheckpointError, match="no manifest.json"):
        checkpoint_key(tmp_path / "c")


_WRITER = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {repo!r})
    from pipeline.checkpoint import save_checkpoint, CheckpointError
    torch.manual_seed(0)
    try:
        save_checkpoint(sys.argv[1], torch.nn.Linear(256, 256), {{"key": "k", "step": 1}})
    except CheckpointError as e:
        print("ERR", e)
    """
)


@pytest.mark.parametrize(
    "mount, expected",
    [("size=64k", "No space left on device"), ("ro", "Read-only file system")],
)
def test_full_disk_or_unwritable_folder_is_a_clear_error_and_leaves_nothing(
    tmp_path, mount, expected
):
    """A real tmpfs in a private mount namespace (64 KiB: a 256 KiB model does not fit; or
    read-only), written by a real process."""
    if shutil.which("unshare") is None:
        pytest.fail("util-linux's unshare is needed for this test")
    root = tmp_path / "mnt"
    root.mkdir()
    script = tmp_path / "w.py"
    script.write_text(_WRITER.format(repo=str(REPO)))
    cmd = (
        f"mount -t tmpfs -o {mount} tmpfs {root} && "
        f"{sys.executable} {script} {root}/ckpt; echo LEFT; ls -A {root}"
    )
    res = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", cmd],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = res.stdout
    assert f"ERR {root}/ckpt: cannot write checkpoint ({expected})" in out, out + res.stderr
    assert out.split("LEFT", 1)[1].strip() == ""  # no temp folder, no partial checkpoint


def test_non_finite_loss_stops_naming_step_run_and_tlp_and_keeps_last_checkpoint(
    tiny_world, tmp_path
):
    run = make_run("stl", ["ner/l0"], steps=8, checkpoint_every=2, eval_every=100)
    t = trainer(tiny_world, run, tmp_path / "ckpt")
    step, calls = t.method.step, {"n": 0}

    def diverging() -> dict:
        calls["n"] += 1
        if calls["n"] == 4:  # the weights blew up in the 3rd step's update
            with torch.no_grad():
                next(t.model.parameters()).fill_(float("nan"))
        return step()

    t.method.step = diverging  # type: ignore[method-assign]
    with pytest.raises(TrainingError) as e:
        t.fit(tmp_path / "out")
    msg = str(e.value)
    assert f"{run.id}: loss is nan at step 4 on ner/l0" in msg
    assert f"checkpoint of step 2 in {tmp_path / 'ckpt'} is kept" in msg
    assert not (tmp_path / "out").exists()
    assert verify_checkpoint(tmp_path / "ckpt")["step"] == 2  # whole, and not overwritten


def test_sigterm_checkpoints_the_step_in_progress_and_resume_is_identical(tiny_world, tmp_path):
    run = make_run("mtl", ["nli/l0", "ner/l1"], steps=7, checkpoint_every=4, eval_every=3)
    full = trainer(tiny_world, run, tmp_path / "ckpt-full")
    full.fit(tmp_path / "out-full")
    t = trainer(tiny_world, run, tmp_path / "ckpt")
    step, calls = t.method.step, {"n": 0}

    def preempted() -> dict:
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as SLURM does at a time limit
        return step()

    t.method.step = preempted  # type: ignore[method-assign]
    with pytest.raises(Interrupted, match="SIGTERM at step 3 of 7") as e:
        t.fit(tmp_path / "out")
    assert e.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler was restored
    assert json.loads((tmp_path / "ckpt" / MANIFEST_FILE).read_text())["step"] == 3
    resumed = trainer(tiny_world, run, tmp_path / "ckpt")
    assert resumed._resume()[0] == 3
    resumed = trainer(tiny_world, run, tmp_path / "ckpt")
    resumed.fit(tmp_path / "out")
    a, b = weights(full.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_provenance_helpers(tmp_path):
    assert params_sha256({"a": 1, "b": [2]}) == params_sha256({"b": [2], "a": 1})
    assert git_state(tmp_path) is None  # not a checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "c"], check=True, env=env)
    clean = git_state(tmp_path)
    assert clean is not None and len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "f").write_text("y")
    assert git_state(tmp_path)["dirty"] is True
