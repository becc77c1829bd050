"""Every preset in configs/ runs end to end: real Snakemake, generated data in the preset's own
raw layouts, dataset names and language codes, and every table the preset promises.

One small overlay swaps only what cannot run offline or in CI time: the hub encoder for the tiny
local one (pretrained on the train splits: the releases carry no unlabelled text), the step and
epoch counts, the sequence lengths and dataset sizes, the number of seeds (one; the seeds
machinery is covered by the embedded default's end-to-end test) and the fine-tuning job layout
(`per-model`: the same fine-tuning runs, fewer start-ups). Everything else — TLPs, zero-shot
languages, selections, samplers, the fine-tuning protocol, metrics, sources, options, tables —
is the preset's own.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import (
    PAIRED_METHODS,
    active_experiments,
    experiment_runs,
    load_params,
    zero_shot_langs,
)
from pipeline.data.synthetic import generate, write_release
from pipeline.records import TLP
from pipeline.report.maml_tables import MAML_METHODS
from pipeline.report.xmetra_tables import XMETRA_METHODS
from tests.conftest import REPO
from tests.e2e import make_project, run

pytestmark = pytest.mark.e2e

PRESETS = sorted((REPO / "configs").glob("*.yaml"))
#: presets whose smoke test lives in a file of its own (tests/test_preset_<name>.py), so that
#: pytest-xdist's `--dist loadfile` runs the longest smokes on different workers
OWN_FILE = {"metaxl", "seq_reptile"}
#: the synthetic benchmark's task of each dataset a preset may read
TASK_OF = {
    "xnli": "nli",
    "mnli": "nli",
    "pawsx": "pa",
    "udpos": "pos",
    "panx": "ner",
    "squad": "qa",
    "squad_translate_train": "qa",
    "mlqa": "qa",
    "tydiqa": "qa",
    "mtod": "mtod",
    "marc": "sa",
    "sentiraama": "sa",
    "sentipers": "sa",
}
TRAIN, EVAL = 16, 8  # examples per TLP (train; dev and test)


def overlay(cfg: dict) -> dict:
    """The smoke overlay of a merged preset config (see the module docstring)."""
    exps = {}
    for name, exp in active_experiments(cfg).items():
        small = {"epochs": 1} if "epochs" in exp else {"steps": 2}
        if exp.get("method") == "seq_reptile":
            small["inner_steps"] = 4
        if exp.get("method") == "xmetra_ada":
            small["adapt_steps"] = 1
        if exp.get("embedder"):  # a hub sentence encoder: the tiny local one instead
            small["embedder"] = None
        if exp.get("method") in PAIRED_METHODS:  # RTN sizes of XLM-R base: the tiny encoder's
            small["bottleneck"] = None
            layers = exp.get("rtn_layers", ["last"])
            small["rtn_layers"] = list(dict.fromkeys(x if x in ("last", 0) else 1 for x in layers))
        exps[name] = small
    ft = cfg["finetune"]
    return {
        "seeds": [1],
        "encoder": {
            "name": None,
            "tokenizer": {"vocab_size": 300, "min_frequency": 1},
            "architecture": {
                "hidden_size": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 32,
                "max_position_embeddings": 96,
                "dropout": 0.1,
            },
            "pretrain": {"steps": 2, "batch_size": 8, "max_length": 32, "corpus": "train"},
        },
        "features": {
            "max_length": 48,
            "doc_stride": 16,
            "max_query_length": 12,
            "max_answer_length": 8,
            "tasks": {t: {"max_length": 64} for t in cfg["features"].get("tasks", {})},
        },
        "training": {
            "batch_size": 8,
            "eval_every": 2,
            "checkpoint_every": 1000,
            "max_dev_examples": EVAL,
            "grad_cosine_batches": 1,
            "grad_cosine_sketch": min(cfg["training"].get("grad_cosine_sketch", 0), 4096),
        },
        "finetune": {
            "jobs": "per-model",  # the job layout only: which TLPs, inits, epochs, lrs stay
            "default": {"epochs": 1},
            "tasks": {t: {"epochs": 1} for t in ft.get("tasks", {})},
        },
        "experiments": exps,
        "report": {"bootstrap": 50},
    }


def preset_languages(cfg: dict) -> tuple[list[str], list[str]]:
    """(training languages, source first; languages evaluated zero-shot only)."""
    tlps = [TLP.parse(t) for t in cfg["tlps"]]
    train = list(dict.fromkeys(["en", *(t.lang for t in tlps)]))
    tasks = {t.task for t in tlps}
    zs = list(dict.fromkeys(lg for task in sorted(tasks) for lg in zero_shot_langs(cfg, task)))
    return train, [lg for lg in zs if lg not in train]


def write_raw(cfg: dict, proj: Path) -> None:
    """The preset's datasets, generated in their real layouts and languages, in data/raw/."""
    train_langs, zs = preset_languages(cfg)
    tasks = sorted({TASK_OF[d] for d in cfg["data"]["datasets"]})
    pool = {str(t) for t in (TLP.parse(x) for x in cfg["tlps"])}
    sizes = {
        f"{task}/{lg}": {"train": TRAIN if f"{task}/{lg}" in pool else 0}
        for task in tasks
        for lg in train_langs
    }
    if any(e.get("method") in XMETRA_METHODS for e in active_experiments(cfg).values()):
        sizes.update(xmetra_sizes(cfg))
    raw = proj.parent / "synthetic"
    generate(
        raw,
        languages=len(train_langs) + len(zs),
        zero_shot=len(zs),
        tasks=tasks,
        codes=[*train_langs, *zs],
        sizes=sizes,
        eval_size=EVAL,
        text_sentences=0,
        verbose=False,
    )
    lay = cfg["data"]["layout"]
    for d in cfg["data"]["datasets"]:
        layout = lay.get(d, "original") if isinstance(lay, dict) else lay
        write_release(raw, d, proj / "data" / "raw" / d, layout)


