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
    optional = {k: b[k] for k in ("eval_size", "text_sentences", "heldout_sentences") if k in b}
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
    sources = data_sources(cfg, run.experiment)
    p = method_params(run.method, run.params)
    embedder = p["embedder"] or encoder_path(cfg)

    def records(tlp: Any, split: str) -> Any:
        return load_split(locate(tlp, sources, split), tlp, split)

    def embed(texts: list[str]) -> Any:
        return mean_pooled(embedder, texts, max_length=cfg["features"]["max_length"])

    result = xmetra_tasks.build(run.method, run.params, run.train_tlps, records, embed)
    atomic_write_json(out, {"run": run_id, **result})
    return {"meta_train": len(result["meta_train"]), "meta_adapt": len(result["meta_adapt"])}


def clusters(
    params: Sequence[str], tlp: str, datasets: str, k: int, seed: int, out: str
) -> dict[str, Any]:
    """Cluster one TLP's training examples into `k` tasks (Lee et al. §4.3): the pretrained
    encoder's mean-pooled embeddings of each example's text, PCA, a Gaussian mixture; written
    as {summary, assignments: {record id: cluster}} for every run that clusters it this way.
    The train split comes from the first of `datasets` (`+`-joined prepared names) holding it."""
    from pipeline.config import clustering_settings
    from pipeline.data import clusters as gmm
    from pipeline.data.store import load_split, locate
    from pipeline.records import TLP
    from pipeline.trainer import pick_device

    cfg = load_params(params)
    t = TLP.parse(tlp)
    where = locate(t, [Path("data/prepared") / d for d in datasets.split("+")], "train")
    records = load_split(where, t, "train")
    opts = clustering_settings(cfg)
    texts = [gmm.example_text(t.type, r) for r in records]
    emb = gmm.embed_examples(
        encoder_path(cfg),
        texts,
        batch_size=opts["batch_size"],
        max_length=opts["max_length"],
        device=pick_device(),
    )
    res = gmm.cluster_embeddings(
        emb, k, seed, opts["pca_components"], opts["covariance_type"], opts["n_init"]
    )
    summary = {
        "tlp": tlp,
        "dataset": where.name,
        **res.summary(),
        "max_length": opts["max_length"],
        "text": "question + context" if t.type == "qa" else "text_a + text_b",
    }
    atomic_write_json(
        out, gmm.assignments_json([str(i) for i in records["id"]], res.labels, summary)
    )
    return {"tlp": tlp, "sizes": res.sizes, "bic": res.bic}


def run_clusters(cfg: dict[str, Any], run: Run) -> dict[Any, Any] | None:
    """{train TLP: its cluster file's content} for a `clusters` run (rule `clusters` wrote
    them), else None."""
    from pipeline.config import CLUSTERS_DIR, cluster_name

    if "clusters" not in run.params:
        return None
    return {
        t: read_json(Path(CLUSTERS_DIR) / f"{cluster_name(cfg, run, t)}.json")
        for t in run.train_tlps
    }


