"""Joint intent detection and slot filling (MTOD), as in X-METRA-ADA's joint model.

Intent from the [CLS] state; slots by a linear-chain CRF (pipeline.models.crf) over each
word's first sub-token — padding and continuation pieces carry no label and are left out of the
chain, not tagged — with Viterbi decoding. Loss = intent cross-entropy + CRF negative
log-likelihood (mean over the batch's sequences), weighted 1:1 ("the sum of both intent and CRF
based slot losses", M'hamdi et al. §3). The intent head reads the raw [CLS] state even with
`encoder.pooler` on (`uses_pooler` False): so does X-METRA-ADA's joint model (`TransformerNLU`:
dropout + linear on `lm_output[0][:, 0]`). Decoding sees the head's outputs only, so the head
returns its CRF scores beside the emissions (`crf_start`, `crf_end`, `crf_trans`, one copy per
row).
"""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import torch
from torch import nn

from pipeline.models.crf import CRF, nll, pack, viterbi
from pipeline.tasks.base import FeatureSettings
from pipeline.tasks.common import (
    ENCODER_COLUMNS,
    IGNORE_INDEX,
    Batch,
    BatchedTask,
    LabelIndex,
    align_word_labels,
    column_array,
    decode_tags_by_record,
    encode_words,
    encoder_features,
    first_subtoken_mask,
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
    """Shared dropout, then intent logits from [CLS], slot emissions from every sub-token and
    the slot CRF's scores."""

    def __init__(self, hidden_size: int, n_intents: int, n_slots: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.intent = nn.Linear(hidden_size, n_intents)
        self.slots = nn.Linear(hidden_size, n_slots)
        self.crf = CRF(n_slots)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        h = self.dropout(hidden_states)
        b = h.shape[0]
        return {
            "intent_logits": self.intent(h[:, 0]),
            "slot_logits": self.slots(h),
            "crf_start": self.crf.start.expand(b, -1),
            "crf_end": self.crf.end.expand(b, -1),
            "crf_trans": self.crf.trans.expand(b, -1, -1),
        }


def crf_nll(outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """The CRF's −log p(slots) over the labelled (first sub-token) positions, batch mean."""
    scores = (outputs["crf_start"][0], outputs["crf_end"][0], outputs["crf_trans"][0])
    mask = labels != IGNORE_INDEX
    emissions, packed_mask = pack(outputs["slot_logits"], mask)
    tags, _ = pack(labels, mask)
    return nll(emissions, tags, packed_mask, scores)


class IntentSlots(BatchedTask):
    name = "intent_slots"
    token_outputs = {"slot_logits": 0.0}  # noqa: RUF012 - the CRF reads first sub-tokens only

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
        slots = crf_nll(outputs, batch["labels"])
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
        # Viterbi over each feature's first sub-tokens; the path as one-hot scores at those
        # positions, read back per word like any tagger's
        paths = np.zeros_like(slot_logits)
        if n:
            start, end = (
                output_array(outputs, "crf_start", n)[0],
                output_array(outputs, "crf_end", n)[0],
            )
            trans = output_array(outputs, "crf_trans", n)[0]
            first = first_subtoken_mask(column_array(features, "word_ids"))
            for i in range(n):
                pos = np.flatnonzero(first[i])
                path = viterbi(slot_logits[i, pos], start, end, trans)
                paths[i, pos, path] = 1.0
        slots = decode_tags_by_record(
            records, features, paths, inventory(labels, "slots"), "tokens"
        )
        intents = inventory(labels, "intent")
        intent = dict(zip(features["example_id"], intent_logits.argmax(axis=-1).tolist()))
        # A record without a feature (none in practice) gets the first intent, deterministically.
        return {
            rid: {"intent": intents[intent.get(rid, 0)], "slots": tags}
            for rid, tags in slots.items()
        }
