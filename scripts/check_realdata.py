"""Read the real files in ../shared/realdata with our readers and `prepare`; print the record
counts next to the published ones.

Not a test: a user's clone has no ../shared. Run from the repository root:

    python scripts/check_realdata.py [PATH_TO_REALDATA]

Exits 1 if a count differs from the published figure, 0 otherwise (also when the folder is
absent).
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.data.prepare import prepare  # noqa: E402
from pipeline.data.readers import (  # noqa: E402
    read_marc_jsonl,
    read_mnli_jsonl,
    read_squad_json,
    read_xnli_mt_train,
    read_xnli_tsv,
)
from pipeline.data.store import load_split  # noqa: E402
from pipeline.errors import DataError  # noqa: E402
from pipeline.io import read_json  # noqa: E402
from pipeline.records import TLP  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "realdata"

failures: list[str] = []


def check(name: str, got: object, want: object) -> None:
    ok = got == want
    if not ok:
        failures.append(name)
    print(f"  {'ok ' if ok else 'BAD'} {name}: {got}" + ("" if ok else f"  (published: {want})"))


def info(name: str, value: object) -> None:
    print(f"      {name}: {value}")


def run(real: Path, work: Path) -> None:
    def prep(dataset: str, raw: Path, layout: str = "original") -> dict:
        return prepare(dataset, raw, work / f"{dataset}-{layout}", layout=layout)

    def n(summary: dict, tlp: str, split: str) -> int:
        return summary["counts"].get(tlp, {}).get(split, 0)

    print("MTOD (original TSV, prepare mtod)")
    s = prep("mtod", real / "mtod" / "tsv")
    for lang, want in (("es", (3617, 1983, 3043)), ("th", (2156, 1235, 1692))):
        got = tuple(n(s, f"mtod/{lang}", sp) for sp in ("train", "dev", "test"))
        check(f"{lang} train/eval/test", got, want)
    check("en eval", n(s, "mtod/en", "dev"), 4181)
    info("notes", {k: v for k, v in s["notes"]["mtod"].items() if isinstance(v, int)})
    labels = read_json(work / "mtod-original" / "labels.json")["mtod"]
    info(
        "intents / slot types",
        (len(labels["intent"]), len({t[2:] for t in labels["slots"]} - {""})),
    )
    compare_mtod_conll(real / "mtod", work / "mtod-original")

    print("MLQA dev (prepare mlqa)")
    s = prep("mlqa", real / "mlqa")
    for lang, want in (("en", 1148), ("es", 500), ("de", 512), ("zh", 504)):
        check(f"{lang} dev questions", n(s, f"qa/{lang}", "dev"), want)

    print("XNLI dev, XTREME layout (prepare xnli --layout xtreme)")
    s = prep("xnli", real / "xnli" / "xtreme-format", "xtreme")
    for lang in ("en", "es", "th"):
        check(f"{lang} dev pairs", n(s, f"nli/{lang}", "dev"), 2490)
    labels_es = Counter(load_split(work / "xnli-xtreme", TLP("nli", "es"), "dev")["label"])
    check(
        "es labels",
        dict(sorted(labels_es.items())),
        {"contradiction": 830, "entailment": 830, "neutral": 830},
    )

    print("PAWS-X dev, XTREME layout (prepare pawsx --layout xtreme; NS rows kept by default)")
    s = prep("pawsx", real / "paws-x" / "xtreme-format", "xtreme")
    check("options", s["options"], {"drop_untranslated": False})
    ns_kept = s["notes"]["pawsx"]["untranslated"]["dev"]["kept"]
    dev = {lang: n(s, f"pa/{lang}", "dev") for lang in ("en", "es", "zh")}
    check(
        "dev rows en / es / zh (all of each file, as XTREME scores)", dev, dict.fromkeys(dev, 2000)
    )
    ns = {
        lang: sum(
            "NS" in (r["text_a"], r["text_b"])
            for r in load_split(work / "pawsx-xtreme", TLP("pa", lang), "dev")
        )
        for lang in dev
    }
    check("NS rows kept in dev en / es / zh", ns, {"en": 0, "es": 38, "zh": 16})
    check("notes.untranslated.dev.kept", ns_kept, 54)
    s = prepare(
        "pawsx",
        real / "paws-x" / "xtreme-format",
        work / "pawsx-xtreme-drop",
        layout="xtreme",
        drop_untranslated=True,
    )
    got = {lang: n(s, f"pa/{lang}", "dev") for lang in ("en", "es", "zh")}
    check("--drop-untranslated: dev rows en / es / zh", got, {"en": 2000, "es": 1962, "zh": 1984})

    print("PAN-X dev, XTREME layout (prepare panx --layout xtreme)")
    s = prep("panx", real / "panx" / "xtreme-format", "xtreme")
    for lang, want in (("en", 10000), ("es", 10000), ("hi", 1000)):
        check(f"{lang} dev sentences", n(s, f"ner/{lang}", "dev"), want)

    print("UD v2.5 test (prepare udpos)")
    s = prep("udpos", real / "udpos")
    for lang, tb, want_s, want_w in (
        ("en", "UD_English-EWT-r2.5", 2077, 25096),
        ("es", "UD_Spanish-GSD-r2.5", 426, 12000),
        ("th", "UD_Thai-PUD-r2.5", 1000, 22322),
    ):
        check(f"{lang} test sentences", n(s, f"pos/{lang}", "test"), want_s)
        words = sum(
            len(t) for t in load_split(work / "udpos-original", TLP("pos", lang), "test")["tokens"]
        )
        check(f"{lang} test words (stats.xml <words> of {tb})", words, want_w)

    print("XQuAD (prepare xquad)")
    s = prep("xquad", real / "xquad")
    for lang in ("en", "es", "zh"):
        check(f"{lang} test questions", n(s, f"qa/{lang}", "test"), 1190)

    print("TyDiQA-GoldP sw, XTREME layout (prepare tydiqa --layout xtreme)")
    train = (
        real / "tydiqa" / "xtreme-format" / "tydiqa-goldp-v1.1-train" / "tydiqa.goldp.sw.train.json"
    )
    raw_ids = [q["id"] for a in read_json(train)["data"] for p in a["paragraphs"] for q in p["qas"]]
    check("raw questions / distinct raw ids", (len(raw_ids), len(set(raw_ids))), (2755, 74))
    s = prep("tydiqa", real / "tydiqa" / "xtreme-format", "xtreme")
    ids = load_split(work / "tydiqa-xtreme", TLP("qa", "sw"), "train")["id"]
    check("train questions, unique ids after dedup", (len(ids), len(set(ids))), (2755, 2755))
    info("dedup_ids", s["dedup_ids"])
    info("dev (answers blanked by XTREME) skipped", s["skipped"])

    print("SQuAD v1.1 dev subset (24 articles)")
    s = prep("squad", real / "squad" / "dev-v1.1-subset__bloomsburyai")
    check("dev questions", n(s, "qa/en", "dev"), 4961)

    print("Archives as unpacked (prepare on the folder above the archives' own folders)")
    x = real / "xnli" / "original-format__hf-xnli-dummy" / "dummy_data"
    s = prep("xnli", x)  # XNLI-1.0.zip/XNLI-1.0/, XNLI-MT-1.0.zip/XNLI-MT-1.0/multinli/
    info("xnli found_in", s["notes"]["xnli"]["found_in"])
    check(
        "xnli TLPs / dev / train rows",
        (len(s["counts"]), *_totals(s, "dev", "train")),
        (15, 15, 60),
    )
    mn = real / "mnli" / "original-format__hf-multi_nli-dummy" / "dummy_data"
    s = prep("mnli", mn)  # multinli_1.0.zip/multinli_1.0/
    info("mnli found_in / counts", (s["notes"]["mnli"]["found_in"], s["counts"]))
    s = prep("udpos", real)  # realdata/udpos/UD_*/ one level further down
    check(
        "udpos from the realdata root: test sentences en / es / th",
        tuple(n(s, f"pos/{lang}", "test") for lang in ("en", "es", "th")),
        (2077, 426, 1000),
    )
    s = prep("mtod", real / "mtod")  # mtod/tsv/<lang>/ beside mtod/conllu/
    check("mtod from mtod/: es dev", n(s, "mtod/es", "dev"), 1983)
    s = prep("mlqa", real)  # realdata/mlqa/MLQA_V1/
    check("mlqa from the realdata root: en dev", n(s, "qa/en", "dev"), 1148)
    try:
        prep("xnli", real / "xnli")  # two copies of XNLI-1.0 (HF xnli and xtreme dummies)
        check("xnli from xnli/ refuses two copies", "no error", "DataError")
    except DataError as e:
        check("xnli from xnli/ refuses two copies", type(e).__name__, "DataError")
        info("message", e)

    print("First records of original files (HF dummy data; counts are just what is there)")
    r = read_xnli_tsv(x / "XNLI-1.0.zip" / "XNLI-1.0" / "xnli.dev.tsv")
    info("XNLI 1.0 dev rows / languages", (len(r.records), len({x["lang"] for x in r.records})))
    mt = x / "XNLI-MT-1.0.zip" / "XNLI-MT-1.0" / "multinli"
    info(
        "XNLI-MT train rows (15 files)",
        sum(len(read_xnli_mt_train(f).records) for f in sorted(mt.glob("*.tsv"))),
    )
    s = prep(
        "pawsx",
        real / "paws-x" / "original-format__hf-paws-x-dummy" / "dummy_data" / "x-final.tar.gz",
    )
    info("PAWS-X x-final TLPs", len(s["counts"]))
    s = prep("panx", real / "panx" / "original-format__hf-xtreme-PAN-X-dummy" / "dummy_data")
    info(
        "PAN-X original TLPs / dev sentences",
        (len(s["counts"]), sum(c.get("dev", 0) for c in s["counts"].values())),
    )
    m = real / "marc" / "original-format__hf-amazon_reviews_multi-dummy" / "dummy_data"
    info(
        "MARC records (all 1-star in the dummy)",
        sum(len(read_marc_jsonl(f).records) for f in sorted(m.glob("*.json"))),
    )
    mn = (
        real
        / "mnli"
        / "original-format__hf-multi_nli-dummy"
        / "dummy_data"
        / "multinli_1.0.zip"
        / "multinli_1.0"
    )
    info(
        "MultiNLI records", sum(len(read_mnli_jsonl(f).records) for f in sorted(mn.glob("*.jsonl")))
    )
    ty = real / "tydiqa" / "original-format__hf-tydiqa-dummy" / "dummy_data"
    r = read_squad_json(ty / "tydiqa-goldp-v1.1-train.json", lang_from_id=True)
    info("TyDiQA original train (id, lang)", [(x["id"], x["lang"]) for x in r.records])


def _totals(summary: dict, *splits: str) -> tuple[int, ...]:
    return tuple(sum(c.get(sp, 0) for c in summary["counts"].values()) for sp in splits)


def compare_mtod_conll(mtod: Path, prepared: Path) -> None:
    """Our BIO slots against the later CoNLL rendering (NoLabel = O) where both exist."""
    pairs = (
        ("en", "dev", "en/eval-en.conllu"),
        ("es", "test", "es/test-es.conllu"),
        ("th", "test", "th/test-th_TH.conllu"),
    )
    for lang, split, name in pairs:
        ours = load_split(prepared, TLP("mtod", lang), split).to_list()
        theirs: list[list[str]] = []
        for line in (mtod / "conllu" / name).read_text(encoding="utf-8").splitlines():
            if line.startswith("# text:"):
                theirs.append([])
            elif line.strip() and not line.startswith("#"):
                tag = line.split("\t")[3]
                theirs[-1].append("O" if tag == "NoLabel" else tag)
        differ = [(o["slots"], t) for o, t in zip(ours, theirs) if o["slots"] != t]
        dangling = sum(
            any(b.startswith("I-") and a[2:] != b[2:] for a, b in zip(["O", *t], t))
            for _, t in differ
        )
        info(
            f"BIO vs CoNLL rendering, {name}",
            f"{len(ours) - len(differ)}/{len(ours)} identical; of {len(differ)} differing, "
            f"{dangling} have an I- without B- in the rendering",
        )


def main() -> int:
    real = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not real.is_dir():
        print(f"{real}: not found; nothing to check")
        return 0
    with tempfile.TemporaryDirectory(prefix="check_realdata.") as tmp:
        run(real, Path(tmp))
    print("all counts match the published figures" if not failures else f"MISMATCH: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
