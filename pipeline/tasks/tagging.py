"""Token tagging (UD POS, PAN-X NER) over pre-split words.

Each word's tag is learned and predicted at its first sub-token (the BERT/XTREME convention);
later sub-tokens, special tokens and padding carry IGNORE_INDEX. Words cut off by max_length are
decoded with `common.fallback_label` and counted by `common.word_coverage`.
"""

from __future__ import annotations

from typing import Any

import datasets
import torch
from torch import nn

from pipeline.tasks.base import FeatureSettings
from pipeline.tasks.common import (
    ENCODER_COLUMNS,
    IGNORE_INDEX,
    Batch,
    BatchedTask,
    LabelIndex,
    TokenHead,
    align_word_labels,
    decode_tags_by_record,
    encode_words,
    encoder_features,
    int_seq,
    inventory,
    masked_cross_entropy,
    output_array,
    word_coverage,
)


class Tagging(BatchedTask):
    name = "tagging"
    token_outputs = {"logits": 0.0}  # noqa: RUF012 - decoding reads real positions only

    def loss_count(self, batch: dict[str, torch.Tensor]) -> int:
        """The labelled positions (the loss is a mean over tokens, not rows)."""
        return int((batch["labels"] != IGNORE_INDEX).sum())

    def encode_batch(
        self,
        batch: Batch,
        tokenizer: Any,
        labels: dict[str, list[str]],
        settings: FeatureSettings,
        train: bool,
    ) -> Batch:
        """Featurize one batch of records; one tokenizer call, alignment vectorized in numpy."""
        out, wids = encode_words(tokenizer, batch["tokens"], settings)
        index = LabelIndex(labels, "tags")
        tag_ids = [index.ids(tags, rid) for tags, rid in zip(batch["tags"], batch["id"])]
        out["labels"] = align_word_labels(wids, tag_ids)
        out["word_ids"] = wids
        out["example_id"] = list(batch["id"])
        return out

    def feature_schema(self, settings: FeatureSettings, train: bool) -> dict[str, Any]:
        return {
            **encoder_features(settings),
            "labels": int_seq(settings.max_length),
            "word_ids": int_seq(settings.max_length),
            "example_id": datasets.Value("string"),
        }

    def word_coverage(self, records: datasets.Dataset, features: datasets.Dataset) -> dict:
        """{"words", "truncated", "no_subtoken"}: see `common.word_coverage`."""
        return word_coverage(records, features, "tokens")

    def model_columns(self, train: bool) -> list[str]:
        return [*ENCODER_COLUMNS, "labels"]

    def head(self, hidden_size: int, labels: dict[str, list[str]], dropout: float) -> nn.Module:
        return TokenHead(hidden_size, len(inventory(labels, "tags")), dropout, "logits")

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
        return decode_tags_by_record(records, features, logits, inventory(labels, "tags"), "tokens")
