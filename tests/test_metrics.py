"""Metrics against hand-computed values (official SQuAD v1.1 / MLQA behaviour, seqeval, sklearn)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import metrics
from pipeline.errors import PipelineError

# --- SQuAD v1.1 --------------------------------------------------------------------------------


def test_squad_normalize_lower_punct_articles_space():
    assert metrics.squad_normalize("The  Cat, sat!") == "cat sat"
    # punctuation goes before articles: "the-cat" -> "thecat", which is no article
    assert metrics.squad_normalize("the-cat") == "thecat"
    # only ASCII punctuation: guillemets stay
    assert metrics.squad_normalize("«hola»") == "«hola»"


def test_squad_f1_by_hand():
    # pred -> [cat, sat], gold -> [cat, sat, down]: P = 2/2, R = 2/3, F1 = 2*1*(2/3)/(1+2/3) = 0.8
    assert metrics.qa_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert metrics.qa_exact_match("the cat sat", "a cat sat down") == 0.0
    assert metrics.qa_exact_match("The cat sat.", "cat  sat") == 1.0


def test_qa_max_over_gold_answers_and_percentages():
    # vs "the cat" -> [cat]: P=1/2, R=1, F1=2/3; vs "cat sat down": 0.8 -> max 0.8 -> 80
    gold = [("q1", ["the cat", "cat sat down"])]
    out = metrics.qa_scores(gold, {"q1": "cat sat"})
    assert out["f1"] == pytest.approx(80.0)
    assert out["exact_match"] == 0.0
    out = metrics.qa_scores([("q1", ["dog", "The cat"])], {"q1": "cat"})
    assert out["exact_match"] == 100.0 and out["f1"] == 100.0


def test_qa_missing_prediction_scores_zero():
    gold = [("q1", ["Paris"]), ("q2", ["London"])]
    out = metrics.qa_scores(gold, {"q1": "paris"})
    assert out["exact_match"] == pytest.approx(50.0)
    assert out["f1"] == pytest.approx(50.0)
    assert out["n_answered"] == 1


def test_qa_question_without_gold_answer_is_an_error():
    with pytest.raises(ValueError, match="q1"):
        metrics.qa_scores([("q1", [])], {"q1": "x"})


def test_qa_unknown_style():
    with pytest.raises(ValueError, match="style"):
        metrics.qa_f1("a", "b", style="bleu")


# --- MLQA ------------------------------------------------------------------------------------


def test_mlqa_es_una_em_100_f1_0():
    # 'una' is an article: both sides normalize to '' -> EM compares '' == '' (1), F1 has no
    # common token (0), exactly as the official script.
    assert metrics.mlqa_normalize("una", "es") == ""
    out = metrics.qa_scores([("q", ["una"])], {"q": "una"}, style="mlqa", lang="es")
    assert out["exact_match"] == 100.0
    assert out["f1"] == 0.0
    # SQuAD style does not know Spanish articles: 100 / 100
    out = metrics.qa_scores([("q", ["una"])], {"q": "una"}, style="squad", lang="es")
    assert out["exact_match"] == 100.0 and out["f1"] == 100.0


def test_mlqa_es_articles():
    assert metrics.mlqa_normalize("Los Angeles y la ciudad", "es") == "angeles y ciudad"


def test_mlqa_de_articles():
    assert (
        metrics.mlqa_normalize("Die Katze und das Haus des Mannes", "de") == "katze und haus mannes"
    )
    assert metrics.qa_exact_match("der Hund", "Hund", style="mlqa", lang="de") == 1.0
    # 'der' is no English article
    assert metrics.qa_exact_match("der Hund", "Hund", style="mlqa", lang="en") == 0.0
    # whole words only: 'dieser' keeps its 'die'
    assert metrics.mlqa_normalize("dieser", "de") == "dieser"


def test_mlqa_vi_articles_whole_words():
    assert metrics.mlqa_normalize("những người của tôi", "vi") == "người tôi"
    assert metrics.mlqa_normalize("cáibàn", "vi") == "cáibàn"


def test_mlqa_ar_removes_every_al_even_inside_words():
    assert metrics.mlqa_normalize("الكتاب", "ar") == "كتاب"
    assert metrics.mlqa_normalize("مال", "ar") == "م"  # inside/end of a word too
    assert metrics.qa_exact_match("الكتاب", "كتاب", style="mlqa", lang="ar") == 1.0
    assert metrics.qa_exact_match("الكتاب", "كتاب", style="squad", lang="ar") == 0.0


def test_mlqa_unicode_punctuation_and_ascii_symbols():
    assert metrics.mlqa_normalize("«¿Hola?»", "es") == "hola"
    assert metrics.mlqa_normalize("a+b=c", "hi") == "abc"  # + and = are ASCII string.punctuation


def test_mlqa_hi_and_unknown_language_keep_articles_split_on_space():
    assert metrics.mlqa_tokens("the  cat", "hi") == ["the", "cat"]
    assert metrics.mlqa_tokens("the  cat", "sw") == ["the", "cat"]


def test_zh_mixed_segmentation():
    seg = metrics.mixed_segmentation("我爱 NLP,2020年！")
    assert seg == ["我", "爱", "NLP", ",", "2020", "年", "！"]
    # punctuation is removed before segmentation in normalization
    assert metrics.mlqa_tokens("北京大学, Peking University", "zh") == [
        "北",
        "京",
        "大",
        "学",
        "peking",
        "university",
    ]


def test_zh_f1_character_level_under_mlqa_only():
    # [北, 京] vs [北, 京, 大, 学]: P = 1, R = 1/2, F1 = 2/3
    assert metrics.qa_f1("北京", "北京大学", style="mlqa", lang="zh") == pytest.approx(2 / 3)
    # SQuAD style sees two different whitespace tokens
    assert metrics.qa_f1("北京", "北京大学", style="squad", lang="zh") == 0.0


# --- tagging ---------------------------------------------------------------------------------


def test_seqeval_default_counts_chunk_opened_by_I_strict_does_not():
    y_true = [["B-PER", "I-PER", "O", "B-LOC"]]
    y_pred = [["I-PER", "I-PER", "O", "B-LOC"]]
    out = metrics.tagging_scores(y_true, y_pred)
    assert out["f1"] == pytest.approx(100.0)
    # strict: only LOC predicted (P = 1/1), gold PER missed (R = 1/2) -> F1 = 2/3
    assert out["precision_strict"] == pytest.approx(100.0)
    assert out["recall_strict"] == pytest.approx(50.0)
    assert out["f1_strict"] == pytest.approx(200 / 3)


def test_tagging_missing_prediction_predicts_no_entity():
    y_true = [["B-PER", "O"], ["B-LOC"]]
    out = metrics.tagging_scores(y_true, [["B-PER", "O"], None])
    assert out["precision"] == pytest.approx(100.0)
    assert out["recall"] == pytest.approx(50.0)


def test_tagging_strict_rejects_non_iob2_tags():
    with pytest.raises(ValueError, match="not IOB2"):
        metrics.tagging_scores([["B-PER", "NOUN"]], [["B-PER", "NOUN"]])


def test_tagging_length_mismatch():
    with pytest.raises(ValueError, match="2 gold tags but 1"):
        metrics.tagging_scores([["O", "O"]], [["O"]])


def test_pos_accuracy_and_xtreme_seqeval_quirk():
    y_true = [["NOUN", "NOUN", "VERB"], ["DET", "ADJ"]]
    y_pred = [["NOUN", "PROPN", "VERB"], ["DET", "ADJ"]]
    out = metrics.pos_scores(y_true, y_pred)
    assert out["accuracy"] == pytest.approx(100 * 4 / 5)
    # seqeval on raw tags: gold chunks NOUN-run(0-1), VERB(2), DET, ADJ = 4; predicted NOUN(0),
    # PROPN(1), VERB(2), DET, ADJ = 5; correct VERB, DET, ADJ = 3 -> P 3/5, R 3/4, F1 = 2/3
    assert out["seqeval_f1_upos"] == pytest.approx(100 * 2 / 3)


def test_pos_missing_prediction_all_tokens_wrong():
    out = metrics.pos_scores([["NOUN", "VERB"], ["X"]], [["NOUN", "VERB"], None])
    assert out["accuracy"] == pytest.approx(100 * 2 / 3)


# --- classification ----------------------------------------------------------------------------


def test_accuracy_and_positive_class_f1():
    y_true = ["positive", "positive", "negative", "negative", "positive"]
    y_pred = ["positive", "positive", "positive", "negative", None]
    out = metrics.classification_scores(y_true, y_pred, positive_label="positive")
    assert out["accuracy"] == pytest.approx(60.0)
    # positive: tp 2, fp 1, fn 1 (the missing one) -> P = R = F1 = 2/3
    assert out["f1"] == pytest.approx(200 / 3)
    assert "f1" not in metrics.classification_scores(y_true, y_pred)


# --- MTOD --------------------------------------------------------------------------------------

GOLD_INTENTS = ["alarm/set_alarm", "weather/find"]
GOLD_SLOTS = [["O", "B-datetime", "I-datetime"], ["B-location", "O"]]


def test_mtod_intent_accuracy_slot_f1_and_token_macro_f1():
    out = metrics.mtod_scores(
        GOLD_INTENTS,
        ["alarm/set_alarm", "alarm/set_alarm"],
        GOLD_SLOTS,
        [["O", "B-datetime", "I-datetime"], ["O", "O"]],
    )
    assert out["intent_accuracy"] == pytest.approx(50.0)
    # spans: gold {datetime, location}, predicted {datetime}: P 1, R 1/2, F1 2/3
    assert out["slot_precision"] == pytest.approx(100.0)
    assert out["slot_recall"] == pytest.approx(50.0)
    assert out["slot_f1"] == pytest.approx(200 / 3)
    assert out["intent_slot_mean"] == pytest.approx((50 + 200 / 3) / 2)
    # tokens: O (tp 2, predicted 3, gold 2 -> F1 0.8), B-datetime 1, I-datetime 1, B-location 0
    assert out["slot_token_macro_f1"] == pytest.approx(100 * (0.8 + 1 + 1 + 0) / 4)


def test_mtod_missing_prediction():
    out = metrics.mtod_scores(
        GOLD_INTENTS,
        ["alarm/set_alarm", None],
        GOLD_SLOTS,
        [["O", "B-datetime", "I-datetime"], None],
    )
    assert out["intent_accuracy"] == pytest.approx(50.0)
    assert out["slot_f1"] == pytest.approx(200 / 3)  # no span predicted for the missing one
    # tokens of the missing one are wrong without adding a class: O (tp 1, pred 1, gold 2 -> 2/3)
    assert out["slot_token_macro_f1"] == pytest.approx(100 * (2 / 3 + 1 + 1 + 0) / 4)


# --- per-example sufficient statistics ---------------------------------------------------------


def test_metric_from_stats_by_hand():
    assert metrics.metric_from_stats("mean", [[1], [0], [1], [1]]) == 75.0
    assert metrics.metric_from_stats("mean", [[0.5], [1.0]]) == 75.0  # QA F1 per question
    assert metrics.metric_from_stats("ratio", [[2, 3], [1, 1]]) == 75.0
    # tp 3, predicted 4, gold 6: 2 * 3 / 10
    assert metrics.metric_from_stats("f1", [[1, 2, 3], [2, 2, 3]]) == pytest.approx(60.0)
    # intent 1/2 correct (50), slots f1 60 -> 55
    assert metrics.metric_from_stats(
        "intent_slot_mean", [[1, 1, 2, 3], [0, 2, 2, 3]]
    ) == pytest.approx(55.0)


def test_metric_from_stats_zero_denominators_are_zero():
    assert metrics.metric_from_stats("mean", []) == 0.0
    assert metrics.metric_from_stats("ratio", [[0, 0], [0, 0]]) == 0.0
    assert metrics.metric_from_stats("f1", [[0, 0, 0]]) == 0.0  # no entity anywhere
    assert metrics.metric_from_stats("f1", [[0, 2, 3]]) == 0.0  # no match
    assert metrics.metric_from_stats("intent_slot_mean", [[1, 0, 0, 0]]) == 50.0


def test_metric_from_sums_is_vectorized():
    sums = np.array([[[3, 4, 6], [0, 0, 0]], [[1, 1, 1], [0, 1, 0]]])
    np.testing.assert_allclose(metrics.metric_from_sums("f1", sums, 5), [[60.0, 0.0], [100.0, 0]])


def test_metric_from_stats_errors():
    with pytest.raises(ValueError, match="unknown stats kind"):
        metrics.metric_from_stats("auc", [[1]])
    with pytest.raises(ValueError, match="n x 3"):
        metrics.metric_from_stats("f1", [[1, 2]])
    with pytest.raises(ValueError, match="n x 1"):
        metrics.metric_from_stats("mean", [1, 0])


def test_classification_example_stats_by_hand():
    y_true = ["positive", "positive", "negative", "negative", "positive"]
    y_pred = ["positive", "positive", "positive", "negative", None]
    st = metrics.classification_example_stats(y_true, y_pred, positive_label="positive")
    assert st["accuracy"] == {"kind": "mean", "values": [[1], [1], [0], [1], [0]]}
    assert st["f1"] == {
        "kind": "f1",
        "values": [[1, 1, 1], [1, 1, 1], [0, 1, 0], [0, 0, 0], [0, 0, 1]],
    }
    out = metrics.classification_scores(y_true, y_pred, positive_label="positive")
    for key in ("accuracy", "f1"):
        assert metrics.metric_from_stats(st[key]["kind"], st[key]["values"]) == pytest.approx(
            out[key], abs=1e-9
        )
    assert set(metrics.classification_example_stats(y_true, y_pred)) == {"accuracy"}


def test_pos_example_stats_by_hand():
    st = metrics.pos_example_stats(
        [["NOUN", "VERB"], ["X"], ["DET"]], [["NOUN", "NOUN"], None, ["DET"]]
    )
    assert st == {"accuracy": {"kind": "ratio", "values": [[1, 2], [0, 1], [1, 1]]}}


def test_mtod_example_stats_by_hand():
    st = metrics.mtod_example_stats(
        GOLD_INTENTS,
        ["alarm/set_alarm", None],
        GOLD_SLOTS,
        [["O", "B-datetime", "I-datetime"], None],
    )
    assert set(st) == {
        "intent_accuracy",
        "slot_f1",
        "slot_precision",
        "slot_recall",
        "intent_slot_mean",
    }
    assert st["slot_f1"]["values"] == [[1, 1, 1], [0, 0, 1]]
    assert st["intent_slot_mean"]["values"] == [[1, 1, 1, 1], [0, 0, 0, 1]]
    assert metrics.metric_from_stats("intent_slot_mean", st["intent_slot_mean"]["values"]) == (
        pytest.approx((50 + 200 / 3) / 2)
    )


# --- main metric -------------------------------------------------------------------------------


def test_main_metric():
    assert metrics.main_metric("nli") == "accuracy"
    assert metrics.main_metric("pa") == "accuracy"
    assert metrics.main_metric("sa") == "accuracy"
    assert metrics.main_metric("pos") == "accuracy"
    assert metrics.main_metric("ner") == "f1"
    assert metrics.main_metric("qa") == "f1"
    assert metrics.main_metric("mtod") == "intent_slot_mean"
    with pytest.raises(PipelineError, match="unknown task"):
        metrics.main_metric("mt")
