"""Shared encoder + one head per task: the model every method trains.

Saved in Hugging Face style: `save_pretrained(dir)` writes `encoder/` (config, weights,
tokenizer) and `heads.safetensors` + `multitask.json`; `from_pretrained(dir)` loads it back.
The encoder is loaded with `AutoModel.from_pretrained(path_or_hub_name)`.

`pooler` (config `encoder.pooler`; default False): the heads of sentence(-pair) classification
tasks (task types with `uses_pooler`: pair, single) read BERT's pooler output tanh(W·h_[CLS]), as
BertForSequenceClassification in XTREME and Tarunesh et al.'s code, instead of the raw [CLS]
state. Token tagging, QA and MTOD heads are unchanged (MTOD's intent head stays on [CLS], as in
X-METRA-ADA's joint model). An encoder checkpoint without pooler weights (the tiny encoder, a
BertForMaskedLM) gets a freshly initialized pooler, with a logged warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer

from pipeline.errors import PipelineError
from pipeline.io import atomic_dir, atomic_write_json, read_json
from pipeline.tasks import for_task

log = logging.getLogger(__name__)

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class MultiTaskModel(nn.Module):
    """encoder(input) -> hidden states (or, with pooler, pooled output) -> heads[task] -> logits."""

    def __init__(
        self,
        encoder: nn.Module,
        labels: dict[str, dict[str, list[str]]],
        dropout: float,
        pooler: bool = False,
    ) -> None:
        super().__init__()
        if pooler and getattr(encoder, "pooler", None) is None:
            raise PipelineError(
                f"encoder.pooler: {type(encoder).__name__} has no pooling layer (load it with "
                "add_pooling_layer=True, or set encoder.pooler: false)"
            )
        self.encoder = encoder
        self.labels = labels
        self.dropout = dropout
        self.pooler = bool(pooler)
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {t: for_task(t).head(hidden, labels[t], dropout) for t in sorted(labels)}
        )
        #: tasks whose head reads the pooled output (only when self.pooler)
        self.pooled_tasks = frozenset(t for t in labels if self.pooler and for_task(t).uses_pooler)

    @classmethod
    def build(
        cls,
        encoder_path: str | Path,
        labels: dict[str, dict[str, list[str]]],
        dropout: float,
        pooler: bool = False,
    ) -> MultiTaskModel:
        """Load the encoder (with its pooling layer only when `pooler`) and add fresh heads."""
        encoder, info = AutoModel.from_pretrained(
            str(encoder_path), add_pooling_layer=pooler, output_loading_info=True
        )
        fresh = sorted(k for k in info.get("missing_keys", ()) if "pooler" in k.split("."))
        if pooler and fresh:
            log.warning(
                "encoder %s has no pretrained pooler weights: the pooler (%s) is freshly "
                "initialized, so classification heads start from a random tanh(W·h_[CLS])",
                encoder_path,
                ", ".join(fresh),
            )
        return cls(encoder, labels, dropout, pooler=pooler)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = {k: batch[k] for k in ENCODER_INPUTS if k in batch}
        out = self.encoder(**inputs)
        if task in self.pooled_tasks:
            return self.heads[task](
                out.last_hidden_state, batch["attention_mask"], pooled=out.pooler_output
            )
        return self.heads[task](out.last_hidden_state, batch["attention_mask"])

    def save_pretrained(self, path: str | Path, tokenizer: Any) -> None:
        with atomic_dir(path) as tmp:
            self.encoder.save_pretrained(str(tmp / "encoder"))
            tokenizer.save_pretrained(str(tmp / "encoder"))
            heads = {k: v.detach().contiguous() for k, v in self.heads.state_dict().items()}
            save_file(heads, str(tmp / "heads.safetensors"))
            atomic_write_json(
                tmp / "multitask.json",
                {"labels": self.labels, "dropout": self.dropout, "pooler": self.pooler},
            )

    @classmethod
    def from_pretrained(cls, path: str | Path) -> tuple[MultiTaskModel, Any]:
        """Model and tokenizer saved by `save_pretrained`; without a "pooler" key, pooler=False."""
        path = Path(path)
        meta = read_json(path / "multitask.json")
        model = cls.build(
            path / "encoder", meta["labels"], meta["dropout"], pooler=meta.get("pooler", False)
        )
        model.heads.load_state_dict(load_file(str(path / "heads.safetensors")))
        return model, AutoTokenizer.from_pretrained(str(path / "encoder"))
