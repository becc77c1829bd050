"""Optimizers and learning-rate schedules shared by every training stage."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR


def make_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, fused: bool = False
) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases and LayerNorm weights (BERT convention).

    `fused`: one kernel for the whole update (runtime.acceleration.use_fused_adamw decides;
    off by default, so CPU runs keep the foreach kernel's numbers)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return (
        torch.optim.AdamW(groups, lr=lr, fused=True) if fused else torch.optim.AdamW(groups, lr=lr)
    )


def make_scheduler(
    opt: torch.optim.Optimizer, warmup_steps: int, total_steps: int, schedule: str
) -> LambdaLR:
    """Linear warm-up, then constant or linear decay to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "linear":
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
        return 1.0

    return LambdaLR(opt, factor)
