"""Tiny raw datasets in the publishers' (and XTREME's) layouts, written by code for tests.

Each `write_*` function writes one dataset under `root` (created if needed) and returns `root`.
The contents are small and fixed, so tests can assert hand-computed values; the quirks of the
real releases are included on purpose (see each function).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.data.readers.xnli import XNLI_COLUMNS


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tsv(rows: list[list[str]]) -> str:
    """Tab-joined lines, quotes left literal (publisher files)."""
    return "".join("\t".join(r) + "\n" for r in rows)


def csv_tsv(rows: list[list[str]]) -> str:
    """Tab-separated with csv quoting, as XTREME's preprocessing writes (`""` escapes)."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------- NLI


def xnli_row(lang: str, label: str, s1: str, s2: str, pair_id: str) -> list[str]:
    row = {c: "" for c in XNLI_COLUMNS}
    row.update(
        language=lang,
        gold_label=label,
        sentence1=s1,
        sentence2=s2,
        promptID="1",
        pairID=pair_id,
        genre="facetoface",
        label1=label,
        match="True",
    )
    return [row[c] for c in XNLI_COLUMNS]


#: per language: dev 3 pairs (one of each label), test 2 pairs; literal quotes that csv quoting
#: would eat (a field starting with '"', an unbalanced '"')
XNLI_DEV = [
    ("entailment", '"Hi," he said "to me.', "He spoke.", "1"),
    ("neutral", "A man walks.", "A man walks home.", "2"),
    ("contradiction", "It rains.", "It is dry.", "3"),
]
XNLI_TEST = [
    ("neutral", "A cat sat.", "A cat sat down.", "4"),
    ("contradiction", "She left.", "She stayed.", "5"),
]


def write_xnli(root: Path, langs: tuple[str, ...] = ("en", "de")) -> Path:
    """XNLI-1.0/xnli.{dev,test}.tsv (all languages in one file) and XNLI-MT train files.

    XNLI-MT train per language: 3 rows, one spelled `contradictory`.
    """
    header = [list(XNLI_COLUMNS)]
    for split, pairs in (("dev", XNLI_DEV), ("test", XNLI_TEST)):
        rows = [xnli_row(lang, *p) for lang in langs for p in pairs]
        _write(root / "XNLI-1.0" / f"xnli.{split}.tsv", tsv(header + rows))
    for lang in langs:
        rows = [
            ["premise", "hypo", "label"],
            ['"The quoted" premise', "A hypothesis .", "contradictory"],
            ["Second premise .", "Second hypothesis .", "entailment"],
            ["Third premise .", "Third hypothesis .", "neutral"],
        ]
        _write(root / "XNLI-MT-1.0" / "multinli" / f"multinli.train.{lang}.tsv", tsv(rows))
    return root


def mnli_line(label: str, s1: str, s2: str, pair_id: str) -> str:
    obj = {
        "annotator_labels": [label],
        "genre": "slate",
        "gold_label": label,
        "pairID": pair_id,
        "promptID": pair_id[:-1],
        "sentence1": s1,
        "sentence2": s2,
    }
    return json.dumps(obj) + "\n"


def write_mnli(root: Path) -> Path:
    """multinli_1.0/*.jsonl: train 3 lines (one '-'), dev_matched 2, dev_mismatched 2 (one '-')."""
    d = root / "multinli_1.0"
    _write(
        d / "multinli_1.0_train.jsonl",
        mnli_line("neutral", "a", "b", "1n")
        + mnli_line("-", "c", "d", "2e")
        + mnli_line("entailment", "e", "f", "3e"),
    )
    _write(
        d / "multinli_1.0_dev_matched.jsonl",
        mnli_line("contradiction", "g", "h", "4c") + mnli_line("neutral", "i", "j", "5n"),
    )
    _write(
        d / "multinli_1.0_dev_mismatched.jsonl",
        mnli_line("-", "k", "l", "6n") + mnli_line("entailment", "m", "n", "7e"),
    )
    return root


