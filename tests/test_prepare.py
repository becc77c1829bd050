"""`prepare` end to end on tiny raw trees (tests/rawfixtures.py), read back with the store."""

from __future__ import annotations

import json

import pytest
import rawfixtures as fx

from pipeline.data.prepare import (
    DATASET_TASKS,
    PAWSX,
    UDPOS,
    XTREME_DATASETS,
    FileSet,
    find_fileset,
    prepare,
)
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
    "pawsx": (  # NS rows kept in dev/test (2 + 1), dropped in train; empty labels skipped
        lambda d: fx.write_pawsx(d, ("en", "de")),
        {"pa/de": {"dev": 4, "test": 3, "train": 2}, "pa/en": {"dev": 2, "test": 2, "train": 3}},
        {"pawsx: NS sentence (failed translation)": 1, "pawsx: empty label": 2},
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
    raw = fx.write_sentipers(tmp_path / "sentipers")
    summary = prepare("sentipers", raw, tmp_path / "out")
    assert summary["counts"] == {"sa/fa": {"test": 1, "train": 2}}
    assert summary["skipped"] == {"sentipers: label '0' not mapped to positive/negative": 1}
    train = load_split(tmp_path / "out", TLP("sa", "fa"), "train").to_list()
    assert [(r["text"], r["label"]) for r in train] == [("خوب", "positive"), ("بد", "negative")]

    raw = fx.write_sentiraama(tmp_path / "sentiraama")
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
    "pawsx": (  # the NS row of dev-es is kept (XTREME scores it)
        {"pa/en": {"train": 2}, "pa/es": {"dev": 3}},
        {"pawsx: no gold label (XTREME strips test labels)": 2},
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
        assert summary["counts"][f"pa/{lang}"] == {"dev": 4, "test": 3, "train": 2}
        assert summary["counts"][f"ner/{lang}"] == {"dev": 2, "test": 2, "train": 2}
        assert summary["counts"][f"pos/{lang}"] == {"dev": 2, "test": 2, "train": 2}
        assert summary["counts"][f"qa/{lang}"] == {"dev": 2, "test": 2, "train": 2}
        assert summary["counts"][f"sa/{lang}"] == {"dev": 4, "test": 4, "train": 4}
        assert summary["counts"][f"mtod/{lang}"] == {"dev": 2, "test": 2, "train": 2}
    assert len(summary["counts"]) == 14
    assert summary["skipped"] == {
        "marc: stars 3 (neutral, dropped as in MetaXL)": 6,
        "pawsx: NS sentence (failed translation)": 2,
        "pawsx: empty label": 4,
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
    raw = fx.write_mtod(tmp_path / "mt", ("en", "es"))
    for f in (raw / "en").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"en: no MTOD files; expected train-en.tsv"):
        prepare("mtod", raw, tmp_path / "out")
    for f in (raw / "es").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"mt: no data found; expected <lang>/\{train,eval,test\}"):
        prepare("mtod", raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_line_leaves_no_output(tmp_path):
    raw = fx.write_pawsx(tmp_path / "raw", ("en", "de"))
    bad = raw / "x-final" / "de" / "test_2k.tsv"
    bad.write_text(bad.read_text(encoding="utf-8") + "9\tonly two\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{bad}:5: expected 4 tab-separated fields"):
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


# --------------------------------------------------------------------------- archives as unpacked


def _records(out, summary) -> dict[str, dict[str, list]]:
    return {
        tlp: {split: load_split(out, TLP.parse(tlp), split).to_list() for split in splits}
        for tlp, splits in summary["counts"].items()
    }


def _same_prepared(a, b, out_a, out_b) -> None:
    for key in ("counts", "skipped", "dedup_ids", "languages", "options"):
        assert a[key] == b[key], key
    assert _records(out_a, a) == _records(out_b, b)
    for ds, notes in a["notes"].items():
        other = b["notes"][ds]
        assert {s: len(f) for s, f in notes["files"].items()} == {
            s: len(f) for s, f in other["files"].items()
        }
        for key in ("untranslated", "empty_label_skipped", "skipped_by_split"):
            assert notes.get(key) == other.get(key), key


@pytest.mark.parametrize("dataset", sorted(fx.WRITERS))
def test_unpacked_archive_reads_like_the_flat_folder(tmp_path, dataset):
    """--raw may be the folder holding the files, or where the publisher's archive was unpacked
    (its own top-level folders in between, beside its README/licence files)."""
    assert set(fx.WRITERS) == set(DATASET_TASKS)  # every dataset prepare knows
    flat = fx.write_flat(dataset, tmp_path / "flat")
    unpacked = fx.write_unpacked(dataset, tmp_path / "unpacked")
    a = prepare(dataset, flat, tmp_path / "a")
    b = prepare(dataset, unpacked, tmp_path / "b")
    assert a["counts"]  # the fixture has records
    _same_prepared(a, b, tmp_path / "a", tmp_path / "b")
    if dataset != "xnli":  # XNLI's flat form is its two archives' folders side by side
        assert set(a["notes"][dataset]["found_in"].values()) == {"."}
    found = b["notes"][dataset]["found_in"]
    assert found and "." not in found.values()  # read below the wrapper folder(s)
    wanted = {dst.split("{")[0].rstrip("/") for _, dst in fx.UNPACKED[dataset]}
    assert all(any(f.startswith(w) for w in wanted) for f in found.values()), found


#: XTREME layout: dataset -> the folder of download/ that holds its files
XTREME_FILES = {
    "xnli": "xnli",
    "pawsx": "pawsx",
    "panx": "panx",
    "udpos": "udpos",
    "squad": "squad",
    "mlqa": "mlqa/MLQA_V1",
    "xquad": "xquad",
    "tydiqa": "tydiqa",
    "xnli_translate_train": "xnli/translate-train",
    "pawsx_translate_train": "pawsx/translate-train",
    "squad_translate_train": "squad/translate-train",
    "tydiqa_translate_train": "tydiqa/translate-train",
}


def _write_xtreme_download(download):
    fx.write_xtreme(download)
    for ds in ("xnli", "pawsx", "squad", "tydiqa"):
        fx.write_translate_train(
            download / XTREME_FILES[f"{ds}_translate_train"], f"{ds}_translate_train"
        )
    return download


@pytest.mark.parametrize("dataset", sorted(XTREME_FILES))
def test_xtreme_download_in_a_clone_reads_like_its_task_folder(tmp_path, dataset):
    """XTREME's download/ (all tasks side by side) inside a clone of the xtreme repository."""
    assert set(XTREME_FILES) == set(XTREME_DATASETS)
    flat = _write_xtreme_download(tmp_path / "download") / XTREME_FILES[dataset]
    _write_xtreme_download(tmp_path / "clone" / "xtreme" / "download")
    a = prepare(dataset, flat, tmp_path / "a", layout="xtreme")
    b = prepare(dataset, tmp_path / "clone", tmp_path / "b", layout="xtreme")
    assert a["counts"]
    _same_prepared(a, b, tmp_path / "a", tmp_path / "b")
    assert set(b["notes"][dataset]["found_in"].values()) == {
        f"xtreme/download/{XTREME_FILES[dataset]}"
    }


def test_udpos_treebanks_archive_reads_as_published(tmp_path):
    """The case that failed: --raw is where ud-treebanks-v2.5.tgz was unpacked."""
    raw = fx.write_unpacked("udpos", tmp_path / "raw")
    assert (raw / "ud-treebanks-v2.5" / "UD_Spanish-X" / "es_x-ud-test.conllu").is_file()
    summary = prepare("udpos", raw, tmp_path / "out")
    assert summary["counts"] == ORIGINAL["udpos"][1]
    assert summary["notes"]["udpos"]["found_in"] == {UDPOS.shows: "ud-treebanks-v2.5"}
    assert (
        "ud-treebanks-v2.5/UD_Spanish-X/es_x-ud-test.conllu"
        in (summary["notes"]["udpos"]["files"]["test"])
    )


def test_archives_unpacked_into_folders_named_after_them(tmp_path):
    """HF-style: `x-final.tar.gz/x-final/<lang>/`, PAN-X `<lang>.tar.gz/` folders."""
    fx.write_pawsx(tmp_path / "raw" / "x-final.tar.gz", ("en", "de"))
    summary = prepare("pawsx", tmp_path / "raw", tmp_path / "out")
    assert summary["counts"] == ORIGINAL["pawsx"][1]
    assert summary["notes"]["pawsx"]["found_in"] == {PAWSX.shows: "x-final.tar.gz/x-final"}
    panx = fx.write_panx(tmp_path / "p" / "panx_dataset", ("en", "de"))
    for lang in ("en", "de"):
        (panx / lang).rename(panx / f"{lang}.tar.gz")
    summary = prepare("panx", tmp_path / "p", tmp_path / "out2")
    assert summary["counts"] == ORIGINAL["panx"][1]


def test_two_copies_are_an_error_not_a_mix(tmp_path):
    raw = fx.write_unpacked("udpos", tmp_path / "raw")
    fx.write_udpos(tmp_path / "raw" / "backup" / "ud-treebanks-v2.5")
    with pytest.raises(
        DataError,
        match=r"raw: found 2 copies of the udpos files .*\(ud-treebanks-v2.5/, "
        r"backup/ud-treebanks-v2.5/\); expected one: point --raw at the copy to read",
    ):
        prepare("udpos", raw, tmp_path / "out")
    # XNLI 1.0 in two places (e.g. HF's two dummy trees), XNLI-MT in one: still refused
    raw = fx.write_xnli(tmp_path / "x", ("en",))
    fx.write_xnli(tmp_path / "x" / "old" / "XNLI-1.0.zip", ("en",))
    (tmp_path / "x" / "old" / "XNLI-1.0.zip" / "XNLI-MT-1.0").rename(tmp_path / "x" / "mt-moved")
    with pytest.raises(DataError, match=r"found 2 copies of the xnli files XNLI-1.0/"):
        prepare("xnli", raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # pointing --raw at one copy reads it
    summary = prepare("udpos", tmp_path / "raw" / "backup", tmp_path / "out")
    assert summary["counts"] == ORIGINAL["udpos"][1]


def test_nothing_found_is_one_line_naming_folder_dataset_and_patterns(tmp_path):
    (tmp_path / "raw" / "some" / "folder").mkdir(parents=True)
    (tmp_path / "raw" / "some" / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataError) as e:
        prepare("udpos", tmp_path / "raw", tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == (
        f"{tmp_path / 'raw'}: no data found; expected ud-treebanks-v2.5/UD_<Name>/"
        "<code>_<treebank>-ud-{train,dev,test}.conllu (original layout) for dataset udpos, "
        "in this folder or up to 4 folder levels below it"
    )
    with pytest.raises(DataError, match=r"expected train-v1.1.json and/or dev-v1.1.json \("):
        prepare("squad", tmp_path / "raw", tmp_path / "out")
    with pytest.raises(
        DataError, match=r"expected \{train,dev,test\}-<lang>.tsv in one of \./, pawsx/ \(xtreme"
    ):
        prepare("pawsx", tmp_path / "raw", tmp_path / "out", layout="xtreme")


def test_search_depth_is_bounded_and_hidden_folders_skipped(tmp_path):
    deep = tmp_path / "raw" / "a" / "b" / "c"
    fx.write_squad(deep / "d")  # 4 levels below --raw: found
    assert prepare("squad", tmp_path / "raw", tmp_path / "out")["counts"]
    fx.write_squad(tmp_path / "r2" / "a" / "b" / "c" / "d" / "e")  # 5 levels: not searched
    with pytest.raises(DataError, match=r"r2: no data found"):
        prepare("squad", tmp_path / "r2", tmp_path / "out")
    fx.write_squad(tmp_path / "r3" / ".cache")
    fx.write_squad(tmp_path / "r3" / "__MACOSX")
    with pytest.raises(DataError, match=r"r3: no data found"):
        prepare("squad", tmp_path / "r3", tmp_path / "out")


def test_separate_downloads_are_looked_up_one_by_one(tmp_path):
    """SQuAD's and TyDiQA's train and dev files are two downloads: two folders are fine."""
    fx.write_squad(tmp_path / "s")
    (tmp_path / "s" / "train").mkdir()
    (tmp_path / "s" / "train-v1.1.json").rename(tmp_path / "s" / "train" / "train-v1.1.json")
    summary = prepare("squad", tmp_path / "s", tmp_path / "out")
    assert summary["counts"] == ORIGINAL["squad"][1]
    assert summary["notes"]["squad"]["found_in"] == {
        "train-v1.1.json": "train",
        "dev-v1.1.json": ".",
    }


def test_find_fileset_rules(tmp_path):
    fs = FileSet("{train,dev,test}-<lang>.tsv", ("dev-*.tsv",), folders=("pawsx",))
    dl = fx.write_xtreme(tmp_path / "download")
    assert find_fileset(dl, fs) == [dl / "pawsx"]  # xnli/, panx/, udpos/ have other names
    assert find_fileset(dl / "pawsx", fs) == [dl / "pawsx"]  # --raw itself: any name
    assert find_fileset(dl / "xnli", fs) == [dl / "xnli"]  # (the user said so)
    tt = FileSet("en-<lang>-translated.tsv", ("en-*-translated.tsv",), ("PAWSX/translate-train",))
    assert (
        tt.describe()
        == "en-<lang>-translated.tsv in one of ./, PAWSX/translate-train/, translate-train/"
    )
    for where, ok in (
        ("translate-train", True),  # --raw is the bucket's PAWSX/ (under any name)
        ("PAWSX/translate-train", True),
        ("xtreme_translations/PAWSX/translate-train", True),
        ("XNLI/translate-train", False),
        ("PAWSX/other", False),
    ):
        root = tmp_path / where.replace("/", "_") / "raw"
        fx.write_translate_train(root / where, "pawsx_translate_train")
        assert find_fileset(root, tt) == ([root / where] if ok else []), where
    # no search inside a match: the treebank folders below ud-treebanks-v2.5/ are not copies
    ud = fx.write_unpacked("udpos", tmp_path / "ud")
    assert find_fileset(ud, UDPOS) == [ud / "ud-treebanks-v2.5"]
    assert find_fileset(ud / "ud-treebanks-v2.5" / "UD_English-A", UDPOS) == [
        ud / "ud-treebanks-v2.5" / "UD_English-A"
    ]


# --------------------------------------------------------------------------- PAWS-X NS rows


def test_pawsx_untranslated_eval_rows_kept_by_default(tmp_path):
    raw = fx.write_pawsx(tmp_path / "raw", ("en", "de"))
    summary = prepare("pawsx", raw, tmp_path / "out")
    assert summary["options"] == {"drop_untranslated": False}
    # every row of the de test file (3), and of dev all but the empty label (5 - 1)
    assert summary["counts"]["pa/de"] == {"dev": 4, "test": 3, "train": 2}
    notes = summary["notes"]["pawsx"]
    assert notes["untranslated"] == {
        "train": {"kept": 0, "dropped": 1},
        "dev": {"kept": 2, "dropped": 0},
        "test": {"kept": 1, "dropped": 0},
    }
    assert notes["empty_label_skipped"] == {"train": 1, "dev": 1, "test": 0}
    assert notes["untranslated_rows_kept"] == 3
    assert notes["skipped_by_split"] == {
        "train": {"NS sentence (failed translation)": 1, "empty label": 1},
        "dev": {"empty label": 1},
    }
    dev = load_split(tmp_path / "out", TLP("pa", "de"), "dev").to_list()
    assert [r["id"] for r in dev] == ["5", "6", "9", "10"]
    assert (dev[2]["text_a"], dev[2]["text_b"], dev[2]["label"]) == ("NS", "k j", "1")
    assert (dev[3]["text_a"], dev[3]["text_b"]) == ("r", "NS")
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["options"] == {"drop_untranslated": False}
    assert on_disk["notes"]["pawsx"]["untranslated"]["dev"] == {"kept": 2, "dropped": 0}


def test_pawsx_drop_untranslated_option(tmp_path):
    raw = fx.write_pawsx(tmp_path / "raw", ("en", "de"))
    summary = prepare("pawsx", raw, tmp_path / "out", drop_untranslated=True)
    assert summary["options"] == {"drop_untranslated": True}
    assert summary["counts"]["pa/de"] == {"dev": 2, "test": 2, "train": 2}
    assert summary["counts"]["pa/en"] == ORIGINAL["pawsx"][1]["pa/en"]
    assert summary["skipped"] == {
        "pawsx: NS sentence (failed translation)": 4,
        "pawsx: empty label": 2,
    }
    assert summary["notes"]["pawsx"]["untranslated"] == {
        "train": {"kept": 0, "dropped": 1},
        "dev": {"kept": 0, "dropped": 2},
        "test": {"kept": 0, "dropped": 1},
    }
    dev = load_split(tmp_path / "out", TLP("pa", "de"), "dev")
    assert dev["id"] == ["5", "6"]


def test_pawsx_xtreme_layout_keeps_or_drops_ns_rows(tmp_path):
    raw = fx.write_xtreme(tmp_path / "download")
    kept = prepare("pawsx", raw, tmp_path / "a", layout="xtreme")
    assert load_split(tmp_path / "a", TLP("pa", "es"), "dev")["text_a"] == [
        'El "Rang" dijo',
        "NS",
        "z",
    ]
    assert kept["notes"]["pawsx"]["untranslated"]["dev"] == {"kept": 1, "dropped": 0}
    dropped = prepare("pawsx", raw, tmp_path / "b", layout="xtreme", drop_untranslated=True)
    assert dropped["counts"]["pa/es"] == {"dev": 2}
    assert dropped["notes"]["pawsx"]["untranslated"]["dev"] == {"kept": 0, "dropped": 1}
    assert dropped["skipped"]["pawsx: NS sentence (failed translation)"] == 1
    # the option changes nothing but PAWS-X: other datasets only record it
    xnli = prepare("xnli", raw, tmp_path / "c", layout="xtreme", drop_untranslated=True)
    assert xnli["counts"] == XTREME["xnli"][0] and xnli["options"]["drop_untranslated"]


def test_pawsx_translate_train_always_drops_ns(tmp_path):
    raw = fx.write_translate_train(tmp_path / "raw", "pawsx_translate_train", ("de",))
    summary = prepare("pawsx_translate_train", raw, tmp_path / "out")
    assert summary["counts"] == {"pa/de": {"train": 1}}
    assert summary["notes"]["pawsx_translate_train"]["untranslated"] == {
        "train": {"kept": 0, "dropped": 1}
    }


def test_cli_drop_untranslated_flag(tmp_path, capsys):
    from pipeline.cli import main

    raw = fx.write_pawsx(tmp_path / "raw", ("de",))
    argv = ["prepare", "--dataset", "pawsx", "--raw", str(raw)]
    assert main([*argv, "--out", str(tmp_path / "keep")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["options"] == {"drop_untranslated": False}
    assert out["counts"]["pa/de"]["dev"] == 4
    assert main([*argv, "--out", str(tmp_path / "drop"), "--drop-untranslated"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["options"] == {"drop_untranslated": True}
    assert out["counts"]["pa/de"]["dev"] == 2
    summary = json.loads((tmp_path / "drop" / "summary.json").read_text(encoding="utf-8"))
    assert summary["notes"]["pawsx"]["untranslated"]["dev"] == {"kept": 0, "dropped": 2}


def test_heldout_dev_turns_dev_into_test_and_carves_dev_from_train(tmp_path):
    """M'hamdi et al.'s TyDiQA-GoldP: dev = a share of train, test = the GoldP dev file."""
    raw = fx.write_tydiqa(tmp_path / "ty")
    out = prepare("tydiqa", raw, tmp_path / "qa", heldout_dev=0.5)
    sw, te = TLP("qa", "sw"), TLP("qa", "te")
    train, dev = load_split(tmp_path / "qa", sw, "train"), load_split(tmp_path / "qa", sw, "dev")
    assert len(train) == len(dev) == 1  # sw's two train questions, half held out
    assert {*train["id"], *dev["id"]} == {"swahili-11-0", "swahili-33-1"}
    assert list(load_split(tmp_path / "qa", te, "test")["id"]) == ["telugu-44-0"]
    assert "dev" not in prepared_tlps(tmp_path / "qa")[te]  # te had no train split
    assert out["options"]["heldout_dev"] == 0.5
    again = prepare("tydiqa", raw, tmp_path / "qa2", heldout_dev=0.5)
    assert again["counts"] == out["counts"]  # a fixed split
    with pytest.raises(DataError, match="has a test split; heldout_dev"):
        prepare("mtod", fx.write_mtod(tmp_path / "mt"), tmp_path / "m", heldout_dev=0.1)
