"""`prepare` end to end on tiny raw trees (tests/rawfixtures.py), read back with the store."""

from __future__ import annotations

import json

import pytest
import rawfixtures as fx

from pipeline.data.prepare import DATASET_TASKS, prepare
from pipeline.data.store import load_labels, load_split, prepared_tlps
from pipeline.errors import DataError, PipelineError
from pipeline.records import TLP

NEUTRAL = "marc: stars 3 (neutral, dropped as in MetaXL)"

#: dataset -> (fixture writer, expected counts, expected skipped), all counted by hand
ORIGINAL = {
    "xnli": (
        lambda d: fx.write_xnli(d, ("en", "de")),
        {
            "nli/de": {"dev": 3, "test": 2, "train": 3},
            "nli/en": {"dev": 3, "test": 2, "train": 3},
        },
        {},
    ),
    "mnli": (
        fx.write_mnli,
        {"nli/en": {"dev": 2, "test": 1, "train": 2}},
        {"mnli: gold_label '-' (no annotator consensus)": 2},
    ),
    "pawsx": (
        lambda d: fx.write_pawsx(d, ("en", "de")),
        {"pa/de": {"dev": 2, "test": 2, "train": 2}, "pa/en": {"dev": 2, "test": 2, "train": 3}},
        {"pawsx: NS sentence (failed translation)": 1, "pawsx: empty label": 1},
    ),
    "panx": (
        lambda d: fx.write_panx(d, ("en", "de")),
        {"ner/de": {"dev": 2, "test": 2, "train": 2}, "ner/en": {"dev": 2, "test": 2, "train": 2}},
        {},
    ),
    "udpos": (
        fx.write_udpos,
        {"pos/en": {"dev": 1, "test": 1, "train": 2}, "pos/es": {"test": 2}},
        {},
    ),
    "squad": (fx.write_squad, {"qa/en": {"dev": 2, "train": 2}}, {}),
    "mlqa": (
        lambda d: fx.write_mlqa(d, ("en", "de")),
        {"qa/de": {"dev": 2, "test": 2}, "qa/en": {"dev": 2, "test": 2}},
        {},
    ),
    "xquad": (
        lambda d: fx.write_xquad(d, ("en", "de")),
        {"qa/de": {"test": 2}, "qa/en": {"test": 2}},
        {},
    ),
    "tydiqa": (
        fx.write_tydiqa,
        {"qa/fi": {"train": 1}, "qa/sw": {"train": 2}, "qa/te": {"dev": 1}},
        {},
    ),
    "mtod": (
        lambda d: fx.write_mtod(d, ("en", "es")),
        {
            "mtod/en": {"dev": 2, "test": 2, "train": 2},
            "mtod/es": {"dev": 2, "test": 2, "train": 2},
        },
        {},
    ),
    "marc": (
        lambda d: fx.write_marc(d, ("en", "de")),
        {"sa/de": {"dev": 4, "test": 4, "train": 4}, "sa/en": {"dev": 4, "test": 4, "train": 4}},
        {NEUTRAL: 6},
    ),
}


@pytest.mark.parametrize("dataset", sorted(ORIGINAL))
def test_prepare_original_layouts(tmp_path, dataset):
    write, counts, skipped = ORIGINAL[dataset]
    raw = write(tmp_path / "raw")
    summary = prepare(dataset, raw, tmp_path / "out")
    assert summary["counts"] == counts
    assert summary["skipped"] == skipped
    assert summary["dataset"] == dataset and summary["tasks"] == [DATASET_TASKS[dataset]]
    assert set(summary["notes"][dataset]["splits"]) >= {s for c in counts.values() for s in c}
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == summary
    assert {str(t): sorted(s) for t, s in prepared_tlps(tmp_path / "out").items()} == {
        t: sorted(s) for t, s in counts.items()
    }
    for tlp_text, splits in counts.items():
        for split, n in splits.items():
            ds = load_split(tmp_path / "out", TLP.parse(tlp_text), split)
            assert len(ds) == n
            assert len(set(ds["id"])) == n


