"""Calibrate the synthetic benchmark: does every task of the default grid have room to move?

In-process (no Snakemake), with the same library calls the DAG makes: generate the benchmark,
prepare it, train the tokenizer and MLM-pretrain the tiny encoder on the unlabelled text of every
language (`pipeline.corpus.text_corpus`), then per seed train STL (one model per TLP) and MTL
with `pipeline.trainer.Trainer` (model selection on dev, as the DAG), evaluate the selected
models once on test, and MTL zero-shot on the zero-shot languages. Prints per TLP the floor of
a trivial predictor on the same test data, STL and MTL mean ± sd over seeds, and MTL zero-shot
per task; writes everything to OUT/calibration.json.

Floors (computed on the test data): nli/pa majority class; pos majority tag (and `lookup`, the
per-word most frequent train tag, as a reference); ner all-O (F1 0; `lookup` = per-word train
tag); qa: the first two words of the context (`lookup`: the context sentence with the largest
word overlap with the question, minus the question's words, a lexical-overlap heuristic).

Usage:
  PYTHONPATH=. python scripts/calibrate_synthetic.py OUT [--seeds 13 14 15] [--scale 0.6]
      [--eval-size N] [--text-sentences N] [--corpus text|train|both]
      [--set encoder.pretrain.steps=400 --set training.lr=1e-3 ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TQDM_DISABLE": "1",
}.items():
    os.environ.setdefault(_k, _v)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import yaml  # noqa: E402

from pipeline.config import (  # noqa: E402
    Run,
    experiment_runs,
    load_params,
    validate,
    zero_shot_langs,
)
from pipeline.corpus import text_corpus, train_texts  # noqa: E402
from pipeline.data.prepare import prepare  # noqa: E402
from pipeline.data.store import load_split, locate  # noqa: E402
from pipeline.data.synthetic import generate  # noqa: E402
from pipeline.evaluation import evaluate  # noqa: E402
from pipeline.features import load_split_data  # noqa: E402
from pipeline.metrics import main_metric  # noqa: E402
from pipeline.models.encoder import pretrain_mlm, train_tokenizer  # noqa: E402
from pipeline.records import TLP  # noqa: E402
from pipeline.scoring import score, style_for  # noqa: E402
from pipeline.tasks import TaskFeatureSettings  # noqa: E402
from pipeline.trainer import Trainer, mean_main  # noqa: E402

log = logging.getLogger("calibrate")

# --------------------------------------------------------------------------------------------
# Floors: trivial predictors scored with the pipeline's own scorer on the same test records


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _sentences(context: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+", context) if s]


def floors(tlp: TLP, dirs: list[Path]) -> dict[str, float]:
    """{'floor': score of the trivial predictor, 'lookup': a stronger lexical reference}."""
    where = locate(tlp, dirs, "test")
    gold = list(load_split(where, tlp, "test"))
    style = style_for(tlp.task, where.name)

    def run(preds: dict[str, Any]) -> float:
        return score(tlp.task, tlp.lang, gold, preds, style=style)[main_metric(tlp.task)]

    out: dict[str, float] = {}
    if tlp.task in ("nli", "pa", "sa"):
        major = Counter(str(r["label"]) for r in gold).most_common(1)[0][0]
        out["floor"] = run({str(r["id"]): major for r in gold})
    elif tlp.task in ("pos", "ner"):
        tags = Counter(t for r in gold for t in r["tags"])
        major = "O" if tlp.task == "ner" else tags.most_common(1)[0][0]
        out["floor"] = run({str(r["id"]): [major] * len(r["tags"]) for r in gold})
        # per-word most frequent tag in this TLP's train split (l0's for zero-shot languages)
        src = tlp if _has(tlp, dirs, "train") else TLP(tlp.task, "l0")
        by_word: dict[str, Counter] = defaultdict(Counter)
        for r in load_split(locate(src, dirs, "train"), src, "train"):
            for w, t in zip(r["tokens"], r["tags"]):
                by_word[w][t] += 1
        out["lookup"] = run(
            {
                str(r["id"]): [
                    by_word[w].most_common(1)[0][0] if w in by_word else major for w in r["tokens"]
                ]
                for r in gold
            }
        )
    elif tlp.task == "qa":
        first = {str(r["id"]): " ".join(r["context"].split()[:2]) for r in gold}
        best_s, rest = {}, {}
        for r in gold:
            q = set(_words(r["question"]))
            sents = _sentences(r["context"])
            s = max(sents, key=lambda x: len(q & set(_words(x))))
            best_s[str(r["id"])] = s
            rest[str(r["id"])] = " ".join(w for w in re.findall(r"\w+", s) if w.lower() not in q)
        out["floor"] = run(first)
        out["lookup"] = run(rest)
        out["sentence"] = run(best_s)
    return out


def _has(tlp: TLP, dirs: list[Path], split: str) -> bool:
    try:
        locate(tlp, dirs, split)
    except Exception:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Runs: the DAG's own (pipeline.config.experiment_runs), STL and MTL experiments only


def make_runs(cfg: dict[str, Any], seeds: list[int]) -> list[Run]:
    exps = {k: v for k, v in cfg["experiments"].items() if v and v["method"] in ("stl", "mtl")}
    return experiment_runs({**cfg, "seeds": list(seeds), "experiments": exps})


def set_key(cfg: dict[str, Any], assignment: str) -> None:
    key, _, value = assignment.partition("=")
    *path, last = key.split(".")
    node = cfg
    for p in path:
        node = node.setdefault(p, {})
    parsed = yaml.safe_load(value)
    if isinstance(parsed, str):  # YAML 1.1 reads `3e-3` as a string
        try:
            parsed = float(parsed)
        except ValueError:
            pass
    node[last] = parsed


# --------------------------------------------------------------------------------------------


def fmt(xs: list[float]) -> str:
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):5.1f} ± {sd:4.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--scale", type=float, default=None, help="default: benchmark.scale")
    ap.add_argument("--eval-size", type=int, default=None)
    ap.add_argument("--text-sentences", type=int, default=None)
    ap.add_argument(
        "--sizes", type=json.loads, default=None, help="benchmark size overrides (JSON)"
    )
    ap.add_argument("--corpus", choices=["text", "train", "both"], default="text")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=YAML")
    ap.add_argument("--no-pack", action="store_true", help="MLM on one sentence per sequence")
    ap.add_argument("--only", choices=["stl", "mtl"], default=None, help="train one kind only")
    ap.add_argument("--keep-data", action="store_true", help="reuse OUT/raw and OUT/encoder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    cfg = load_params([args.params])
    for a in args.set:
        set_key(cfg, a)
    validate(cfg, where="params + --set")
    b = cfg["benchmark"]
    gen_kwargs: dict[str, Any] = {
        "seed": b["seed"],
        "languages": b["languages"],
        "zero_shot": b["zero_shot"],
        "tasks": b["tasks"],
        "scale": args.scale if args.scale is not None else b["scale"],
    }
    if args.eval_size is not None:
        gen_kwargs["eval_size"] = args.eval_size
    if args.sizes is not None:
        gen_kwargs["sizes"] = args.sizes
    if args.text_sentences is not None:
        gen_kwargs["text_sentences"] = args.text_sentences
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    raw, prep = out / "raw", out / "prepared" / "synthetic"
    times: dict[str, float] = {}

    fresh = not (args.keep_data and (out / "encoder").exists())
    if fresh:
        t0 = time.perf_counter()
        generate(raw, verbose=False, **gen_kwargs)
        times["generate_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepare("synthetic", raw, prep)
        times["prepare_s"] = time.perf_counter() - t0
    dirs = [prep]
    texts: list[str] = []
    if args.corpus in ("text", "both"):
        texts += list(text_corpus([raw]))
    if args.corpus in ("train", "both"):
        texts += list(train_texts(dirs))
    enc = cfg["encoder"]
    if fresh:
        t0 = time.perf_counter()
        train_tokenizer(texts, **enc["tokenizer"], out=out / "tokenizer")
        times["tokenizer_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = pretrain_mlm(
            out / "tokenizer",
            texts,
            enc["architecture"],
            {k: v for k, v in enc["pretrain"].items() if k not in ("seed", "corpus", "pack")},
            enc["pretrain"]["seed"],
            out / "encoder",
            out / "checkpoints" / "pretrain",
            pack=not args.no_pack,
        )
        times["pretrain_s"] = time.perf_counter() - t0
        times["pretrain_ms_per_step"] = 1000 * times["pretrain_s"] / enc["pretrain"]["steps"]
        hist = res["history"]
        times["mlm_loss_first_last"] = [hist[0]["mlm_loss"], hist[-1]["mlm_loss"]]
    print(f"corpus: {len(texts)} sentences ({args.corpus}); " + json.dumps(times), flush=True)

    settings = TaskFeatureSettings.from_config(cfg["features"])
    tlps = [TLP.parse(t) for t in cfg["tlps"]]
    zs_tlps = [TLP(t, lg) for t in sorted({x.task for x in tlps}) for lg in zero_shot_langs(cfg, t)]
    results: dict[str, Any] = {"config": {"generate": gen_kwargs, "set": args.set}, "runs": []}
    test: dict[tuple[str, str], list[float]] = defaultdict(list)  # (kind, tlp) -> per seed
    train_s, train_steps = 0.0, 0
    for run in make_runs(cfg, args.seeds):
        seed = run.seed
        if args.only and run.method != args.only:
            continue
        t0 = time.perf_counter()
        trainer = Trainer(
            run,
            out / "encoder",
            dirs,
            settings,
            out / "checkpoints" / run.id,
            device=torch.device("cpu"),
            cache_dir=out / "features",
        )
        summary = trainer.fit(out / "models" / run.id)
        dt = time.perf_counter() - t0
        train_s += summary["train_seconds_this_session"]
        train_steps += summary["inner_steps"]
        # selection check: the kept weights reproduce the best dev score
        again = mean_main(trainer.dev_scores())
        assert math.isclose(again, summary["best_dev_mean"], abs_tol=1e-9), (
            run.id,
            again,
            summary["best_dev_mean"],
        )
        row = {
            "run": run.id,
            "seed": seed,
            "best_step": summary["best_step"],
            "best_dev_mean": summary["best_dev_mean"],
            "seconds": round(dt, 1),
            "test": {},
        }
        for t in run.eval_tlps:
            data = load_split_data(
                t,
                "test",
                dirs,
                trainer.tokenizer,
                trainer.labels,
                settings,
                train=False,
                cache_dir=out / "features",
            )
            m = evaluate(trainer.model, data, trainer.labels[t.task], 64, torch.device("cpu"))
            row["test"][str(t)] = m["main"]
            kind = run.method if t in run.train_tlps else f"{run.method}_zs"
            test[(kind, str(t))].append(m["main"])
        results["runs"].append(row)
        print(
            f"seed {seed} {run.id:<10} best step {summary['best_step']:>3} "
            f"dev {summary['best_dev_mean']:5.1f} {dt:5.1f}s test "
            + " ".join(f"{k}={v:.1f}" for k, v in row["test"].items()),
            flush=True,
        )
    times["train_s"] = train_s
    times["train_ms_per_step"] = 1000 * train_s / max(train_steps, 1)

    fl = {str(t): floors(t, dirs) for t in [*tlps, *zs_tlps]}
    lines = [
        f"{'TLP':<8} {'floor':>6} {'lookup':>6} {'STL':>13} {'MTL':>13} {'MTL-STL':>7}",
    ]
    for t in map(str, tlps):
        stl, mtl = test[("stl", t)], test[("mtl", t)]
        d = f"{statistics.mean(mtl) - statistics.mean(stl):+7.1f}" if stl and mtl else "-"
        lk = fl[t].get("lookup")
        lines.append(
            f"{t:<8} {fl[t]['floor']:6.1f} {'' if lk is None else f'{lk:6.1f}':>6} "
            f"{fmt(stl):>13} {fmt(mtl):>13} {d:>7}"
        )
    lines.append("")
    lines.append(f"{'zero-shot':<8} {'floor':>6} {'lookup':>6} {'MTL':>13}")
    for t in map(str, zs_tlps):
        lk = fl[t].get("lookup")
        lines.append(
            f"{t:<8} {fl[t]['floor']:6.1f} {'' if lk is None else f'{lk:6.1f}':>6} "
            f"{fmt(test[('mtl_zs', t)]):>13}"
        )
    table = "\n".join(lines)
    print()
    print(table)
    print()
    print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in times.items()}))
    results |= {
        "floors": fl,
        "test": {f"{k}:{t}": v for (k, t), v in test.items()},
        "times": times,
        "table": table,
    }
    (out / "calibration.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
