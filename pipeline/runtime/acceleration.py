"""How close to the hardware a run goes: precision, compilation, the fused optimizer kernel.

Every switch is a `training:` key with a CPU-safe default, so the same params give the same
numbers on a laptop, and each resolved value is recorded in the run's provenance (`options`):

    precision: fp32 | bf16        bf16 autocast of the forward pass (weights and optimizer
                                  state stay fp32); on CPU it runs, slowly, and is allowed
    compile: false | true | name  torch.compile the encoder in place (`true`: inductor; or a
                                  backend name, e.g. aot_eager); state_dict keys are unchanged
    fused_adamw: auto | true | false
                                  AdamW's fused kernel (auto: on CUDA only, where it is the
                                  fastest; the CPU default stays the foreach kernel, bit for
                                  bit what earlier runs computed)
    pin_memory: true | false      page-locked batches and asynchronous copies (CUDA only)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import torch

from pipeline.config import OPTIONAL_TRAINING_DEFAULTS

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16")
#: the keys above and the batching ones (engine.BatchStream, features.take) with their defaults
KEYS = ("precision", "compile", "fused_adamw", "pin_memory", "padding", "group_by_length")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` for `precision: bf16`; a no-op context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def use_fused_adamw(setting: bool | str, device: torch.device) -> bool:
    """Whether AdamW runs its fused kernel: `auto` means on CUDA (where it is available)."""
    if setting == "auto":
        return device.type == "cuda"
    return bool(setting)


def compile_encoder(model: torch.nn.Module, setting: bool | str) -> str | None:
    """torch.compile the model's encoder in place (nn.Module.compile keeps parameter names,
    so checkpoints are interchangeable with uncompiled runs); returns the backend used.

    Only the encoder: the task heads are small and change per task, and a compiled head would
    recompile for each of them.
    """
    if setting is False or setting is None:
        return None
    backend = "inductor" if setting is True else str(setting)
    target = getattr(model, "encoder", model)
    target.compile(backend=backend, dynamic=True)
    log.info("encoder compiled with torch.compile(backend=%r, dynamic=True)", backend)
    return backend


def options(params: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The resolved acceleration settings of a run (what provenance records)."""
    p = {k: params.get(k, OPTIONAL_TRAINING_DEFAULTS[k]) for k in KEYS}
    return {
        "precision": p["precision"],
        "compile": (
            None
            if p["compile"] in (False, None)
            else "inductor"
            if p["compile"] is True
            else p["compile"]
        ),
        "fused_adamw": use_fused_adamw(p["fused_adamw"], device),
        "pin_memory": bool(p["pin_memory"]) and device.type == "cuda",
        "padding": p["padding"],
        "group_by_length": bool(p["group_by_length"]),
    }
