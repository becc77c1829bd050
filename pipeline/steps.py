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

from pipeline.config import Run, data_sources, get_run, load_params, raw_paths, section_paths
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
    optional = {k: b[k] for k in ("eval_size", "text_sentences") if k in b}
    return gen(
        Path(out),
        seed=b["seed"],
        languages=b["languages"],
        zero_shot=b["zero_shot"],
        tasks=b["tasks"],
        scale=b["scale"],
        **optional,
    )


def prepare(
    dataset: str,
    raw: str,
    out: str,
    layout: str = "original",
    drop_untranslated: bool = False,
    heldout_dev: float | None = None,
) -> dict[str, Any]:
    from pipeline.data.prepare import prepare as prep

    return prep(
        dataset,
        Path(raw),
        Path(out),
        layout=layout,
        drop_untranslated=drop_untranslated,
        heldout_dev=heldout_dev,
    )


def plan(params: Sequence[str], out: str | None) -> dict[str, Any]:
    """Check that every split the runs need is prepared, and record where each comes from."""
    from pipeline.data.plan import make_plan

    result = make_plan(load_params(params))
    if out is not None:
        atomic_write_json(out, result)
    return {"tlps": len(result["splits"]), "out": out}


def pretraining_texts(cfg: dict[str, Any]) -> list[str]:
    """The tiny encoder's tokenizer and MLM corpus (`encoder.pretrain.corpus`): unlabelled text of
    every language (zero-shot ones included, as mBERT saw them), or the labelled train splits."""
    from pipeline import corpus

    if cfg["encoder"]["pretrain"]["corpus"] == "text":
        return list(corpus.text_corpus(raw_paths(cfg)))
    return list(corpus.train_texts(section_paths(cfg)))


def tokenizer(params: Sequence[str], out: str) -> dict[str, Any]:
    from pipeline.models.encoder import train_tokenizer

    cfg = load_params(params)
    texts = pretraining_texts(cfg)
    tok = train_tokenizer(texts, **cfg["encoder"]["tokenizer"], out=out)
    return {"texts": len(texts), "vocab_size": len(tok)}


def pretrain(
    params: Sequence[str], tokenizer_dir: str, out: str, checkpoints: str
) -> dict[str, Any]:
    from pipeline.models.encoder import pretrain_mlm

    cfg = load_params(params)
    texts = pretraining_texts(cfg)
    enc = cfg["encoder"]
    pre = {k: v for k, v in enc["pretrain"].items() if k not in ("seed", "corpus", "pack")}
    res = pretrain_mlm(
        tokenizer_dir,
        texts,
        enc["architecture"],
        pre,
        enc["pretrain"]["seed"],
        out,
        checkpoints,
        pack=enc["pretrain"].get("pack", False),
    )
    hist = res["history"]
    return {
        "texts": len(texts),
        "steps": len(hist),
        "final_mlm_loss": hist[-1]["mlm_loss"] if hist else None,
    }


#: where a run's pseudo-tasks are written (rule `pseudo_tasks`) and read (its training job)
TASKS_DIR = Path("data/tasks")
#: methods that meta-train on pseudo-tasks written by the `pseudo_tasks` step
TASK_METHODS = ("xmetra", "xmetra_ada")


def pseudo_tasks(params: Sequence[str], run_id: str, out: str) -> dict[str, Any]:
    """Write the X-METRA(-ADA) pseudo-tasks of one run (pipeline.methods.xmetra_tasks)."""
    from pipeline.config import method_params
    from pipeline.data.store import load_split, locate
    from pipeline.errors import ConfigError
    from pipeline.methods import xmetra_tasks
    from pipeline.models.embed import mean_pooled

    cfg = load_params(params)
    run = get_run(cfg, run_id)
    if run.method not in TASK_METHODS:
        raise ConfigError(f"{run_id}: method {run.method} meta-trains on no pseudo-tasks")
    sources = data_sources(cfg)
    p = method_params(run.method, run.params)
    embedder = p["embedder"] or encoder_path(cfg)

    def records(tlp: Any, split: str) -> Any:
        return load_split(locate(tlp, sources, split), tlp, split)

    def embed(texts: list[str]) -> Any:
        return mean_pooled(embedder, texts, max_length=cfg["features"]["max_length"])

    result = xmetra_tasks.build(run.method, run.params, run.train_tlps, records, embed)
    atomic_write_json(out, {"run": run_id, **result})
    return {"meta_train": len(result["meta_train"]), "meta_adapt": len(result["meta_adapt"])}


