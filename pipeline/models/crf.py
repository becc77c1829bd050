"""A linear-chain CRF over the labelled positions of a sequence (MTOD slot filling).

X-METRA-ADA's joint model (M'hamdi et al. 2021, §3) scores slots with a CRF on top of the
encoder: p(y | x) ∝ exp(start[y_1] + Σ_i emit[i, y_i] + Σ_i trans[y_{i-1}, y_i] + end[y_L]).
The chain runs over the positions a mask selects (each word's first sub-token: padding and
continuation pieces carry no label and are skipped, not tagged), so those positions are first
packed to the front of each row (`pack`). Training minimizes −log p(y | x) (the forward
algorithm's log-partition minus the path score); decoding is Viterbi (`viterbi`, numpy, on the
head's outputs).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def pack(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked positions of each row moved to its front, in order: ([B, L, ...] values, [B, L]
    prefix mask), L the largest count (at least 1)."""
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    width = max(int(mask.sum(dim=1).max()) if mask.numel() else 0, 1)
    order = order[:, :width]
    idx = order.reshape(*order.shape, *([1] * (values.dim() - 2))).expand(-1, -1, *values.shape[2:])
    packed = torch.gather(values, 1, idx)
    counts = mask.sum(dim=1, keepdim=True)
    return packed, torch.arange(width, device=mask.device)[None, :] < counts


Scores = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # start [T], end [T], trans [T, T]


def log_partition(emissions: torch.Tensor, mask: torch.Tensor, crf: Scores) -> torch.Tensor:
    """log Σ_y exp(score(y)) per row ([B, L, T] emissions, [B, L] prefix mask); rows with no
    position give 0."""
    start, end, trans = crf
    alpha = start + emissions[:, 0]
    for i in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha[:, :, None] + trans[None], dim=1) + emissions[:, i]
        alpha = torch.where(mask[:, i, None], step, alpha)
    logz = torch.logsumexp(alpha + end, dim=1)
    return torch.where(mask[:, 0], logz, torch.zeros_like(logz))


def path_score(
    emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor, crf: Scores
) -> torch.Tensor:
    """The score of the path `tags` ([B, L]) per row (0 for rows with no position)."""
    start, end, trans = crf
    m = mask.to(emissions.dtype)
    safe = torch.where(mask, tags, torch.zeros_like(tags))
    emit = torch.gather(emissions, 2, safe[:, :, None])[:, :, 0]
    total = (emit * m).sum(dim=1) + start[safe[:, 0]] * m[:, 0]
    if tags.shape[1] > 1:
        total = total + (trans[safe[:, :-1], safe[:, 1:]] * m[:, 1:]).sum(dim=1)
    last = (mask.sum(dim=1) - 1).clamp(min=0)
    return total + end[torch.gather(safe, 1, last[:, None])[:, 0]] * m[:, 0]


def nll(
    emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor, crf: Scores
) -> torch.Tensor:
    """Mean −log p(tags | x) over the rows that have at least one position (0 if none)."""
    per_row = log_partition(emissions, mask, crf) - path_score(emissions, tags, mask, crf)
    has = mask[:, 0]
    if not bool(has.any()):
        return emissions.sum() * 0.0
    return per_row[has].mean()


class CRF(nn.Module):
    """Start, end and transition scores of `n_tags` tags (zero-initialised: at first the CRF
    decodes like per-position argmax)."""

    def __init__(self, n_tags: int) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.zeros(n_tags))
        self.end = nn.Parameter(torch.zeros(n_tags))
        self.trans = nn.Parameter(torch.zeros(n_tags, n_tags))  # [from, to]

    @property
    def scores(self) -> Scores:
        return self.start, self.end, self.trans

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return nll(emissions, tags, mask, self.scores)


def viterbi(
    emissions: np.ndarray, start: np.ndarray, end: np.ndarray, trans: np.ndarray
) -> list[int]:
    """The highest-scoring tag path of one sequence ([L, T] emissions; L may be 0)."""
    n = len(emissions)
    if n == 0:
        return []
    score = start + emissions[0]
    back = np.zeros((n, emissions.shape[1]), dtype=np.int64)
    for i in range(1, n):
        cand = score[:, None] + trans  # [from, to]
        back[i] = cand.argmax(axis=0)
        score = cand.max(axis=0) + emissions[i]
    best = [int((score + end).argmax())]
    for i in range(n - 1, 0, -1):
        best.append(int(back[i, best[-1]]))
    return best[::-1]
