"""MetaXL's sentiment targets in their published form: data_index.txt, Sentiraama's product files,
SentiPers' XML files, `prepare` on them, and the synthetic benchmark written in those layouts."""

from __future__ import annotations

import pytest
import rawfixtures as fx

from pipeline.data.prepare import prepare
from pipeline.data.readers.metaxl_index import METAXL_LANGS, index_notes, read_metaxl_index
from pipeline.data.readers.sentipers import read_sentipers_extra, sentipers_table
from pipeline.data.readers.sentiraama import read_sentiraama_blocks, read_sentiraama_lines
from pipeline.data.store import load_split
from pipeline.data.synthetic import generate, write_release
from pipeline.errors import ConfigError, DataError
from pipeline.records import TLP

POS, NEG = "product_pos.txt", "product_neg.txt"


def _split(out, tlp: str, split: str) -> list[dict]:
    return load_split(out, TLP.parse(tlp), split).to_list()


def _triples(out, tlp: str, split: str) -> list[tuple[str, str, str]]:
    return [(r["id"], r["text"], r["label"]) for r in _split(out, tlp, split)]


# --------------------------------------------------------------------------- data_index.txt


def test_index_parser_hand_checked(tmp_path):
    path = tmp_path / "data_index.txt"
    path.write_text(fx.METAXL_INDEX, encoding="utf-8")
    index = read_metaxl_index(path)
    assert index == {
        "tir": {
            "train": [(0, POS), (2, NEG), (None, None), (3, POS)],
            "dev": [(6, POS), (1, NEG)],
            "test": [(4, POS), (0, NEG)],
        },
        "fa": {
            "train": [(0, None), (2, None), (6, None)],
            "dev": [(3, None), (None, None), (1, None), (3, None)],
            "test": [(4, None), (5, None), (3, None)],
        },
    }
    assert {c: s.ours for c, s in METAXL_LANGS.items()} == {"tir": "te", "fa": "fa"}
    assert index_notes(index["fa"]) == {
        "entries": {"train": 3, "dev": 4, "test": 3},
        "none_entries": {"train": 0, "dev": 1, "test": 0},
        "duplicates_kept": {"train": 0, "dev": 1, "test": 0},
        "overlaps_kept": {"train&dev": 0, "train&test": 0, "dev&test": 1},
    }


FA_OK = "# fa train index\n[1]\n\n# fa dev index\n[2]\n\n# fa test index\n[3]\n"
TIR_HEAD = "# tir train index and file\n"

#: text -> (line the error names, what the message says)
MALFORMED = {
    "# de train index\n[1]\n": (1, "expected a section header"),
    "# tir train index\n[1]\n": (1, "expected a section header"),  # tir needs "and file"
    "# fa train index and file\n[1]\n[None]\n": (1, "expected a section header"),
    "# fa valid index\n[1]\n": (1, "expected a section header"),
    "[1, 2]\n": (1, "expected a section header"),
    TIR_HEAD + "[1, 2]\n['product_pos.txt']\n": (3, "expected 2 file names"),
    TIR_HEAD + "[1]\n['product_x.txt']\n": (3, "expected a file name in"),
    TIR_HEAD + "[1]\n[None]\n": (3, "entry 0: expected a file name in"),
    "# fa train index\n[1, 'a']\n": (2, "entry 1: expected an int >= 0 or None"),
    "# fa train index\n[1, -3]\n": (2, "entry 1: expected an int >= 0 or None"),
    "# fa train index\n[True]\n": (2, "entry 0: expected an int >= 0 or None"),
    "# fa train index\n[1.5]\n": (2, "entry 0: expected an int >= 0 or None"),
    "# fa train index\n[1, 2\n": (2, "expected a Python list literal"),
    "# fa train index\n__import__('os').system('false')\n": (2, "expected a Python list literal"),
    "# fa train index\n{1: 2}\n": (2, "expected a Python list literal of indices"),
    "# fa train index\n\n[1]\n": (2, "expected the fa train index list, got a blank line"),
    "# fa train index\n": (1, "expected the fa train index list, got end of file"),
    TIR_HEAD + "[1]\n": (2, "expected the tir train file list, got end of file"),
    FA_OK + "\n# fa dev index\n[4]\n": (10, "repeated section '# fa dev index'"),
    "# fa dev index\n[1]\n\n# fa test index\n[2]\n": (1, "fa has no train section"),
    FA_OK + "\n" + TIR_HEAD + "[1]\n['product_pos.txt']\n": (10, "tir has no dev/test section"),
    "\n\n": (2, "no sections"),
}


