"""Last-layer representations of a featurized TLP split (Xia et al. 2021 §4.5).

The model is read as it is used at test time: its plain encoder (a saved model holds no RTN),
in eval mode, under `torch.inference_mode()`; the heads and the pooler are not applied.

* sentence-level tasks (task types with `uses_pooler`: sa, nli, pa): the last hidden state at
  the first position ([CLS] / <s>), one vector per example;
* token-level tasks (tagging: ner, pos): the last hidden state at each word's first sub-token
  (the positions where tagging learns and predicts a word's tag, `first_subtoken_mask` of the
  features' word ids), one vector per word that has a sub-token in the window.

At most `max_points` vectors per split: a seeded subset of the examples (sentence level) or of
the words (token level), chosen before encoding (only the examples it touches are encoded) and
the same for every run, so that runs compare on the same points.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from pipeline.errors import PipelineError
from pipeline.features import SplitData
from pipeline.models.multitask import ENCODER_INPUTS
from pipeline.records import TLP, task_type
from pipeline.tasks import for_task
from pipeline.tasks.common import column_array, first_subtoken_mask

#: vectors per TLP split (Xia et al. plot a sample of each language's set)
MAX_POINTS = 2000


def level(tlp: TLP | str) -> str:
    """`sentence` or `token`: which vectors represent `tlp`'s examples; a one-line error for
    task types with neither (QA, MTOD)."""
    t = TLP.parse(tlp) if isinstance(tlp, str) else tlp
    kind = task_type(t.task)
    if for_task(t.task).uses_pooler:
        return "sentence"
    if kind == "tagging":
        return "token"
    raise PipelineError(
        f"represent: {t}: task type {kind} has no sentence- or word-level representation "
        "(only classification tasks: sa, nli, pa; and tagging: ner, pos)"
    )


def subset(n: int, k: int | None, key: str, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded `k` of `n` (all when n <= k or k is None)."""
    if k is None or n <= k:
        return np.arange(n)
    rng = random.Random(f"represent:{seed}:{key}")
    return np.asarray(sorted(rng.sample(range(n), k)), dtype=np.int64)


def points(data: SplitData, max_points: int | None = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """The (example, position) pairs [n, 2] whose vectors represent `data` (see module doc)."""
    key = f"{data.tlp}:{data.split}"
    if level(data.tlp) == "sentence":
        ex = subset(len(data), max_points, key, seed)
        return np.stack([ex, np.zeros_like(ex)], axis=1)
    wids = column_array(data.features, "word_ids")
    pairs = np.argwhere(first_subtoken_mask(wids))  # row-major: examples, then words in order
    return pairs[subset(len(pairs), max_points, key, seed)]


def representations(
    model: Any,
    data: SplitData,
    max_points: int | None = MAX_POINTS,
    batch_size: int = 64,
    device: torch.device | None = None,
    seed: int = 0,
) -> np.ndarray:
    """[n, hidden] float32 vectors of `data` (module docstring); the model's train/eval mode is
    left as it was."""
    chosen = points(data, max_points, seed)  # sorted by example
    device = device or next(model.parameters()).device
    examples = np.unique(chosen[:, 0])
    out = np.zeros((len(chosen), model.encoder.config.hidden_size), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(examples), batch_size):
                batch = examples[i : i + batch_size]
                idx = torch.from_numpy(batch)
                inputs = {
                    k: data.tensors[k][idx].to(device) for k in ENCODER_INPUTS if k in data.tensors
                }
                h = model.encoder(**inputs).last_hidden_state.float().cpu().numpy()
                lo, hi = np.searchsorted(chosen[:, 0], [batch[0], batch[-1] + 1])
                mine = chosen[lo:hi]
                out[lo:hi] = h[np.searchsorted(batch, mine[:, 0]), mine[:, 1]]
    finally:
        model.train(was_training)
    return out
