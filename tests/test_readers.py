"""Readers on tiny raw files with the real releases' quirks; expected values computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rawfixtures as fx

from pipeline.data.readers import (
    TableFormat,
    dedup_ids,
    read_conllu,
    read_file,
    read_marc_jsonl,
    read_mnli_jsonl,
    read_mtod_tsv,
    read_panx,
    read_pawsx_tsv,
    read_sentiment_table,
    read_squad_json,
    read_xnli_mt_train,
    read_xnli_tsv,
    read_xtreme_pair_tsv,
    read_xtreme_tagging_tsv,
)
from pipeline.errors import DataError, PipelineError
from pipeline.records import RECORD_FIELDS


def fields_ok(records: list[dict], ttype: str) -> bool:
    return all(tuple(r) == RECORD_FIELDS[ttype] for r in records)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- XNLI / MNLI


def test_xnli_tsv_keeps_literal_quotes_and_filters_languages(tmp_path):
    fx.write_xnli(tmp_path, ("en", "de"))
    res = read_xnli_tsv(tmp_path / "XNLI-1.0" / "xnli.dev.tsv")
    assert len(res.records) == 6
    assert fields_ok(res.records, "pair")
    first = res.records[0]
    assert first == {
        "id": "1",
        "lang": "en",
        "text_a": '"Hi," he said "to me.',  # quotes survive: quoting is off
        "text_b": "He spoke.",
        "label": "entailment",
    }
    de = read_xnli_tsv(tmp_path / "XNLI-1.0" / "xnli.dev.tsv", languages=["de"]).records
    assert [(r["lang"], r["id"], r["label"]) for r in de] == [
        ("de", "1", "entailment"),
        ("de", "2", "neutral"),
        ("de", "3", "contradiction"),
    ]


def test_xnli_tsv_short_line_names_file_and_line(tmp_path):
    fx.write_xnli(tmp_path, ("en",))
    path = tmp_path / "XNLI-1.0" / "xnli.dev.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:5])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:3: expected 19 tab-separated fields"):
        read_xnli_tsv(path)


def test_xnli_tsv_needs_its_header(tmp_path):
    path = write(tmp_path / "xnli.dev.tsv", "language\tlabel\ns1\ts2\n")
    with pytest.raises(DataError, match=r":1: expected an XNLI header"):
        read_xnli_tsv(path)


def test_xnli_mt_maps_contradictory_and_numbers_rows(tmp_path):
    fx.write_xnli(tmp_path, ("de",))
    path = tmp_path / "XNLI-MT-1.0" / "multinli" / "multinli.train.de.tsv"
    recs = read_xnli_mt_train(path).records
    assert [r["label"] for r in recs] == ["contradiction", "entailment", "neutral"]
    assert [r["id"] for r in recs] == [
        "multinli.train.de-1",
        "multinli.train.de-2",
        "multinli.train.de-3",
    ]
    assert recs[0]["text_a"] == '"The quoted" premise' and recs[0]["lang"] == "de"


def test_xnli_mt_unknown_label_is_an_error_with_line(tmp_path):
    path = write(tmp_path / "multinli.train.en.tsv", "premise\thypo\tlabel\na\tb\tmaybe\n")
    with pytest.raises(DataError, match=r"multinli.train.en.tsv:2: expected an NLI label"):
        read_xnli_mt_train(path)


def test_mnli_drops_dash_gold_labels_and_counts_them(tmp_path):
    fx.write_mnli(tmp_path)
    res = read_mnli_jsonl(tmp_path / "multinli_1.0" / "multinli_1.0_train.jsonl")
    assert [(r["id"], r["label"], r["lang"]) for r in res.records] == [
        ("1n", "neutral", "en"),
        ("3e", "entailment", "en"),
    ]
    assert res.skipped == {"gold_label '-' (no annotator consensus)": 1}


def test_mnli_bad_json_line(tmp_path):
    path = write(tmp_path / "m.jsonl", fx.mnli_line("neutral", "a", "b", "1n") + "{oops\n")
    with pytest.raises(DataError, match=r"m.jsonl:2: expected one JSON object per line"):
        read_mnli_jsonl(path)


# --------------------------------------------------------------------------- PAWS-X


def test_pawsx_skips_ns_rows_and_empty_labels(tmp_path):
    fx.write_pawsx(tmp_path, ("en", "de"))
    de = read_pawsx_tsv(tmp_path / "x-final" / "de" / "translated_train.tsv", "de")
    assert [(r["id"], r["label"]) for r in de.records] == [("1", "1"), ("2", "0")]
    assert de.records[0]["text_a"] == '"A" b c'
    assert de.skipped == {"NS sentence (failed translation)": 1, "empty label": 1}
    en = read_pawsx_tsv(tmp_path / "x-final" / "en" / "train.tsv", "en")
    assert len(en.records) == 3 and not en.skipped
    assert fields_ok(en.records, "pair")


def test_pawsx_eval_file_keeps_ns_rows_on_request(tmp_path):
    fx.write_pawsx(tmp_path, ("de",))
    dev = tmp_path / "x-final" / "de" / "dev_2k.tsv"
    dropped = read_pawsx_tsv(dev, "de")
    assert [r["id"] for r in dropped.records] == ["5", "6"]
    assert dropped.skipped == {"NS sentence (failed translation)": 2, "empty label": 1}
    assert not dropped.notes
    kept = read_pawsx_tsv(dev, "de", keep_untranslated=True)
    assert [(r["id"], r["text_a"], r["text_b"], r["label"]) for r in kept.records] == [
        ("5", "j k", "k j", "1"),
        ("6", "l", "m", "0"),
        ("9", "NS", "k j", "1"),  # the NS text as it is in the file
        ("10", "r", "NS", "0"),
    ]
    assert kept.skipped == {"empty label": 1}  # an empty label is skipped either way
    assert kept.notes == {"untranslated_rows_kept": 2}
    assert fields_ok(kept.records, "pair")


def test_pawsx_bad_label_and_short_line(tmp_path):
    path = write(tmp_path / "dev_2k.tsv", "id\tsentence1\tsentence2\tlabel\n1\ta\tb\t2\n")
    with pytest.raises(DataError, match=r"dev_2k.tsv:2: expected label 0 or 1, got '2'"):
        read_pawsx_tsv(path, "en")
    path = write(tmp_path / "test_2k.tsv", "id\tsentence1\tsentence2\tlabel\n1\ta\tb\t0\n2\ta\n")
    with pytest.raises(DataError, match=r"test_2k.tsv:3: expected 4 tab-separated fields"):
        read_pawsx_tsv(path, "en")


# --------------------------------------------------------------------------- XTREME TSVs


def test_xtreme_pair_tsv_unescapes_quotes_and_skips_ns(tmp_path):
    fx.write_xtreme(tmp_path)
    raw = (tmp_path / "pawsx" / "dev-es.tsv").read_text(encoding="utf-8")
    assert '"El ""Rang"" dijo"' in raw  # the file really holds csv escapes
    res = read_xtreme_pair_tsv(tmp_path / "pawsx" / "dev-es.tsv", "pa", "es")
    assert [(r["id"], r["text_a"], r["label"]) for r in res.records] == [
        ("dev-es-1", 'El "Rang" dijo', "0"),
        ("dev-es-3", "z", "1"),
    ]
    assert res.skipped == {"NS sentence (failed translation)": 1}


def test_xtreme_pair_tsv_keeps_ns_rows_on_request(tmp_path):
    fx.write_xtreme(tmp_path)
    res = read_xtreme_pair_tsv(
        tmp_path / "pawsx" / "dev-es.tsv", "pa", "es", keep_untranslated=True
    )
    assert [(r["id"], r["text_a"], r["text_b"]) for r in res.records] == [
        ("dev-es-1", 'El "Rang" dijo', "x"),
        ("dev-es-2", "NS", "y"),
        ("dev-es-3", "z", "w"),
    ]
    assert not res.skipped and res.notes == {"untranslated_rows_kept": 1}
    test = read_xtreme_pair_tsv(tmp_path / "pawsx" / "test-es.tsv", "pa", "es", True)
    assert test.skipped == {"no gold label (XTREME strips test labels)": 2}  # still unlabeled


def test_xtreme_pair_tsv_labels_and_unlabeled_test(tmp_path):
    fx.write_xtreme(tmp_path)
    nli = read_xtreme_pair_tsv(tmp_path / "xnli" / "train-en.tsv", "nli", "en").records
    assert [r["label"] for r in nli] == ["contradiction", "neutral"]
    test = read_xtreme_pair_tsv(tmp_path / "pawsx" / "test-es.tsv", "pa", "es")
    assert test.records == []
    assert test.skipped == {"no gold label (XTREME strips test labels)": 2}


def test_xtreme_pair_tsv_short_row_in_labeled_file(tmp_path):
    path = write(tmp_path / "dev-en.tsv", "a\tb\t1\nc\td\n")
    with pytest.raises(DataError, match=r"dev-en.tsv:2: expected 3 tab-separated fields"):
        read_xtreme_pair_tsv(path, "pa", "en")


def test_xtreme_tagging_tsv(tmp_path):
    fx.write_xtreme(tmp_path)
    res = read_xtreme_tagging_tsv(tmp_path / "panx" / "train-en.tsv", "en")
    assert res.records == [
        {"id": "train-en-1", "lang": "en", "tokens": ["Ann", "runs"], "tags": ["B-PER", "O"]},
        {"id": "train-en-2", "lang": "en", "tokens": ["Bob"], "tags": ["B-PER"]},
    ]
    test = read_xtreme_tagging_tsv(tmp_path / "udpos" / "test-en.tsv", "en")
    assert test.records == [] and test.skipped == {"no gold label (XTREME strips test labels)": 2}
    bad = write(tmp_path / "dev-en.tsv", "Ann\tB-PER\nruns\n")
    with pytest.raises(DataError, match=r"dev-en.tsv:2: expected 'token<TAB>tag'"):
        read_xtreme_tagging_tsv(bad, "en")


# --------------------------------------------------------------------------- CoNLL-U, PAN-X


def test_conllu_range_lines_and_empty_nodes_are_not_tokens(tmp_path):
    fx.write_udpos(tmp_path)
    res = read_conllu(tmp_path / "UD_Spanish-X" / "es_x-ud-test.conllu")
    assert res.records == [
        {
            "id": "es_x-ud-test-es-1",
            "lang": "es",
            "tokens": ["Voy", "de", "el", "mar"],  # not "del", not the empty node "va"
            "tags": ["VERB", "ADP", "DET", "NOUN"],
        },
        {"id": "es_x-ud-test-2", "lang": "es", "tokens": ["Sí"], "tags": ["INTJ"]},
    ]


def test_conllu_bad_column_count_and_withheld_forms(tmp_path):
    path = write(tmp_path / "en_x-ud-dev.conllu", "# sent_id = 1\n1\tHi\thi\tINTJ\t_\n")
    with pytest.raises(DataError, match=r"en_x-ud-dev.conllu:2: expected 10 tab-separated"):
        read_conllu(path)
    withheld = fx.conllu_sentence("w", [("_", "NOUN"), ("_", "VERB"), (".", "PUNCT")])
    path = write(tmp_path / "ar_y-ud-test.conllu", withheld + fx.conllu_sentence("k", [("a", "X")]))
    res = read_conllu(path)
    assert [r["id"] for r in res.records] == ["ar_y-ud-test-k"]
    assert res.skipped == {"forms withheld ('_' tokens)": 1}


def test_panx_splits_on_first_colon_only(tmp_path):
    fx.write_panx(tmp_path, ("en",))
    res = read_panx(tmp_path / "en" / "dev")
    assert res.records == [
        {
            "id": "en-dev-1",
            "lang": "en",
            "tokens": ["New", "York", ":"],
            "tags": ["B-LOC", "I-LOC", "O"],
        },
        {"id": "en-dev-2", "lang": "en", "tokens": ["http://x.org", "Ann"], "tags": ["O", "B-PER"]},
    ]


def test_panx_errors_name_file_and_line(tmp_path):
    path = write(tmp_path / "dev", "en:a\tO\nen:b\tB_PER\n")
    with pytest.raises(DataError, match=r"dev:2: expected an IOB2 tag"):
        read_panx(path)
    path = write(tmp_path / "test", "en:a\tO\n\nen:b O\n")
    with pytest.raises(DataError, match=r"test:3: expected '<lang>:<token><TAB><tag>'"):
        read_panx(path)


# --------------------------------------------------------------------------- SQuAD-style


def test_squad_version_number_or_string_and_answers(tmp_path):
    for name, version in (("a.json", 1.0), ("b.json", "1.1")):
        path = fx.write_json(tmp_path / name, fx.squad_doc(version, fx.QA_ITEMS))
        res = read_squad_json(path, "de")
        assert fields_ok(res.records, "qa")
        assert res.records[1] == {
            "id": "q2",
            "lang": "de",
            "context": fx.CTX,
            "question": "Which country?",
            "answers": {"text": ["France", "France."], "answer_start": [24, 24]},
        }
        assert not res.notes


def test_tydiqa_language_from_id_prefix(tmp_path):
    fx.write_tydiqa(tmp_path)
    res = read_squad_json(tmp_path / "tydiqa-goldp-v1.1-train.json", lang_from_id=True)
    assert [(r["id"], r["lang"]) for r in res.records] == [
        ("swahili-11-0", "sw"),
        ("finnish--22-0", "fi"),
        ("swahili-33-1", "sw"),
    ]
    path = fx.write_json(
        tmp_path / "x.json", fx.squad_doc("1", [("klingon-1-0", "Q?", fx.CTX, [("Paris", 0)])])
    )
    with pytest.raises(DataError, match=r"record 'klingon-1-0': expected an id starting with"):
        read_squad_json(path, lang_from_id=True)


def test_repeated_ids_get_suffixes_in_file_order(tmp_path):
    fx.write_xtreme(tmp_path)
    path = tmp_path / "tydiqa" / "tydiqa-goldp-v1.1-train" / "tydiqa.goldp.sw.train.json"
    res = read_squad_json(path, "sw")
    assert [r["id"] for r in res.records] == ["12", "12#2", "7", "12#3"]
    assert [r["question"] for r in res.records] == ["Q?", "Q2?", "Q3?", "Q4?"]
    assert res.notes["dedup_ids"] == 2


def test_dedup_ids_never_collides_with_an_existing_id():
    recs = [{"id": "a"}, {"id": "a#2"}, {"id": "a"}, {"id": "b"}, {"id": "a"}]
    assert dedup_ids(recs) == 2
    assert [r["id"] for r in recs] == ["a", "a#2", "a#3", "b", "a#4"]


def test_blanked_answers_are_skipped_and_offsets_checked(tmp_path):
    items = [
        ("q1", "Q?", fx.CTX, [("", 0)]),  # XTREME-blanked gold
        ("q2", "Q?", fx.CTX, [("Paris", 3)]),  # offset does not point at the text
    ]
    res = read_squad_json(fx.write_json(tmp_path / "t.json", fx.squad_doc("1.1", items)), "en")
    assert [r["id"] for r in res.records] == ["q2"]
    assert res.skipped == {"no gold answer (empty or blanked answers)": 1}
    assert res.notes == {"answer_offset_mismatch": 1}


def test_squad_record_problems_name_the_record(tmp_path):
    doc = fx.squad_doc("1.1", fx.QA_ITEMS)
    del doc["data"][0]["paragraphs"][1]["qas"][0]["question"]
    path = fx.write_json(tmp_path / "d.json", doc)
    with pytest.raises(DataError, match=r"d.json: record 'q2': expected a string field 'question'"):
        read_squad_json(path, "en")
    doc = fx.squad_doc("1.1", fx.QA_ITEMS)
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = "x"
    path = fx.write_json(tmp_path / "e.json", doc)
    with pytest.raises(DataError, match=r"record 'q1': expected a non-negative integer"):
        read_squad_json(path, "en")
    path = write(tmp_path / "f.json", '{"data": [\n  {oops}\n]}')
    with pytest.raises(DataError, match=r"f.json:2: expected valid JSON"):
        read_squad_json(path, "en")


# --------------------------------------------------------------------------- MTOD


def test_mtod_offsets_to_bio_hand_checked(tmp_path):
    path = write(tmp_path / "en" / "test-en.tsv", fx.MTOD_REMIND + fx.MTOD_NO_SLOTS)
    res = read_mtod_tsv(path)
    assert fields_ok(res.records, "intent_slots")
    remind, show = res.records
    assert remind == {
        "id": "test-en-1",
        "lang": "en",
        "tokens": ["remind", "me", "to", "call", "mom", "at", "5", "pm"],
        "slots": [
            "O",
            "O",
            "O",
            "B-reminder/todo",
            "I-reminder/todo",
            "B-datetime",
            "I-datetime",
            "I-datetime",
        ],
        "intent": "reminder/set_reminder",
    }
    assert show["slots"] == ["O", "O"] and show["intent"] == "alarm/show_alarms"


def test_mtod_locale_and_partial_token_overlap(tmp_path):
    # Thai-like: the slot starts inside the second token, so that token is still B-.
    line = fx.mtod_line(
        "alarm/set_alarm", "5:9:datetime", "ตั้งถึง6โมง", "th_TH", [("ตั้ง", 0, 4), ("ถึง6โมง", 4, 7)]
    )
    recs = read_mtod_tsv(write(tmp_path / "eval-th.tsv", line)).records
    assert recs[0]["lang"] == "th" and recs[0]["slots"] == ["O", "B-datetime"]


def test_mtod_nfd_token_spans_are_realigned(tmp_path):
    # "sábado a las 5": the published spans count NFD characters (á = 2), slots do not.
    utt = "sábado a las 5"
    line = fx.mtod_line(
        "alarm/set_alarm",
        "13:14:datetime",
        utt,
        "es_XX",
        [("sábado", 0, 7), ("a", 8, 1), ("las", 10, 3), ("5", 14, 1)],
    )
    res = read_mtod_tsv(write(tmp_path / "test-es.tsv", line))
    assert res.records[0]["slots"] == ["O", "O", "O", "B-datetime"]
    assert res.notes == {"token_spans_nfd_realigned": 1}


def test_mtod_negative_start_is_clamped(tmp_path):
    line = fx.mtod_line(
        "alarm/set_alarm", "-2:6:datetime", "el martes", "es_XX", [("el", 0, 2), ("martes", 3, 6)]
    )
    res = read_mtod_tsv(write(tmp_path / "test-es.tsv", line))
    assert res.records[0]["slots"] == ["B-datetime", "I-datetime"]
    assert res.notes == {"slot_start_clamped": 1}


def test_mtod_malformed_lines(tmp_path):
    bad_slot = fx.MTOD_NO_SLOTS.replace("\t\t", "\t3-4:x\t", 1)
    path = write(tmp_path / "train-en.tsv", fx.MTOD_REMIND + bad_slot)
    with pytest.raises(DataError, match=r"train-en.tsv:2: expected slots as 'start:end:slot'"):
        read_mtod_tsv(path)
    path = write(tmp_path / "eval-en.tsv", "alarm/x\t\tset alarm\ten_XX\n")
    with pytest.raises(DataError, match=r"eval-en.tsv:1: expected 5 tab-separated fields"):
        read_mtod_tsv(path)


# --------------------------------------------------------------------------- sentiment


def test_marc_stars_to_polarity_drops_three(tmp_path):
    fx.write_marc(tmp_path, ("de",))
    res = read_marc_jsonl(tmp_path / "dataset_de_train.json")
    assert [(r["id"], r["label"]) for r in res.records] == [
        ("de_train_0", "negative"),
        ("de_train_1", "negative"),
        ("de_train_3", "positive"),
        ("de_train_4", "positive"),
    ]
    assert res.records[0] == {
        "id": "de_train_0",
        "lang": "de",
        "text": "review 0",
        "label": "negative",
    }
    assert res.skipped == {"stars 3 (neutral, dropped as in MetaXL)": 1}
    path = write(tmp_path / "dataset_en_dev.json", fx.marc_line("x", "6", "b"))
    with pytest.raises(DataError, match=r"dataset_en_dev.json:1: expected 'stars' 1-5"):
        read_marc_jsonl(path)


def test_table_reader_sentipers_style(tmp_path):
    path = write(
        tmp_path / "train.csv",
        'id,text,polarity\n1,"good, very",2\n2,meh,0\n3,bad,-1\n4,"so ""so""",1\n',
    )
    fmt = TableFormat(
        text="text",
        label="polarity",
        id="id",
        header=True,
        delimiter=",",
        label_map={"-2": "negative", "-1": "negative", "1": "positive", "2": "positive"},
    )
    res = read_sentiment_table(path, "fa", fmt)
    assert [(r["id"], r["text"], r["label"]) for r in res.records] == [
        ("1", "good, very", "positive"),
        ("3", "bad", "negative"),
        ("4", 'so "so"', "positive"),
    ]
    assert res.skipped == {"label '0' not mapped to positive/negative": 1}
    assert fields_ok(res.records, "single")


