"""Joint intent detection and slot filling (MTOD), as in X-METRA-ADA's joint model.

Intent from the [CLS] state, slots tagged at each word's first sub-token exactly like `tagging`
(the alignment and per-word decoding live in `common`). Loss = intent CE + slot CE, weighted 1:1:
the paper optimizes "the sum of both intent and CRF based slot losses"; we keep the unweighted sum
but score slots with per-token cross-entropy (no CRF layer), so predictions are per-token argmax.
The intent head reads the raw [CLS] state even with `encoder.pooler` on (`uses_pooler` False): so
does X-METRA-ADA's joint model (`TransformerNLU`: dropout + linear on `lm_output[0][:, 0]`).
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
    LabelIndex,
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

#: weights of the two losses (intent, slots)
INTENT_WEIGHT = 1.0
SLOT_WEIGHT = 1.0


class JointHead(nn.Module):
    """Shared dropout, then intent logits from [CLS] and slot logits from every sub-token."""

    def __init__(self, hidden_size: int, n_intents: int, n_slots: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.intent = nn.Linear(hidden_size, n_intents)
        self.slots = nn.Linear(hidden_size, n_slots)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        h = self.dropout(hidden_states)
        return {"intent_logits": self.intent(h[:, 0]), "slot_logits": self.slots(h)}


class IntentSlots(BatchedTask):
    name = "intent_slots"

    def encode_batch(
        self,
        batch: Batch,
        tokenizer: Any,
        labels: dict[str, list[str]],
        settings: FeatureSettings,
        train: bool,
    ) -> Batch:
        out, wids = encode_words(tokenizer, batch["tokens"], settings)
        slots = LabelIndex(labels, "slots")
        intents = LabelIndex(labels, "intent")
        ids = batch["id"]
        out["labels"] = align_word_labels(
            wids, [slots.ids(s, rid) for s, rid in zip(batch["slots"], ids)]
        )
        out["intent_labels"] = np.asarray(
            [intents.id(x, rid) for x, rid in zip(batch["intent"], ids)], dtype=np.int64
        )
        out["word_ids"] = wids
        out["example_id"] = list(ids)
        return out

    def feature_schema(self, settings: FeatureSettings, train: bool) -> dict[str, Any]:
        return {
            **encoder_features(settings),
            "intent_labels": datasets.Value("int64"),
            "labels": int_seq(settings.max_length),
            "word_ids": int_seq(settings.max_length),
            "example_id": datasets.Value("string"),
        }

    def word_coverage(self, records: datasets.Dataset, features: datasets.Dataset) -> dict:
        """{"words", "truncated", "no_subtoken"}: see `common.word_coverage`."""
        return word_coverage(records, features, "tokens")

    def model_columns(self, train: bool) -> list[str]:
        return [*ENCODER_COLUMNS, "intent_labels", "labels"]

    def head(self, hidden_size: int, labels: dict[str, list[str]], dropout: float) -> nn.Module:
        return JointHead(
            hidden_size, len(inventory(labels, "intent")), len(inventory(labels, "slots")), dropout
        )

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        intent = masked_cross_entropy(outputs["intent_logits"], batch["intent_labels"])
        slots = masked_cross_entropy(outputs["slot_logits"], batch["labels"])
        return INTENT_WEIGHT * intent + SLOT_WEIGHT * slots

    def decode(
        self,
        records: datasets.Dataset,
        features: datasets.Dataset,
        outputs: dict[str, Any],
        labels: dict[str, list[str]],
        settings: FeatureSettings,
    ) -> dict[str, Any]:
        n = len(features)
        intent_logits = output_array(outputs, "intent_logits", n)
        slot_logits = output_array(outputs, "slot_logits", n)
        slots = decode_tags_by_record(
            records, features, slot_logits, inventory(labels, "slots"), "tokens"
        )
        intents = inventory(labels, "intent")
        intent = dict(zip(features["example_id"], intent_logits.argmax(axis=-1).tolist()))
        # A record without a feature (none in practice) gets the first intent, deterministically.
        return {
            rid: {"intent": intents[intent.get(rid, 0)], "slots": tags}
            for rid, tags in slots.items()
        }
