"""Scoring: matching predictions to gold, gold/prediction file formats, error messages."""

from __future__ import annotations

import json
import random

import pytest

from pipeline import metrics, scoring
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


# --- per-example sufficient statistics -----------------------------------------------------------

#: The keys of each task's result that get per-example stats (all decomposable metrics).
STATS_KEYS = {
    "nli": {"accuracy"},
    "pa": {"accuracy"},
    "sa": {"accuracy", "f1"},
    "pos": {"accuracy"},
    "ner": {
        "f1",
        "precision",
        "recall",
        "f1_strict",
        "precision_strict",
        "recall_strict",
        "accuracy",
    },
    "qa": {"exact_match", "f1"},
    "mtod": {"intent_accuracy", "slot_f1", "slot_precision", "slot_recall", "intent_slot_mean"},
}


def _drop_some(rng, preds: dict, allow_none: bool = True) -> dict:
    """Missing predictions: the id absent, or (not QA, whose format has no null) None."""
    out = {}
    for rid, p in preds.items():
        r = rng.random()
        if r < (0.08 if allow_none else 0.15):
            continue
        out[rid] = None if r < 0.15 else p
    out["not-in-gold"] = next(iter(preds.values()))
    return out


def _random_iob2(rng, n_tokens: int, types=("PER", "LOC", "ORG"), p_entity=0.3) -> list[str]:
    tags, prev = [], "O"
    for _ in range(n_tokens):
        r = rng.random()
        if prev != "O" and r < 0.4:
            tags.append("I-" + prev[2:])
        elif r < 0.4 + p_entity:
            tags.append("B-" + rng.choice(types))
        else:
            tags.append("O")
        prev = tags[-1]
    return tags


def _corrupt_tags(rng, tags: list[str], types=("PER", "LOC", "ORG")) -> list[str]:
    """Random errors, among them chunks opened by I- (seqeval default and strict differ)."""
    out = []
    for tag in tags:
        r = rng.random()
        if r < 0.1 and tag.startswith("B-"):
            out.append("I-" + tag[2:])  # an I- opening the chunk
        elif r < 0.2:
            out.append(rng.choice(["O", "B-" + rng.choice(types), "I-" + rng.choice(types)]))
        else:
            out.append(tag)
    return out


def _gen_classification(rng, task: str, n: int):
    labels = {
        "nli": ["entailment", "neutral", "contradiction"],
        "pa": ["0", "1"],
        "sa": ["positive", "negative", "neutral"],
    }[task]
    gold, preds = [], {}
    for i in range(n):
        rid, label = f"{task}{i}", rng.choice(labels)
        rec = {"id": rid, "lang": "de", "label": label}
        if task == "sa":
            rec["text"] = "t"
        else:
            rec.update(text_a="a", text_b="b")
        gold.append(rec)
        preds[rid] = label if rng.random() < 0.6 else rng.choice(labels)
    return gold, preds


def _gen_tagging(rng, task: str, n: int):
    upos = ["NOUN", "VERB", "DET", "ADJ", "PROPN", "SCONJ", "PUNCT"]
    gold, preds = [], {}
    for i in range(n):
        n_tok = rng.randint(1, 9)
        if task == "pos":
            tags = [rng.choice(upos) for _ in range(n_tok)]
            pred = [t if rng.random() < 0.7 else rng.choice(upos) for t in tags]
        else:
            # some sentences without any entity, in gold or in the prediction
            tags = ["O"] * n_tok if rng.random() < 0.25 else _random_iob2(rng, n_tok)
            pred = ["O"] * n_tok if rng.random() < 0.1 else _corrupt_tags(rng, tags)
        gold.append({"id": f"s{i}", "lang": "en", "tokens": ["w"] * n_tok, "tags": tags})
        preds[f"s{i}"] = pred
    return gold, preds


_QA_WORDS = ["la", "casa", "el", "Madrid", "río", "una", "de", "2020", "¿qué?", "Paris,", "北京"]


def _gen_qa(rng, n: int, lang: str):
    gold, preds = [], {}
    for i in range(n):
        answers = [
            " ".join(rng.choice(_QA_WORDS) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(1, 3))
        ]
        gold.append(_qa(f"q{i}", answers, lang=lang))
        r = rng.random()
        if r < 0.3:
            pred = rng.choice(answers)
        elif r < 0.6:  # partial overlap
            pred = " ".join(rng.choice(answers).split()[:1] + [rng.choice(_QA_WORDS)])
        elif r < 0.65:
            pred = ""
        else:
            pred = " ".join(rng.choice(_QA_WORDS) for _ in range(rng.randint(1, 3)))
        preds[f"q{i}"] = pred
    return gold, preds


def _gen_mtod(rng, n: int):
    intents = ["alarm/set_alarm", "weather/find", "reminder/set_reminder"]
    types = ("datetime", "location", "reminder")
    gold, preds = [], {}
    for i in range(n):
        n_tok = rng.randint(1, 8)
        slots = _random_iob2(rng, n_tok, types=types, p_entity=0.25)
        intent = rng.choice(intents)
        gold.append(
            {"id": f"u{i}", "lang": "th", "tokens": ["w"] * n_tok, "slots": slots, "intent": intent}
        )
        preds[f"u{i}"] = {
            "intent": intent if rng.random() < 0.7 else rng.choice(intents),
            "slots": _corrupt_tags(rng, slots, types=types),
        }
    return gold, preds


