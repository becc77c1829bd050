"""Prediction and scoring of one TLP split with a model (no training logic here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline.features import SplitData
from pipeline.metrics import main_metric
from pipeline.scoring import score, style_for
from pipeline.tasks import for_task


@torch.no_grad()
def model_outputs(
    model: torch.nn.Module, data: SplitData, batch_size: int, device: torch.device
) -> dict[str, np.ndarray]:
    """Run the model over every feature of `data` in order; stack outputs as numpy arrays."""
    was_training = model.training
    model.eval()
    chunks: dict[str, list[np.ndarray]] = {}
    n = len(data)
    for i in range(0, n, batch_size):
        batch = {k: v[i : i + batch_size].to(device) for k, v in data.tensors.items()}
        for k, v in model(data.tlp.task, batch).items():
            chunks.setdefault(k, []).append(v.float().cpu().numpy())
    model.train(was_training)
    return {k: np.concatenate(v) for k, v in chunks.items()}


def predict(
    model: torch.nn.Module,
    data: SplitData,
    labels: dict[str, list[str]],
    batch_size: int,
    device: torch.device,
) -> dict[str, Any]:
    """{record id: prediction} in the task's prediction format."""
    outputs = model_outputs(model, data, batch_size, device)
    decode = for_task(data.tlp.task).decode
    return decode(data.records, data.features, outputs, labels, data.settings)


def evaluate(
    model: torch.nn.Module,
    data: SplitData,
    labels: dict[str, list[str]],
    batch_size: int,
    device: torch.device,
) -> dict[str, float]:
    """Predict and score; adds `main` (the task's model-selection metric)."""
    preds = predict(model, data, labels, batch_size, device)
    metrics = score(
        data.tlp.task,
        data.tlp.lang,
        list(data.records),
        preds,
        style=style_for(data.tlp.task, data.dataset_dir.name),
    )
    metrics["main"] = metrics[main_metric(data.tlp.task)]
    return metrics