def relaunch_under_torchrun(processes: int, argv: list[str]) -> None:
    """Replace this process by `torchrun --standalone --nproc_per_node N -m pipeline <argv>`.

    A run with `training.processes: N` > 1 launches itself, so the Snakemake rules, the
    generated dvc.yaml and a hand-typed `python -m pipeline train …` stay one command; exec (not
    a child) lets SIGTERM from a scheduler reach torchrun, which forwards it to every rank.
    Under torchrun already (WORLD_SIZE set) nothing is relaunched.
    """
    import os
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    # `--`: torchrun's parser would take `--run` for an abbreviation of its `--run-path`
    cmd += ["--nproc_per_node", str(processes), "-m", "pipeline", "--", *argv]
    log.info("training.processes = %d: exec %s", processes, " ".join(cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)


def train(
    params: Sequence[str],
    run_id: str,
    out: str,
    checkpoints: str,
    predictions: str | None = None,
    scores: str | None = None,
) -> dict[str, Any] | None:
    """Train one run (resuming from `checkpoints`), then predict dev and test of its evaluation
    TLPs with the dev-selected model(s) into `predictions` and score them into `scores`.

    The job already holds the model and the gold records, so prediction and scoring cost no
    second start-up (the training code depends on the metrics anyway, for dev selection). Test
    is read here once, after selection.

    Under `torchrun` (`training.processes` > 1) every rank trains (pipeline/runtime/distributed.py)
    and rank 0 alone writes the model, provenance, predictions and scores; the others return None
    once training is done (the CLI then prints nothing for them).
    """
    from pipeline.checkpoint import clear_checkpoint
    from pipeline.finetune import finetune, model_dirs
    from pipeline.models.multitask import MultiTaskModel
    from pipeline.runtime import distributed
    from pipeline.trainer import Trainer, model_dir_for

    cfg = load_params(params)
    run = get_run(cfg, run_id)
    processes = int(run.params.get("processes", 1))
    if processes > 1 and not distributed.launched():  # the job becomes its torchrun launch
        argv = ["train", *(x for p in params for x in ("--params", p)), "--run", run_id]
        argv += ["--out", out, "--checkpoints", checkpoints]
        argv += ["--predictions", predictions] if predictions is not None else []
        argv += ["--scores", scores] if scores is not None else []
        relaunch_under_torchrun(processes, argv)
    world = distributed.init()  # a no-op without torchrun
    if not distributed.is_main():  # one log: the other ranks say only what goes wrong
        logging.getLogger().setLevel(logging.WARNING)
    if world.size != int(run.params.get("processes", 1)):
        log.warning(
            "%s: training.processes is %s but the job runs %d process(es)",
            run.id,
            run.params.get("processes", 1),
            world.size,
        )
    # the run's experiment may read other datasets than `data.sources` (its `sources`)
    args = (encoder_path(cfg), data_sources(cfg, run.experiment), feature_settings(cfg))
    if run.method == "finetune":
        summary = finetune(run, *args, Path("models/runs") / run.init, out, checkpoints)
        if summary is None:  # not rank 0: rank 0 predicts, scores and writes alone
            distributed.shutdown()
            return None
        models = {(t,): MultiTaskModel.from_pretrained(d) for t, d in model_dirs(run, out).items()}
        result = {
            t: {k: v[k] for k in ("best_step", "best_dev_mean")} for t, v in summary["tlps"].items()
        }
    else:
        init = None  # `init`: start from another experiment's model (Liu et al.'s English model)
        if run.init is not None:
            init = model_dir_for(Path("models/runs") / run.init, run.train_tlps[0].task)
        tasks = read_json(TASKS_DIR / f"{run.id}.json") if run.method in TASK_METHODS else None
        trainer = Trainer(
            run,
            *args,
            checkpoints,
            init_model=init,
            pseudo_tasks=tasks,
            clusters=run_clusters(cfg, run),
        )
        summary = trainer.fit(out, clear=False)
        if not distributed.is_main():  # rank 0 predicts, scores and writes alone
            distributed.shutdown()
            return None
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
    # what produced these results (code, params, software, data, device, seed), beside them
    from pipeline.runtime.provenance import provenance
    from pipeline.trainer import pick_device

    prepared = [*args[1], *(d for ds in args[1].per_split.values() for d in ds)]
    atomic_write_json(Path(out) / "provenance.json", provenance(cfg, run, pick_device(), prepared))
    if predictions is not None:
        preds = predict_models(cfg, models, run.experiment)
        write_predictions(preds, predictions)
        if scores is not None:
            write_scores(cfg, run, preds, scores)
    clear_checkpoint(checkpoints)
    distributed.shutdown()
    return result


def predict_models(
    cfg: dict[str, Any], models: dict[tuple, tuple[Any, Any]], experiment: str | None = None
) -> dict[tuple[Any, str], dict[str, Any]]:
    """{(TLP, split): {id: prediction}} for dev and test of each (TLPs -> (model, tokenizer)),
    read from the experiment's sources (`data_sources`)."""
    from pipeline.evaluation import EVAL_SPLITS, predict_splits
    from pipeline.trainer import pick_device

    device = pick_device()
    sources = data_sources(cfg, experiment)
    out: dict[tuple[Any, str], dict[str, Any]] = {}
    training = cfg.get("training", {})
    padding, precision = training.get("padding", "dynamic"), training.get("precision", "fp32")
    for tlps, (model, tok) in models.items():
        model.to(device)
        out.update(
            predict_splits(
                model,
                tok,
                tlps,
                EVAL_SPLITS,
                sources,
                feature_settings(cfg),
                device,
                padding=padding,
                precision=precision,
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

    result = score_run_predictions(run, preds, data_sources(cfg, run.experiment))
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
    preds = predict_models(cfg, models, run.experiment)
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
        run, model_dir, data_sources(cfg, run.experiment), feature_settings(cfg), out, max_points
    )
    return {task: round(v["hausdorff_cosine"], 4) for task, v in result.items()}


def report(
    params: Sequence[str],
    scores: Sequence[str],
    runs: Sequence[str],
    out: str,
    representations: Sequence[str] = (),
    forgetting: Sequence[str] = (),
) -> dict[str, Any]:
    from pipeline.report import write_report
    from pipeline.report.figures import write_figures
    from pipeline.report.html_page import write_page
    from pipeline.report.provenance_table import write_provenance_table
    from pipeline.report.representation_tables import write_representation_tables

    cfg = load_params(params)
    result = write_report(
        cfg,
        [Path(s) for s in scores],
        [Path(r) for r in runs],
        Path(out),
        forgetting=[Path(f) for f in forgetting],
    )
    # MetaXL §4.5's distances, when paired runs were analysed (`represent`)
    write_representation_tables(cfg, [Path(r) for r in representations], Path(out))
    # where each run's numbers came from (code, params, software, data, device, seed)
    write_provenance_table([Path(r) for r in runs], Path(out))
    # what people read: PNGs of the plot data, then one self-contained page of everything
    write_figures(Path(out))
    result["page"] = str(write_page(cfg, Path(out)))
    return result


def summary(results: str, width: int | None = None) -> None:
    """Print the headline table of the report under `results` (nothing to dump after it)."""
    from pipeline.report.summary import print_summary

    print_summary(Path(results), width)


def toy2d(params: Sequence[str], out: str) -> dict[str, Any]:
    """Lee et al.'s 2-D study with the settings of `toy2d:` (pipeline/experiments/toy2d_study)."""
    from pipeline.errors import ConfigError
    from pipeline.experiments.toy2d_study import run_study

    settings = load_params(params).get("toy2d")
    if settings is None:
        raise ConfigError(f"{' + '.join(params)}: toy2d is null: the 2-D study is switched off")
    return run_study(settings, out)


def runs_of(params: Sequence[str]) -> list[Run]:
    from pipeline.config import experiment_runs

    return experiment_runs(load_params(params))


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


def download(dataset: str, out: str, lock: str) -> dict[str, Any]:
    from pipeline.data.download import main_download

    return {"path": str(main_download(dataset, Path(out), Path(lock)))}


def dvc_yaml(out: str, check: bool) -> dict[str, Any]:
    from pipeline.workflow.dvc_yaml import write_dvc_yaml

    return write_dvc_yaml(Path(out), check=check)


# ---------------------------------------------------------------------------------------------
# Catastrophic forgetting (Lee et al. 2022 §4.2, Figure 5): pipeline/experiments/forgetting.py

#: the pretrained model's losses, computed once (rule `forgetting_pretrained`)
FORGETTING_PRETRAINED = Path("results/forgetting/pretrained.json")


def _heldout(settings: dict[str, Any]) -> dict[str, list[str]]:
    from pipeline.experiments import forgetting as fg

    files = fg.heldout_files(settings["text"])
    return {lang: fg.read_sentences(f, settings["sentences"]) for lang, f in files.items()}


def forgetting_pretrained(params: Sequence[str], out: str) -> dict[str, Any]:
    """The pretrained masked-LM's loss on the held-out text of every language (`forgetting:`)."""
    from pipeline.config import forgetting_settings
    from pipeline.experiments import forgetting as fg

    cfg = load_params(params)
    s = forgetting_settings(cfg)
    texts = _heldout(s)
    mlm, tok = fg.load_mlm(encoder_path(cfg))
    losses = fg.language_losses(
        mlm,
        fg.mask_languages(tok, texts, s, mlm.config.max_position_embeddings),
        s["batch_size"],
        tok.pad_token_id,
    )
    result = {
        "encoder": encoder_path(cfg),
        "settings": s,
        "languages": sorted(texts),
        "mlm_loss": {lang: v["loss"] for lang, v in losses.items()},
        "masked_tokens": {lang: v["tokens"] for lang, v in losses.items()},
        "sentences": {lang: len(t) for lang, t in texts.items()},
        "text_sha256": {lang: fg.text_digest(t) for lang, t in texts.items()},
    }
    atomic_write_json(out, result)
    return {lang: round(x, 4) for lang, x in result["mlm_loss"].items()}


def saved_models(run_dir: str | Path) -> dict[str, Path]:
    """{label: folder} of the models a run saved: `model`, one per task (`model.<task>`), or
    one per fine-tuned TLP (`<task>.<lang>/model`)."""
    from pipeline.errors import DataError

    d = Path(run_dir)
    found = [d / "model"] if (d / "model").is_dir() else sorted(d.glob("model.*"))
    found = found or sorted(d.glob("*/model"))
    found = [p for p in found if (p / "multitask.json").is_file()]
    if not found:
        raise DataError(f"{d}: no saved model (model/multitask.json)")
    return {str(p.relative_to(d)): p for p in found}


def forgetting(
    params: Sequence[str],
    run_id: str,
    model_dir: str,
    out: str,
    pretrained: str | Path = FORGETTING_PRETRAINED,
) -> dict[str, Any]:
    """A trained run's masked-LM loss on the held-out text of its seen and unseen languages,
    next to the pretrained model's (`pretrained`, from `forgetting_pretrained`), and its l2
    distance from the pretrained encoder; a run that saved several models (per task, per
    fine-tuned TLP): the mean over them. Seen: the languages of the run's train TLPs and of the
    runs it starts from (`init`); unseen: every other language with held-out text."""
    from transformers import AutoModel

    from pipeline.config import forgetting_settings
    from pipeline.errors import DataError
    from pipeline.experiments import forgetting as fg

    cfg = load_params(params)
    s = forgetting_settings(cfg)
    run = get_run(cfg, run_id)
    before = read_json(pretrained)
    texts = _heldout(s)
    langs, r = {t.lang for t in run.train_tlps}, run
    while r.init is not None:
        r = get_run(cfg, r.init)
        langs |= {t.lang for t in r.train_tlps}
    missing = sorted(langs - set(texts))
    if missing:
        path = Path(s["text"]) / f"{missing[0]}.txt"
        raise DataError(f"{path}: no held-out text of {run_id}'s training language {missing[0]}")
    seen, unseen = fg.language_split(langs, texts)
    same = before.get("settings") == s and before.get("encoder") == encoder_path(cfg)
    digests = {lang: fg.text_digest(t) for lang, t in texts.items()}
    if not same or any(before.get("text_sha256", {}).get(k) != v for k, v in digests.items()):
        raise DataError(
            f"{pretrained}: computed with other forgetting settings, encoder or text; "
            "recompute it (`python -m pipeline forgetting-pretrained`)"
        )
    mlm, tok = fg.load_mlm(encoder_path(cfg))
    reference = {k: v.detach().clone() for k, v in mlm.base_model.state_dict().items()}
    scored = sorted(seen + unseen)
    masked = fg.mask_languages(
        tok, {lang: texts[lang] for lang in scored}, s, mlm.config.max_position_embeddings
    )
    models = {}
    for label, d in saved_models(model_dir).items():
        encoder = AutoModel.from_pretrained(str(d / "encoder"), add_pooling_layer=False)
        mlm.base_model.load_state_dict(reference)  # θ₀ again before each model
        l2 = fg.l2_distance(encoder, mlm.base_model)
        fg.set_encoder(mlm, encoder)
        losses = fg.language_losses(mlm, masked, s["batch_size"], tok.pad_token_id)
        models[label] = {"mlm_loss": {k: v["loss"] for k, v in losses.items()}, **l2}
    loss = {k: fg.mean(m["mlm_loss"][k] for m in models.values()) for k in scored}
    loss0 = {k: before["mlm_loss"][k] for k in scored}
    result = {
        "run": run.id,
        "experiment": run.experiment,
        "row": run.row,
        "method": run.method,
        "seed": run.seed,
        "seen": seen,
        "unseen": unseen,
        "mlm_loss": loss,
        "mlm_loss_pretrained": loss0,
        "mean_seen": fg.mean(loss[k] for k in seen),
        "mean_unseen": fg.mean(loss[k] for k in unseen),
        "mean_seen_pretrained": fg.mean(loss0[k] for k in seen),
        "mean_unseen_pretrained": fg.mean(loss0[k] for k in unseen),
        "l2": fg.mean(m["l2"] for m in models.values()),
        "l2_parameters": next(iter(models.values()))["parameters"],
        "masked_tokens": {k: masked[k].n_masked for k in scored},
        "sentences": {k: len(texts[k]) for k in scored},
        "models": models,
        "settings": s,
        "encoder": encoder_path(cfg),
    }
    atomic_write_json(out, result)
    return {k: result[k] for k in ("mean_seen", "mean_unseen", "l2")}
