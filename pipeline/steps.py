"""One function per pipeline step: the glue between the CLI and the library.

Each step reads its inputs, calls library code, and writes its outputs atomically. The CLI
(cli.py) only parses arguments and calls these.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.config import Run, get_run, load_params, section_paths
from pipeline.io import atomic_dir, atomic_write_json, read_json

log = logging.getLogger(__name__)

ENCODER_DIR = Path("models/encoder")
TOKENIZER_DIR = Path("models/tokenizer")


def encoder_path(cfg: dict[str, Any]) -> str:
    """The local tiny encoder, or the hub name / path of a real run's encoder."""
    return cfg["encoder"]["name"] or str(ENCODER_DIR)


def feature_settings(cfg: dict[str, Any]) -> Any:
    """Per-task feature settings (`features:` with optional `features.tasks` overrides)."""
    from pipeline.tasks import TaskFeatureSettings

    return TaskFeatureSettings.from_config(cfg["features"])


def generate(params: Sequence[str], out: str) -> dict[str, Any]:
    from pipeline.data.synthetic import generate as gen

    b = load_params(params)["benchmark"]
    return gen(
        Path(out),
        seed=b["seed"],
        languages=b["languages"],
        zero_shot=b["zero_shot"],
        tasks=b["tasks"],
        scale=b["scale"],
    )


def prepare(dataset: str, raw: str, out: str, layout: str = "original") -> dict[str, Any]:
    from pipeline.data.prepare import prepare as prep

    return prep(dataset, Path(raw), Path(out), layout=layout)


def tokenizer(params: Sequence[str], out: str) -> dict[str, Any]:
    from pipeline.corpus import train_texts
    from pipeline.models.encoder import train_tokenizer

    cfg = load_params(params)
    texts = list(train_texts(section_paths(cfg)))
    tok = train_tokenizer(texts, **cfg["encoder"]["tokenizer"], out=out)
    return {"texts": len(texts), "vocab_size": len(tok)}


def pretrain(
    params: Sequence[str], tokenizer_dir: str, out: str, checkpoints: str
) -> dict[str, Any]:
    from pipeline.corpus import train_texts
    from pipeline.models.encoder import pretrain_mlm

    cfg = load_params(params)
    texts = list(train_texts(section_paths(cfg)))
    enc = cfg["encoder"]
    res = pretrain_mlm(
        tokenizer_dir, texts, enc["architecture"], enc["pretrain"], cfg["seed"], out, checkpoints
    )
    hist = res["history"]
    return {"steps": len(hist), "final_mlm_loss": hist[-1]["mlm_loss"] if hist else None}


def train(params: Sequence[str], run_id: str, out: str, checkpoints: str) -> dict[str, Any]:
    from pipeline.finetune import finetune
    from pipeline.trainer import Trainer

    cfg = load_params(params)
    run = get_run(cfg, run_id)
    args = (encoder_path(cfg), section_paths(cfg), feature_settings(cfg))
    if run.method == "finetune":
        summary = finetune(run, *args, Path("models/runs") / run.init, out, checkpoints)
    else:
        summary = Trainer(run, *args, checkpoints).fit(out)
    return {k: summary[k] for k in ("best_step", "best_dev_mean", "inner_steps")}


def predict(params: Sequence[str], run_id: str, model: str, out: str) -> dict[str, Any]:
    """Predictions of the selected model on dev and test of every evaluation TLP of the run."""
    from pipeline.evaluation import predict as predict_split
    from pipeline.features import load_split_data
    from pipeline.models.multitask import MultiTaskModel
    from pipeline.trainer import pick_device

    cfg = load_params(params)
    run = get_run(cfg, run_id)
    mt, tok = MultiTaskModel.from_pretrained(Path(model) / "model")
    device = pick_device()
    mt.to(device)
    settings = feature_settings(cfg)
    counts = {}
    with atomic_dir(out) as tmp:
        for tlp in run.eval_tlps:
            for split in ("dev", "test"):
                data = load_split_data(
                    tlp, split, section_paths(cfg), tok, mt.labels, settings, train=False
                )
                preds = predict_split(mt, data, mt.labels[tlp.task], 64, device)
                atomic_write_json(tmp / f"{tlp.slug}.{split}.json", preds)
                counts[f"{tlp}:{split}"] = len(preds)
    return counts


def score_run(params: Sequence[str], run_id: str, predictions: str, out: str) -> dict[str, Any]:
    """Score every prediction file of a run against the prepared gold records."""
    from pipeline.data.store import load_split, locate
    from pipeline.metrics import main_metric
    from pipeline.scoring import score, style_for

    cfg = load_params(params)
    run = get_run(cfg, run_id)
    scores: dict[str, dict[str, Any]] = {}
    for tlp in run.eval_tlps:
        for split in ("dev", "test"):
            where = locate(tlp, section_paths(cfg), split)
            gold = list(load_split(where, tlp, split))
            preds = read_json(Path(predictions) / f"{tlp.slug}.{split}.json")
            m = score(tlp.task, tlp.lang, gold, preds, style=style_for(tlp.task, where.name))
            m["main"] = m[main_metric(tlp.task)]
            scores.setdefault(str(tlp), {})[split] = m
    result = {
        "run": run.id,
        "experiment": run.experiment,
        "method": run.method,
        "train_tlps": [str(t) for t in run.train_tlps],
        "zero_shot_tlps": [str(t) for t in run.eval_tlps if t not in run.train_tlps],
        "scores": scores,
    }
    atomic_write_json(out, result)
    return {t: {s: round(v["main"], 2) for s, v in sp.items()} for t, sp in scores.items()}


def score_files(task: str, lang: str, gold: str, pred: str, style: str | None) -> dict[str, Any]:
    from pipeline.scoring import score_files as sf

    return sf(task, lang, gold, pred, style)


def report(
    params: Sequence[str], scores: Sequence[str], runs: Sequence[str], out: str
) -> dict[str, Any]:
    from pipeline.report import write_report

    cfg = load_params(params)
    return write_report(cfg, [Path(s) for s in scores], [Path(r) for r in runs], Path(out))


def runs_of(params: Sequence[str]) -> list[Run]:
    from pipeline.config import experiment_runs

    return experiment_runs(load_params(params))


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


def download(dataset: str, out: str, lock: str) -> dict[str, Any]:
    from pipeline.data.download import main_download

    return {"path": str(main_download(dataset, Path(out), Path(lock)))}


def dvc_yaml(out: str, check: bool) -> dict[str, Any]:
    from pipeline.dvcgen import write_dvc_yaml

    return write_dvc_yaml(Path(out), check=check)
