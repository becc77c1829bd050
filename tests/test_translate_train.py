"""XTREME translate-train datasets: `prepare` in both layouts, and per-split TLP lookup.

Fixture files are written by code in the formats of gs://xtreme_translations (see
pipeline/data/readers/translate_train.py); every count below is counted by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rawfixtures as fx

from pipeline.cli import main
from pipeline.data.prepare import DATASET_TASKS, TRANSLATE_TRAIN, prepare
from pipeline.data.readers.translate_train import read_translate_train_tsv
from pipeline.data.store import load_split, locate, save_prepared
from pipeline.errors import DataError, PipelineError
from pipeline.records import TLP

# --------------------------------------------------------------------------- fixtures

#: XNLI, current 5-column files: en_sentence1, en_sentence2, sentence1, sentence2, label
XNLI_DE = [
    ["The premise .", "The hypothesis .", '"Die" Prämisse .', "Die Hypothese .", "contradictory"],
    ["Second .", "Two .", "Zweite .", "Zwei .", "entailment"],
    ["Third .", "Three .", "Dritte .", "", "neutral"],  # empty translation: skipped
    ["Fourth .", "Four .", "Vierte .", "Vier .", "neutral"],
]
#: XNLI, the earlier 3-column files: sentence1, sentence2, label
XNLI_FR = [["Une prémisse .", "Une hypothèse .", "neutral"], ["Deux .", "Deux bis .", "entailment"]]
PAWSX_DE = [
    ["A b .", "B a .", '"A" b .', "B a .", "1"],
    ["C d .", "D c .", "C d .", "D c .", "0"],
    ["E .", "F .", "NS", "F .", "1"],  # failed translation
    ["G .", "H .", "G .", "H ."],  # wrongly populated: 4 fields
    ["I .", "J .", "I .", "J .", "2"],  # wrongly populated: label
    ["K .", "L .", "K .", "L .", "0"],
]
PAWSX_JA = [["M .", "N .", "Mの.", "Nの.", "1"], ["O .", "P .", "Oの.", "Pの.", "0"]]
TYDIQA_SW = [  # XTREME-style ids that repeat within the file
    ("12", "Q1?", fx.CTX, [("Paris", 0)]),
    ("12", "Q2?", fx.CTX, [("France", 24)]),
    ("7", "Q3?", fx.CTX, [("capital", 13)]),
]
#: an id naming English: the language still comes from the file name (en-fi -> fi)
TYDIQA_FI = [("english-1-0", "Q?", fx.CTX, [("Paris", 0)])]


def write_files(dataset: str, folder: Path) -> Path:
    """The dataset's translate-train files (as named in the bucket) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    if dataset == "xnli_translate_train":
        (folder / "en-de-translated.tsv").write_text(fx.tsv(XNLI_DE), encoding="utf-8")
        (folder / "en-fr-translated.tsv").write_text(fx.tsv(XNLI_FR), encoding="utf-8")
        # translate-test files sit beside them in XTREME's XNLI-Translated/: not train data
        (folder / "test-de-en-translated.tsv").write_text(fx.tsv(XNLI_FR), encoding="utf-8")
    elif dataset == "pawsx_translate_train":
        (folder / "en-de-translated.tsv").write_text(fx.tsv(PAWSX_DE), encoding="utf-8")
        (folder / "en-ja-translated.tsv").write_text(fx.tsv(PAWSX_JA), encoding="utf-8")
    elif dataset == "squad_translate_train":
        for lang in ("de", "es"):
            fx.write_json(
                folder / f"squad.translate.train.en-{lang}.json", fx.squad_doc("1.1", fx.QA_ITEMS)
            )
        # translate-dev is a different split: never read as train
        fx.write_json(folder / "squad.translate.dev.en-de.json", fx.squad_doc("1.1", fx.QA_ITEMS))
    else:
        fx.write_json(folder / "tydiqa.translate.train.en-sw.json", fx.squad_doc("v", TYDIQA_SW))
        fx.write_json(folder / "tydiqa.translate.train.en-fi.json", fx.squad_doc("v", TYDIQA_FI))
    return folder