def train(
    params: Sequence[str],
    run_id: str,
    out: str,
    checkpoints: str,
    predictions: str | None = None,
    scores: str | None = None,
) -> dict[str, Any]:
    """Train one run (resuming from `checkpoints`), then predict dev and test of its evaluation
    TLPs with the dev-selected model(s) into `predictions` and score them into `scores`.

    The job already holds the model and the gold records, so prediction and scoring cost no
    second start-up (the training code depends on the metrics anyway, for dev selection). Test
    is read here once, after selection.
    """
    from pipeline.checkpoint import clear_checkpoint
    from pipeline.finetune import finetune, model_dirs
    from pipeline.models.multitask import MultiTaskModel
    from pipeline.trainer import Trainer, model_dir_for

    cfg = load_params(params)
    run = get_run(cfg, run_id)
    args = (encoder_path(cfg), data_sources(cfg), feature_settings(cfg))
    if run.method == "finetune":
        summary = finetune(run, *args, Path("models/runs") / run.init, out, checkpoints)
        models = {(t,): MultiTaskModel.from_pretrained(d) for t, d in model_dirs(run, out).items()}
        result = {
            t: {k: v[k] for k in ("best_step", "best_dev_mean")} for t, v in summary["tlps"].items()
        }
    else:
        init = None  # `init`: start from another experiment's model (Liu et al.'s English model)
        if run.init is not None:
            init = model_dir_for(Path("models/runs") / run.init, run.train_tlps[0].task)
        tasks = read_json(TASKS_DIR / f"{run.id}.json") if run.method in TASK_METHODS else None
        trainer = Trainer(run, *args, checkpoints, init_model=init, pseudo_tasks=tasks)
        summary = trainer.fit(out, clear=False)
        if "best_by_task" in summary:  # one checkpoint per task: each task's TLPs with its own
            models = {
                tuple(t for t in run.eval_tlps if t.task == task): MultiTaskModel.from_pretrained(
                    model_dir_for(out, task)
                )
                for task in dict.fromkeys(t.task for t in run.eval_tlps)
            }
        else:
            models = {tuple(run.eval_tlps): (trainer.model, trainer.tokenizer)}
        result = {k: summary[k] for k in ("best_step", "best_dev_mean", "inner_steps")}
    if predictions is not None:
        preds = predict_models(cfg, models)
        write_predictions(preds, predictions)
        if scores is not None:
            write_scores(cfg, run, preds, scores)
    clear_checkpoint(checkpoints)
    return result


def predict_models(
    cfg: dict[str, Any], models: dict[tuple, tuple[Any, Any]]
) -> dict[tuple[Any, str], dict[str, Any]]:
    """{(TLP, split): {id: prediction}} for dev and test of each (TLPs -> (model, tokenizer))."""
    from pipeline.evaluation import EVAL_SPLITS, predict_splits
    from pipeline.trainer import pick_device

    device = pick_device()
    out: dict[tuple[Any, str], dict[str, Any]] = {}
    for tlps, (model, tok) in models.items():
        model.to(device)
        out.update(
            predict_splits(
                model, tok, tlps, EVAL_SPLITS, data_sources(cfg), feature_settings(cfg), device
            )
        )
    return out


def write_predictions(preds: dict[tuple[Any, str], dict[str, Any]], out: str | Path) -> None:
    """`out/<task>.<lang>.<split>.json` ({id: prediction}, the official formats), atomically."""
    with atomic_dir(out) as tmp:
        for (tlp, split), p in preds.items():
            atomic_write_json(tmp / f"{tlp.slug}.{split}.json", p)


def write_scores(
    cfg: dict[str, Any], run: Run, preds: dict[tuple[Any, str], dict[str, Any]], out: str | Path
) -> dict[str, Any]:
    from pipeline.evaluation import score_run_predictions

    result = score_run_predictions(run, preds, data_sources(cfg))
    atomic_write_json(out, result)
    return {
        t: {s: round(v["main"], 2) for s, v in sp.items()} for t, sp in result["scores"].items()
    }


def predict(params: Sequence[str], run_id: str, model: str, out: str) -> dict[str, Any]:
    """Predictions of a saved run's model(s) on dev and test of its evaluation TLPs (the same
    files `train` writes; for predicting again, e.g. after a decoding change)."""
    from pipeline.finetune import model_dirs
    from pipeline.models.multitask import MultiTaskModel
    from pipeline.trainer import model_dir_for

    cfg = load_params(params)
    run = get_run(cfg, run_id)
    if run.method == "finetune":
        dirs = {(t,): d for t, d in model_dirs(run, model).items()}
    else:
        dirs = {}
        for t in run.eval_tlps:
            dirs.setdefault(model_dir_for(model, t.task), []).append(t)
        dirs = {tuple(ts): d for d, ts in dirs.items()}
    models = {tlps: MultiTaskModel.from_pretrained(d) for tlps, d in dirs.items()}
    preds = predict_models(cfg, models)
    write_predictions(preds, out)
    return {f"{t}:{split}": len(p) for (t, split), p in preds.items()}


