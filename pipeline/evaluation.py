"""Prediction and scoring of TLP splits with a model (no training logic here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.data.store import load_split, locate
from pipeline.features import SplitData, load_split_data, take
from pipeline.metrics import main_metric
from pipeline.records import TLP
from pipeline.runtime.acceleration import autocast
from pipeline.scoring import score, style_for
from pipeline.tasks import for_task

#: the splits every run is predicted and scored on (dev: as selected; test: read once)
EVAL_SPLITS = ("dev", "test")


def model_outputs(
    model: torch.nn.Module,
    data: SplitData,
    batch_size: int,
    device: torch.device,
    padding: str = "dynamic",
    precision: str = "fp32",
) -> dict[str, np.ndarray]:
    """Run the model over every feature of `data`; outputs stacked in feature order (numpy).

    With dynamic padding the features go through the model longest first, in batches of
    similar lengths cut to their longest row (features.take), and come back in their own order;
    per-token outputs (the task's `token_outputs`) are padded back to max_length with the
    task's fill, so decoding sees the arrays fixed padding gives. Inference mode: no autograd
    bookkeeping at all (evaluation never differentiates).
    """
    was_training = model.training
    model.eval()
    n = len(data)
    fills: dict[str, float] = dict(getattr(for_task(data.tlp.task), "token_outputs", {}))
    mask = data.tensors.get("attention_mask")
    width = mask.shape[1] if mask is not None and mask.ndim == 2 else None
    if padding == "dynamic" and mask is not None:
        order = torch.argsort(mask.sum(dim=1), descending=True, stable=True)
    else:
        order = torch.arange(n)
    chunks: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode(), autocast(device, precision):
        for i in range(0, n, batch_size):
            rows = order[i : i + batch_size]
            batch = take(data.tensors, rows, device, padding)
            for k, v in model(data.tlp.task, batch).items():
                out = v.float().cpu().numpy()
                if k in fills and width is not None and out.shape[1] < width:
                    pad = [(0, 0)] * out.ndim
                    pad[1] = (0, width - out.shape[1])
                    out = np.pad(out, pad, constant_values=fills[k])
                chunks.setdefault(k, []).append(out)
    model.train(was_training)
    stacked = {k: np.concatenate(v) for k, v in chunks.items()}
    if padding == "dynamic" and mask is not None:
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(n)
        stacked = {k: v[inverse.numpy()] for k, v in stacked.items()}
    return stacked


def predict(
    model: torch.nn.Module,
    data: SplitData,
    labels: dict[str, list[str]],
    batch_size: int,
    device: torch.device,
    padding: str = "dynamic",
    precision: str = "fp32",
) -> dict[str, Any]:
    """{record id: prediction} in the task's prediction format."""
    outputs = model_outputs(model, data, batch_size, device, padding, precision)
    decode = for_task(data.tlp.task).decode
    return decode(data.records, data.features, outputs, labels, data.settings)


def main_key(task: str, options: Mapping[str, Any] | None = None) -> str:
    """The task's main metric under a run's `metrics` options (`main`: {task: key})."""
    return main_metric(task, (options or {}).get("main"))


def qa_style(task: str, dataset: str, options: Mapping[str, Any] | None = None) -> str | None:
    """The QA normalization of a split (None for other tasks): `official` (default: MLQA's
    script for MLQA, SQuAD's for the rest, as XTREME) or `squad` for every language (what the
    reference code of Tarunesh et al. called)."""
    style = style_for(task, dataset)
    if style is not None and (options or {}).get("qa_normalization") == "squad":
        return "squad"
    return style


def evaluate(
    model: torch.nn.Module,
    data: SplitData,
    labels: dict[str, list[str]],
    batch_size: int,
    device: torch.device,
    options: Mapping[str, Any] | None = None,
    padding: str = "dynamic",
    precision: str = "fp32",
) -> dict[str, float]:
    """Predict and score; adds `main` (the task's model-selection metric under `options`)."""
    preds = predict(model, data, labels, batch_size, device, padding, precision)
    task = data.tlp.task
    metrics = score(
        task,
        data.tlp.lang,
        list(data.records),
        preds,
        style=qa_style(task, data.dataset_dir.name, options),
    )
    metrics["main"] = metrics[main_key(task, options)]
    return metrics


def predict_splits(
    model: torch.nn.Module,
    tokenizer: Any,
    tlps: Sequence[TLP],
    splits: Sequence[str],
    prepared_dirs: Sequence[str | Path],
    settings: Any,
    device: torch.device,
    batch_size: int = 64,
    padding: str = "dynamic",
    precision: str = "fp32",
) -> dict[tuple[TLP, str], dict[str, Any]]:
    """Predictions of `model` on every split of every TLP (the run's selected model: dev, then
    the one reading of test)."""
    out = {}
    for tlp in tlps:
        for split in splits:
            data = load_split_data(
                tlp, split, prepared_dirs, tokenizer, model.labels, settings, train=False
            )
            out[tlp, split] = predict(
                model, data, model.labels[tlp.task], batch_size, device, padding, precision
            )
    return out


def score_run_predictions(
    run: Any, preds: dict[tuple[TLP, str], dict[str, Any]], prepared_dirs: Sequence[str | Path]
) -> dict[str, Any]:
    """The score file of a run: every split of every evaluation TLP scored against the prepared
    gold, test with the per-example statistics of the report's bootstrap intervals."""
    scores: dict[str, dict[str, Any]] = {}
    for tlp in run.eval_tlps:
        for split in EVAL_SPLITS:
            where = locate(tlp, prepared_dirs, split)
            options = run.params.get("metrics")
            m = score(
                tlp.task,
                tlp.lang,
                list(load_split(where, tlp, split)),
                preds[tlp, split],
                style=qa_style(tlp.task, where.name, options),
                with_examples=split == "test",
            )
            m["main_key"] = main_key(tlp.task, options)
            m["main"] = m[m["main_key"]]
            m["source"] = where.name
            scores.setdefault(str(tlp), {})[split] = m
    return {
        "run": run.id,
        "experiment": run.experiment,
        "method": run.method,
        "seed": run.seed,
        "init": run.init,
        "train_tlps": [str(t) for t in run.train_tlps],
        "zero_shot_tlps": [str(t) for t in run.eval_tlps if t not in run.train_tlps],
        **({"row": run.row} if run.row != run.experiment else {}),
        **({"grid": run.grid} if run.grid else {}),
        **({"sweep": run.sweep} if run.sweep else {}),
        **({"report": False} if not run.report else {}),
        "scores": scores,
    }