# --------------------------------------------------------------------------- PAWS-X


PAWSX_HEADER = ["id", "sentence1", "sentence2", "label"]


#: rows a translated (non-English) PAWS-X dev_2k / test_2k file adds, as the full release has:
#: `NS` for a failed translation (either sentence), and in dev one row with an empty label
PAWSX_DEV_EXTRA = [["9", "NS", "k j", "1"], ["10", "r", "NS", "0"], ["11", "s", "t", ""]]
PAWSX_TEST_EXTRA = [["12", "NS", "u", "1"]]


def write_pawsx(root: Path, langs: tuple[str, ...] = ("en", "de")) -> Path:
    """x-final/<lang>/: `en` gets train.tsv, others translated_train.tsv (3 rows of which one
    `NS` and one with an empty label in translations); dev_2k 2 rows, test_2k 2 rows, and in
    translations also `PAWSX_DEV_EXTRA` (2 `NS` rows, 1 empty label) and `PAWSX_TEST_EXTRA`
    (1 `NS` row)."""
    for lang in langs:
        d = root / "x-final" / lang
        train = [PAWSX_HEADER, ["1", '"A" b c', "A b c .", "1"], ["2", "d e", "e d", "0"]]
        dev = [PAWSX_HEADER, ["5", "j k", "k j", "1"], ["6", "l", "m", "0"]]
        test = [PAWSX_HEADER, ["7", "n o", "o n", "0"], ["8", "p", "q", "1"]]
        if lang == "en":
            _write(d / "train.tsv", tsv(train + [["3", "f g", "g f", "1"]]))
        else:
            _write(
                d / "translated_train.tsv",
                tsv(train + [["3", "NS", "g f", "1"], ["4", "h", "i", ""]]),
            )
            dev += PAWSX_DEV_EXTRA
            test += PAWSX_TEST_EXTRA
        _write(d / "dev_2k.tsv", tsv(dev))
        _write(d / "test_2k.tsv", tsv(test))
    return root


# --------------------------------------------------------------------------- tagging


def write_panx(root: Path, langs: tuple[str, ...] = ("en", "de")) -> Path:
    """<lang>/{train,dev,test}: 2 sentences each; tokens containing ':' (a URL, and ':' itself)."""
    for lang in langs:
        sents = [
            [("New", "B-LOC"), ("York", "I-LOC"), (":", "O")],
            [("http://x.org", "O"), ("Ann", "B-PER")],
        ]
        text = (
            "\n\n".join("\n".join(f"{lang}:{tok}\t{tag}" for tok, tag in s) for s in sents) + "\n"
        )
        for split in ("train", "dev", "test"):
            _write(root / lang / split, text)
    return root


def conllu_sentence(
    sent_id: str | None, words: list[tuple[str, str]], extra: list[str] = ()
) -> str:
    lines = [f"# sent_id = {sent_id}"] if sent_id else []
    lines.append("# text = " + " ".join(w for w, _ in words))
    lines += list(extra)
    for i, (form, upos) in enumerate(words, start=1):
        lines.append(f"{i}\t{form}\t{form.lower()}\t{upos}\t_\t_\t0\troot\t_\t_")
    return "\n".join(lines) + "\n\n"


ES_CONTRACTION = (
    "# sent_id = es-1\n# text = Voy del mar\n"
    "1\tVoy\tir\tVERB\t_\t_\t0\troot\t_\t_\n"
    "2-3\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tde\tde\tADP\t_\t_\t4\tcase\t_\t_\n"
    "3\tel\tel\tDET\t_\t_\t4\tdet\t_\t_\n"
    "3.1\tva\tir\tVERB\t_\t_\t_\t_\t0:root\t_\n"
    "4\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_\t_\n\n"
)