#: dataset -> (counts, skipped), by hand from the rows above
EXPECTED = {
    "xnli_translate_train": (
        {"nli/de": {"train": 3}, "nli/fr": {"train": 2}},
        {"xnli_translate_train: empty sentence": 1},
    ),
    "pawsx_translate_train": (
        {"pa/de": {"train": 3}, "pa/ja": {"train": 2}},
        {
            "pawsx_translate_train: NS sentence (failed translation)": 1,
            "pawsx_translate_train: malformed row (field count differs from the file's "
            "first row)": 1,
            "pawsx_translate_train: malformed row (label not 0 or 1)": 1,
        },
    ),
    "squad_translate_train": ({"qa/de": {"train": 2}, "qa/es": {"train": 2}}, {}),
    "tydiqa_translate_train": ({"qa/fi": {"train": 1}, "qa/sw": {"train": 3}}, {}),
}


def place(tmp_path: Path, dataset: str, variant: str) -> tuple[Path, str, str]:
    """Write the files in one of the accepted places; (raw dir, layout, folder under raw)."""
    spec = TRANSLATE_TRAIN[dataset]
    root = tmp_path / "raw"
    if variant == "original":  # flat: what `pipeline download` writes
        raw, layout, sub = root, "original", "."
    elif variant == "original-bucket":  # a mirror of gs://xtreme_translations
        raw, layout, sub = root, "original", f"{spec.bucket}/translate-train"
    elif variant == "xtreme":  # download/<task>/translate-train/, beside XTREME's own files
        raw, layout, sub = fx.write_xtreme(root), "xtreme", f"{spec.task_dir}/translate-train"
    elif variant == "xtreme-task-dir":  # data/raw/<dataset> linked to download/<task>/
        raw, layout, sub = root / spec.task_dir, "xtreme", "translate-train"
    else:  # xtreme layout over the flat download (params: layout is one for all datasets)
        raw, layout, sub = root, "xtreme", "."
    write_files(dataset, raw / sub)
    return raw, layout, sub


VARIANTS = ("original", "original-bucket", "xtreme", "xtreme-task-dir", "xtreme-flat")


# --------------------------------------------------------------------------- prepare


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dataset", sorted(TRANSLATE_TRAIN))
def test_prepare_translate_train_layouts(tmp_path, dataset, variant):
    raw, layout, sub = place(tmp_path, dataset, variant)
    counts, skipped = EXPECTED[dataset]
    summary = prepare(dataset, raw, tmp_path / "out", layout=layout)
    assert summary["counts"] == counts
    assert summary["skipped"] == skipped
    assert summary["tasks"] == [DATASET_TASKS[dataset]] and summary["layout"] == layout
    assert summary["languages"] == sorted(t.split("/")[1] for t in counts)
    notes = summary["notes"][dataset]
    assert set(notes["splits"]) == {"train"}  # train only: dev/test come from eval datasets
    assert set(notes["files"]) == {"train"}
    prefix = "" if sub == "." else sub + "/"
    want_files = {prefix + n for n in _train_names(dataset)}
    assert set(notes["files"]["train"]) == want_files
    tt = notes["translate_train"]
    assert tt["machine_translated"] is True
    assert tt["eval_datasets"] == list(TRANSLATE_TRAIN[dataset].eval_datasets)
    assert tt["published_as"].startswith(
        f"gs://xtreme_translations/{TRANSLATE_TRAIN[dataset].bucket}/translate-train/"
    )
    for tlp_text, splits in counts.items():
        ds = load_split(tmp_path / "out", TLP.parse(tlp_text), "train")
        assert len(ds) == splits["train"] and len(set(ds["id"])) == len(ds)
        assert set(ds["lang"]) == {TLP.parse(tlp_text).lang}


def _train_names(dataset: str) -> list[str]:
    return {
        "xnli_translate_train": ["en-de-translated.tsv", "en-fr-translated.tsv"],
        "pawsx_translate_train": ["en-de-translated.tsv", "en-ja-translated.tsv"],
        "squad_translate_train": [
            "squad.translate.train.en-de.json",
            "squad.translate.train.en-es.json",
        ],
        "tydiqa_translate_train": [
            "tydiqa.translate.train.en-fi.json",
            "tydiqa.translate.train.en-sw.json",
        ],
    }[dataset]


@pytest.mark.parametrize("dataset", ["xnli_translate_train", "pawsx_translate_train"])
def test_xtreme_processor_folders_are_accepted(tmp_path, dataset):
    """XTREME's processors read xnli/XNLI-Translated/ and pawsx/translated/."""
    spec = TRANSLATE_TRAIN[dataset]
    raw = fx.write_xtreme(tmp_path / "download")
    write_files(dataset, raw / spec.task_dir / spec.processor_dir)
    summary = prepare(dataset, raw, tmp_path / "out", layout="xtreme")
    assert summary["counts"] == EXPECTED[dataset][0]


