"""Report: tables over seeds from hand-made score files.

Cells are mean ± sd over seeds, 95% intervals come from the per-example statistics, meta rows
carry Welch's t-test against the best-on-dev baseline of their column, and every pick is made on
dev, never on test.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from scipy.stats import ttest_ind

from pipeline.errors import PipelineError
from pipeline.report import collect, paper_tables, seed_table, stats, write_report

SEEDS = (1, 2, 3)


def score_file(tmp_path, run, exp, seed, scores, zero_shot=(), examples=None):
    """`scores`: {tlp: (dev, test)}; `examples`: {tlp: per-example correctness list} (test)."""
    res = {"run": run, "experiment": exp, "seed": seed, "zero_shot_tlps": list(zero_shot)}
    res["scores"] = {}
    for tlp, (d, t) in scores.items():
        test = {"main": t, "accuracy": t, "main_key": "accuracy"}
        if examples and tlp in examples:
            vals = [[float(v)] for v in examples[tlp]]
            test["examples"] = {
                "ids": [f"q{i}" for i in range(len(vals))],
                "stats": {"accuracy": {"kind": "mean", "values": vals}},
            }
        res["scores"][tlp] = {"dev": {"main": d, "accuracy": d}, "test": test}
    p = tmp_path / f"{run}.json"
    p.write_text(json.dumps(res))
    return p


CFG = {
    "seeds": list(SEEDS),
    "report": {"metric": "main", "bootstrap": 300, "bootstrap_seed": 7},
    "experiments": {
        "stl": {"method": "stl"},
        "mtl": {"method": "mtl"},
        "rep_t1": {"method": "reptile", "row": "All TLPs / Temp"},
        "rep_t5": {"method": "reptile", "row": "All TLPs / Temp"},
    },
}

# per experiment: {tlp: ((dev per seed), (test per seed))}
GRID = {
    "stl": {"nli/l0": ((70, 70, 70), (60, 61, 62)), "ner/l0": ((80, 80, 80), (80, 81, 82))},
    "mtl": {
        "nli/l0": ((72, 72, 72), (57, 58, 59)),
        "ner/l0": ((79, 79, 79), (89, 90, 91)),
        "ner/l9": ((50, 50, 50), (39, 40, 41)),  # zero-shot
    },
    # rep_t1 is better on nli dev but worse on nli test: the table must follow dev
    "rep_t1": {
        "nli/l0": ((75, 75, 75), (60, 61, 62)),
        "ner/l0": ((81, 81, 81), (84, 85, 86)),
        "ner/l9": ((55, 55, 55), (46, 47, 48)),
    },
    "rep_t5": {
        "nli/l0": ((74, 74, 74), (69, 70, 71)),
        "ner/l0": ((82, 82, 82), (83, 84, 85)),
        "ner/l9": ((54, 54, 54), (48, 49, 50)),
    },
}


def files(tmp_path, grid=GRID):
    out = []
    for exp, cells in grid.items():
        for i, s in enumerate(SEEDS):
            scores = {t: (dev[i], test[i]) for t, (dev, test) in cells.items()}
            zs = [t for t in scores if t.endswith("l9")]
            if exp == "stl":  # one run per TLP
                for t in scores:
                    run = f"stl.{t.replace('/', '.')}.s{s}"
                    out.append(score_file(tmp_path, run, exp, s, {t: scores[t]}))
            elif exp.startswith("rep"):  # meta run (zero-shot) + fine-tuning run (the rest)
                out.append(
                    score_file(tmp_path, f"{exp}.s{s}", exp, s, {t: scores[t] for t in zs}, zs)
                )
                seen = {t: v for t, v in scores.items() if t not in zs}
                out.append(score_file(tmp_path, f"{exp}.s{s}.ft.all", exp, s, seen))
            else:
                out.append(score_file(tmp_path, f"{exp}.s{s}", exp, s, scores, zs))
    return out


def test_collect_merges_runs_and_seeds_into_rows(tmp_path):
    res = collect(files(tmp_path), "main")
    assert res.cell("stl", "test", "nli/l0") == {1: 60, 2: 61, 3: 62}
    assert res.cell("mtl", "zs_test", "ner/l9") == {1: 39, 2: 40, 3: 41}
    assert "ner/l9" not in res.split("mtl", "test")
    assert res.cell("rep_t1", "test", "ner/l0") == {1: 84, 2: 85, 3: 86}
    assert res.runs["rep_t1", "test", "ner/l0", 2] == "rep_t1.s2.ft.all"


def test_a_table_with_three_seeds_shows_mean_and_sd(tmp_path):
    res = collect(files(tmp_path), "main")
    text, cols = seed_table({e: r["test"] for e, r in res.values.items()}, "T")
    assert cols == ["ner/l0", "nli/l0"]
    # stl: ner 80/81/82 -> 81.0 ± 1.0, nli 60/61/62 -> 61.0 ± 1.0; mean per seed 70/71/72
    assert "| stl | 81.0 ± 1.0 | 61.0 ± 1.0 | 71.0 ± 1.0 |" in text
    # the best mean of a column is bold: mtl on ner/l0 (90), rep_t5 on nli/l0 (70)
    assert "| mtl | **90.0 ± 1.0** |" in text and "**70.0 ± 1.0**" in text


def test_paper_tables_select_on_dev_and_mark_significance(tmp_path):
    res = collect(files(tmp_path), "main")
    shaped, choices, rows = paper_tables(CFG, res)
    t2 = shaped["paper_table2.md"]
    # nli/l0: best baseline on dev is mtl (72 dev, 58 test); best meta on dev is rep_t1 (61 test)
    # -> +3.0, although rep_t5 has the better test score (70)
    assert choices["table2"]["All TLPs / Temp"]["nli/l0"] == {"model": "rep_t1", "baseline": "mtl"}
    # ner/l0: best baseline on dev is stl (80 dev, 81 test); meta pick rep_t5 (82 dev, 84 test)
    assert choices["table2"]["All TLPs / Temp"]["ner/l0"] == {"model": "rep_t5", "baseline": "stl"}
    # 83/84/85 vs 80/81/82 and 60/61/62 vs 57/58/59: Welch p = 0.021 < 0.05, both marked
    p = ttest_ind([83, 84, 85], [80, 81, 82], equal_var=False).pvalue
    assert p < 0.05
    assert "| All TLPs / Temp | +3.0 ± 1.0* | +3.0 ± 1.0* | +3.0 |" in t2
    assert f"| All TLPs / Temp | {p:.3f} | {p:.3f} |" in t2  # the p-value table
    t4 = shaped["paper_table4.md"]  # rep_t5 nli: 70 vs 58 -> +12, p tiny
    assert "| rep_t5 | +3.0 ± 1.0* | **+12.0 ± 1.0*** | +7.5 |" in t4
    t3 = shaped["paper_table3.md"]  # zero-shot, against the MTL row: 47-40, 49-40
    assert "| rep_t1 | +7.0 ± 1.0* | +7.0 |" in t3 and "| rep_t5 | **+9.0 ± 1.0*** | +9.0 |" in t3
    row = next(
        r for r in rows if r["table"] == "table2" and r["tlp"] == "ner/l0" and r["p"] == r["p"]
    )
    assert row["model"] == "rep_t5" and row["p"] == pytest.approx(p)


def test_no_mark_when_the_seeds_overlap(tmp_path):
    grid = {
        "stl": {"nli/l0": ((70, 70, 70), (60, 64, 62))},
        "rep_t1": {"nli/l0": ((75, 75, 75), (59, 66, 63))},  # +0.7, noisy: not significant
    }
    shaped, _, _ = paper_tables(CFG, collect(files(tmp_path, grid), "main"))
    p = ttest_ind([59, 66, 63], [60, 64, 62], equal_var=False).pvalue
    assert "| All TLPs / Temp | +0.7 ± 3.5 | +0.7 |" in shaped["paper_table2.md"]
    assert f"{p:.3f}" in shaped["paper_table2.md"]


def test_intervals_come_from_the_per_example_statistics(tmp_path):
    rng = np.random.default_rng(0)
    per_seed = {s: (rng.random(50) < 0.6 + 0.1 * i).astype(int) for i, s in enumerate(SEEDS)}
    fs = []
    for s in SEEDS:
        acc = 100 * per_seed[s].mean()
        fs.append(
            score_file(
                tmp_path,
                f"mtl.s{s}",
                "mtl",
                s,
                {"nli/l0": (acc, acc)},
                examples={"nli/l0": per_seed[s].tolist()},
            )
        )
    cfg = {**CFG, "experiments": {"mtl": {"method": "mtl"}}}
    out = tmp_path / "results"
    write_report(cfg, fs, [], out, check=False)
    seed = 7 + zlib.crc32(b"mtl/test/nli/l0")
    lo, hi = stats.bootstrap_ci(
        "mean", [per_seed[s].reshape(-1, 1).astype(float) for s in SEEDS], n_boot=300, seed=seed
    )
    cells = (out / "tables/cells.csv").read_text().splitlines()
    (line,) = [c for c in cells if c.startswith("mtl,test,nli/l0,")]
    assert line.split(",")[-2:] == [repr(lo), repr(hi)]
    assert f"| mtl | [{lo:.1f}, {hi:.1f}] |" in (out / "tables/test.md").read_text()
    assert lo < 100 * np.mean([per_seed[s].mean() for s in SEEDS]) < hi


def test_write_report_outputs(tmp_path):
    out = tmp_path / "results"
    run_dir = tmp_path / "runs" / "mtl.s1"
    run_dir.mkdir(parents=True)
    (run_dir / "history.json").write_text(
        json.dumps(
            [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5, "dev_mean": 40.0, "batches": 16}]
        )
    )
    ft_dir = tmp_path / "runs" / "rep_t1.s1.ft.all" / "ner.l0"
    ft_dir.mkdir(parents=True)
    (ft_dir / "history.json").write_text(json.dumps([{"step": 1, "loss": 1.0, "dev_mean": 5}]))
    res = write_report(CFG, files(tmp_path), [run_dir, ft_dir.parent], out, check=False)
    metrics = json.loads((out / "metrics.json").read_text())
    mtl = metrics["experiments"]["mtl"]
    assert mtl["test_mean"] == pytest.approx(74.0) and mtl["test_sd"] == pytest.approx(1.0)
    assert mtl["zero_shot_test_mean"] == pytest.approx(40.0) and mtl["seeds"] == [1, 2, 3]
    assert mtl["test"] == {"nli/l0": pytest.approx(58.0), "ner/l0": pytest.approx(90.0)}
    assert (out / "plots/train_loss/mtl.s1.csv").read_text() == "step,loss\n1,2.0\n2,1.5\n"
    assert (out / "plots/dev_score/mtl.s1.csv").read_text() == "step,dev_mean\n2,40.0\n"
    assert (out / "plots/dev_score/rep_t1.s1.ft.ner.l0.csv").exists()
    # Fig. 7c: dev score by gradient computations, for histories that count them
    assert (out / "plots/efficiency/mtl.s1.csv").read_text() == "batches,dev_mean,step\n16,40.0,2\n"
    assert not (out / "plots/efficiency/rep_t1.s1.ft.ner.l0.csv").exists()
    assert "| mtl |" in res["summary"] and "±" in res["summary"]
    per_seed = (out / "tables/per_seed.csv").read_text().splitlines()
    assert "stl,2,stl.nli.l0.s2,test,nli/l0,61.0" in per_seed
    assert len(per_seed) == 1 + sum(2 * 3 * len(c) for c in GRID.values())
    for name in (
        "test.md",
        "dev.md",
        "zero_shot.md",
        "paper_table2.md",
        "paper_table3.md",
        "paper_table4.md",
        "cells.csv",
        "paper_tables.csv",
        "paper_choices.json",
    ):
        assert (out / "tables" / name).exists()


def test_report_refuses_scores_that_are_not_the_configs_runs(tmp_path):
    cfg = {
        **CFG,
        "tlps": ["nli/l0"],
        "zero_shot_langs": [],
        "training": {"batch_size": 8},
        "finetune": {"default": {"epochs": 1, "lrs": [1e-3]}},
        "experiments": {"mtl": {"method": "mtl", "steps": 1}},
    }
    fs = [score_file(tmp_path, f"mtl.s{s}", "mtl", s, {"nli/l0": (1, 1)}) for s in (1, 2)]
    with pytest.raises(PipelineError, match=r"missing scores of mtl\.s3.*dvc-yaml"):
        write_report(cfg, fs, [], tmp_path / "out")


def test_baselines_sharing_a_row_merge(tmp_path):
    cfg = {
        "seeds": [1],
        "report": {"metric": "main"},
        "experiments": {
            "stl_nli": {"method": "stl", "row": "Baselines"},
            "stl_ner": {"method": "stl", "row": "Baselines"},
            "rep": {"method": "reptile"},
        },
    }
    fs = [
        score_file(tmp_path, "stl_nli.nli.l0.s1", "stl_nli", 1, {"nli/l0": (70, 60)}),
        score_file(tmp_path, "stl_ner.ner.l0.s1", "stl_ner", 1, {"ner/l0": (80, 81)}),
        score_file(tmp_path, "rep.s1.ft.all", "rep", 1, {"nli/l0": (71, 65), "ner/l0": (79, 80)}),
    ]
    shaped, _, _ = paper_tables(cfg, collect(fs, "main"))
    t2 = shaped["paper_table2.md"]
    assert "| Baselines | 81.0 | 60.0 | 70.5 |" in t2  # one seed: no sd
    assert "| rep | -1.0 | +5.0 | +2.0 |" in t2
    assert "| rep | n/a | n/a |" in t2  # one seed: no test