def write_udpos(root: Path) -> Path:
    """Two English treebanks (concatenated per split) and one Spanish with a range line `2-3`
    and an empty node `3.1`; `es` test: the contraction sentence plus one without sent_id."""
    a = root / "UD_English-A"
    _write(a / "en_a-ud-train.conllu", conllu_sentence("a-1", [("Hi", "INTJ"), ("!", "PUNCT")]))
    _write(a / "en_a-ud-test.conllu", conllu_sentence("a-2", [("Go", "VERB")]))
    b = root / "UD_English-B"
    _write(b / "en_b-ud-train.conllu", conllu_sentence("b-1", [("Yes", "INTJ")]))
    _write(b / "en_b-ud-dev.conllu", conllu_sentence("b-2", [("No", "INTJ")]))
    es = root / "UD_Spanish-X"
    _write(es / "es_x-ud-test.conllu", ES_CONTRACTION + conllu_sentence(None, [("Sí", "INTJ")]))
    return root


# --------------------------------------------------------------------------- QA


def squad_doc(version: Any, items: list[tuple[str, str, str, list[tuple[str, int]]]]) -> dict:
    """`items`: (id, question, context, [(answer text, answer_start)]); one article, one
    paragraph per item."""
    paragraphs = [
        {
            "context": ctx,
            "qas": [
                {
                    "id": qid,
                    "question": q,
                    "answers": [{"text": t, "answer_start": s} for t, s in answers],
                }
            ],
        }
        for qid, q, ctx, answers in items
    ]
    return {"version": version, "data": [{"title": "T", "paragraphs": paragraphs}]}


def write_json(path: Path, obj: Any) -> Path:
    return _write(path, json.dumps(obj, ensure_ascii=False))


CTX = "Paris is the capital of France."
QA_ITEMS = [
    ("q1", "What is the capital of France?", CTX, [("Paris", 0)]),
    ("q2", "Which country?", CTX, [("France", 24), ("France.", 24)]),
]


def write_squad(root: Path) -> Path:
    """train-v1.1.json and dev-v1.1.json, 2 questions each, version as a string."""
    write_json(root / "train-v1.1.json", squad_doc("1.1", QA_ITEMS))
    write_json(root / "dev-v1.1.json", squad_doc("1.1", QA_ITEMS))
    return root


def write_mlqa(root: Path, langs: tuple[str, ...] = ("en", "de"), train: bool = False) -> Path:
    """MLQA_V1/{dev,test}/…-context-<l>-question-<l>.json (version the number 1.0), plus one
    cross-lingual G-XLT file per split; `train=True` adds the synthetic benchmark's train split."""
    splits = ("train", "dev", "test") if train else ("dev", "test")
    for split in splits:
        for lang in langs:
            write_json(
                root / "MLQA_V1" / split / f"{split}-context-{lang}-question-{lang}.json",
                squad_doc(1.0, QA_ITEMS),
            )
        write_json(
            root / "MLQA_V1" / split / f"{split}-context-{langs[0]}-question-zz.json",
            squad_doc(1.0, QA_ITEMS),
        )
    return root


def write_xquad(root: Path, langs: tuple[str, ...] = ("en", "de")) -> Path:
    for lang in langs:
        write_json(root / f"xquad.{lang}.json", squad_doc("1.1", QA_ITEMS))
    return root


def write_tydiqa(root: Path) -> Path:
    """tydiqa-goldp-v1.1-{train,dev}.json, all languages in one file, language = id prefix."""
    train = [
        ("swahili-11-0", "Q?", CTX, [("Paris", 0)]),
        ("finnish--22-0", "Q?", CTX, [("France", 24)]),
        ("swahili-33-1", "Q?", CTX, [("capital", 13)]),
    ]
    dev = [("telugu-44-0", "Q?", CTX, [("Paris", 0)])]
    write_json(root / "tydiqa-goldp-v1.1-train.json", squad_doc("TyDiQA-GoldP-1.1", train))
    write_json(root / "tydiqa-goldp-v1.1-dev.json", squad_doc("TyDiQA-GoldP-1.1", dev))
    return root


# --------------------------------------------------------------------------- MTOD, MARC