def test_translated_rows_kept_and_source_ignored(tmp_path):
    raw, layout, _ = place(tmp_path, "xnli_translate_train", "original")
    summary = prepare("xnli_translate_train", raw, tmp_path / "out", layout=layout)
    de = load_split(tmp_path / "out", TLP("nli", "de"), "train").to_list()
    assert de[0] == {
        "id": "en-de-translated-1",
        "lang": "de",
        "text_a": '"Die" Prämisse .',  # quotes literal
        "text_b": "Die Hypothese .",
        "label": "contradiction",  # spelled contradictory
    }
    assert [r["id"] for r in de] == [
        "en-de-translated-1",
        "en-de-translated-2",
        "en-de-translated-4",
    ]
    fr = load_split(tmp_path / "out", TLP("nli", "fr"), "train").to_list()
    assert [(r["text_a"], r["label"]) for r in fr] == [
        ("Une prémisse .", "neutral"),
        ("Deux .", "entailment"),
    ]
    notes = summary["notes"]["xnli_translate_train"]
    assert notes["translate_train_5_column_files"] == 1
    assert notes["translate_train_3_column_files"] == 1

    raw, layout, _ = place(tmp_path / "p", "pawsx_translate_train", "original")
    prepare("pawsx_translate_train", raw, tmp_path / "pout", layout=layout)
    pde = load_split(tmp_path / "pout", TLP("pa", "de"), "train").to_list()
    assert [(r["id"], r["text_a"], r["label"]) for r in pde] == [
        ("en-de-translated-1", '"A" b .', "1"),
        ("en-de-translated-2", "C d .", "0"),
        ("en-de-translated-6", "K .", "0"),
    ]


def test_tydiqa_translate_train_dedup_and_language_from_file_name(tmp_path):
    raw, layout, _ = place(tmp_path, "tydiqa_translate_train", "xtreme")
    summary = prepare("tydiqa_translate_train", raw, tmp_path / "out", layout=layout)
    assert summary["dedup_ids"] == 1
    assert summary["notes"]["tydiqa_translate_train"]["dedup_ids"] == 1
    sw = load_split(tmp_path / "out", TLP("qa", "sw"), "train").to_list()
    assert [r["id"] for r in sw] == ["12", "12#2", "7"]
    assert sw[1]["answers"] == {"text": ["France"], "answer_start": [24]}
    (fi,) = load_split(tmp_path / "out", TLP("qa", "fi"), "train").to_list()
    assert (fi["id"], fi["lang"]) == ("english-1-0", "fi")