def xmetra_sizes(cfg: dict) -> dict:
    """M'hamdi et al.'s pseudo-tasks take k + q items per intent from a quarter of a target's
    MTOD dev split and carve TyDiQA's dev set out of 10% of train: sizes at which the preset's
    own k = q = 9 still finds them (8 synthetic intents)."""
    out = {}
    for t in map(TLP.parse, cfg["tlps"]):
        source = t.lang == "en"
        if t.task == "mtod":
            out[str(t)] = {"train": 160} if source else {"train": TRAIN, "dev": 1000}
        elif t.task == "qa":
            out[str(t)] = {"train": 60 if source else 600}
    return out


SHARED = [p for p in PRESETS if p.stem not in OWN_FILE]


def test_every_preset_has_a_smoke_test():
    for name in OWN_FILE:
        assert (REPO / "configs" / f"{name}.yaml").exists(), name
        assert (REPO / "tests" / f"test_preset_{name}.py").exists(), name


@pytest.mark.parametrize("preset", SHARED, ids=[p.stem for p in SHARED])
def test_preset_runs_end_to_end(preset, tmp_path):
    run_preset(preset, tmp_path)


def run_preset(preset: Path, tmp_path: Path) -> None:
    """The smoke test of one preset (see the module docstring)."""
    proj = make_project(tmp_path / "project", commit=False)
    (proj / "params.yaml").write_text((REPO / "params.yaml").read_text())  # the real default
    rel = f"configs/{preset.name}"
    cfg = load_params([proj / "params.yaml", proj / rel])
    (proj / "smoke.yaml").write_text(yaml.safe_dump(overlay(cfg), sort_keys=False))
    write_raw(cfg, proj)
    smk = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", rel, "smoke.yaml"]
    res = run(smk, proj, timeout=3000)
    merged = load_params([proj / "params.yaml", proj / rel, proj / "smoke.yaml"])
    runs = experiment_runs(merged)

    # every run trained and scored; every table exists, with the preset's rows and columns
    for r in runs:
        assert (proj / "results/scores" / f"{r.id}.json").exists(), r.id
    tables = proj / "results/tables"
    with open(tables / "per_seed.csv") as f:
        assert {r["experiment"] for r in csv.DictReader(f)} == {r.row for r in runs if r.report}
    if any(r.method in MAML_METHODS for r in runs):
        check_maml_tables(merged, runs, tables)
    elif any(r.method in PAIRED_METHODS for r in runs):
        check_metaxl_tables(merged, runs, proj / "results")
    elif any(r.method in XMETRA_METHODS for r in runs):
        check_xmetra_tables(merged, runs, proj / "results")
    else:
        check_tarunesh_tables(merged, tables)
    check_options_reach_results(merged, runs, proj, res)