def mtod_line(
    intent: str, slots: str, utt: str, locale: str, tokens: list[tuple[str, int, int]]
) -> str:
    tok = {
        "tokenizations": [
            {
                "tokens": [t for t, _, _ in tokens],
                "tokenSpans": [{"start": s, "length": n} for _, s, n in tokens],
                "tokenizerType": 2,
                "normalizerType": 1,
            }
        ]
    }
    return "\t".join([intent, slots, utt, locale, json.dumps(tok, ensure_ascii=False)]) + "\n"


#: "remind me to call mom at 5 pm": call mom = [13, 21), at 5 pm = [22, 29)
MTOD_REMIND = mtod_line(
    "reminder/set_reminder",
    "13:21:reminder/todo,22:29:datetime",
    "remind me to call mom at 5 pm",
    "en_XX",
    [
        ("remind", 0, 6),
        ("me", 7, 2),
        ("to", 10, 2),
        ("call", 13, 4),
        ("mom", 18, 3),
        ("at", 22, 2),
        ("5", 25, 1),
        ("pm", 27, 2),
    ],
)
MTOD_REMIND_SLOTS = [
    "O",
    "O",
    "O",
    "B-reminder/todo",
    "I-reminder/todo",
    "B-datetime",
    "I-datetime",
    "I-datetime",
]
MTOD_NO_SLOTS = mtod_line(
    "alarm/show_alarms", "", "show alarms", "en_XX", [("show", 0, 4), ("alarms", 5, 6)]
)


def write_mtod(root: Path, langs: tuple[str, ...] = ("en", "es")) -> Path:
    """<lang>/{train,eval,test}-<lang>.tsv, 2 utterances each (locale `<lang>_XX`)."""
    for lang in langs:
        text = (MTOD_REMIND + MTOD_NO_SLOTS).replace("en_XX", f"{lang}_XX")
        for split in ("train", "eval", "test"):
            _write(root / lang / f"{split}-{lang}.tsv", text)
    return root


def marc_line(rid: str, stars: Any, body: str, lang: str = "en") -> str:
    obj = {
        "review_id": rid,
        "product_id": "p",
        "reviewer_id": "r",
        "stars": stars,
        "review_body": body,
        "review_title": "title",
        "language": lang,
        "product_category": "home",
    }
    return json.dumps(obj, ensure_ascii=False) + "\n"


def write_marc(root: Path, langs: tuple[str, ...] = ("en", "de"), nested: bool = False) -> Path:
    """dataset_<lang>_<split>.json with stars "1", 2, "3", "4", 5 (3 is dropped)."""
    for lang in langs:
        for split in ("train", "dev", "test"):
            text = "".join(
                marc_line(f"{lang}_{split}_{i}", s, f"review {i}", lang)
                for i, s in enumerate(["1", 2, "3", "4", 5])
            )
            d = root / split if nested else root
            _write(d / f"dataset_{lang}_{split}.json", text)
    return root


def write_sentipers(root: Path) -> Path:
    """train.tsv (polarity 2, -1 and the neutral 0, which is dropped) and test.tsv."""
    _write(root / "train.tsv", "خوب\t2\nبد\t-1\nخنثی\t0\n")
    _write(root / "test.tsv", "عالی\t1\n")
    return root


def write_sentiraama(root: Path) -> Path:
    """dev.csv with a header and a quoted comma, and the format.json that names its columns."""
    _write(root / "dev.csv", 'review,pol\n"a, b",pos\nc,neg\n')
    write_json(root / "format.json", {"text": "review", "label": "pol", "header": True})
    return root


#: MetaXL's data_index.txt layout with both languages; the values are indexed by hand into the
#: two fixtures below (see their docstrings for what each entry selects)
METAXL_INDEX = """# tir train index and file
[0, 2, None, 3]
['product_pos.txt', 'product_neg.txt', None, 'product_pos.txt']

# tir dev index and file
[6, 1]
['product_pos.txt', 'product_neg.txt']

# tir test index and file
[4, 0]
['product_pos.txt', 'product_neg.txt']

# fa train index
[0, 2, 6]

# fa dev index
[3, None, 1, 3]

# fa test index
[4, 5, 3]
"""
SEP = "_" * 26