def test_prepared_records_round_trip(tmp_path):
    prepare("mtod", fx.write_mtod(tmp_path / "raw", ("en",)), tmp_path / "out")
    dev = load_split(tmp_path / "out", TLP("mtod", "en"), "dev").to_list()
    assert dev[0] == {
        "id": "eval-en-1",
        "lang": "en",
        "tokens": ["remind", "me", "to", "call", "mom", "at", "5", "pm"],
        "slots": fx.MTOD_REMIND_SLOTS,
        "intent": "reminder/set_reminder",
    }
    labels = load_labels(tmp_path / "out")["mtod"]
    assert labels["intent"] == ["alarm/show_alarms", "reminder/set_reminder"]
    assert labels["slots"] == [
        "B-datetime",
        "B-reminder/todo",
        "I-datetime",
        "I-reminder/todo",
        "O",
    ]
    prepare("tydiqa", fx.write_tydiqa(tmp_path / "ty"), tmp_path / "qa")
    sw = load_split(tmp_path / "qa", TLP("qa", "sw"), "train").to_list()
    assert sw[1]["answers"] == {"text": ["capital"], "answer_start": [13]}


def test_udpos_treebanks_concatenate_with_unique_ids(tmp_path):
    prepare("udpos", fx.write_udpos(tmp_path / "raw"), tmp_path / "out")
    train = load_split(tmp_path / "out", TLP("pos", "en"), "train")
    assert train["id"] == ["en_a-ud-train-a-1", "en_b-ud-train-b-1"]


def test_marc_split_subfolders_and_language_filter(tmp_path):
    raw = fx.write_marc(tmp_path / "raw", ("en", "de", "fr"), nested=True)
    summary = prepare("marc", raw, tmp_path / "out", languages=["fr"])
    assert summary["counts"] == {"sa/fr": {"dev": 4, "test": 4, "train": 4}}
    assert summary["languages"] == ["fr"]
    assert summary["skipped"] == {NEUTRAL: 3}


def test_mlqa_cross_pairs_ignored_and_synthetic_train_split(tmp_path):
    raw = fx.write_mlqa(tmp_path / "raw", ("en",), train=True)
    summary = prepare("mlqa", raw, tmp_path / "out")
    assert summary["counts"] == {"qa/en": {"dev": 2, "test": 2, "train": 2}}
    assert summary["notes"]["mlqa"]["gxlt_files_ignored"] == 3


def test_sentiment_tables_defaults_and_format_override(tmp_path):
    raw = tmp_path / "sentipers"
    raw.mkdir()
    (raw / "train.tsv").write_text("خوب\t2\nبد\t-1\nخنثی\t0\n", encoding="utf-8")
    (raw / "test.tsv").write_text("عالی\t1\n", encoding="utf-8")
    summary = prepare("sentipers", raw, tmp_path / "out")
    assert summary["counts"] == {"sa/fa": {"test": 1, "train": 2}}
    assert summary["skipped"] == {"sentipers: label '0' not mapped to positive/negative": 1}
    train = load_split(tmp_path / "out", TLP("sa", "fa"), "train").to_list()
    assert [(r["text"], r["label"]) for r in train] == [("خوب", "positive"), ("بد", "negative")]

    raw = tmp_path / "sentiraama"
    raw.mkdir()
    (raw / "dev.csv").write_text('review,pol\n"a, b",pos\nc,neg\n', encoding="utf-8")
    (raw / "format.json").write_text(
        json.dumps({"text": "review", "label": "pol", "header": True}), encoding="utf-8"
    )
    summary = prepare("sentiraama", raw, tmp_path / "out2")
    assert summary["counts"] == {"sa/te": {"dev": 2}}
    dev = load_split(tmp_path / "out2", TLP("sa", "te"), "dev").to_list()
    assert [(r["id"], r["text"], r["label"]) for r in dev] == [
        ("dev-1", "a, b", "positive"),
        ("dev-2", "c", "negative"),
    ]


# --------------------------------------------------------------------------- XTREME layout

