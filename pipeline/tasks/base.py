"""The interface every task type implements: featurize, head, loss, decode.

The trainer only talks to this interface; it never knows whether a batch is QA or tagging.
Implementations live in one module per task type (pair/single classification, tagging, qa,
intent_slots) and are looked up with `pipeline.tasks.get_task_type(name)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import datasets
import torch
from torch import nn

from pipeline.errors import PipelineError

#: QA window modes (`FeatureSettings.doc_stride_mode`)
DOC_STRIDE_MODES = ("overlap", "step")


@dataclass(frozen=True)
class FeatureSettings:
    """Featurization settings; part of the cache key of featurized data.

    doc_stride_mode (QA only; default "overlap") says what `doc_stride` measures between the
    windows of a long context: "overlap", context tokens shared by consecutive windows (Hugging
    Face's `stride`, run_qa.py); "step", context tokens from one window's start to the next
    (XTREME's and transformers 2.x's `doc_stride`, the reference code of Tarunesh et al.).
    """

    max_length: int = 128
    doc_stride: int = 64  # QA: window overlap or step, see doc_stride_mode
    max_query_length: int = 32  # QA: questions are truncated to this many sub-tokens
    max_answer_length: int = 30  # QA decoding: longest answer in sub-tokens
    n_best: int = 20  # QA decoding: start/end candidates considered
    doc_stride_mode: str = "overlap"  # QA: "overlap" (Hugging Face) or "step" (XTREME)

    def __post_init__(self) -> None:
        if self.doc_stride_mode not in DOC_STRIDE_MODES:
            raise PipelineError(
                f"features: doc_stride_mode={self.doc_stride_mode!r}, expected one of "
                f"{', '.join(DOC_STRIDE_MODES)}"
            )


@dataclass(frozen=True)
class TaskFeatureSettings:
    """Feature settings per task: a default and per-task overrides (e.g. QA at 384 tokens and
    the other tasks at 128, as XTREME and Tarunesh et al. Appendix A)."""

    default: FeatureSettings
    tasks: tuple[tuple[str, FeatureSettings], ...] = ()

    @classmethod
    def from_config(cls, features: dict) -> TaskFeatureSettings:
        base = {k: v for k, v in features.items() if k != "tasks"}
        per = features.get("tasks", {}) or {}
        return cls(
            FeatureSettings(**base),
            tuple(sorted((t, FeatureSettings(**{**base, **o})) for t, o in per.items())),
        )

    def for_task(self, task: str) -> FeatureSettings:
        return dict(self.tasks).get(task, self.default)


class TaskType(Protocol):
    """What the engine needs from a task type.

    `labels` is the task's entry of the prepared `labels.json`, e.g. {"label": [...]} or
    {"tags": [...]} or {"intent": [...], "slots": [...]}; label ids are indices into those lists.
    """

    name: str
    #: True where the head classifies the whole sequence from its first position (pair, single):
    #: with `encoder.pooler` on, `MultiTaskModel` then hands it the encoder's pooled output.
    uses_pooler: bool
    #: per-sub-token outputs ([B, T, ...]) and the value that stands for a cut-off padding
    #: position when dynamically padded outputs are padded back to max_length for decoding
    token_outputs: dict[str, float]

    def featurize(
        self,
        records: datasets.Dataset,
        tokenizer: Any,
        labels: dict[str, list[str]],
        settings: FeatureSettings,
        train: bool,
    ) -> datasets.Dataset:
        """Batched fast-tokenizer featurization.

        Returns a Dataset whose model columns (`model_columns`) are fixed-length lists of ints
        (padded to settings.max_length) plus any bookkeeping columns needed by `decode`
        (e.g. QA `example_id`, `offset_mapping`; tagging `word_ids`). With train=False the
        features must still carry labels where the task has them (for dev loss), but QA eval
        features carry offsets instead of positions.
        """
        ...

    def loss_count(self, batch: dict[str, Any]) -> int:
        """What `loss` is a mean over in `batch` (rows, or labelled tokens for tagging):
        data-parallel shards are weighted by their share of it."""
        ...

    def model_columns(self, train: bool) -> list[str]:
        """Columns turned into tensors for the model (inputs + labels)."""
        ...

    def head(self, hidden_size: int, labels: dict[str, list[str]], dropout: float) -> nn.Module:
        """Head mapping encoder states [B, T, H] (and attention mask) to a dict of logits.

        Heads of task types with `uses_pooler` also take `pooled` ([B, H], or None: read the
        first position's state), the encoder's pooler output when `encoder.pooler` is on.
        """
        ...

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Mean loss over the batch (ignore index -100 where labels are masked)."""
        ...

    def decode(
        self,
        records: datasets.Dataset,
        features: datasets.Dataset,
        outputs: dict[str, Any],
        labels: dict[str, list[str]],
        settings: FeatureSettings,
    ) -> dict[str, Any]:
        """Map stacked model outputs (numpy arrays, one row per feature) to predictions.

        Returns {record id: prediction} in the task's prediction format:
        pair/single: label string; tagging: list of tags (one per word); qa: answer text;
        intent_slots: {"intent": str, "slots": [BIO tag per token]}.
        """
        ...