def write_sentiraama_original(root: Path) -> Path:
    """Sentiraama as LTRC ships it, product_pos.txt / product_neg.txt (CRLF), beside data_index.txt.

    Lines (0-based, what MetaXL's indices count) of product_pos.txt: 0 review A, 1 separator,
    2 blank, 3 review B (trailing blanks), 4 a second line of B's block, 5 separator, 6 review C,
    7 separator; of product_neg.txt: 0 review a, 1 separator, 2 review b, 3 separator.
    tir train [0 pos, 2 neg, None, 3 pos] -> A, b, B; dev [6 pos, 1 neg] -> C, and a separator
    (skipped); test [4 pos, 0 neg] -> B's second line alone, a.
    """
    pos = ["మంచి ఫోన్", SEP, "", "బాగుంది  ", "రెండో వరుస", SEP, "చాలా బాగుంది", SEP]
    neg = ["చెడ్డ ఫోన్", SEP, "పనికిరాదు", SEP]
    root.mkdir(parents=True, exist_ok=True)
    (root / "product_pos.txt").write_bytes("".join(f"{x}\n" for x in pos).encode("utf-8"))
    (root / "product_neg.txt").write_bytes("".join(f"{x}\r\n" for x in neg).encode("utf-8"))
    _write(root / "data_index.txt", METAXL_INDEX)
    return root


SENTIPERS_A = """<?xml version="1.0" encoding="utf-8"?>
<Product Title="A camera" Type="Camera">
  <Features>
    <Feature Name="نوع ">دیجیتال</Feature>
  </Features>
  <Review ID="ReviewBody" Value="+1">
    <Sentence ID="rev-1" Value="+2">دوربین عالی است.</Sentence>
    <Sentence ID="rev-2" Value="0">قیمت آن معمولی است.</Sentence>
    <Sentence ID="rev-3" Value="-1">باتری ضعیف است.</Sentence>
    <Sentence ID="rev-4" Value="+1">تکراری</Sentence>
  </Review>
  <Advantages>
    <Advantage>سبک</Advantage>
  </Advantages>
</Product>
"""
SENTIPERS_B = """<?xml version="1.0" encoding="utf-8"?>
<Product Title="B phone" Type="Mobile">
  <General_Reviews>
    <Review ID="g1">
      <Sentence ID="rev-1" Value="+1">صفحه نمایش خوب است.</Sentence>
      <Sentence ID="rev-2" Value="-2">تکراری</Sentence>
    </Review>
  </General_Reviews>
  <Critical_Reviews>
    <Review ID="c1">
      <Sentence ID="rev-3" Value="-2">اصلا توصیه نمی کنم.</Sentence>
      <Sentence ID="rev-4" Value="+1"></Sentence>
    </Review>
  </Critical_Reviews>
  <Tags>
    <Tag Type="Opinion" ID="tagID1" Coordinate="[rev-1,0,4]" Relation="x" Value="+" />
  </Tags>
</Product>
"""
SENTIPERS_EXTRA = (
    "0\tتبلت\n1\tسبک\tT\n2\tاست.\tOP\t\t1\n[+1]\n[@@@]\n"
    "0\tخیلی\n1\t\n2\tکند\n[-1]\n[@@@]\n"
    "0\tتکراری\n[0]\n[@@@]\n"
)