XTREME = {
    "xnli": (
        {"nli/de": {"dev": 1}, "nli/en": {"train": 2}},
        {"xnli: no gold label (XTREME strips test labels)": 1},
    ),
    "pawsx": (
        {"pa/en": {"train": 2}, "pa/es": {"dev": 2}},
        {
            "pawsx: NS sentence (failed translation)": 1,
            "pawsx: no gold label (XTREME strips test labels)": 2,
        },
    ),
    "panx": (
        {"ner/en": {"dev": 1, "train": 2}},
        {"panx: no gold label (XTREME strips test labels)": 2},
    ),
    "udpos": (
        {"pos/en": {"dev": 1, "train": 2}},
        {"udpos: no gold label (XTREME strips test labels)": 2},
    ),
    "tydiqa": ({"qa/sw": {"train": 4}}, {"tydiqa: no gold answer (empty or blanked answers)": 1}),
    "mlqa": ({"qa/en": {"dev": 2, "test": 2}}, {}),
    "xquad": ({"qa/en": {"test": 2}}, {}),
    "squad": ({"qa/en": {"dev": 2, "train": 2}}, {}),
}


@pytest.mark.parametrize("dataset", sorted(XTREME))
def test_prepare_xtreme_layout(tmp_path, dataset):
    raw = fx.write_xtreme(tmp_path / "download")
    counts, skipped = XTREME[dataset]
    summary = prepare(dataset, raw, tmp_path / "out", layout="xtreme")
    assert summary["counts"] == counts
    assert summary["skipped"] == skipped
    assert summary["layout"] == "xtreme"


def test_xtreme_tydiqa_dedup_is_reported(tmp_path):
    raw = fx.write_xtreme(tmp_path / "download")
    summary = prepare("tydiqa", raw, tmp_path / "out", layout="xtreme")
    assert summary["dedup_ids"] == 2
    assert summary["notes"]["tydiqa"]["dedup_ids"] == 2
    train = load_split(tmp_path / "out", TLP("qa", "sw"), "train")
    assert train["id"] == ["12", "12#2", "7", "12#3"]


def test_xtreme_dataset_folder_itself_is_accepted(tmp_path):
    raw = fx.write_xtreme(tmp_path / "download")
    summary = prepare("pawsx", raw / "pawsx", tmp_path / "out", layout="xtreme")
    assert summary["counts"] == XTREME["pawsx"][0]


# --------------------------------------------------------------------------- synthetic


def test_prepare_synthetic_merges_all_tasks(tmp_path):
    raw = fx.write_synthetic(tmp_path / "raw")
    summary = prepare("synthetic", raw, tmp_path / "out")
    assert summary["languages"] == ["l0", "l1"]
    assert summary["tasks"] == ["mtod", "ner", "nli", "pa", "pos", "qa", "sa"]
    for lang in ("l0", "l1"):
        assert summary["counts"][f"nli/{lang}"] == {"dev": 3, "test": 2, "train": 3}
        assert summary["counts"][f"pa/{lang}"] == {"dev": 2, "test": 2, "train": 2}
        assert summary["counts"][f"ner/{lang}"] == {"dev": 2, "test": 2, "train": 2}
        assert summary["counts"][f"pos/{lang}"] == {"dev": 2, "test": 2, "train": 2}
        assert summary["counts"][f"qa/{lang}"] == {"dev": 2, "test": 2, "train": 2}
        assert summary["counts"][f"sa/{lang}"] == {"dev": 4, "test": 4, "train": 4}
        assert summary["counts"][f"mtod/{lang}"] == {"dev": 2, "test": 2, "train": 2}
    assert len(summary["counts"]) == 14
    assert summary["skipped"] == {
        "marc: stars 3 (neutral, dropped as in MetaXL)": 6,
        "pawsx: NS sentence (failed translation)": 2,
        "pawsx: empty label": 2,
    }
    assert set(summary["notes"]) == {"xnli", "pawsx", "panx", "udpos", "mlqa", "marc", "mtod"}
    rec = load_split(tmp_path / "out", TLP("ner", "l1"), "dev")[0]
    assert rec == {
        "id": "l1-dev-1",
        "lang": "l1",
        "tokens": ["New", "York", ":"],
        "tags": ["B-LOC", "I-LOC", "O"],
    }