def score_run(params: Sequence[str], run_id: str, predictions: str, out: str) -> dict[str, Any]:
    """Score a run's prediction files (as `train` wrote them) against the prepared gold."""
    from pipeline.evaluation import EVAL_SPLITS

    cfg = load_params(params)
    run = get_run(cfg, run_id)
    preds = {
        (t, split): read_json(Path(predictions) / f"{t.slug}.{split}.json")
        for t in run.eval_tlps
        for split in EVAL_SPLITS
    }
    return write_scores(cfg, run, preds, out)


def score_files(task: str, lang: str, gold: str, pred: str, style: str | None) -> dict[str, Any]:
    from pipeline.scoring import score_files as sf

    return sf(task, lang, gold, pred, style)


def represent_run(
    run: Run,
    model_dir: str | Path,
    prepared_dirs: Any,
    settings: Any,
    out: str | Path,
    max_points: int | None = None,
    cache_dir: str | Path | None = None,
    device: Any = None,
) -> dict[str, Any]:
    """Per task of a paired run (jt, metaxl): the saved model's representations of the source
    and the target TLP's dev split (never test), their cosine Hausdorff distance and PCA, into
    `out/` (summary.json, <task>.csv, <task>.png), atomically."""
    from pipeline.config import PAIRED_METHODS, method_params, source_target_pairs
    from pipeline.errors import ConfigError, DataError
    from pipeline.features import FEATURE_CACHE, load_split_data
    from pipeline.models import represent as rep
    from pipeline.models.multitask import MultiTaskModel
    from pipeline.report import representations as reps
    from pipeline.trainer import model_dir_for, pick_device

    if run.method not in PAIRED_METHODS:
        raise ConfigError(
            f"{run.id}: method {run.method} has no source and target TLPs to compare "
            f"(represent is for {', '.join(PAIRED_METHODS)})"
        )
    pairs = source_target_pairs(run.train_tlps, method_params(run.method, run.params)["targets"])
    for tlp in (t for pair in pairs for t in pair):
        rep.level(tlp)  # QA / MTOD: fail before loading anything
    max_points = rep.MAX_POINTS if max_points is None else max_points
    cache_dir = FEATURE_CACHE if cache_dir is None else cache_dir
    device = device or pick_device()
    loaded: dict[Path, tuple[Any, Any]] = {}
    summary: dict[str, Any] = {}
    with atomic_dir(out) as tmp:
        for src, tgt in pairs:
            task = src.task
            d = model_dir_for(model_dir, task)
            if d not in loaded:
                if not (d / "multitask.json").exists():
                    raise DataError(f"{run.id}: no saved model at {d}")
                model, tok = MultiTaskModel.from_pretrained(d)
                loaded[d] = (model.to(device), tok)
            model, tok = loaded[d]
            vecs = []
            for tlp in (src, tgt):
                data = load_split_data(
                    tlp,
                    "dev",
                    prepared_dirs,
                    tok,
                    model.labels,
                    settings,
                    train=False,
                    cache_dir=cache_dir,
                )
                vecs.append(rep.representations(model, data, max_points, device=device))
            distance = reps.hausdorff_cosine(*vecs)
            coords, explained = reps.pca2(*vecs)
            langs = (src.lang, tgt.lang)
            reps.write_csv(tmp / f"{task}.csv", coords, len(vecs[0]), langs)
            title = reps.plot_title(run.id, task, str(src), str(tgt), distance)
            reps.write_png(tmp / f"{task}.png", coords, title, len(vecs[0]), langs, explained)
            summary[task] = {
                "source": str(src),
                "target": str(tgt),
                "hausdorff_cosine": distance,
                "n_source": len(vecs[0]),
                "n_target": len(vecs[1]),
                "explained_variance": [float(x) for x in explained],
            }
        atomic_write_json(tmp / "summary.json", summary)
    return summary


def represent(
    params: Sequence[str], run_id: str, model_dir: str, out: str, max_points: int | None = None
) -> dict[str, Any]:
    """The source/target representation analysis of a saved paired run (`represent_run`)."""
    cfg = load_params(params)
    run = get_run(cfg, run_id)
    result = represent_run(
        run, model_dir, data_sources(cfg), feature_settings(cfg), out, max_points
    )
    return {task: round(v["hausdorff_cosine"], 4) for task, v in result.items()}


def report(
    params: Sequence[str],
    scores: Sequence[str],
    runs: Sequence[str],
    out: str,
    representations: Sequence[str] = (),
) -> dict[str, Any]:
    from pipeline.report import write_report
    from pipeline.report.representation_tables import write_representation_tables

    cfg = load_params(params)
    result = write_report(cfg, [Path(s) for s in scores], [Path(r) for r in runs], Path(out))
    # MetaXL §4.5's distances, when paired runs were analysed (`represent`)
    write_representation_tables(cfg, [Path(r) for r in representations], Path(out))
    return result


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