def check_maml_tables(merged: dict, runs: list, tables: Path) -> None:
    """Liu et al.'s shapes: zero-shot and few-shot blocks per task with every MAML row, the
    baseline rows, best-entry rows for several-entry grids, Figure 2 and Tables 6-7."""
    text = (tables / "xla_maml.md").read_text()
    exps = active_experiments(merged)
    for r in runs:
        if r.method not in MAML_METHODS or not r.report:
            continue
        exp = exps[r.experiment]
        aux = r.grid.get("aux")
        assert f"| {exp['row']} {aux}→X |" in text, r.id
        assert f"| {exp['init'] and exps[exp['init']]['row']} |" in text
        if len(exp.get("aux", [])) > 1:
            assert f"| {exp['row']} best entry (dev) |" in text, r.experiment
    tasks = {t.task for r in runs for t in r.eval_tlps}
    for task in tasks:
        assert f"## {task}: zero-shot" in text, task
        if any(r.method == "finetune" and r.train_tlps[0].task == task for r in runs):
            assert f"## {task}: few-shot" in text, task
    pairs = (tables / "xla_pairs.md").read_text()
    options = (tables / "maml_options.md").read_text()
    for name, exp in exps.items():
        if exp["method"] in MAML_METHODS:
            assert f"## {exp['row']} (baseline: {exp['init']})" in pairs, name
            for k, v in exp.items():
                if k in ("sampling", "parallel"):
                    assert f"| {v} |" in options, (name, k)


def check_xmetra_tables(merged: dict, runs: list, results: Path) -> None:
    """M'hamdi et al.'s shapes: Table 1 (MTOD intent accuracy and slot F1 per target) and Table 2
    (QA F1 per target, avg) with every row and the t-test row, and the sweep analyses."""
    text = (results / "tables/xmetra_ada.md").read_text()
    exps = active_experiments(merged)
    t1 = text.split("## Table 1: MTOD")[1].split("## Table 2")[0]
    t2 = text.split("## Table 2: QA (F1)")[1]
    for table, task in ((t1, "mtod"), (t2, "qa")):
        targets = [
            lg
            for n, e in exps.items()
            if e["method"] in XMETRA_METHODS and not e.get("sweep") and task in e["tlps"][0]
            for lg in e["target"]
        ]
        metrics = ["intent", "slot F1"] if task == "mtod" else ["F1"]
        head = " | ".join(f"{lg} {m}" for lg in dict.fromkeys(targets) for m in metrics)
        assert f"| | {head} " in table, (task, table[:300])
        for row in ("PRE", "MONO", "FT", "FT w/EN", "X-METRA", "X-METRA-ADA"):
            assert f"\n| {row} | " in table, (task, row)
        assert "| p, X-METRA-ADA vs FT |" in table, task
    sweeps = (results / "tables/xmetra_sweeps.md").read_text()
    for name, exp in exps.items():
        if not exp.get("sweep"):
            continue
        assert f"## {exp['row']} ({name})" in sweeps, name
        task = exp["tlps"][0].partition("/")[0]
        metric = "intent_accuracy" if task == "mtod" else "f1"
        plot = results / "plots/sweeps" / f"{name}.{task}.{exp['target'][0]}.{metric}.csv"
        values = [line.split(",")[0] for line in plot.read_text().splitlines()[1:]]
        assert values == [str(next(iter(e.values()))) for e in exp["sweep"]], (name, values)


