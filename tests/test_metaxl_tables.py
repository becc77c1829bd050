"""Xia et al.-shaped tables: rows per label (several experiments under one label compete per
column on dev, never on test), the test cells (mean ± sd over seeds), the average, the Welch
t-test of MetaXL against JT, and the options table."""

from __future__ import annotations

import json
import statistics

import pytest

from pipeline.config import experiment_runs, load_params, validate
from pipeline.report.metaxl_tables import roles, write_metaxl_tables
from pipeline.report.stats import welch_t
from pipeline.report.tables import _fmt_p
from tests.conftest import REPO


@pytest.fixture()
def cfg():
    c = load_params([REPO / "params.yaml"])
    c["seeds"] = [1, 2]
    pair = {"target": ["l1", "l2"], "tlps": ["ner/l0", "ner/target"], "steps": 2}
    pair["train_examples"] = {"ner/l0": 50}
    c["experiments"] = {
        "tgt": {"method": "mtl", "target": ["l1", "l2"], "tlps": ["ner/target"], "steps": 2},
        "jt": {"method": "jt", **pair, "row": "JT"},
        "jtr": {"method": "jt", **pair, "rtn": True, "row": "JT w/ RTN"},
        # two RTN learning rates under one row: per column the better on dev
        "xa": {"method": "metaxl", **pair, "meta_lr": 1e-3, "row": "MetaXL"},
        "xb": {"method": "metaxl", **pair, "meta_lr": 1e-5, "row": "MetaXL"},
    }
    c["experiments"]["tgt"]["row"] = "target only"
    validate(c)
    return c


#: (test, dev) per experiment and target: xb is better on dev for l1 but worse on test
SCORES = {
    ("tgt", "l1"): (40, 40),
    ("tgt", "l2"): (30, 30),
    ("jt", "l1"): (60, 60),
    ("jt", "l2"): (50, 50),
    ("jtr", "l1"): (55, 55),
    ("jtr", "l2"): (45, 45),
    ("xa", "l1"): (70, 61),
    ("xa", "l2"): (58, 58),
    ("xb", "l1"): (62, 66),
    ("xb", "l2"): (52, 40),
}


def write_scores(cfg, tmp_path):
    files = []
    for r in experiment_runs(cfg):
        test, dev = SCORES[r.experiment, r.grid["target"]]
        jitter = r.seed * 0.5
        scores = {
            str(t): {
                "dev": {"main": dev + jitter, "f1": dev + jitter},
                "test": {"main": test + jitter, "f1": test + jitter},
            }
            for t in r.eval_tlps
        }
        sc = {"run": r.id, "experiment": r.experiment, "seed": r.seed, "grid": r.grid}
        f = tmp_path / f"{r.id}.json"
        f.write_text(json.dumps({**sc, "scores": scores}))
        files.append(f)
    return files


def test_rows_cells_choices_and_the_t_test(cfg, tmp_path):
    rows, members, jt = roles(cfg)
    assert rows == ["target only", "JT", "JT w/ RTN", "MetaXL"]
    assert members["MetaXL"] == ["xa", "xb"] and jt == {"MetaXL": "JT"}
    assert write_metaxl_tables(cfg, write_scores(cfg, tmp_path), tmp_path)
    text = (tmp_path / "tables/metaxl.md").read_text()
    ner = text.split("## NER (span F1)")[1]
    assert "| | l1 | l2 | avg |" in ner
    # l1: xb wins on dev (66 vs 61) and its test score (62) is reported, not xa's better 70
    assert "| MetaXL | 62.8 ± 0.4 | 58.8 ± 0.4 | 60.8 |" in ner
    assert "| target only | 40.8 ± 0.4 | 30.8 ± 0.4 | 35.8 |" in ner
    choices = json.loads((tmp_path / "tables/metaxl_choices.json").read_text())
    assert choices["MetaXL"] == {"ner/l1": "xb", "ner/l2": "xa"}
    p1 = _fmt_p(welch_t([62.5, 63.0], [60.5, 61.0]).p)
    assert f"| p, MetaXL vs JT | {p1} |" in ner
    assert "## Sentiment" not in text  # no SA runs, no SA block
    rows_csv = (tmp_path / "tables/metaxl.csv").read_text().splitlines()
    assert "ner,MetaXL,xb,l1,f1,2,62.75," in "\n".join(rows_csv)
    cell = next(r for r in rows_csv if r.startswith("ner,MetaXL,xb,l1"))
    assert float(cell.split(",")[-1]) == pytest.approx(statistics.stdev([62.5, 63.0]))
    options = (tmp_path / "tables/metaxl_options.md").read_text()
    assert "| MetaXL (xb) | metaxl | ner/l0, ner/target | ner/l0: 50 |" in options
    assert "| JT w/ RTN (jtr) | jt |" in options and "| True |" in options


def test_no_paired_runs_no_tables(tmp_path):
    c = load_params([REPO / "params.yaml"])
    for name in ("target_only", "jt", "jt_rtn", "metaxl"):
        c["experiments"][name] = None
    assert not write_metaxl_tables(c, [], tmp_path)
    assert not (tmp_path / "tables").exists()
