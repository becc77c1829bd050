"""`python -m pipeline summary`: the headline table from what the report wrote.

The report is written from tests/test_report.py's hand-made score files, whose means and sds are
known by construction; the terminal table must show them, star the best of each column and carry
the significance marks of the report's Table 4 shape.
"""

from __future__ import annotations

import pytest

from pipeline.cli import main
from pipeline.report import write_report
from pipeline.report.summary import Cell, Headline, load
from tests.test_report import CFG, files


@pytest.fixture
def results(tmp_path):
    out = tmp_path / "results"
    write_report(CFG, files(tmp_path), [], out, check=False)
    (out / "report.html").write_text("<!DOCTYPE html>")
    return out


def _row(text: str, name: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.strip("│┃ ").startswith(name + " ")]
    return line


def test_summary_prints_mean_sd_best_and_significance(results, capsys):
    assert main(["summary", "--results", str(results), "--width", "200"]) == 0
    text = capsys.readouterr().out
    head = _row(text, "experiment")
    # TLPs grouped by task, then the averages over TLPs (seen, zero-shot)
    assert [h.strip() for h in head.strip("┃ ").split("┃")] == [
        "experiment",
        "seeds",
        "ner/l0",
        "nli/l0",
        "avg",
        "zero-shot avg",
    ]

    def cells(name: str) -> list[str]:
        return [c.strip() for c in _row(text, name).strip("│ ").split("│")]

    # stl: 80/81/82 and 60/61/62 -> 81.0 ± 1.0, 61.0 ± 1.0; mean per seed 70/71/72; no zero-shot
    assert cells("stl") == ["stl", "3", "81.0 ± 1.0", "61.0 ± 1.0", "71.0 ± 1.0", "–"]
    # mtl: the best ner/l0 (90); the baselines carry no significance mark
    assert cells("mtl") == ["mtl", "3", "90.0 ± 1.0 ★", "58.0 ± 1.0", "74.0 ± 1.0", "40.0 ± 1.0"]
    # rep_t5: Table 4 finds both cells different from the columns' best-on-dev baselines (stl
    # on ner/l0: 84 vs 81, mtl on nli/l0: 70 vs 58; Welch p < 0.05); best nli/l0, avg, zero-shot
    assert cells("rep_t5") == [
        "rep_t5",
        "3",
        "84.0 ± 1.0*",
        "70.0 ± 1.0* ★",
        "77.0 ± 1.0 ★",
        "49.0 ± 1.0 ★",
    ]
    assert "Report: " + str(results / "report.html") in text


def test_summary_marks_the_best_only_among_two_or_more(results):
    h = load(results)
    assert h.best()["ner/l0"] == {(): 90.0} and h.seeds["rep_t1"] == 3
    assert h.rows["rep_t1"]["nli/l0"].text() == "61.0 ± 1.0*"  # 61 vs mtl's 58: p = 0.021


def test_summary_without_results_is_a_one_line_error(tmp_path, capsys):
    assert main(["summary", "--results", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'none' / 'metrics.json'} not found: run snakemake first"


def test_summary_into_a_pipe_never_wraps_cells(results, capsys, monkeypatch):
    """`make demo | tee log`: no terminal, a narrow COLUMNS; each row stays one line."""
    monkeypatch.setenv("COLUMNS", "40")
    assert main(["summary", "--results", str(results)]) == 0
    line = _row(capsys.readouterr().out, "rep_t5")
    assert "84.0 ± 1.0*" in line and "49.0 ± 1.0 ★" in line


def test_experiments_on_other_tlps_are_other_comparisons():
    """A baseline on some of a grid's TLPs joins the grid; experiments on other TLPs get their
    own table; an average over fewer TLPs, or over other zero-shot TLPs, is not ranked with
    the full rows'."""
    nan = float("nan")
    c = lambda m: Cell(m, nan)  # noqa: E731
    rows = {
        "mtl": {"nli/l0": c(50), "ner/l0": c(70), "avg": c(60), "zero-shot avg": c(30)},
        "reptile": {"nli/l0": c(52), "ner/l0": c(66), "avg": c(59), "zero-shot avg": c(31)},
        "stl": {"nli/l0": c(49), "avg": c(99)},  # one TLP: its avg is not comparable
        "zs": {"nli/l0": c(40), "avg": c(40), "zero-shot avg": c(45)},  # other zero-shot TLPs
        "jt": {"sa/l3": c(80), "avg": c(80)},
        "metaxl": {"sa/l3": c(82), "avg": c(82)},
    }
    zs = {
        "mtl": frozenset({"nli/l4"}),
        "reptile": frozenset({"nli/l4"}),
        "zs": frozenset({"nli/l1", "nli/l2"}),
    }
    cols = ["ner/l0", "nli/l0", "sa/l3", "avg", "zero-shot avg"]
    h = Headline("main", cols, rows, dict.fromkeys(rows, 3), zs)
    grid, metaxl = h.comparisons()
    assert list(grid.rows) == ["mtl", "reptile", "stl", "zs"]
    assert grid.columns == ["ner/l0", "nli/l0", "avg", "zero-shot avg"]
    assert list(metaxl.rows) == ["jt", "metaxl"] and metaxl.columns == ["sa/l3", "avg"]
    assert grid.is_best("reptile", "nli/l0") and grid.is_best("mtl", "ner/l0")
    # stl's 99 averages one TLP: shown unranked, the best avg is mtl's over both
    assert not grid.ranked("stl", "avg") and not grid.is_best("stl", "avg")
    assert grid.is_best("mtl", "avg")
    # zero-shot: reptile beats mtl on nli/l4; zs (45) averages other TLPs and ranks alone
    assert grid.is_best("reptile", "zero-shot avg") and not grid.is_best("zs", "zero-shot avg")
    assert metaxl.is_best("metaxl", "sa/l3") and metaxl.is_best("metaxl", "avg")
