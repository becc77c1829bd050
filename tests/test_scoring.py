"""Scoring: matching predictions to gold, gold/prediction file formats, error messages."""

from __future__ import annotations

import json

import pytest

from pipeline import scoring
from pipeline.data.store import save_prepared
from pipeline.errors import DataError, PipelineError
from pipeline.records import TLP


def _qa(rid: str, answers: list[str], lang: str = "es") -> dict:
    context = " ".join(answers) + " y más."
    starts = [context.index(a) for a in answers]
    return {
        "id": rid,
        "lang": lang,
        "context": context,
        "question": "¿Qué?",
        "answers": {"text": answers, "answer_start": starts},
    }


def _squad_json(path, version) -> None:
    """A SQuAD v1.1-layout file as MLQA publishes it (`version` may be a number)."""
    obj = {
        "version": version,
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "Compró una casa en Madrid.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "¿Qué compró?",
                                "answers": [{"answer_start": 7, "text": "una"}],
                            },
                            {
                                "id": "q2",
                                "question": "¿Dónde?",
                                "answers": [
                                    {"answer_start": 19, "text": "Madrid"},
                                    {"answer_start": 16, "text": "en Madrid"},
                                ],
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")


# --- score -------------------------------------------------------------------------------------


def test_default_qa_style():
    assert scoring.default_qa_style("mlqa") == "mlqa"
    assert scoring.default_qa_style("MLQA") == "mlqa"
    assert scoring.default_qa_style("xquad") == "squad"
    assert scoring.default_qa_style("tydiqa") == "squad"
    assert scoring.default_qa_style(None) == "squad"


def test_score_qa_styles_and_counts():
    gold = [_qa("q1", ["una"]), _qa("q2", ["Madrid", "en Madrid"]), _qa("q3", ["casa"])]
    preds = {"q1": "una", "q2": "en Madrid", "other": "x"}  # q3 unanswered
    squad = scoring.score("qa", "es", gold, preds)
    assert squad["n"] == 3 and squad["n_missing"] == 1 and squad["n_extra"] == 1
    assert squad["exact_match"] == pytest.approx(200 / 3)
    assert squad["f1"] == pytest.approx(200 / 3)
    mlqa = scoring.score("qa", "es", gold, preds, style="mlqa")
    assert mlqa["exact_match"] == pytest.approx(200 / 3)  # '' == '' for q1
    assert mlqa["f1"] == pytest.approx(100 / 3)  # q1 F1 is 0


def test_score_qa_rejects_non_string_answer_and_blank_gold():
    with pytest.raises(DataError, match="'q1'"):
        scoring.score("qa", "es", [_qa("q1", ["casa"])], {"q1": ["casa"]})
    blank = _qa("q1", ["casa"])
    blank["answers"] = {"text": [""], "answer_start": [0]}
    with pytest.raises(DataError, match="blank"):
        scoring.score("qa", "es", [blank], {"q1": ""})


def test_score_tagging_missing_counts_as_wrong_and_length_error():
    gold = [
        {"id": "s1", "lang": "en", "tokens": ["John", "lives"], "tags": ["B-PER", "O"]},
        {"id": "s2", "lang": "en", "tokens": ["Paris"], "tags": ["B-LOC"]},
    ]
    out = scoring.score("ner", "en", gold, {"s1": ["B-PER", "O"]})
    assert out["n"] == 2 and out["n_missing"] == 1
    assert out["recall"] == pytest.approx(50.0) and out["precision"] == pytest.approx(100.0)
    with pytest.raises(DataError, match=r"'s2'.*2 tags predicted for 1 tokens"):
        scoring.score("ner", "en", gold, {"s1": ["B-PER", "O"], "s2": ["O", "O"]})


def test_score_pos():
    gold = [{"id": "s1", "lang": "en", "tokens": ["a", "b", "c"], "tags": ["DET", "NOUN", "VERB"]}]
    out = scoring.score("pos", "en", gold, {"s1": ["DET", "NOUN", "NOUN"]})
    assert out["accuracy"] == pytest.approx(200 / 3)
    assert "seqeval_f1_upos" in out and "f1" not in out


def test_score_classification():
    gold = [
        {"id": "1", "lang": "es", "text": "bien", "label": "positive"},
        {"id": "2", "lang": "es", "text": "mal", "label": "negative"},
        {"id": "3", "lang": "es", "text": "bueno", "label": "positive"},
    ]
    out = scoring.score("sa", "es", gold, {"1": "positive", "2": "positive"})
    assert out["accuracy"] == pytest.approx(100 / 3)
    # positive: tp 1, fp 1, fn 1 -> F1 1/2
    assert out["f1"] == pytest.approx(50.0)
    pair = [{"id": "p", "lang": "en", "text_a": "a", "text_b": "b", "label": "entailment"}]
    out = scoring.score("nli", "en", pair, {"p": "entailment"})
    assert out == {"n": 1, "accuracy": 100.0, "n_missing": 0, "n_extra": 0}


def test_score_mtod_and_prediction_shape():
    gold = [
        {
            "id": "u1",
            "lang": "es",
            "tokens": ["pon", "alarma", "mañana"],
            "slots": ["O", "O", "B-datetime"],
            "intent": "alarm/set_alarm",
        }
    ]
    out = scoring.score(
        "mtod", "es", gold, {"u1": {"intent": "alarm/set_alarm", "slots": ["O", "O", "B-datetime"]}}
    )
    assert out["intent_accuracy"] == 100.0 and out["slot_f1"] == 100.0
    assert out["intent_slot_mean"] == 100.0
    with pytest.raises(DataError, match="'u1'.*intent"):
        scoring.score("mtod", "es", gold, {"u1": "alarm/set_alarm"})
    with pytest.raises(DataError, match="2 slots predicted for 3 tokens"):
        scoring.score("mtod", "es", gold, {"u1": {"intent": "x", "slots": ["O", "O"]}})


def test_score_style_only_for_qa():
    gold = [{"id": "p", "lang": "en", "text_a": "a", "text_b": "b", "label": "x"}]
    with pytest.raises(PipelineError, match="qa only"):
        scoring.score("nli", "en", gold, {}, style="mlqa")
    with pytest.raises(PipelineError, match="unknown QA style"):
        scoring.score("qa", "es", [_qa("q1", ["casa"])], {}, style="bleu")


# --- files -------------------------------------------------------------------------------------


def test_load_predictions_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "preds.json"
    path.write_text('{\n  "a": "x",\n}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"preds\.json:3: invalid JSON"):
        scoring.load_predictions(path)
    path.write_text('["x"]', encoding="utf-8")
    with pytest.raises(DataError, match="expected a JSON object"):
        scoring.load_predictions(path)


def test_load_gold_squad_json_numeric_version(tmp_path):
    path = tmp_path / "dev-context-es-question-es.json"
    _squad_json(path, 1.0)
    gold = scoring.load_gold(path, "qa", "es")
    assert [g["id"] for g in gold] == ["q1", "q2"]
    assert gold[1]["answers"] == {"text": ["Madrid", "en Madrid"], "answer_start": [19, 16]}
    assert gold[0]["lang"] == "es" and gold[0]["context"].startswith("Compró")
    _squad_json(path, "1.1")
    assert len(scoring.load_gold(path, "qa", "es")) == 2


def test_score_files_squad_json_both_styles(tmp_path):
    gold = tmp_path / "gold.json"
    _squad_json(gold, 1.0)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"q1": "una", "q2": "Madrid"}), encoding="utf-8")
    squad = scoring.score_files("qa", "es", gold, pred)
    assert (squad["exact_match"], squad["f1"]) == (100.0, 100.0)
    mlqa = scoring.score_files("qa", "es", gold, pred, style="mlqa")
    assert (mlqa["exact_match"], mlqa["f1"]) == (100.0, 50.0)