def test_language_filter_and_cli(tmp_path, capsys):
    raw, layout, _ = place(tmp_path, "squad_translate_train", "original")
    summary = prepare("squad_translate_train", raw, tmp_path / "out", languages=["es"])
    assert summary["counts"] == {"qa/es": {"train": 2}}
    with pytest.raises(DataError, match=r"no squad_translate_train data for language\(s\) hi"):
        prepare("squad_translate_train", raw, tmp_path / "out2", languages=["es", "hi"])
    argv = ["prepare", "--dataset", "squad_translate_train", "--raw", str(raw)]
    assert main([*argv, "--out", str(tmp_path / "cli"), "--layout", layout]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == EXPECTED["squad_translate_train"][0]


def test_evaluation_datasets_ignore_translate_train_folders(tmp_path):
    """XTREME's xnli/ and squad/ readers are unchanged by translate-train/ beside them."""
    raw = fx.write_xtreme(tmp_path / "download")
    write_files("xnli_translate_train", raw / "xnli" / "translate-train")
    write_files("squad_translate_train", raw / "squad" / "translate-train")
    xnli = prepare("xnli", raw, tmp_path / "x", layout="xtreme")
    assert xnli["counts"] == {"nli/de": {"dev": 1}, "nli/en": {"train": 2}}
    squad = prepare("squad", raw, tmp_path / "s", layout="xtreme")
    assert squad["counts"] == {"qa/en": {"dev": 2, "train": 2}}


# --------------------------------------------------------------------------- errors


def test_missing_files_name_the_expected_places(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DataError,
        match=r"empty: no data found; expected en-<lang>-translated.tsv in one of \./, "
        r"PAWSX/translate-train/, translate-train/ \(original layout\)",
    ):
        prepare("pawsx_translate_train", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(DataError, match=r"tydiqa/translate-train/.*\(xtreme layout\)"):
        prepare("tydiqa_translate_train", tmp_path / "empty", tmp_path / "out", layout="xtreme")
    assert not (tmp_path / "out").exists()


def test_bad_translate_train_rows(tmp_path):
    f = tmp_path / "en-de-translated.tsv"
    f.write_text(fx.tsv([["a", "b", "neutral"], ["x", "y", "a2", "b2", "neutral"]]), "utf-8")
    with pytest.raises(DataError, match=rf"^{f}:2: expected 3 tab-separated fields like"):
        prepare("xnli_translate_train", tmp_path, tmp_path / "out")
    f.write_text(fx.tsv([["a", "b", "c", "neutral"]]), "utf-8")
    with pytest.raises(DataError, match=rf"^{f}:1: expected 5 tab-separated fields"):
        prepare("pawsx_translate_train", tmp_path, tmp_path / "out")
    f.write_text(fx.tsv([["a", "b", "a2", "b2", "maybe"]]), "utf-8")
    with pytest.raises(DataError, match=rf"^{f}:1: expected an NLI label"):
        prepare("xnli_translate_train", tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match=r"expected a file named en-<lang>-translated.tsv"):
        read_translate_train_tsv(tmp_path / "de.tsv", "nli")


# --------------------------------------------------------------------------- locate per split


def test_locate_finds_each_split_where_it_is(tmp_path):
    raw, _, _ = place(tmp_path, "squad_translate_train", "original")
    tt = tmp_path / "prepared" / "squad_translate_train"
    prepare("squad_translate_train", raw, tt)  # qa/de, qa/es: train
    mlqa = tmp_path / "prepared" / "mlqa"
    prepare("mlqa", fx.write_mlqa(tmp_path / "mlqa", ("en", "de")), mlqa)  # qa/en, qa/de: dev, test
    dirs = [tt, mlqa]
    de = TLP("qa", "de")
    assert locate(de, dirs, "train") == tt
    assert locate(de, dirs, "dev") == mlqa
    assert locate(de, dirs, "test") == mlqa
    assert locate(de, list(reversed(dirs)), "train") == tt
    assert locate(de, dirs) == tt  # without a split: the first dataset holding the TLP
    assert locate(de, list(reversed(dirs))) == mlqa
    assert locate(TLP("qa", "en"), dirs) == mlqa
    assert len(load_split(locate(de, dirs, "dev"), de, "dev")) == 2
    with pytest.raises(PipelineError, match=r"TLP qa/en split train is in no prepared dataset"):
        locate(TLP("qa", "en"), dirs, "train")
    with pytest.raises(PipelineError, match=r"TLP qa/es split dev is in no prepared dataset"):
        locate(TLP("qa", "es"), dirs, "dev")
    with pytest.raises(PipelineError, match=r"TLP qa/hi is in no prepared dataset"):
        locate(TLP("qa", "hi"), dirs)
    with pytest.raises(PipelineError, match=r"unknown split 'validation'"):
        locate(de, dirs, "validation")


def test_load_split_data_reads_each_split_from_its_dataset(tmp_path):
    from conftest import make_records
    from transformers import AutoTokenizer

    from pipeline.corpus import train_texts
    from pipeline.features import load_split_data, merged_labels
    from pipeline.models.encoder import train_tokenizer
    from pipeline.tasks import FeatureSettings

    tlp = TLP("nli", "l0")
    recs = make_records(n_train=4, n_eval=3)[tlp]
    train_only, eval_only = tmp_path / "tt", tmp_path / "eval"
    save_prepared(train_only, {tlp: {"train": recs["train"]}})
    save_prepared(eval_only, {tlp: {"dev": recs["dev"], "test": recs["test"]}})
    dirs = [train_only, eval_only]
    texts = list(train_texts(dirs))
    train_tokenizer(texts, vocab_size=100, min_frequency=1, out=tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    settings = FeatureSettings(
        max_length=32, doc_stride=16, max_query_length=8, max_answer_length=5, n_best=5
    )
    labels = merged_labels(dirs)
    for split, where, n in (("train", train_only, 4), ("dev", eval_only, 3)):
        data = load_split_data(
            tlp, split, dirs, tok, labels, settings, train=split == "train", cache_dir=None
        )
        assert data.dataset_dir == where and len(data.records) == n
