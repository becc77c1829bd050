"""Report: tables from hand-made score files; paper-shaped tables pick on dev, never on test."""

from __future__ import annotations

import json

from pipeline.report import collect, markdown_table, paper_tables, write_report


def score_file(tmp_path, run, exp, scores, zero_shot=()):
    res = {
        "run": run,
        "experiment": exp,
        "scores": {
            tlp: {"dev": {"main": d, "accuracy": d}, "test": {"main": t, "accuracy": t}}
            for tlp, (d, t) in scores.items()
        },
        "zero_shot_tlps": list(zero_shot),
    }
    p = tmp_path / f"{run}.json"
    p.write_text(json.dumps(res))
    return p


CFG = {
    "report": {"metric": "main"},
    "experiments": {
        "stl": {"method": "stl"},
        "mtl": {"method": "mtl"},
        "rep_t1": {"method": "reptile", "row": "All TLPs / Temp"},
        "rep_t5": {"method": "reptile", "row": "All TLPs / Temp"},
    },
}


def files(tmp_path):
    return [
        score_file(tmp_path, "stl.nli.l0", "stl", {"nli/l0": (70, 60)}),
        score_file(tmp_path, "stl.ner.l0", "stl", {"ner/l0": (80, 81)}),
        score_file(
            tmp_path,
            "mtl",
            "mtl",
            {"nli/l0": (72, 58), "ner/l0": (79, 90), "ner/l9": (50, 40)},
            ["ner/l9"],
        ),
        # rep_t1 is better on nli dev but worse on nli test: the table must follow dev
        score_file(tmp_path, "rep_t1.ft.nli.l0", "rep_t1", {"nli/l0": (75, 61)}),
        score_file(tmp_path, "rep_t5.ft.nli.l0", "rep_t5", {"nli/l0": (74, 70)}),
        score_file(tmp_path, "rep_t1.ft.ner.l0", "rep_t1", {"ner/l0": (81, 85)}),
        score_file(tmp_path, "rep_t5.ft.ner.l0", "rep_t5", {"ner/l0": (82, 84)}),
        score_file(tmp_path, "rep_t1", "rep_t1", {"ner/l9": (55, 47)}, ["ner/l9"]),
        score_file(tmp_path, "rep_t5", "rep_t5", {"ner/l9": (54, 49)}, ["ner/l9"]),
    ]


def test_collect_merges_runs_into_rows(tmp_path):
    table = collect(files(tmp_path), "main")
    assert table["stl"]["test"] == {"nli/l0": 60, "ner/l0": 81}
    assert table["mtl"]["zs_test"] == {"ner/l9": 40} and "ner/l9" not in table["mtl"]["test"]
    assert table["rep_t1"]["test"] == {"nli/l0": 61, "ner/l0": 85}


def test_markdown_table_mean_column():
    md = markdown_table({"a": {"nli/l0": 50.0, "ner/l0": 70.0}}, "T")
    assert "| model | ner/l0 | nli/l0 | mean |" in md
    assert "| a | 70.0 | 50.0 | 60.0 |" in md


def test_paper_tables_select_on_dev(tmp_path):
    table = collect(files(tmp_path), "main")
    shaped, choices = paper_tables(CFG, table)
    t2 = shaped["paper_table2.md"]
    # nli/l0: best baseline on dev is mtl (72 dev, 58 test); best meta on dev is rep_t1 (61 test)
    # -> +3.0, although rep_t5 has the better test score (70)
    assert choices["table2"]["All TLPs / Temp"]["nli/l0"] == {"model": "rep_t1", "baseline": "mtl"}
    # ner/l0: best baseline on dev is stl (80 dev, 81 test); meta pick rep_t5 (82 dev, 84 test)
    assert choices["table2"]["All TLPs / Temp"]["ner/l0"] == {"model": "rep_t5", "baseline": "stl"}
    assert "| All TLPs / Temp | +3.0 | +3.0 | +3.0 |" in t2
    t4 = shaped["paper_table4.md"]
    assert "| rep_t5 | +3.0 | +12.0 | +7.5 |" in t4
    t3 = shaped["paper_table3.md"]  # zero-shot, against the MTL row: rep_t1 47-40, rep_t5 49-40
    assert "| rep_t1 | +7.0 | +7.0 |" in t3 and "| rep_t5 | +9.0 | +9.0 |" in t3


def test_write_report_outputs(tmp_path):
    out = tmp_path / "results"
    run_dir = tmp_path / "runs" / "mtl"
    run_dir.mkdir(parents=True)
    (run_dir / "history.json").write_text(
        json.dumps([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5, "dev_mean": 40.0}])
    )
    res = write_report(CFG, files(tmp_path), [run_dir], out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["experiments"]["mtl"]["test_mean"] == 74.0
    assert metrics["experiments"]["mtl"]["zero_shot_test_mean"] == 40.0
    assert (out / "plots/train_loss/mtl.csv").read_text() == "step,loss\n1,2.0\n2,1.5\n"
    assert (out / "plots/dev_score/mtl.csv").read_text() == "step,dev_mean\n2,40.0\n"
    assert "| mtl |" in res["summary"]
    for name in (
        "test.md",
        "dev.md",
        "zero_shot.md",
        "paper_table2.md",
        "paper_table3.md",
        "paper_table4.md",
    ):
        assert (out / "tables" / name).exists()


def test_baselines_sharing_a_row_merge(tmp_path):
    cfg = {
        "report": {"metric": "main"},
        "experiments": {
            "stl_nli": {"method": "stl", "row": "Baselines"},
            "stl_ner": {"method": "stl", "row": "Baselines"},
            "rep": {"method": "reptile"},
        },
    }
    fs = [
        score_file(tmp_path, "stl_nli.nli.l0", "stl_nli", {"nli/l0": (70, 60)}),
        score_file(tmp_path, "stl_ner.ner.l0", "stl_ner", {"ner/l0": (80, 81)}),
        score_file(tmp_path, "rep.ft.nli.l0", "rep", {"nli/l0": (71, 65)}),
        score_file(tmp_path, "rep.ft.ner.l0", "rep", {"ner/l0": (79, 80)}),
    ]
    shaped, _ = paper_tables(cfg, collect(fs, "main"))
    t2 = shaped["paper_table2.md"]
    assert "| Baselines | 81.0 | 60.0 | 70.5 |" in t2
    assert "| rep | -1.0 | +5.0 | +2.0 |" in t2