def write_sentipers_original(root: Path) -> Path:
    """The SentiPers repository as its zip unpacks (`SentiPers-master/data/{main,extra}/`),
    with data_index.txt beside it.

    The sentence table (main files sorted by name, then extra; empty sentences and texts
    repeated within a part dropped): 0 "دوربین عالی است." +2, 1 "قیمت آن معمولی است." 0,
    2 "باتری ضعیف است." -1 (A camera.xml; its "تکراری" is repeated in B phone.xml, so both are
    dropped), 3 "صفحه نمایش خوب است." +1, 4 "اصلا توصیه نمی کنم." -2 (B phone.xml, General then
    Critical reviews; its empty sentence is dropped), 5 "تبلت سبک است." +1, 6 "خیلی  کند" -1
    (two spaces: an empty token), 7 "تکراری" 0 (extra/; repeated only across parts: kept).
    fa train [0, 2, 6]; dev [3, None, 1, 3] (None and the neutral row 1 skipped, 3 repeated);
    test [4, 5, 3] (3 also in dev).
    """
    data = root / "SentiPers-master" / "data"
    _write(data / "main" / "B phone.xml", SENTIPERS_B)  # written first, read second
    _write(data / "main" / "A camera.xml", SENTIPERS_A)
    _write(data / "extra" / "C tablet.xml", SENTIPERS_EXTRA)
    _write(data / "sentipers.xlsx", "not read\n")
    _write(root / "data_index.txt", METAXL_INDEX)
    return root


# --------------------------------------------------------------------------- translate-train

#: XNLI/PAWS-X translate-train rows (5 columns: English pair, translated pair, label)
TT_PAIRS = {
    "nli": [
        ["A .", "B .", "A2 .", "B2 .", "contradictory"],
        ["C .", "D .", "C2 .", "D2 .", "neutral"],
    ],
    "pa": [["A .", "B .", "A2 .", "B2 .", "1"], ["C .", "D .", "NS", "D2 .", "0"]],
}


def write_translate_train(root: Path, dataset: str, langs: tuple[str, ...] = ("de", "fr")) -> Path:
    """The files of one XTREME translate-train dataset as the bucket names them, in `root`."""
    for lang in langs:
        if dataset in ("xnli_translate_train", "pawsx_translate_train"):
            rows = TT_PAIRS["nli" if dataset.startswith("xnli") else "pa"]
            _write(root / f"en-{lang}-translated.tsv", tsv(rows))
        else:
            name = dataset.split("_", 1)[0]
            write_json(root / f"{name}.translate.train.en-{lang}.json", squad_doc("1.1", QA_ITEMS))
    return root


# --------------------------------------------------------------------------- XTREME layout


def write_xtreme(root: Path) -> Path:
    """The folder XTREME's download_data.sh writes, for xnli, pawsx, panx, udpos, tydiqa, mlqa,
    xquad and squad, with unlabeled test files as XTREME writes them."""
    x = root / "xnli"
    _write(x / "train-en.tsv", csv_tsv([["a b", "c d", "contradictory"], ["e", "f", "neutral"]]))
    _write(x / "dev-de.tsv", csv_tsv([['He said "hi"', "g", "entailment"]]))
    _write(x / "test-de.tsv", csv_tsv([["h", "i"]]))
    p = root / "pawsx"
    _write(p / "train-en.tsv", csv_tsv([["a", "b", "1"], ["c", "d", "0"]]))
    _write(
        p / "dev-es.tsv",
        csv_tsv([['El "Rang" dijo', "x", "0"], ["NS", "y", "1"], ["z", "w", "1"]]),
    )
    _write(p / "test-es.tsv", csv_tsv([["a", "b"], ["c", "d"]]))
    for sub, tags in (("panx", ("B-PER", "O")), ("udpos", ("PROPN", "VERB"))):
        d = root / sub
        _write(d / "train-en.tsv", f"Ann\t{tags[0]}\nruns\t{tags[1]}\n\nBob\t{tags[0]}\n")
        _write(d / "dev-en.tsv", f"Cy\t{tags[0]}\nsat\t{tags[1]}\n")
        _write(d / "test-en.tsv", "Dee\nate\n\nEd\n")
    t = root / "tydiqa"
    train = [
        ("12", "Q?", CTX, [("Paris", 0)]),
        ("12", "Q2?", CTX, [("France", 24)]),
        ("7", "Q3?", CTX, [("capital", 13)]),
        ("12", "Q4?", CTX, [("Paris", 0)]),
    ]
    write_json(t / "tydiqa-goldp-v1.1-train" / "tydiqa.goldp.sw.train.json", squad_doc("v", train))
    blank = [("swahili-1-0", "Q?", CTX, [("", 0)])]
    write_json(t / "tydiqa-goldp-v1.1-dev" / "tydiqa.goldp.sw.dev.json", squad_doc("v", blank))
    write_mlqa(root / "mlqa", langs=("en",))
    write_xquad(root / "xquad", langs=("en",))
    write_squad(root / "squad")
    return root