def test_table_reader_positional_and_bad_config(tmp_path):
    path = write(tmp_path / "test.tsv", "bien\tpositive\nmal\tnegative\nx\n")
    with pytest.raises(DataError, match=r"test.tsv:3: expected at least 2 fields"):
        read_sentiment_table(path, "te")
    with pytest.raises(PipelineError, match=r"label_map: expected values in"):
        TableFormat(label_map={"1": "good"})


# --------------------------------------------------------------------------- read_file


def test_read_file_sniffs_every_format(tmp_path):
    fx.write_xnli(tmp_path / "xnli", ("en", "de"))
    fx.write_mnli(tmp_path / "mnli")
    fx.write_pawsx(tmp_path / "pawsx", ("de",))
    fx.write_panx(tmp_path / "panx", ("en",))
    fx.write_udpos(tmp_path / "ud")
    fx.write_tydiqa(tmp_path / "tydiqa")
    fx.write_mtod(tmp_path / "mtod", ("es",))
    fx.write_marc(tmp_path / "marc", ("en",))
    fx.write_xtreme(tmp_path / "xt")

    def ids(path, task, lang):
        return [r["id"] for r in read_file(tmp_path / path, task, lang)]

    assert ids("xnli/XNLI-1.0/xnli.test.tsv", "nli", "de") == ["4", "5"]
    assert len(ids("xnli/XNLI-MT-1.0/multinli/multinli.train.de.tsv", "nli", "de")) == 3
    assert ids("mnli/multinli_1.0/multinli_1.0_dev_mismatched.jsonl", "nli", "en") == ["7e"]
    assert ids("pawsx/x-final/de/dev_2k.tsv", "pa", "de") == ["5", "6"]
    assert ids("xt/pawsx/dev-es.tsv", "pa", "es") == ["dev-es-1", "dev-es-3"]
    assert ids("panx/en/test", "ner", "en") == ["en-test-1", "en-test-2"]
    assert ids("xt/panx/dev-en.tsv", "ner", "en") == ["dev-en-1"]
    assert ids("ud/UD_Spanish-X/es_x-ud-test.conllu", "pos", "es") == [
        "es_x-ud-test-es-1",
        "es_x-ud-test-2",
    ]
    assert ids("xt/udpos/train-en.tsv", "pos", "en") == ["train-en-1", "train-en-2"]
    assert ids("tydiqa/tydiqa-goldp-v1.1-train.json", "qa", "sw") == [
        "swahili-11-0",
        "swahili-33-1",
    ]
    assert ids("xt/xquad/xquad.en.json", "qa", "en") == ["q1", "q2"]
    assert ids("mtod/es/eval-es.tsv", "mtod", "es") == ["eval-es-1", "eval-es-2"]
    assert len(ids("marc/dataset_en_test.json", "sa", "en")) == 4
    sa = write(tmp_path / "sa.tsv", "good\tpositive\nbad\tnegative\n")
    assert [r["label"] for r in read_file(sa, "sa", "te")] == ["positive", "negative"]
    with pytest.raises(PipelineError, match="unknown task"):
        read_file(sa, "sentiment", "te")
    with pytest.raises(DataError, match="file not found"):
        read_file(tmp_path / "nope.tsv", "nli", "en")


def test_all_fixture_records_are_json_serializable(tmp_path):
    """Records are plain data (they go through datasets.Dataset.from_dict)."""
    fx.write_mtod(tmp_path, ("en",))
    recs = read_mtod_tsv(tmp_path / "en" / "train-en.tsv").records
    assert json.loads(json.dumps(recs)) == recs