@pytest.mark.parametrize("text", list(MALFORMED), ids=range(len(MALFORMED)))
def test_malformed_index_is_one_line_naming_file_and_line(tmp_path, text):
    path = tmp_path / "data_index.txt"
    path.write_text(text, encoding="utf-8")
    line, what = MALFORMED[text]
    with pytest.raises(DataError) as e:
        read_metaxl_index(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:{line}: "), msg
    assert what in msg, msg


def test_index_parser_accepts_what_it_should(tmp_path):
    path = tmp_path / "data_index.txt"
    path.write_text("#fa train index \n []\n\n\n# fa dev index\n[0]\n# fa test index\n[None]\n")
    assert read_metaxl_index(path) == {
        "fa": {"train": [], "dev": [(0, None)], "test": [(None, None)]}
    }


# --------------------------------------------------------------------------- the corpora


def test_sentiraama_lines_and_blocks(tmp_path):
    root = fx.write_sentiraama_original(tmp_path)
    assert read_sentiraama_lines(root / POS) == [
        "మంచి ఫోన్",
        fx.SEP,
        "",
        "బాగుంది",
        "రెండో వరుస",
        fx.SEP,
        "చాలా బాగుంది",
        fx.SEP,
    ]
    assert read_sentiraama_lines(root / NEG) == ["చెడ్డ ఫోన్", fx.SEP, "పనికిరాదు", fx.SEP]  # CRLF
    assert read_sentiraama_blocks(root / POS) == [
        "మంచి ఫోన్",
        "బాగుంది రెండో వరుస",
        "చాలా బాగుంది",
    ]
    (tmp_path / "x.txt").write_text("\n___\n  \n___\nonly\n  more  \n", encoding="utf-8")
    assert read_sentiraama_blocks(tmp_path / "x.txt") == ["only more"]


def test_sentipers_table_order_and_drops(tmp_path):
    data = fx.write_sentipers_original(tmp_path) / "SentiPers-master" / "data"
    table, info = sentipers_table(data)
    assert [(r.text, r.polarity, r.file) for r in table] == [
        ("دوربین عالی است.", "+2", "main/A camera.xml"),
        ("قیمت آن معمولی است.", "0", "main/A camera.xml"),
        ("باتری ضعیف است.", "-1", "main/A camera.xml"),
        ("صفحه نمایش خوب است.", "+1", "main/B phone.xml"),
        ("اصلا توصیه نمی کنم.", "-2", "main/B phone.xml"),
        ("تبلت سبک است.", "+1", "extra/C tablet.xml"),
        ("خیلی  کند", "-1", "extra/C tablet.xml"),
        ("تکراری", "0", "extra/C tablet.xml"),
    ]
    assert table[0].sid == "rev-1" and table[5].sid == "-"
    assert {k: info[k] for k in ("rows", "rows_main", "rows_extra", "files")} == {
        "rows": 8,
        "rows_main": 5,
        "rows_extra": 3,
        "files": {"main": 2, "extra": 1},
    }
    assert (info["dropped_empty"], info["dropped_repeated_text"]) == (1, 2)


def test_sentipers_malformed_files_name_file(tmp_path):
    data = fx.write_sentipers_original(tmp_path / "a") / "SentiPers-master" / "data"
    bad = data / "main" / "A camera.xml"
    bad.write_text(fx.SENTIPERS_A.replace("</Review>", ""), encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{bad}:\d+: expected well-formed SentiPers XML"):
        sentipers_table(data)
    bad.write_text(fx.SENTIPERS_A.replace(' Value="0"', ""), encoding="utf-8")
    with pytest.raises(DataError, match=r"Sentence 'rev-2': expected a Value attribute"):
        sentipers_table(data)
    extra = tmp_path / "e.xml"
    extra.write_text("0\ta\nstray\n[+1]\n[@@@]\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{extra}:2: expected '<position>"):
        read_sentipers_extra(extra)


# --------------------------------------------------------------------------- prepare


def test_prepare_sentiraama_original_selects_indexed_lines(tmp_path):
    raw = fx.write_sentiraama_original(tmp_path / "raw")
    summary = prepare("sentiraama", raw, tmp_path / "out")
    assert summary["counts"] == {"sa/te": {"train": 3, "dev": 1, "test": 2}}
    assert _triples(tmp_path / "out", "sa/te", "train") == [
        ("te-pos-0", "మంచి ఫోన్", "positive"),
        ("te-neg-2", "పనికిరాదు", "negative"),
        ("te-pos-3", "బాగుంది", "positive"),
    ]
    assert _triples(tmp_path / "out", "sa/te", "dev") == [("te-pos-6", "చాలా బాగుంది", "positive")]
    assert _triples(tmp_path / "out", "sa/te", "test") == [
        ("te-pos-4", "రెండో వరుస", "positive"),
        ("te-neg-0", "చెడ్డ ఫోన్", "negative"),
    ]
    assert summary["skipped"] == {
        "sentiraama: index entry None (MetaXL found no matching review)": 1,
        "sentiraama: index points at a blank or separator line (files differ from MetaXL's)": 1,
    }
    note = summary["notes"]["sentiraama"]["metaxl_index"]
    assert note["language"].startswith("tir -> te")
    assert note["none_entries"] == {"train": 1, "dev": 0, "test": 0}
    assert note["reviews_in_files"] == {POS: 3, NEG: 2}
    assert "index and file" in summary["notes"]["sentiraama"]["splits"]["train"]


def test_prepare_sentipers_original_selects_indexed_rows(tmp_path):
    raw = fx.write_sentipers_original(tmp_path / "raw")
    summary = prepare("sentipers", raw, tmp_path / "out")
    assert summary["counts"] == {"sa/fa": {"train": 3, "dev": 2, "test": 3}}
    assert _triples(tmp_path / "out", "sa/fa", "train") == [
        ("fa-0", "دوربین عالی است.", "positive"),
        ("fa-2", "باتری ضعیف است.", "negative"),
        ("fa-6", "خیلی  کند", "negative"),
    ]
    assert _triples(tmp_path / "out", "sa/fa", "dev") == [  # the repeat kept, id made unique
        ("fa-3", "صفحه نمایش خوب است.", "positive"),
        ("fa-3#2", "صفحه نمایش خوب است.", "positive"),
    ]
    assert _triples(tmp_path / "out", "sa/fa", "test") == [
        ("fa-4", "اصلا توصیه نمی کنم.", "negative"),
        ("fa-5", "تبلت سبک است.", "positive"),
        ("fa-3", "صفحه نمایش خوب است.", "positive"),
    ]
    assert summary["skipped"] == {
        "sentipers: index entry None (MetaXL found no matching sentence)": 1,
        "sentipers: indexed sentence has polarity 0 (neutral, dropped as in MetaXL)": 1,
    }
    assert summary["dedup_ids"] == 1
    note = summary["notes"]["sentipers"]["metaxl_index"]
    assert note["duplicates_kept"] == {"train": 0, "dev": 1, "test": 0}
    assert note["overlaps_kept"] == {"train&dev": 0, "train&test": 0, "dev&test": 1}
    assert note["sentence_table"]["rows"] == 8
    assert summary["notes"]["sentipers"]["found_in"] == {
        "SentiPers data/main/*.xml (and data/extra/*.xml)": "SentiPers-master/data",
        "data_index.txt (MetaXL's data/data_index.txt)": ".",
    }


def test_index_past_the_end_is_an_error(tmp_path):
    raw = fx.write_sentiraama_original(tmp_path / "r")
    (raw / "data_index.txt").write_text(
        fx.METAXL_INDEX.replace("[6, 1]", "[8, 1]"), encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"tir dev entry 0: index 8 is past the end of .*8 lines"):
        prepare("sentiraama", raw, tmp_path / "out")
    raw = fx.write_sentipers_original(tmp_path / "p")
    (raw / "data_index.txt").write_text(fx.METAXL_INDEX.replace("[4, 5, 3]", "[8]"))
    with pytest.raises(DataError, match=r"fa test entry 0: index 8 is past the end .*\(8 rows\)"):
        prepare("sentipers", raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dataset", ["sentiraama", "sentipers"])
def test_both_or_neither_form_is_one_line_error(tmp_path, dataset):
    write = {"sentiraama": fx.write_sentiraama_original, "sentipers": fx.write_sentipers_original}
    tables = {"sentiraama": fx.write_sentiraama, "sentipers": fx.write_sentipers}
    raw = write[dataset](tmp_path / "both")
    tables[dataset](raw / "splits")
    with pytest.raises(DataError) as e:
        prepare(dataset, raw, tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{raw}: found both {dataset} split tables (splits/)")
    assert "data_index.txt" in msg

    (tmp_path / "none" / "docs").mkdir(parents=True)
    with pytest.raises(DataError) as e:
        prepare(dataset, tmp_path / "none", tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'none'}: no data found; expected")
    assert "{train,dev,test}.tsv" in msg and "with data_index.txt" in msg and dataset in msg

    raw = write[dataset](tmp_path / "noindex")
    (raw / "data_index.txt").unlink()
    with pytest.raises(DataError, match=r"but not data_index.txt \(MetaXL's"):
        prepare(dataset, raw, tmp_path / "out")
    only = tmp_path / "onlyindex"
    only.mkdir()
    (only / "data_index.txt").write_text(fx.METAXL_INDEX, encoding="utf-8")
    with pytest.raises(DataError, match=r"found data_index.txt .*\(\./\) but not "):
        prepare(dataset, only, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tables_still_read_as_before(tmp_path):
    summary = prepare("sentipers", fx.write_sentipers(tmp_path / "sp"), tmp_path / "out")
    assert summary["counts"] == {"sa/fa": {"test": 1, "train": 2}}
    assert summary["notes"]["sentipers"]["splits"]["train"] == "train.tsv"
    assert "metaxl_index" not in summary["notes"]["sentipers"]


def test_missing_product_file_is_named(tmp_path):
    raw = fx.write_sentiraama_original(tmp_path / "r")
    (raw / NEG).unlink()
    with pytest.raises(DataError, match=r"product_neg.txt not found; expected both of"):
        prepare("sentiraama", raw, tmp_path / "out")


# --------------------------------------------------------------------------- round trip


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A tiny sa-only benchmark with Telugu and Persian, and its MARC files prepared (`marc/`)."""
    root = tmp_path_factory.mktemp("bench")
    raw = root / "synthetic"
    generate(
        raw,
        seed=7,
        languages=3,
        zero_shot=0,
        tasks=["sa"],
        codes=["en", "te", "fa"],
        sizes={"sa": {"train": 30}},
        eval_size=25,
        text_sentences=0,
        verbose=False,
    )
    prepare("marc", raw / "marc", root / "marc")  # the benchmark's sa data, all languages
    return raw, root


@pytest.mark.parametrize("dataset,lang", [("sentiraama", "te"), ("sentipers", "fa")])
def test_release_round_trip_gives_the_benchmark_split(bench, tmp_path, dataset, lang):
    raw, root = bench
    dest = tmp_path / dataset
    write_release(raw, dataset, dest)
    summary = prepare(dataset, dest, tmp_path / "out")
    tlp = f"sa/{lang}"
    for split in ("train", "dev", "test"):
        want = [(r["text"], r["label"]) for r in _split(root / "marc", tlp, split)]
        recs = _split(tmp_path / "out", tlp, split)
        got = [(r["text"], r["label"]) for r in recs]
        if dataset == "sentipers" and split == "test":  # the repeated entry, kept
            assert recs[-1]["id"].endswith("#2") and got[-1] == got[0]
            got = got[:-1]
        assert got == want, split
        assert len({r["id"] for r in recs}) == len(recs)
    assert set(summary["counts"]) == {tlp}
    note = summary["notes"][dataset]["metaxl_index"]
    none_split = "train" if dataset == "sentiraama" else "dev"
    assert sum(note["none_entries"].values()) == note["none_entries"][none_split] == 1
    assert sum(summary["skipped"].values()) == 1  # only the None entry
    if dataset == "sentipers":
        assert note["duplicates_kept"]["test"] == 1 and summary["dedup_ids"] == 1
        table = note["sentence_table"]
        assert table["rows_extra"] > 0 and table["files"]["main"] > 1
        assert (table["dropped_empty"], table["dropped_repeated_text"]) == (1, 2)
    else:
        lines = (dest / POS).read_text(encoding="utf-8").splitlines()
        assert "" in lines and fx.SEP in lines  # blank lines count in MetaXL's line numbers


def test_marc_release_is_the_benchmark(bench, tmp_path):
    raw, root = bench
    write_release(raw, "marc", tmp_path / "marc")
    a = prepare("marc", tmp_path / "marc", tmp_path / "out")
    assert set(a["counts"]) == {"sa/en"}  # MARC has no te/fa: those come from the others
    for split in ("train", "dev", "test"):
        assert _split(tmp_path / "out", "sa/en", split) == _split(root / "marc", "sa/en", split)


def test_release_refuses_without_the_language(tmp_path):
    raw = tmp_path / "syn"
    generate(
        raw,
        languages=2,
        zero_shot=0,
        tasks=["sa"],
        codes=["en", "de"],
        sizes={"sa": {"train": 3}},
        eval_size=3,
        text_sentences=0,
        verbose=False,
    )
    for dataset, lang in (("sentiraama", "te"), ("sentipers", "fa")):
        with pytest.raises(ConfigError) as e:
            write_release(raw, dataset, tmp_path / dataset)
        assert "\n" not in str(e.value) and f"no sa data in {lang}" in str(e.value)