# --------------------------------------------------------------------------- synthetic


SYNTHETIC_TASKS = {
    "nli": {"dataset": "xnli", "path": "xnli"},
    "pa": {"dataset": "pawsx", "path": "paws-x"},
    "ner": {"dataset": "panx", "path": "panx"},
    "pos": {"dataset": "udpos", "path": "udpos"},
    "qa": {"dataset": "mlqa", "path": "mlqa"},
    "sa": {"dataset": "marc", "path": "marc"},
    "mtod": {"dataset": "mtod", "path": "mtod"},
}


def write_synthetic(root: Path, tasks: tuple[str, ...] = tuple(SYNTHETIC_TASKS)) -> Path:
    """A synthetic-benchmark folder with languages l0, l1 in the publishers' layouts."""
    langs = ("l0", "l1")
    writers = {
        "nli": lambda d: write_xnli(d, langs),
        "pa": lambda d: write_pawsx(d, langs),
        "ner": lambda d: write_panx(d, langs),
        "pos": _write_udpos_synthetic,
        "qa": lambda d: write_mlqa(d, langs, train=True),
        "sa": lambda d: write_marc(d, langs),
        "mtod": lambda d: write_mtod(d, langs),
    }
    for task in tasks:
        writers[task](root / SYNTHETIC_TASKS[task]["path"])
    manifest = {
        "name": "synthetic",
        "seed": 13,
        "languages": list(langs),
        "tasks": {t: SYNTHETIC_TASKS[t] for t in tasks},
    }
    write_json(root / "synthetic.json", manifest)
    return root


def _write_udpos_synthetic(root: Path) -> Path:
    for lang in ("l0", "l1"):
        d = root / f"UD_Synthetic-{lang}"
        for split in ("train", "dev", "test"):
            _write(
                d / f"{lang}_syn-ud-{split}.conllu",
                conllu_sentence(f"{split}-1", [("w1", "NOUN"), ("w2", "VERB")])
                + conllu_sentence(f"{split}-2", [("w3", "DET")]),
            )
    return root


# --------------------------------------------------------------------------- as published

#: the writer of every dataset `prepare` knows (layout "original"; translate-train files flat)
WRITERS: dict[str, Any] = {
    "xnli": write_xnli,
    "mnli": write_mnli,
    "pawsx": write_pawsx,
    "panx": write_panx,
    "udpos": write_udpos,
    "squad": write_squad,
    "mlqa": write_mlqa,
    "xquad": write_xquad,
    "tydiqa": write_tydiqa,
    "mtod": write_mtod,
    "marc": write_marc,
    "sentipers": write_sentipers,
    "sentiraama": write_sentiraama,
    **{
        ds: (lambda root, ds=ds: write_translate_train(root, ds))
        for ds in (
            "xnli_translate_train",
            "pawsx_translate_train",
            "squad_translate_train",
            "tydiqa_translate_train",
        )
    },
}

#: the folder of the written fixture that holds the files themselves (`.`: the fixture root)
FLAT: dict[str, str] = {"mnli": "multinli_1.0", "pawsx": "x-final", "mlqa": "MLQA_V1"}

