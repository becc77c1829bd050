"""Atomic checkpoints and exact resume.

A checkpoint is a directory written whole (temp dir + rename), holding
    model.safetensors   the weights (safetensors; tied weights handled by save_model)
    extra.safetensors   other named tensors a method keeps (e.g. best weights), optional
    state.pt            optimizer, scheduler, RNG, sampler, stream positions, method state, history

A run killed at any moment leaves either the previous checkpoint or the new one, never a mix.
Resuming restores every source of randomness, so the continued run is bit-identical on CPU.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from pipeline.io import atomic_dir

MODEL_FILE = "model.safetensors"
EXTRA_FILE = "extra.safetensors"
STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop may touch (dropout uses torch's global generator)."""
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    state: dict[str, Any],
    extra: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write model weights, optional extra tensors and a state dict atomically to `path`."""
    with atomic_dir(path) as tmp:
        save_model(model, str(tmp / MODEL_FILE))
        if extra:
            save_file({k: v.detach().contiguous() for k, v in extra.items()}, str(tmp / EXTRA_FILE))
        torch.save(state, tmp / STATE_FILE)


def has_checkpoint(path: str | Path) -> bool:
    return (Path(path) / STATE_FILE).exists() and (Path(path) / MODEL_FILE).exists()


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


def checkpoint_key(path: str | Path) -> str | None:
    """The config fingerprint a checkpoint was written under (None when there is none)."""
    if not has_checkpoint(path):
        return None
    return torch.load(Path(path) / STATE_FILE, weights_only=False).get("key")


def load_checkpoint(
    path: str | Path, model: torch.nn.Module
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights into `model` in place; return (state, extra tensors)."""
    path = Path(path)
    load_model(model, str(path / MODEL_FILE))
    state = torch.load(path / STATE_FILE, weights_only=False)
    extra = load_file(str(path / EXTRA_FILE)) if (path / EXTRA_FILE).exists() else {}
    return state, extra
