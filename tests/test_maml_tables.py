"""Liu et al.'s table shapes (pipeline.report.maml_tables) on hand-made score files."""

from __future__ import annotations

import json

from pipeline.config import experiment_runs, load_params, validate
from pipeline.report.maml_tables import write_maml_tables
from tests.conftest import REPO


def config():
    c = load_params([REPO / "params.yaml"])
    c["seeds"] = [1, 2]
    c["experiments"] = {
        "en": {"method": "mtl", "steps": 5, "tlps": ["nli/l0"], "row": "EN"},
        "xla": {
            "method": "xla_maml",
            "init": "en",
            "train_split": "dev",
            "aux": ["l2", "l3"],
            "tlps": ["nli/l0", "nli/aux"],
            "support": ["l0"],
            "query": ["aux"],
            "sampling": "random",
            "steps": 3,
            "row": "XLA",
        },
    }
    c["zero_shot_langs"] = ["l2", "l3", "l4"]
    c["tlps"] = ["nli/l0"]
    validate(c)
    return c


#: (run row, language) -> (dev, test) per seed 1, 2
SCORES = {
    ("en", "l0"): ((80, 80), (80, 82)),
    ("en", "l2"): ((50, 50), (50, 52)),
    ("en", "l3"): ((40, 40), (40, 42)),
    ("en", "l4"): ((30, 30), (30, 32)),
    # on l4, aux l2 is better on dev but aux l3 on test: the best-entry row must take l2's test
    ("xla.l2", "l0"): ((81, 81), (81, 81)),
    ("xla.l2", "l2"): ((99, 99), (99, 99)),  # trained on: shown as –
    ("xla.l2", "l3"): ((45, 45), (44, 46)),
    ("xla.l2", "l4"): ((36, 36), (33, 33)),
    ("xla.l3", "l0"): ((79, 79), (79, 79)),
    ("xla.l3", "l2"): ((55, 55), (54, 56)),
    ("xla.l3", "l3"): ((99, 99), (99, 99)),
    ("xla.l3", "l4"): ((32, 32), (39, 39)),
}


def write_scores(tmp_path, cfg):
    files = []
    for r in experiment_runs(cfg):
        row = r.row
        scores = {}
        for t in r.eval_tlps:
            dev, test = SCORES[row, t.lang]
            i = r.seed - 1
            scores[str(t)] = {"dev": {"main": dev[i]}, "test": {"main": test[i]}}
        sc = {
            "run": r.id,
            "experiment": r.experiment,
            "method": r.method,
            "seed": r.seed,
            "init": r.init,
            "train_tlps": [str(t) for t in r.train_tlps],
            **({"grid": r.grid} if r.grid else {}),
            "scores": scores,
        }
        f = tmp_path / f"{r.id}.json"
        f.write_text(json.dumps(sc))
        files.append(f)
    return files


def test_tables_3_4_shape_with_dev_picked_best_entry(tmp_path):
    cfg = config()
    assert write_maml_tables(cfg, write_scores(tmp_path, cfg), tmp_path / "out")
    text = (tmp_path / "out/tables/xla_maml.md").read_text()
    lines = {ln.split(" | ")[0].strip("| "): ln for ln in text.splitlines() if ln.startswith("| ")}
    assert lines["model"] == "| model | l0 | l2 | l3 | l4 | avg |"
    assert lines["EN"] == "| EN | 81.0 ± 1.4 | 51.0 ± 1.4 | 41.0 ± 1.4 | 31.0 ± 1.4 | 51.0 |"
    # the auxiliary language the row trained on is –, and the average marks the gap
    assert lines["XLA l2→X"] == "| XLA l2→X | 81.0 ± 0.0 | – | 45.0 ± 1.4 | 33.0 ± 0.0 | 53.0* |"
    # best entry per column on dev: l0 -> l2 (81 > 79), l2 -> l3 (only one not trained on it),
    # l3 -> l2, l4 -> l2 (dev 36 > 32) although l3 is better on test (39)
    best = lines["XLA best entry (dev)"].split(" | ")
    assert best[1:5] == ["81.0 ± 0.0", "55.0 ± 1.4", "45.0 ± 1.4", "33.0 ± 0.0"]
    choices = json.loads((tmp_path / "out/tables/maml_choices.json").read_text())
    assert choices["zero-shot:xla"] == {
        "nli/l0": "xla.l2",
        "nli/l2": "xla.l3",
        "nli/l3": "xla.l2",
        "nli/l4": "xla.l2",
    }
    assert "## nli: few-shot" not in text


def test_figure_2_pairs_and_options_tables(tmp_path):
    cfg = config()
    write_maml_tables(cfg, write_scores(tmp_path, cfg), tmp_path / "out")
    pairs = (tmp_path / "out/tables/xla_pairs.md").read_text()
    assert "| aux | nli/l0 | nli/l2 | nli/l3 | nli/l4 |" in pairs
    assert "| l2 | +0.0 | – | +4.0 | +2.0 |" in pairs  # minus the baseline's test means
    assert "| l3 | -2.0 | +4.0 | – | +8.0 |" in pairs
    opts = (tmp_path / "out/tables/maml_options.md").read_text()
    assert "| XLA l2→X | zero-shot |" in opts and "| random |" in opts


def test_nothing_without_maml_experiments(tmp_path):
    cfg = load_params([REPO / "params.yaml"])
    cfg["experiments"] = {"mtl": {"method": "mtl", "steps": 1}}
    assert write_maml_tables(cfg, [], tmp_path) is False
    assert not (tmp_path / "tables").exists()