#: how the fixture sits once the publisher's archive (or download) is unpacked where --raw
#: points: (path in the written fixture, path after unpacking), `.` standing for all of it
UNPACKED: dict[str, tuple[tuple[str, str], ...]] = {
    # unpacked into folders named after the archives, as in the HF dummy data and realdata
    "xnli": (
        ("XNLI-1.0", "XNLI-1.0.zip/XNLI-1.0"),
        ("XNLI-MT-1.0", "XNLI-MT-1.0.zip/XNLI-MT-1.0"),
    ),
    "mnli": (("multinli_1.0", "multinli_1.0"),),  # multinli_1.0.zip -> multinli_1.0/
    "pawsx": (("x-final", "x-final"),),  # x-final.tar.gz -> x-final/<lang>/
    "panx": ((".", "panx_dataset"),),  # AmazonPhotos.zip -> panx_dataset/, <lang>.tar.gz -> <lang>/
    "udpos": ((".", "ud-treebanks-v2.5"),),  # ud-treebanks-v2.5.tgz -> ud-treebanks-v2.5/UD_*/
    "squad": ((".", "SQuAD-explorer/dataset"),),  # the site's dataset/ folder
    "mlqa": (("MLQA_V1", "MLQA_V1"),),  # MLQA_V1.zip -> MLQA_V1/{dev,test}/
    "xquad": ((".", "xquad"),),  # a clone of github.com/deepmind/xquad
    "tydiqa": ((".", "tydiqa/v1.1"),),  # gs://tydiqa/v1.1/ copied as it is
    "mtod": ((".", "multilingual_task_oriented_data"),),  # the zip's folder of <lang>/
    "marc": ((".", "amazon-reviews-ml/json/{split}"),),  # the bucket: json/<split>/<file>
    "sentipers": ((".", "SentiPers"),),
    "sentiraama": ((".", "Sentiraama"),),
    # gsutil cp -r gs://xtreme_translations .
    "xnli_translate_train": ((".", "xtreme_translations/XNLI/translate-train"),),
    "pawsx_translate_train": ((".", "xtreme_translations/PAWSX/translate-train"),),
    "squad_translate_train": ((".", "xtreme_translations/SQuAD/translate-train"),),
    "tydiqa_translate_train": ((".", "xtreme_translations/TyDiQA-GoldP/translate-train"),),
}

#: files the real archives carry beside the data, which prepare must pass over
UNPACKED_EXTRAS: dict[str, tuple[str, ...]] = {
    "xnli": ("XNLI-MT-1.0.zip/XNLI-MT-1.0/xnli/xnli.dev.en.tsv",),  # translate-test, not train
    "mnli": ("__MACOSX/multinli_1.0/._multinli_1.0_train.jsonl", "multinli_1.0/README.txt"),
    "udpos": ("ud-treebanks-v2.5/UD_English-A/README.md", "ud-treebanks-v2.5/LICENSE.txt"),
    "mtod": ("multilingual_task_oriented_data/README.md",),
}


def write_flat(dataset: str, root: Path) -> Path:
    """The dataset's fixture; returns the folder holding the files themselves (--raw)."""
    WRITERS[dataset](root)
    return root / FLAT.get(dataset, ".")


def write_unpacked(dataset: str, root: Path) -> Path:
    """The dataset's fixture under its archive's own top-level folder(s), as unpacking the
    publisher's archive (or download) into `root` leaves it; returns `root` (--raw).

    `{split}` in a target path sends each file into its split's folder (MARC's bucket)."""
    staging = root.parent / f"{root.name}.staging"
    WRITERS[dataset](staging)
    for src, dst in UNPACKED[dataset]:
        if "{split}" in dst:
            for f in sorted((staging / src).iterdir()):
                split = f.stem.rsplit("_", 1)[-1]
                _move(f, root / dst.format(split=split) / f.name)
        else:
            _move(staging / src, root / dst)
    for extra in UNPACKED_EXTRAS.get(dataset, ()):
        _write(root / extra, "not data\n")
    if staging.exists():
        for left in sorted(staging.rglob("*")):
            if left.is_file():
                raise AssertionError(f"{left}: not moved by UNPACKED[{dataset!r}]")
        shutil.rmtree(staging)
    return root


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():  # the same folder name (e.g. x-final -> x-final): move the contents
        for child in sorted(src.iterdir()):
            _move(child, dst / child.name)
        src.rmdir()
    else:
        shutil.move(str(src), str(dst))
