"""Atomic, verified checkpoints and exact resume.

A checkpoint is a directory written whole (temp dir, fsync, rename), holding
    model.safetensors   the weights (safetensors; tied weights handled by save_model)
    extra.safetensors   other named tensors a method keeps (e.g. best weights), optional
    state.pt            optimizer, scheduler, RNG, sampler, stream positions, method state, history
    manifest.json       written last: the config key, the step, and each file's size and sha256

A run killed at any moment leaves either the previous checkpoint or the new one, never a mix.
A checkpoint damaged afterwards (a truncated copy, a full disk on another machine) fails its
manifest and is refused with a message naming the file, rather than resumed from garbage.
`state.pt` holds plain Python values and tensors only, so it loads with `weights_only=True`
(no pickled code runs). Resuming restores every source of randomness, so the continued run is
bit-identical on CPU.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from pipeline.errors import PipelineError
from pipeline.io import atomic_dir, sha256_file

MODEL_FILE = "model.safetensors"
EXTRA_FILE = "extra.safetensors"
STATE_FILE = "state.pt"
MANIFEST_FILE = "manifest.json"
FORMAT = 2  # 1: no manifest, numpy values pickled (not loadable with weights_only)


class CheckpointError(PipelineError):
    """A checkpoint that cannot be written, or one on disk that is damaged."""


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop may touch (dropout uses torch's global generator)."""
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(tuple(state["numpy"]))
    random.setstate(_tuples(state["python"]))


def _tuples(obj: Any) -> Any:
    """random.setstate wants the tuples it gave (a checkpoint may hand back lists)."""
    return tuple(_tuples(x) for x in obj) if isinstance(obj, list | tuple) else obj


def plain(obj: Any) -> Any:
    """`obj` with numpy values as Python ones (lists, ints, floats), tensors kept as they are:
    what `torch.load(weights_only=True)` accepts."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(plain(v) for v in obj)
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    return obj


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    state: dict[str, Any],
    extra: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write model weights, optional extra tensors and a state dict atomically to `path`.

    Every file is fsynced before the rename, so a crash right after leaves a whole checkpoint;
    a full disk or an unwritable folder raises CheckpointError and keeps the previous one.
    """
    path = Path(path)
    try:
        with atomic_dir(path) as tmp:
            save_model(model, str(tmp / MODEL_FILE))
            if extra:
                tensors = {k: v.detach().contiguous() for k, v in extra.items()}
                save_file(tensors, str(tmp / EXTRA_FILE))
            torch.save(plain(state), tmp / STATE_FILE)
            files = sorted(p.name for p in tmp.iterdir())
            manifest = {
                "format": FORMAT,
                "key": state.get("key"),
                "step": state.get("step"),
                "files": {
                    n: {"bytes": (tmp / n).stat().st_size, "sha256": sha256_file(tmp / n)}
                    for n in files
                },
            }
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
            for n in [*files, MANIFEST_FILE]:
                _fsync(tmp / n)
            _fsync(tmp)
    except (OSError, SafetensorError) as e:  # (safetensors wraps the OS error in its own)
        why = getattr(e, "strerror", None) or str(e).rpartition("I/O error: ")[2].split(" (os")[0]
        raise CheckpointError(
            f"{path}: cannot write checkpoint ({why}); the previous checkpoint, if any, is kept"
        ) from None


def has_checkpoint(path: str | Path) -> bool:
    return (Path(path) / MANIFEST_FILE).exists() or (Path(path) / STATE_FILE).exists()


def clear_checkpoint(path: str | Path) -> None:
    """Remove a finished run's checkpoint: the output exists, and a rerun must start afresh."""
    shutil.rmtree(path, ignore_errors=True)


def path_fingerprint(path: str | Path) -> str:
    """Cheap identity of a file or folder (names, sizes, mtimes) for checkpoint keys.

    A hub name (not a local path) stands for itself.
    """
    path = Path(path)
    if not path.exists():
        return str(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return ";".join(
        f"{p.relative_to(path.parent)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
    )


def _damaged(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: damaged checkpoint ({why}); delete the folder to start the run afresh"
    )


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint's manifest (None when there is no checkpoint); CheckpointError when the
    folder holds one that is incomplete, of an older format or unreadable."""
    path = Path(path)
    if not has_checkpoint(path):
        return None
    mf = path / MANIFEST_FILE
    if not mf.exists():
        raise _damaged(path, f"no {MANIFEST_FILE}: written by an older version or incomplete")
    try:
        manifest = json.loads(mf.read_text())
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _damaged(path, f"{MANIFEST_FILE} is not a checkpoint manifest")
    return manifest


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check every file against the manifest (sizes, then sha256); return the manifest."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is None:
        raise CheckpointError(f"{path}: no checkpoint")
    for name, rec in manifest["files"].items():
        f = path / name
        if not f.exists():
            raise _damaged(path, f"{name} is missing")
        size = f.stat().st_size
        if size != rec["bytes"]:
            raise _damaged(path, f"{name}: {size} bytes, the manifest says {rec['bytes']}")
        if sha256_file(f) != rec["sha256"]:
            raise _damaged(path, f"{name}: sha256 differs from the manifest")
    return manifest


def checkpoint_key(path: str | Path) -> str | None:
    """The config fingerprint a checkpoint was written under (None when there is none)."""
    manifest = read_manifest(path)
    return None if manifest is None else manifest.get("key")


def load_checkpoint(
    path: str | Path, model: torch.nn.Module
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Verify, then load weights into `model` in place; return (state, extra tensors)."""
    path = Path(path)
    verify_checkpoint(path)
    try:
        load_model(model, str(path / MODEL_FILE))
        state = torch.load(path / STATE_FILE, weights_only=True)
        extra = load_file(str(path / EXTRA_FILE)) if (path / EXTRA_FILE).exists() else {}
    except Exception as e:  # the files match their manifest: another model's checkpoint
        raise CheckpointError(f"{path}: checkpoint does not load into this run ({e})") from None
    return state, extra
