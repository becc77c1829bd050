"""M'hamdi et al.-shaped tables: rows, cells (mean ± sd of test scores over seeds), the Welch
t-test of X-METRA(-ADA) against FT, and the sweep analyses (tables and DVC plot files)."""

from __future__ import annotations

import json
import statistics

import pytest

from pipeline.config import experiment_runs, load_params, validate
from pipeline.report.xmetra_tables import roles, write_xmetra_tables
from tests.conftest import REPO


@pytest.fixture()
def cfg():
    c = load_params([REPO / "params.yaml"])
    c["seeds"] = [1, 2, 3]
    base = {"target": ["l1", "l2"], "tlps": ["mtod/target", "qa/target"], "steps": 2}
    x = {
        **base,
        "init": "pre",
        "tlps": ["mtod/l0", "mtod/target", "qa/l0", "qa/target"],
        "dev_tlps": ["mtod/target", "qa/target"],
        "support": ["l0"],
        "query": ["target"],
    }
    c["experiments"] = {
        "pre": {
            "method": "mtl",
            "steps": 2,
            "tlps": ["mtod/l0", "qa/l0"],
            "eval_tlps": ["mtod/l1", "mtod/l2", "qa/l1", "qa/l2"],
            "row": "PRE",
        },
        "mono": {"method": "mtl", **base, "train_split": "dev", "row": "MONO"},
        "ft": {"method": "mtl", **base, "init": "pre", "train_split": "dev", "row": "FT"},
        "ft_en": {
            "method": "mtl",
            **{k: v for k, v in x.items() if k not in ("support", "query")},
            "row": "FT w/EN",
        },
        "xm": {"method": "xmetra", **x, "row": "X-METRA"},
        "xa": {"method": "xmetra_ada", **x, "row": "X-METRA-ADA"},
        "xa_k": {
            "method": "xmetra_ada",
            **x,
            "seeds": [1, 2],
            "target": ["l2"],
            "sweep": [{"k": 1, "q": 1}, {"k": 3, "q": 3}],
        },
    }
    validate(c)
    return c


def value(exp: str, tlp: str, metric: str, seed: int, sweep: dict | None = None) -> float:
    """A distinct, reproducible score per cell."""
    bump = {"pre": 0, "mono": 5, "ft": 10, "ft_en": 12, "xm": 14, "xa": 20, "xa_k": 30}[exp]
    return 40 + bump + len(tlp) + len(metric) + seed * (1 + bump / 10) + (sweep or {}).get("k", 0)


def write_scores(cfg, tmp_path):
    files = []
    for r in experiment_runs(cfg):
        scores = {}
        for t in r.eval_tlps:
            keys = (
                ("intent_accuracy", "slot_f1", "slot_token_macro_f1")
                if t.task == "mtod"
                else ("f1", "exact_match")
            )
            test = {k: value(r.experiment, str(t), k, r.seed, r.sweep) for k in keys}
            scores[str(t)] = {"dev": dict(test), "test": test}
        sc = {
            "run": r.id,
            "experiment": r.experiment,
            "method": r.method,
            "seed": r.seed,
            "scores": scores,
            **({"grid": r.grid} if r.grid else {}),
            **({"sweep": r.sweep} if r.sweep else {}),
            **({"report": False} if not r.report else {}),
        }
        f = tmp_path / "scores" / f"{r.id}.json"
        f.parent.mkdir(exist_ok=True)
        f.write_text(json.dumps(sc))
        files.append(f)
    return files


def test_rows_and_the_ft_baseline_are_found_from_the_config(cfg):
    rows, ft, targets = roles(cfg)
    assert rows == ["pre", "mono", "ft", "ft_en", "xm", "xa"]
    assert ft == {"xm": "ft", "xa": "ft"} and targets == ["l1", "l2"]


def test_tables_hold_mean_sd_and_welch_p_against_ft(cfg, tmp_path):
    from scipy.stats import ttest_ind

    files = write_scores(cfg, tmp_path)
    assert write_xmetra_tables(cfg, files, tmp_path)
    md = (tmp_path / "tables" / "xmetra_ada.md").read_text()
    t1 = md.split("## Table 1: MTOD")[1].split("## Table 2")[0]
    assert "| | l1 intent | l1 slot F1 | l2 intent | l2 slot F1 |" in t1
    labels = [line.split("|")[1].strip() for line in t1.strip().splitlines()[2:]]
    assert labels[:6] == ["PRE", "MONO", "FT", "FT w/EN", "X-METRA", "X-METRA-ADA"]
    vals = [value("xa", "mtod/l2", "slot_f1", s) for s in (1, 2, 3)]
    cell = f"{statistics.fmean(vals):.1f} ± {statistics.stdev(vals):.1f}"
    row = next(line for line in t1.splitlines() if line.startswith("| X-METRA-ADA |"))
    assert row.split("|")[5].strip() == cell
    a = [value("xa", "mtod/l1", "intent_accuracy", s) for s in (1, 2, 3)]
    b = [value("ft", "mtod/l1", "intent_accuracy", s) for s in (1, 2, 3)]
    p = ttest_ind(a, b, equal_var=False).pvalue
    prow = next(line for line in t1.splitlines() if line.startswith("| p, X-METRA-ADA vs FT |"))
    assert prow.split("|")[2].strip() == (f"{p:.3f}" if p >= 0.001 else "<0.001")
    t2 = md.split("## Table 2: QA (F1)")[1]
    assert "| | l1 F1 | l2 F1 | avg |" in t2
    rows = list((tmp_path / "tables" / "xmetra_ada.csv").read_text().splitlines())
    assert any(",slot_token_macro_f1," in r for r in rows)  # the reference's metric, for comparison


def test_sweeps_give_a_table_and_one_plot_file_per_series(cfg, tmp_path):
    files = write_scores(cfg, tmp_path)
    write_xmetra_tables(cfg, files, tmp_path)
    md = (tmp_path / "tables" / "xmetra_sweeps.md").read_text()
    assert "## xa_k: k = q" in md
    plot = tmp_path / "plots" / "sweeps" / "xa_k.mtod.l2.intent_accuracy.csv"
    lines = plot.read_text().splitlines()
    assert lines[0] == "value,mean,sd,seeds"
    got = [line.split(",") for line in lines[1:]]
    assert [g[0] for g in got] == ["1", "3"]
    want = statistics.fmean(
        value("xa_k", "mtod/l2", "intent_accuracy", s, {"k": 3}) for s in (1, 2)
    )
    assert float(got[1][1]) == pytest.approx(want) and got[1][3] == "2"
    # swept runs stay out of the main table
    assert "xa_k" not in (tmp_path / "tables" / "xmetra_ada.csv").read_text()