def test_score_files_prediction_error_names_files(tmp_path):
    gold = tmp_path / "gold.json"
    _squad_json(gold, 1.0)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"q1": 3}), encoding="utf-8")
    with pytest.raises(DataError, match=r"pred\.json.*'q1'"):
        scoring.score_files("qa", "es", gold, pred)


def test_load_gold_jsonl_filters_lang_and_reports_bad_lines(tmp_path):
    path = tmp_path / "gold.jsonl"
    recs = [
        {"id": "1", "lang": "en", "tokens": ["x"], "tags": ["O"]},
        {"id": "2", "lang": "es", "tokens": ["y"], "tags": ["B-LOC"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    gold = scoring.load_gold(path, "ner", "es")
    assert [g["id"] for g in gold] == ["2"]
    with pytest.raises(DataError, match="no gold records for lang 'hi'"):
        scoring.load_gold(path, "ner", "hi")
    path.write_text(json.dumps(recs[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"gold\.jsonl:2: invalid JSON"):
        scoring.load_gold(path, "ner", "en")
    path.write_text(json.dumps({"id": "1", "lang": "en", "text": "x", "label": "y"}) + "\n")
    with pytest.raises(DataError, match=r"gold\.jsonl:1: record has fields"):
        scoring.load_gold(path, "ner", "en")


def test_load_gold_prepared_split_dir(tmp_path):
    recs = [_qa("a", ["casa"]), _qa("b", ["Madrid", "en Madrid"])]
    save_prepared(tmp_path / "prepared", {TLP("qa", "es"): {"dev": recs}})
    gold = scoring.load_gold(tmp_path / "prepared" / "qa" / "es" / "dev", "qa", "es")
    assert gold == recs
    out = scoring.score("qa", "es", gold, {"a": "la casa", "b": "Madrid"}, style="mlqa")
    assert out["exact_match"] == 100.0 and out["f1"] == 100.0


def test_load_gold_rejects_other_formats(tmp_path):
    with pytest.raises(DataError, match="not found"):
        scoring.load_gold(tmp_path / "nope.jsonl", "qa", "es")
    with pytest.raises(DataError, match="accepted: a prepared split directory"):
        scoring.load_gold(tmp_path, "qa", "es")  # a directory without dataset_info.json
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("a\tb\n")
    with pytest.raises(DataError, match="accepted: .*SQuAD-format"):
        scoring.load_gold(tsv, "ner", "en")
    js = tmp_path / "dev.json"
    js.write_text("{}")
    with pytest.raises(DataError, match="unsupported gold file for ner"):
        scoring.load_gold(js, "ner", "en")
    with pytest.raises(DataError, match="not a SQuAD-format JSON"):
        scoring.load_gold(js, "qa", "en")


def test_score_rejects_repeated_gold_ids():
    with pytest.raises(DataError, match="2 records, 1 distinct ids"):
        scoring.score("qa", "sw", [_qa("q", ["a"]), _qa("q", ["b"])], {"q": "a"})