def test_prepare_synthetic_subset_and_languages(tmp_path):
    raw = fx.write_synthetic(tmp_path / "raw", tasks=("nli", "qa"))
    summary = prepare("synthetic", raw, tmp_path / "out", languages=["l1"])
    assert summary["counts"] == {
        "nli/l1": {"dev": 3, "test": 2, "train": 3},
        "qa/l1": {"dev": 2, "test": 2, "train": 2},
    }


def test_synthetic_manifest_errors(tmp_path):
    raw = fx.write_synthetic(tmp_path / "raw", tasks=("nli",))
    manifest = json.loads((raw / "synthetic.json").read_text(encoding="utf-8"))
    manifest["tasks"]["nli"]["dataset"] = "pawsx"
    (raw / "synthetic.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DataError, match=r"synthetic.json: tasks.nli.dataset: expected one of"):
        prepare("synthetic", raw, tmp_path / "out")
    (raw / "synthetic.json").unlink()
    with pytest.raises(DataError, match=r"synthetic.json: file not found"):
        prepare("synthetic", raw, tmp_path / "out")


# --------------------------------------------------------------------------- errors


def test_unknown_dataset_lists_known_names(tmp_path):
    with pytest.raises(PipelineError, match=r"unknown dataset 'wikiann'.*xnli.*mtod.*synthetic"):
        prepare("wikiann", tmp_path, tmp_path / "out")
    with pytest.raises(PipelineError, match=r"unknown layout 'hf'"):
        prepare("xnli", tmp_path, tmp_path / "out", layout="hf")
    with pytest.raises(PipelineError, match=r"'mtod' has no xtreme layout"):
        prepare("mtod", tmp_path, tmp_path / "out", layout="xtreme")


def test_missing_directory_and_files_are_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"^{missing}: directory not found; expected the xnli"):
        prepare("xnli", missing, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no data found; expected XNLI-1.0/"):
        prepare("xnli", tmp_path / "empty", tmp_path / "out")
    raw = fx.write_xnli(tmp_path / "raw", ("en",))
    (raw / "XNLI-1.0" / "xnli.test.tsv").unlink()
    with pytest.raises(DataError, match=r"xnli.test.tsv: file not found; expected XNLI 1.0 test"):
        prepare("xnli", raw, tmp_path / "out")
    raw = fx.write_mtod(tmp_path / "mt", ("en",))
    for f in (raw / "en").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"en: no MTOD files; expected train-en.tsv"):
        prepare("mtod", raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_line_leaves_no_output(tmp_path):
    raw = fx.write_pawsx(tmp_path / "raw", ("en", "de"))
    bad = raw / "x-final" / "de" / "test_2k.tsv"
    bad.write_text(bad.read_text(encoding="utf-8") + "9\tonly two\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{bad}:4: expected 4 tab-separated fields"):
        prepare("pawsx", raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "raw"]  # no temporary leftovers either


def test_failed_prepare_keeps_previous_output(tmp_path):
    raw = fx.write_panx(tmp_path / "raw", ("en",))
    prepare("panx", raw, tmp_path / "out")
    before = (tmp_path / "out" / "summary.json").read_text(encoding="utf-8")
    (raw / "en" / "dev").write_text("en:a\tO\nen:b\tPER\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dev:2: expected an IOB2 tag"):
        prepare("panx", raw, tmp_path / "out")
    assert (tmp_path / "out" / "summary.json").read_text(encoding="utf-8") == before


def test_requested_language_without_data(tmp_path):
    raw = fx.write_panx(tmp_path / "raw", ("en", "de"))
    with pytest.raises(DataError, match=r"no panx data for language\(s\) sw"):
        prepare("panx", raw, tmp_path / "out", languages=["en", "sw"])
