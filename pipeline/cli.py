"""`python -m pipeline <command>`: one subcommand per pipeline step. Only argument parsing here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pipeline.errors import PipelineError


def _params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--params",
        action="append",
        default=None,
        metavar="FILE",
        help="params.yaml, then presets overlaid in order (default: params.yaml)",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="validate params (and presets); print the runs")
    _params(p)

    p = sub.add_parser("generate", help="write the synthetic benchmark in raw publisher formats")
    _params(p)
    p.add_argument("--out", required=True)

    p = sub.add_parser("download", help="download a dataset from its registered source")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--lock", default="data/sources.lock.json")

    p = sub.add_parser("prepare", help="raw files as distributed -> normalized records")
    p.add_argument("--dataset", required=True)
    p.add_argument("--raw", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--layout", choices=["original", "xtreme"], default="original")
    p.add_argument(
        "--drop-untranslated",
        action="store_true",
        help="drop PAWS-X dev/test rows whose sentence is NS (default: kept, as XTREME scores them)",
    )
    p.add_argument(
        "--heldout-dev",
        type=float,
        default=None,
        help="the release's dev split becomes test and this share of train becomes dev "
        "(TyDiQA-GoldP as M'hamdi et al.: 0.1)",
    )

    p = sub.add_parser(
        "plan", help="check that every split the runs need is prepared; record its dataset"
    )
    _params(p)
    p.add_argument("--out", default=None, help="write the plan (JSON) here")

    p = sub.add_parser("tokenizer", help="train the WordPiece tokenizer of the tiny encoder")
    _params(p)
    p.add_argument("--out", required=True)

    p = sub.add_parser("pretrain", help="masked-LM pretraining of the tiny encoder")
    _params(p)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoints", required=True)

    p = sub.add_parser("pseudo-tasks", help="write the X-METRA(-ADA) pseudo-tasks of one run")
    _params(p)
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser(
        "clusters", help="GMM clusters of one TLP's training examples (Lee et al. §4.3 tasks)"
    )
    _params(p)
    p.add_argument("--tlp", required=True, help="task/lang whose train split is clustered")
    p.add_argument("--datasets", required=True, help="prepared datasets it may come from (a+b)")
    p.add_argument("--k", type=int, required=True, help="number of clusters")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser(
        "train",
        help="train one run (resumes from checkpoints), then predict its dev and test splits",
    )
    _params(p)
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoints", required=True)
    p.add_argument("--predictions", default=None, help="folder for the prediction files")
    p.add_argument("--scores", default=None, help="score file of the predictions (JSON)")

    p = sub.add_parser(
        "predict", help="predict dev and test of a run's evaluation TLPs again (train does it)"
    )
    _params(p)
    p.add_argument("--run", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser(
        "score-run", help="score a run's predictions against prepared gold again (train does it)"
    )
    _params(p)
    p.add_argument("--run", required=True)
    p.add_argument("--predictions", required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser("score", help="score a prediction file in the task's official format")
    p.add_argument("--task", required=True)
    p.add_argument("--lang", required=True)
    p.add_argument("--gold", required=True)
    p.add_argument("--pred", required=True)
    p.add_argument("--style", choices=["squad", "mlqa"], default=None)

    p = sub.add_parser(
        "represent",
        help="source vs target dev representations of a paired run (jt, metaxl): Hausdorff "
        "distance, PCA table and plot per task",
    )
    _params(p)
    p.add_argument("--run", required=True)
    p.add_argument("--model", required=True, help="the run's folder (models/runs/<run>)")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--max-points", type=int, default=None, help="vectors per language (default: 2000)"
    )

    p = sub.add_parser(
        "forgetting-pretrained",
        help="the pretrained masked-LM's loss on the held-out text of every language "
        "(`forgetting:`; Lee et al. 2022 Figure 5, before training)",
    )
    _params(p)
    p.add_argument("--out", required=True)

    p = sub.add_parser(
        "forgetting",
        help="a trained run's masked-LM loss on held-out text of seen and unseen languages and "
        "its l2 distance from the pretrained encoder (Lee et al. 2022 Figure 5)",
    )
    _params(p)
    p.add_argument("--run", required=True)
    p.add_argument("--model", required=True, help="the run's folder (models/runs/<run>)")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--pretrained",
        default="results/forgetting/pretrained.json",
        help="the pretrained model's losses (`forgetting-pretrained`)",
    )

    p = sub.add_parser(
        "toy2d",
        help="Lee et al. 2022's synthetic 2-D experiment (§4.1, Figure 3) with the settings of "
        "`toy2d:`: every method's trajectory, the per-claim verdicts, the inner lr x K sweep",
    )
    _params(p)
    p.add_argument("--out", required=True)

    p = sub.add_parser("report", help="metrics.json, tables and plots from all scores")
    _params(p)
    p.add_argument("--scores", nargs="+", required=True)
    p.add_argument("--runs", nargs="+", required=True)
    p.add_argument(
        "--representations",
        nargs="*",
        default=[],
        help="`represent` outputs to tabulate (results/representations/<run>)",
    )
    p.add_argument(
        "--forgetting",
        nargs="*",
        default=[],
        help="`forgetting` outputs to tabulate (results/forgetting/<run>.json)",
    )
    p.add_argument("--out", required=True)

    p = sub.add_parser(
        "summary",
        help="print the headline comparison of a finished run (test mean ± sd, best marked, "
        "significance) and the path of its report page",
    )
    p.add_argument("--results", default="results", help="the report's folder (default: results)")
    p.add_argument("--width", type=int, default=None, help="terminal width (default: detected)")

    p = sub.add_parser("dvc-yaml", help="generate dvc.yaml from the Snakemake DAG")
    p.add_argument("--out", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="fail if the file on disk is stale")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `torchrun … -m pipeline -- train --run …` (torchrun's own parser
        argv = argv[1:]  # takes `--run` for its `--run-path` without the `--`), if passed on
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _dispatch(args)
    except ModuleNotFoundError as e:  # a `python` outside the project's environment
        if (e.name or "").partition(".")[0] == "pipeline":
            raise
        print(
            f"error: {sys.executable} cannot import {e.name!r}: run the pipeline with the "
            "project's environment (`. .venv/bin/activate`, or `make install` first)",
            file=sys.stderr,
        )
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    from pipeline import steps

    params = args.params if getattr(args, "params", None) else ["params.yaml"]
    c = args.command
    try:
        if c == "validate":
            res = [r.to_json() for r in steps.runs_of(params)]
        elif c == "generate":
            res = steps.generate(params, args.out)
        elif c == "download":
            res = steps.download(args.dataset, args.out, args.lock)
        elif c == "prepare":
            res = steps.prepare(
                args.dataset,
                args.raw,
                args.out,
                args.layout,
                args.drop_untranslated,
                args.heldout_dev,
            )
        elif c == "plan":
            res = steps.plan(params, args.out)
        elif c == "tokenizer":
            res = steps.tokenizer(params, args.out)
        elif c == "pretrain":
            res = steps.pretrain(params, args.tokenizer, args.out, args.checkpoints)
        elif c == "pseudo-tasks":
            res = steps.pseudo_tasks(params, args.run, args.out)
        elif c == "clusters":
            res = steps.clusters(params, args.tlp, args.datasets, args.k, args.seed, args.out)
        elif c == "train":
            res = steps.train(
                params, args.run, args.out, args.checkpoints, args.predictions, args.scores
            )
        elif c == "predict":
            res = steps.predict(params, args.run, args.model, args.out)
        elif c == "score-run":
            res = steps.score_run(params, args.run, args.predictions, args.out)
        elif c == "score":
            res = steps.score_files(args.task, args.lang, args.gold, args.pred, args.style)
        elif c == "represent":
            res = steps.represent(params, args.run, args.model, args.out, args.max_points)
        elif c == "forgetting-pretrained":
            res = steps.forgetting_pretrained(params, args.out)
        elif c == "forgetting":
            res = steps.forgetting(params, args.run, args.model, args.out, args.pretrained)
        elif c == "toy2d":
            res = steps.toy2d(params, args.out)
        elif c == "report":
            res = steps.report(
                params, args.scores, args.runs, args.out, args.representations, args.forgetting
            )
            print(res.pop("summary"))
            print(f"Report: {res['page']}")
            res = None
        elif c == "summary":
            res = steps.summary(args.results, args.width)
        elif c == "dvc-yaml":
            res = steps.dvc_yaml(args.out, args.check)
        else:  # pragma: no cover - argparse rejects unknown commands
            raise AssertionError(c)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    if res is not None:
        print(steps.dump(res))
    return 0