def check_metaxl_tables(merged: dict, runs: list, results: Path) -> None:
    """Xia et al.'s shapes: per task every row over the target languages (NER with avg), the
    t-test rows of MetaXL vs JT, the options of every experiment, the dev choices among the RTN
    learning rates, and the representation analyses (Figures 1 and 3)."""
    text = (results / "tables/metaxl.md").read_text()
    exps = active_experiments(merged)
    ner = text.split("## NER (span F1)")[1].split("## Sentiment")[0]
    sa = text.split("## Sentiment (positive-class F1)")[1]
    for block, task in ((ner, "ner"), (sa, "sa")):
        mine = {n: e for n, e in exps.items() if e["tlps"][0].startswith(f"{task}/")}
        langs = list(dict.fromkeys(lg for e in mine.values() for lg in e["target"]))
        assert f"| | {' | '.join(langs)}{' | avg' if len(langs) > 1 else ''} |" in block, task
        for row in {e["row"] for e in mine.values()}:
            assert f"\n| {row} | " in block, (task, row)
        assert f"| p, MetaXL ({'5k' if task == 'ner' else '1k'} en) vs JT (" in block, task
    options = (results / "tables/metaxl_options.md").read_text()
    for name, e in exps.items():
        if e["method"] in PAIRED_METHODS:
            assert f"({name}) | {e['method']} |" in options, name
    choices = json.loads((results / "tables/metaxl_choices.json").read_text())
    picked = {t for t in choices["MetaXL (5k en)"] if t.startswith("ner/")}
    assert picked == {f"ner/{lg}" for lg in exps["ner_jt_en"]["target"]}
    represented = [r for r in runs if r.params.get("represent")]
    assert represented
    for r in represented:
        d = results / "representations" / r.id
        assert (d / "summary.json").exists(), r.id
        for task in {t.task for t in r.train_tlps}:
            assert (d / f"{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", r.id
    assert "Hausdorff" in (results / "tables/representations.md").read_text()


def check_tarunesh_tables(merged: dict, tables: Path) -> None:
    """Tarunesh et al.'s shapes: Table 2 (rows, TLP columns) and Table 3 (zero-shot columns)."""
    t2 = (tables / "paper_table2.md").read_text()
    rows = {exp.get("row", name) for name, exp in active_experiments(merged).items()}
    for row in rows:
        assert f"| {row} |" in t2 or f"| {row} |" in (tables / "paper_table4.md").read_text(), row
    header = next(line for line in t2.splitlines() if line.startswith("| model |"))
    assert sorted(header.strip("| ").split(" | ")[1:-1]) == sorted(merged["tlps"])
    t3 = (tables / "paper_table3.md").read_text()
    header = next(line for line in t3.splitlines() if line.startswith("| model |"))
    want_zs = {
        f"{t}/{lg}"
        for t in {TLP.parse(x).task for x in merged["tlps"]}
        for lg in zero_shot_langs(merged, t)
    }
    assert set(header.strip("| ").split(" | ")[1:-1]) == want_zs


def check_options_reach_results(merged: dict, runs: list, proj: Path, res) -> None:
    """The preset's metrics, sources and options reach the results."""
    scores = {p.stem: json.loads(p.read_text()) for p in (proj / "results/scores").glob("*.json")}
    main = merged.get("metrics", {}).get("main", {})
    sources = merged["data"].get("sources", {})
    for sc in scores.values():
        for tlp, splits in sc["scores"].items():
            task = TLP.parse(tlp).task
            for split, m in splits.items():
                if task in main:
                    assert m["main_key"] == main[task], (sc["run"], tlp)
                want = sources.get(task, {}).get(split)
                if isinstance(want, str):
                    assert m["source"] == want, (sc["run"], tlp, split)
    plan = json.loads((proj / "data/plan.json").read_text())["splits"]
    assert set(plan) >= {str(t) for r in runs for t in r.eval_tlps}
    assert "data sources:" in res.stderr  # several datasets: where each split comes from
