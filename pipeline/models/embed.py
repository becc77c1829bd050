"""Sentence embeddings by mean pooling (what sentence-transformers' paraphrase encoders do).

X-METRA-ADA ranks QA supports by the cosine of embeddings of "question context answer" from
`xlm-r-distilroberta-base-paraphrase-v1` (M'hamdi et al. §3.2), a mean-pooled transformer; any
encoder loads the same way (`AutoModel.from_pretrained`), the tiny local one included.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer


@torch.no_grad()
def mean_pooled(
    model_path: str | Path,
    texts: Sequence[str],
    batch_size: int = 32,
    max_length: int = 128,
    device: torch.device | None = None,
) -> np.ndarray:
    """[len(texts), hidden] float32: the mean of the last hidden states over real tokens."""
    device = device or torch.device("cpu")
    tok = AutoTokenizer.from_pretrained(str(model_path))
    model = AutoModel.from_pretrained(str(model_path)).to(device).eval()
    out = []
    for i in tqdm(range(0, len(texts), batch_size), desc="embed", unit="batch", leave=False):
        enc = tok(
            list(texts[i : i + batch_size]),
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy())
    if not out:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    return np.concatenate(out)