def _generated(task: str, seed: int, n: int = 120):
    """(gold, predictions, lang, style) of `task` with random errors and missing predictions."""
    rng = random.Random(f"{task}-{seed}")
    lang, style = "en", None
    if task in ("nli", "pa", "sa"):
        gold, preds = _gen_classification(rng, task, n)
    elif task in ("pos", "ner"):
        gold, preds = _gen_tagging(rng, task, n)
    elif task.startswith("qa"):
        style = task.split("-")[1]
        lang = ["es", "zh", "de"][seed % 3] if style == "mlqa" else "en"
        gold, preds = _gen_qa(rng, n, lang)
    else:
        gold, preds = _gen_mtod(rng, n)
    return gold, _drop_some(rng, preds, allow_none=style is None), lang, style


def _check_examples(task: str, gold, preds, lang, style) -> dict:
    plain = scoring.score(task, lang, gold, preds, style=style)
    out = scoring.score(task, lang, gold, preds, style=style, with_examples=True)
    examples = out.pop("examples")
    assert out == plain  # the aggregate is the same with or without examples
    assert examples["ids"] == [rec["id"] for rec in gold]
    assert set(examples["stats"]) == STATS_KEYS[task]
    for key, st in examples["stats"].items():
        kind = st["kind"]
        assert len(st["values"]) == len(gold)
        assert all(len(row) == metrics.STAT_KINDS[kind] for row in st["values"])
        assert all(type(x) is (float if task == "qa" else int) for row in st["values"] for x in row)
        assert metrics.metric_from_stats(kind, st["values"]) == pytest.approx(out[key], abs=1e-9)
    # JSON-ready: a round trip changes nothing
    assert json.loads(json.dumps(examples)) == examples
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("task", ["nli", "pa", "sa", "pos", "ner", "qa-squad", "qa-mlqa", "mtod"])
def test_example_stats_recompute_every_decomposable_metric(task, seed):
    gold, preds, lang, style = _generated(task, seed)
    assert any(preds.get(rec["id"]) is None for rec in gold)  # some predictions missing
    out = _check_examples(task.split("-")[0], gold, preds, lang, style)
    assert out["n_missing"] > 0
    if task == "ner":
        assert out["f1"] != out["f1_strict"]  # chunks opened by I- are in the draws


def test_example_stats_ner_i_opened_chunks_and_sentences_without_entities():
    gold = [
        {"id": "a", "lang": "en", "tokens": list("wxyz"), "tags": ["B-PER", "I-PER", "O", "B-LOC"]},
        {"id": "b", "lang": "en", "tokens": list("wx"), "tags": ["O", "O"]},
        {"id": "c", "lang": "en", "tokens": list("wxy"), "tags": ["O", "B-ORG", "I-ORG"]},
        {"id": "d", "lang": "en", "tokens": list("w"), "tags": ["O"]},
    ]
    preds = {"a": ["I-PER", "I-PER", "O", "B-LOC"], "b": ["O", "I-LOC"], "c": None}
    out = _check_examples("ner", gold, preds, "en", None)
    st = scoring.score("ner", "en", gold, preds, with_examples=True)["examples"]["stats"]
    # default mode: PER (I- opened) and LOC match; b predicts a LOC; c and d predict nothing
    assert st["f1"]["values"] == [[2, 2, 2], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    # strict IOB2: no chunk starts with I-
    assert st["f1_strict"]["values"] == [[1, 1, 2], [0, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert st["precision"]["values"] == [[2, 2], [0, 1], [0, 0], [0, 0]]
    assert st["recall_strict"]["values"] == [[1, 2], [0, 0], [0, 1], [0, 0]]
    assert out["f1"] == pytest.approx(100 * 4 / 6) and out["f1_strict"] == pytest.approx(50.0)


def test_example_stats_no_entity_anywhere_scores_zero():
    gold = [
        {"id": str(i), "lang": "en", "tokens": ["w", "x"], "tags": ["O", "O"]} for i in range(3)
    ]
    out = _check_examples("ner", gold, {"0": ["O", "O"], "1": None}, "en", None)
    assert out["f1"] == out["precision"] == out["recall"] == out["f1_strict"] == 0.0


def test_example_stats_qa_by_hand():
    gold = [_qa("q1", ["una"]), _qa("q2", ["Madrid", "en Madrid"]), _qa("q3", ["casa"])]
    preds = {"q1": "una", "q2": "Madrid centro"}
    st = scoring.score("qa", "es", gold, preds, style="mlqa", with_examples=True)["examples"]
    # q1: '' == '' (EM 1) but F1 0 under MLQA; q2: best F1 vs "Madrid" 2/3; q3 unanswered: 0
    assert st["stats"]["exact_match"] == {"kind": "mean", "values": [[1.0], [0.0], [0.0]]}
    assert st["stats"]["f1"]["values"] == [[0.0], [pytest.approx(2 / 3)], [0.0]]


def test_metric_options_of_a_run():
    from pipeline.evaluation import main_key, qa_style

    assert qa_style("qa", "mlqa") == "mlqa" and qa_style("qa", "squad") == "squad"
    assert qa_style("qa", "mlqa", {"qa_normalization": "squad"}) == "squad"  # every language
    assert qa_style("qa", "mlqa", {"qa_normalization": "official"}) == "mlqa"
    assert qa_style("ner", "panx", {"qa_normalization": "squad"}) is None
    assert main_key("ner") == "f1" and main_key("ner", {"main": {"ner": "accuracy"}}) == "accuracy"
    assert main_key("pos", {"main": {"ner": "accuracy"}}) == "accuracy"  # its own default
