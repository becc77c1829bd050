"""Sequence classification: sentence pairs (nli, pa) and single sentences (sa).

Label from [CLS] through dropout + linear; cross-entropy loss; prediction is the label string.
With `encoder.pooler` on, the head reads BERT's pooler output tanh(W·h_[CLS]) instead of the raw
[CLS] state (`uses_pooler`; see `MultiTaskModel`), as XTREME and Tarunesh et al.'s code do.
"""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import torch
from torch import nn

from pipeline.tasks.base import FeatureSettings
from pipeline.tasks.common import (
    ENCODER_COLUMNS,
    Batch,
    BatchedTask,
    FirstTokenHead,
    LabelIndex,
    encode_unpadded,
    encoder_features,
    inventory,
    masked_cross_entropy,
    output_array,
    padded_columns,
)


class _Classification(BatchedTask):
    """Shared by pair and single: only the text fields differ."""

    name: str = ""
    text_fields: tuple[str, ...] = ()
    uses_pooler = True

    def encode_batch(
        self,
        batch: Batch,
        tokenizer: Any,
        labels: dict[str, list[str]],
        settings: FeatureSettings,
        train: bool,
    ) -> Batch:
        """Featurize one batch of records (columns → lists); one tokenizer call."""
        texts = [list(batch[f]) for f in self.text_fields]
        inputs = list(zip(*texts)) if len(texts) > 1 else texts[0]
        # "longest_first" trims the longer text of a pair first, keeping both sides represented.
        encodings = encode_unpadded(tokenizer, inputs, settings.max_length)
        index = LabelIndex(labels, "label")
        out = padded_columns(encodings, tokenizer, settings.max_length)
        out["labels"] = np.asarray(
            [index.id(lab, rid) for lab, rid in zip(batch["label"], batch["id"])], dtype=np.int64
        )
        out["example_id"] = list(batch["id"])
        return out

    def feature_schema(self, settings: FeatureSettings, train: bool) -> dict[str, Any]:
        return {
            **encoder_features(settings),
            "labels": datasets.Value("int64"),
            "example_id": datasets.Value("string"),
        }

    def model_columns(self, train: bool) -> list[str]:
        return [*ENCODER_COLUMNS, "labels"]

    def head(self, hidden_size: int, labels: dict[str, list[str]], dropout: float) -> nn.Module:
        return FirstTokenHead(hidden_size, len(inventory(labels, "label")), dropout, "logits")

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        return masked_cross_entropy(outputs["logits"], batch["labels"])

    def decode(
        self,
        records: datasets.Dataset,
        features: datasets.Dataset,
        outputs: dict[str, Any],
        labels: dict[str, list[str]],
        settings: FeatureSettings,
    ) -> dict[str, Any]:
        logits = output_array(outputs, "logits", len(features))
        inv = inventory(labels, "label")
        pred = logits.argmax(axis=-1).tolist() if len(features) else []
        return {rid: inv[p] for rid, p in zip(features["example_id"], pred)}


class PairClassification(_Classification):
    """Sentence-pair classification (XNLI/MNLI, PAWS-X): text_a [SEP] text_b."""

    name = "pair"
    text_fields = ("text_a", "text_b")


class SingleClassification(_Classification):
    """Single-sentence classification (sentiment)."""

    name = "single"
    text_fields = ("text",)
