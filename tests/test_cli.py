"""The CLI contracts: JSON on stdout, one-line errors naming the file/key, no partial output."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.e2e import env


def cli(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
    )


def squad_file(path, version=1.0):
    data = {
        "version": version,
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "El gato negro duerme en la casa.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "¿Qué duerme?",
                                "answers": [{"text": "El gato negro", "answer_start": 0}],
                            },
                            {
                                "id": "q2",
                                "question": "¿Dónde?",
                                "answers": [{"text": "la casa", "answer_start": 24}],
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path.write_text(json.dumps(data, ensure_ascii=False))
    return path


def test_score_qa_prints_official_metrics(tmp_path):
    gold = squad_file(tmp_path / "gold.json")
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"q1": "gato negro", "q2": "en la casa"}))
    res = cli("score", "--task", "qa", "--lang", "es", "--gold", str(gold), "--pred", str(pred))
    assert res.returncode == 0, res.stderr
    squad = json.loads(res.stdout)
    # SQuAD style: q1 'gato negro' vs 'el gato negro' -> EM 0, F1 2*(1*2/3)/(1+2/3)=0.8
    # q2 'en la casa' vs 'la casa' -> EM 0, F1 2*(2/3*1)/(2/3+1) = 0.8
    assert squad["exact_match"] == 0 and abs(squad["f1"] - 80.0) < 1e-6
    res = cli(
        "score",
        "--task",
        "qa",
        "--lang",
        "es",
        "--gold",
        str(gold),
        "--pred",
        str(pred),
        "--style",
        "mlqa",
    )
    mlqa = json.loads(res.stdout)
    # MLQA es drops the articles el/la: 'gato negro' == 'gato negro'; 'en casa' vs 'casa' F1 2/3
    assert mlqa["exact_match"] == 50.0 and abs(mlqa["f1"] - (100 + 200 / 3) / 2) < 1e-6


def test_unknown_task_is_one_line_error(tmp_path):
    gold = squad_file(tmp_path / "gold.json")
    res = cli("score", "--task", "dance", "--lang", "es", "--gold", str(gold), "--pred", str(gold))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "unknown task 'dance'" in res.stderr


def test_corrupt_raw_file_names_file_and_line_and_leaves_nothing(tmp_path):
    raw = tmp_path / "raw" / "x-final" / "en"
    raw.mkdir(parents=True)
    (raw / "train.tsv").write_text(
        "id\tsentence1\tsentence2\tlabel\n1\ta\tb\t1\n2\tonly-two-fields\n"
    )
    (raw / "dev_2k.tsv").write_text("id\tsentence1\tsentence2\tlabel\n1\ta\tb\t0\n")
    (raw / "test_2k.tsv").write_text("id\tsentence1\tsentence2\tlabel\n1\ta\tb\t0\n")
    out = tmp_path / "prepared"
    res = cli("prepare", "--dataset", "pawsx", "--raw", str(tmp_path / "raw"), "--out", str(out))
    assert res.returncode == 2
    assert "train.tsv:3" in res.stderr and res.stderr.strip().count("\n") == 0
    assert not out.exists() and not any(p.name.startswith(".prepared") for p in tmp_path.iterdir())


def test_missing_raw_dir_and_unknown_dataset(tmp_path):
    res = cli(
        "prepare",
        "--dataset",
        "xnli",
        "--raw",
        str(tmp_path / "nope"),
        "--out",
        str(tmp_path / "o"),
    )
    assert res.returncode == 2 and "nope" in res.stderr
    res = cli(
        "prepare", "--dataset", "imagenet", "--raw", str(tmp_path), "--out", str(tmp_path / "o")
    )
    assert res.returncode == 2 and "unknown dataset 'imagenet'" in res.stderr


def test_unknown_run_and_bad_params(tmp_path):
    res = cli(
        "train", "--run", "nope", "--out", str(tmp_path / "o"), "--checkpoints", str(tmp_path / "c")
    )
    assert res.returncode == 2 and "unknown run 'nope'" in res.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  batch_size: -3\n")
    res = cli("validate", "--params", str(REPO / "params.yaml"), "--params", str(bad))
    assert (
        res.returncode == 2 and "training.batch_size: expected integer >= 1, got -3" in res.stderr
    )
    assert not (tmp_path / "o").exists()
