"""Shared encoder + one head per task: the model every method trains.

Saved in Hugging Face style: `save_pretrained(dir)` writes `encoder/` (config, weights,
tokenizer) and `heads.safetensors` + `multitask.json`; `from_pretrained(dir)` loads it back.
The encoder is loaded with `AutoModel.from_pretrained(path_or_hub_name)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer

from pipeline.io import atomic_dir, atomic_write_json, read_json
from pipeline.tasks import for_task

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class MultiTaskModel(nn.Module):
    """encoder(input) -> hidden states -> heads[task] -> logits dict."""

    def __init__(
        self, encoder: nn.Module, labels: dict[str, dict[str, list[str]]], dropout: float
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.labels = labels
        self.dropout = dropout
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {t: for_task(t).head(hidden, labels[t], dropout) for t in sorted(labels)}
        )

    @classmethod
    def build(
        cls, encoder_path: str | Path, labels: dict[str, dict[str, list[str]]], dropout: float
    ) -> MultiTaskModel:
        encoder = AutoModel.from_pretrained(str(encoder_path), add_pooling_layer=False)
        return cls(encoder, labels, dropout)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = {k: batch[k] for k in ENCODER_INPUTS if k in batch}
        hidden = self.encoder(**inputs).last_hidden_state
        return self.heads[task](hidden, batch["attention_mask"])

    def save_pretrained(self, path: str | Path, tokenizer: Any) -> None:
        with atomic_dir(path) as tmp:
            self.encoder.save_pretrained(str(tmp / "encoder"))
            tokenizer.save_pretrained(str(tmp / "encoder"))
            heads = {k: v.detach().contiguous() for k, v in self.heads.state_dict().items()}
            save_file(heads, str(tmp / "heads.safetensors"))
            atomic_write_json(
                tmp / "multitask.json", {"labels": self.labels, "dropout": self.dropout}
            )

    @classmethod
    def from_pretrained(cls, path: str | Path) -> tuple[MultiTaskModel, Any]:
        path = Path(path)
        meta = read_json(path / "multitask.json")
        model = cls.build(path / "encoder", meta["labels"], meta["dropout"])
        model.heads.load_state_dict(load_file(str(path / "heads.safetensors")))
        return model, AutoTokenizer.from_pretrained(str(path / "encoder"))
