"""`prepare`: a raw dataset directory → normalized records on disk (`pipeline.data.store` layout).

The raw directory is laid out as the publisher distributes it (`layout="original"`), or as
XTREME's `download_data.sh` writes it (`layout="xtreme"`). Every record lands in a TLP
(`task/lang`) and one of the splits train/dev/test; publisher split names are mapped honestly
and the mapping is written into the summary (`notes.<dataset>.splits`), e.g. TyDiQA-GoldP's
dev stays `dev` even though XTREME reports it as its test set, and XQuAD has only `test`.

The `*_translate_train` datasets are XTREME's machine translations of the English training sets
(`TRANSLATE_TRAIN`): they hold only `train`; the dev/test splits of the same TLPs come from the
evaluation datasets (e.g. squad_translate_train's qa/de train, mlqa's qa/de dev/test), and
`store.locate(tlp, dirs, split)` finds each split in the first dataset that has it.

Nothing is written unless every file reads cleanly: all records are collected first, then
`store.save_prepared` writes the directory atomically.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.data import store
from pipeline.data.readers import (
    ReadResult,
    TableFormat,
    dedup_ids,
    read_conllu,
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
from pipeline.data.readers.translate_train import TRANSLATED_TSV_NAME, read_translate_train_tsv
from pipeline.errors import DataError, PipelineError
from pipeline.io import read_json
from pipeline.records import SPLITS, TLP

#: dataset name -> task name (pipeline.records.TASK_TYPES)
DATASET_TASKS: dict[str, str] = {
    "xnli": "nli",
    "mnli": "nli",
    "pawsx": "pa",
    "udpos": "pos",
    "panx": "ner",
    "squad": "qa",
    "mlqa": "qa",
    "xquad": "qa",
    "tydiqa": "qa",
    "mtod": "mtod",
    "marc": "sa",
    "sentipers": "sa",
    "sentiraama": "sa",
    # XTREME translate-train: machine-translated English train sets, train split only
    "xnli_translate_train": "nli",
    "pawsx_translate_train": "pa",
    "squad_translate_train": "qa",
    "tydiqa_translate_train": "qa",
}
DATASETS: tuple[str, ...] = (*DATASET_TASKS, "synthetic")
LAYOUTS: tuple[str, ...] = ("original", "xtreme")
#: datasets that XTREME's download script writes (the others have no xtreme layout)
XTREME_DATASETS: tuple[str, ...] = (
    "xnli",
    "pawsx",
    "panx",
    "udpos",
    "squad",
    "mlqa",
    "xquad",
    "tydiqa",
    "xnli_translate_train",
    "pawsx_translate_train",
    "squad_translate_train",
    "tydiqa_translate_train",
)
SYNTHETIC_MANIFEST = "synthetic.json"


@dataclass(frozen=True)
class TranslateTrain:
    """One XTREME translate-train dataset: where its files are and what they hold.

    XTREME's download_data.sh does not fetch translations, so the `xtreme` layout is the
    convention of putting them in `translate-train/` beside the task's XTREME files
    (`download/<task>/translate-train/`); XTREME's own classification processors read XNLI and
    PAWS-X translations from `processor_dir` instead, which is accepted too.
    """

    bucket: str  # folder of gs://xtreme_translations: <bucket>/translate-train/<file>
    task_dir: str  # task folder of XTREME's download/ (xtreme layout)
    name: re.Pattern[str]  # file name, language (the `en-<lang>` target) in group `lang`
    pattern: str  # the file name for messages and notes
    source: str  # what was machine-translated
    eval_datasets: tuple[str, ...]  # where the dev/test splits of these TLPs come from
    processor_dir: str | None = None  # `<task_dir>/<processor_dir>/` of XTREME's processors

    def dirs(self, raw: Path, layout: str) -> list[Path]:
        """Candidate folders, most specific first; the first holding such files is read."""
        tt = "translate-train"
        if layout == "original":  # flat (pipeline download), or a mirror of the bucket
            return [raw, raw / self.bucket / tt, raw / tt]
        extra = [self.processor_dir] if self.processor_dir else []
        return [
            *(raw / self.task_dir / d for d in (tt, *extra)),  # raw = XTREME's download/
            *(raw / d for d in (tt, *extra)),  # raw = download/<task_dir>/
            raw,  # raw = the translate-train folder itself (or the flat download)
        ]

    def note(self) -> dict[str, Any]:
        return {
            "machine_translated": True,
            "source": self.source,
            "published_as": f"gs://xtreme_translations/{self.bucket}/translate-train/"
            f"{self.pattern}",
            "language": "the <lang> of en-<lang> in the file name (the translation target)",
            "splits": "train only; dev/test of these TLPs come from "
            + ", ".join(self.eval_datasets),
            "eval_datasets": list(self.eval_datasets),
        }


#: dataset -> its translate-train files (all train split; see TranslateTrain)
TRANSLATE_TRAIN: dict[str, TranslateTrain] = {
    "xnli_translate_train": TranslateTrain(
        bucket="XNLI",
        task_dir="xnli",
        name=TRANSLATED_TSV_NAME,
        pattern="en-<lang>-translated.tsv",
        source="MultiNLI train (English), translated by the XTREME authors",
        eval_datasets=("xnli",),
        processor_dir="XNLI-Translated",
    ),
    "pawsx_translate_train": TranslateTrain(
        bucket="PAWSX",
        task_dir="pawsx",
        name=TRANSLATED_TSV_NAME,
        pattern="en-<lang>-translated.tsv",
        source="PAWS train (English), translated by the XTREME authors",
        eval_datasets=("pawsx",),
        processor_dir="translated",
    ),
    "squad_translate_train": TranslateTrain(
        bucket="SQuAD",
        task_dir="squad",
        name=re.compile(r"^squad\.translate\.train\.en-(?P<lang>[^./]+)\.json$"),
        pattern="squad.translate.train.en-<lang>.json",
        source="SQuAD v1.1 train, translated by the XTREME authors",
        eval_datasets=("xquad", "mlqa"),
    ),
    "tydiqa_translate_train": TranslateTrain(
        bucket="TyDiQA-GoldP",
        task_dir="tydiqa",
        name=re.compile(r"^tydiqa\.translate\.train\.en-(?P<lang>[^./]+)\.json$"),
        pattern="tydiqa.translate.train.en-<lang>.json",
        source="TyDiQA-GoldP English train, translated by the XTREME authors",
        eval_datasets=("tydiqa",),
    ),
}

#: how publisher split names map to ours, per dataset and layout (written into the summary)
SPLIT_NOTES: dict[tuple[str, str], dict[str, str]] = {
    ("xnli", "original"): {
        "train": "XNLI-MT-1.0/multinli/multinli.train.<lang>.tsv (MultiNLI train, "
        "machine-translated; en is the original)",
        "dev": "XNLI-1.0/xnli.dev.tsv",
        "test": "XNLI-1.0/xnli.test.tsv",
    },
    ("mnli", "original"): {
        "train": "multinli_1.0_train.jsonl",
        "dev": "multinli_1.0_dev_matched.jsonl",
        "test": "multinli_1.0_dev_mismatched.jsonl (MultiNLI's test labels are not public)",
    },
    ("pawsx", "original"): {
        "train": "x-final/<lang>/train.tsv (en) or translated_train.tsv (machine-translated)",
        "dev": "x-final/<lang>/dev_2k.tsv",
        "test": "x-final/<lang>/test_2k.tsv",
    },
    ("panx", "original"): {"train": "<lang>/train", "dev": "<lang>/dev", "test": "<lang>/test"},
    ("udpos", "original"): {
        "train": "UD_*/<code>_<treebank>-ud-train.conllu (all treebanks of a language)",
        "dev": "UD_*/<code>_<treebank>-ud-dev.conllu",
        "test": "UD_*/<code>_<treebank>-ud-test.conllu",
    },
    ("squad", "original"): {"train": "train-v1.1.json", "dev": "dev-v1.1.json"},
    ("mlqa", "original"): {
        "train": "MLQA_V1/train/train-context-<l>-question-<l>.json (not in the MLQA release; "
        "the synthetic benchmark adds it)",
        "dev": "MLQA_V1/dev/dev-context-<l>-question-<l>.json",
        "test": "MLQA_V1/test/test-context-<l>-question-<l>.json",
    },
    ("xquad", "original"): {"test": "xquad.<lang>.json (XQuAD has only this one split)"},
    ("tydiqa", "original"): {
        "train": "tydiqa-goldp-v1.1-train.json",
        "dev": "tydiqa-goldp-v1.1-dev.json (the split XTREME reports as TyDiQA-GoldP test)",
    },
    ("mtod", "original"): {
        "train": "<lang>/train-<lang>.tsv",
        "dev": "<lang>/eval-<lang>.tsv",
        "test": "<lang>/test-<lang>.tsv",
    },
    ("marc", "original"): {
        "train": "dataset_<lang>_train.json",
        "dev": "dataset_<lang>_dev.json",
        "test": "dataset_<lang>_test.json",
    },
    ("sentipers", "original"): {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
    ("sentiraama", "original"): {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
    ("xnli", "xtreme"): {
        "train": "xnli/train-en.tsv (MultiNLI train)",
        "dev": "xnli/dev-<lang>.tsv",
        "test": "xnli/test-<lang>.tsv (XTREME strips its labels: such rows are skipped)",
    },
    ("pawsx", "xtreme"): {
        "train": "pawsx/train-en.tsv",
        "dev": "pawsx/dev-<lang>.tsv",
        "test": "pawsx/test-<lang>.tsv (XTREME strips its labels: such rows are skipped)",
    },
    ("panx", "xtreme"): {
        "train": "panx/train-<lang>.tsv",
        "dev": "panx/dev-<lang>.tsv",
        "test": "panx/test-<lang>.tsv (XTREME strips its tags: such sentences are skipped)",
    },
    ("udpos", "xtreme"): {
        "train": "udpos/train-<lang>.tsv",
        "dev": "udpos/dev-<lang>.tsv",
        "test": "udpos/test-<lang>.tsv (XTREME strips its tags: such sentences are skipped)",
    },
    ("squad", "xtreme"): {"train": "squad/train-v1.1.json", "dev": "squad/dev-v1.1.json"},
    ("mlqa", "xtreme"): {
        "dev": "mlqa/MLQA_V1/dev/dev-context-<l>-question-<l>.json",
        "test": "mlqa/MLQA_V1/test/test-context-<l>-question-<l>.json (answers blanked by "
        "XTREME are skipped)",
    },
    ("xquad", "xtreme"): {
        "test": "xquad/xquad.<lang>.json (XQuAD's only split; answers blanked by XTREME are "
        "skipped)"
    },
    ("tydiqa", "xtreme"): {
        "train": "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.<lang>.train.json (ids cut to "
        "their last part by XTREME, so they repeat: made unique, see dedup_ids)",
        "dev": "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.<lang>.dev.json (XTREME's TyDiQA "
        "test set; its answers are blanked, so these questions are skipped)",
    },
    # translate-train: train only (machine-translated English train); dev/test: eval datasets
    ("xnli_translate_train", "original"): {
        "train": "en-<lang>-translated.tsv (gs://xtreme_translations/XNLI/translate-train/; "
        "MultiNLI train machine-translated; dev/test come from xnli)",
    },
    ("pawsx_translate_train", "original"): {
        "train": "en-<lang>-translated.tsv (gs://xtreme_translations/PAWSX/translate-train/; "
        "PAWS train machine-translated; dev/test come from pawsx)",
    },
    ("squad_translate_train", "original"): {
        "train": "squad.translate.train.en-<lang>.json (gs://xtreme_translations/SQuAD/"
        "translate-train/; SQuAD v1.1 train machine-translated; dev/test come from xquad/mlqa)",
    },
    ("tydiqa_translate_train", "original"): {
        "train": "tydiqa.translate.train.en-<lang>.json (gs://xtreme_translations/TyDiQA-GoldP/"
        "translate-train/; TyDiQA-GoldP English train machine-translated; dev/test come from "
        "tydiqa; repeated ids made unique, see dedup_ids)",
    },
    ("xnli_translate_train", "xtreme"): {
        "train": "xnli/translate-train/en-<lang>-translated.tsv (or xnli/XNLI-Translated/, "
        "where XTREME's processors read it; dev/test come from xnli)",
    },
    ("pawsx_translate_train", "xtreme"): {
        "train": "pawsx/translate-train/en-<lang>-translated.tsv (or pawsx/translated/, where "
        "XTREME's processors read it; dev/test come from pawsx)",
    },
    ("squad_translate_train", "xtreme"): {
        "train": "squad/translate-train/squad.translate.train.en-<lang>.json (dev/test come "
        "from xquad/mlqa)",
    },
    ("tydiqa_translate_train", "xtreme"): {
        "train": "tydiqa/translate-train/tydiqa.translate.train.en-<lang>.json (dev/test come "
        "from tydiqa; repeated ids made unique, see dedup_ids)",
    },
}

#: SentiPers / Sentiraama defaults; `<raw>/format.json` may override any key (see TableFormat)
TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    # SentiPers polarity -2..2; MetaXL: -2,-1 negative, 1,2 positive, 0 dropped.
    "sentipers": {
        "lang": "fa",
        "label_map": {"-2": "negative", "-1": "negative", "1": "positive", "2": "positive"},
    },
    "sentiraama": {
        "lang": "te",
        "label_map": {
            "positive": "positive",
            "negative": "negative",
            "pos": "positive",
            "neg": "negative",
        },
    },
}


#: language codes become file names and TLP slugs (`task.lang`), so no '.' or '/' in them
_LANG_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class _Collector:
    """Records of one dataset, grouped by TLP and split, with what was skipped and noted."""

    def __init__(self, dataset: str, layout: str, raw: Path, languages: set[str] | None):
        self.dataset = dataset
        self.task = DATASET_TASKS[dataset]
        self.layout = layout
        self.raw = raw
        self.languages = languages
        self.records: dict[TLP, dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.skipped: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.files: dict[str, list[str]] = defaultdict(list)

    def want(self, lang: str) -> bool:
        return self.languages is None or lang in self.languages

    def add(self, res: ReadResult, split: str, path: Path) -> None:
        assert split in SPLITS, split
        for rec in res.records:
            if not _LANG_CODE.match(rec["lang"]):
                raise DataError(
                    f"{path}: record {rec['id']!r}: expected a language code of letters, "
                    f"digits, '-' or '_', got {rec['lang']!r}"
                )
            if self.want(rec["lang"]):
                self.records[TLP(self.task, rec["lang"])][split].append(rec)
        self.skipped.update(res.skipped)
        self.counters.update(res.notes)
        self.files[split].append(self._rel(path))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.raw))
        except ValueError:
            return str(path)

    def finish(self) -> None:
        """Ids unique per TLP split across files (readers already dedup within a file)."""
        for splits in self.records.values():
            for recs in splits.values():
                n = dedup_ids(recs)
                if n:
                    self.counters["dedup_ids"] += n

    def notes(self) -> dict[str, Any]:
        tt = TRANSLATE_TRAIN.get(self.dataset)
        return {
            "task": self.task,
            "layout": self.layout,
            "splits": SPLIT_NOTES.get((self.dataset, self.layout), {}),
            "files": {s: sorted(self.files[s]) for s in SPLITS if s in self.files},
            **({"translate_train": tt.note()} if tt else {}),
            **dict(sorted(self.counters.items())),
        }


# --------------------------------------------------------------------------- helpers


def _need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: directory not found; expected {what}")
    return path


def _sub(raw: Path, name: str) -> Path:
    """`raw/name` when it is a directory, else `raw` itself (lenient about one level)."""
    return raw / name if (raw / name).is_dir() else raw


def _lang_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _nothing(raw: Path, what: str) -> DataError:
    return DataError(f"{raw}: no data found; expected {what}")


# --------------------------------------------------------------------------- original layouts


def _xnli(c: _Collector) -> None:
    found = False
    xdir = c.raw / "XNLI-1.0"
    if xdir.is_dir():
        for split in ("dev", "test"):
            f = xdir / f"xnli.{split}.tsv"
            if not f.is_file():
                raise DataError(f"{f}: file not found; expected XNLI 1.0 {split} pairs")
            c.add(read_xnli_tsv(f, c.languages), split, f)
            found = True
    mt = c.raw / "XNLI-MT-1.0" / "multinli"
    if mt.is_dir():
        for f in sorted(mt.glob("multinli.train.*.tsv")):
            lang = f.name[len("multinli.train.") : -len(".tsv")]
            if c.want(lang):
                c.add(read_xnli_mt_train(f, lang), "train", f)
            found = True
    if not found:
        raise _nothing(
            c.raw,
            "XNLI-1.0/xnli.{dev,test}.tsv and/or XNLI-MT-1.0/multinli/multinli.train.<lang>.tsv",
        )


def _mnli(c: _Collector) -> None:
    root = _sub(c.raw, "multinli_1.0")
    names = {
        "train": "multinli_1.0_train.jsonl",
        "dev": "multinli_1.0_dev_matched.jsonl",
        "test": "multinli_1.0_dev_mismatched.jsonl",
    }
    found = False
    for split, name in names.items():
        f = root / name
        if f.is_file():
            c.add(read_mnli_jsonl(f, "en"), split, f)
            found = True
    if not found:
        raise _nothing(c.raw, f"MultiNLI files {', '.join(names.values())}")


def _pawsx(c: _Collector) -> None:
    root = _sub(c.raw, "x-final")
    langs = _lang_dirs(root)
    if not langs:
        raise _nothing(c.raw, "x-final/<lang>/ folders with dev_2k.tsv, test_2k.tsv, train files")
    for d in langs:
        lang = d.name
        if not c.want(lang):
            continue
        train = [d / n for n in ("train.tsv", "translated_train.tsv") if (d / n).is_file()]
        if len(train) > 1:
            raise DataError(f"{d}: expected one of train.tsv, translated_train.tsv, found both")
        files = {
            "train": train,
            "dev": [d / "dev_2k.tsv"] if (d / "dev_2k.tsv").is_file() else [],
            "test": [d / "test_2k.tsv"] if (d / "test_2k.tsv").is_file() else [],
        }
        if not any(files.values()):
            raise DataError(
                f"{d}: no PAWS-X files; expected train.tsv or translated_train.tsv, "
                "dev_2k.tsv, test_2k.tsv"
            )
        for split, paths in files.items():
            for f in paths:
                c.add(read_pawsx_tsv(f, lang), split, f)


def _panx(c: _Collector) -> None:
    langs = _lang_dirs(c.raw)
    if not langs:
        raise _nothing(c.raw, "<lang>/ folders with train, dev, test (panx_dataset/<lang>.tar.gz)")
    for d in langs:
        lang = d.name.removesuffix(".tar.gz")  # `<lang>.tar.gz/` stands for the extracted archive
        if not c.want(lang):
            continue
        present = [s for s in SPLITS if (d / s).is_file()]
        if not present:
            raise DataError(f"{d}: no PAN-X files; expected train, dev, test")
        for split in present:
            f = d / split
            c.add(read_panx(f, lang, id_prefix=f"{lang}-{split}"), split, f)


_UD_NAME = re.compile(r"^(?P<lang>[^_]+)_(?P<tb>[^-]+)-ud-(?P<split>train|dev|test)\.conllu$")


def _named_files(
    c: _Collector,
    glob: str,
    pattern: re.Pattern[str],
    layout: str,
    name: str,
    read: Callable[[Path, str], Any],
) -> None:
    """Read every `glob` file in the folder or one level down; language and split come from
    the file name (`pattern` groups `lang`, `split`)."""
    files = sorted({*c.raw.glob(glob), *c.raw.glob(f"*/{glob}")})
    if not files:
        raise _nothing(c.raw, layout)
    for f in files:
        m = pattern.match(f.name)
        if not m:
            raise DataError(f"{f}: expected a file named {name}")
        if c.want(m["lang"]):
            c.add(read(f, m["lang"]), m["split"], f)


def _udpos(c: _Collector) -> None:
    _named_files(
        c,
        "*.conllu",
        _UD_NAME,
        "UD_<Name>/<code>_<treebank>-ud-{train,dev,test}.conllu",
        "<code>_<treebank>-ud-<split>.conllu",
        read_conllu,
    )


def _squad_files(c: _Collector, root: Path) -> None:
    found = False
    for split in ("train", "dev"):
        f = root / f"{split}-v1.1.json"
        if f.is_file():
            if c.want("en"):
                c.add(read_squad_json(f, "en"), split, f)
            found = True
    if not found:
        raise _nothing(c.raw, "train-v1.1.json and/or dev-v1.1.json")


def _squad(c: _Collector) -> None:
    _squad_files(c, _sub(c.raw, "squad"))


_MLQA_NAME = re.compile(
    r"^(?P<split>train|dev|test)-context-(?P<c>[^-]+)-question-(?P<q>[^-]+)\.json$"
)


def _mlqa(c: _Collector) -> None:
    root = _sub(_sub(c.raw, "mlqa"), "MLQA_V1")
    found = False
    for split in ("train", "dev", "test"):
        d = root / split
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            m = _MLQA_NAME.match(f.name)
            if not m or m["split"] != split:
                raise DataError(f"{f}: expected a file named {split}-context-<l>-question-<l>.json")
            found = True
            if m["c"] != m["q"]:
                c.counters["gxlt_files_ignored"] += 1  # cross-lingual pairs (G-XLT), not TLPs
                continue
            if c.want(m["c"]):
                c.add(read_squad_json(f, m["c"]), split, f)
    if not found:
        raise _nothing(c.raw, "MLQA_V1/{dev,test}/{dev,test}-context-<l>-question-<l>.json")


def _xquad(c: _Collector) -> None:
    root = _sub(c.raw, "xquad")
    files = sorted(root.glob("xquad.*.json"))
    if not files:
        raise _nothing(c.raw, "xquad.<lang>.json")
    for f in files:
        lang = f.name[len("xquad.") : -len(".json")]
        if c.want(lang):
            c.add(read_squad_json(f, lang), "test", f)


def _tydiqa(c: _Collector) -> None:
    found = False
    for split in ("train", "dev"):
        name = f"tydiqa-goldp-v1.1-{split}.json"
        hits = sorted({*c.raw.glob(name), *c.raw.glob(f"*/{name}")})
        for f in hits:
            c.add(read_squad_json(f, lang_from_id=True), split, f)
            found = True
    if not found:
        raise _nothing(c.raw, "tydiqa-goldp-v1.1-train.json and/or tydiqa-goldp-v1.1-dev.json")


_MTOD_SPLITS = {"train": "train", "eval": "dev", "test": "test"}


def _mtod(c: _Collector) -> None:
    langs = _lang_dirs(c.raw)
    if not langs:
        raise _nothing(c.raw, "<lang>/{train,eval,test}-<lang>.tsv")
    for d in langs:
        lang = d.name
        if not c.want(lang):
            continue
        present = [
            (s, d / f"{s}-{lang}.tsv") for s in _MTOD_SPLITS if (d / f"{s}-{lang}.tsv").is_file()
        ]
        if not present:
            raise DataError(
                f"{d}: no MTOD files; expected train-{lang}.tsv, eval-{lang}.tsv, test-{lang}.tsv"
            )
        for name, f in present:
            c.add(read_mtod_tsv(f), _MTOD_SPLITS[name], f)


_MARC_NAME = re.compile(r"^dataset_(?P<lang>[^_]+)_(?P<split>train|dev|test)\.json$")


def _marc(c: _Collector) -> None:
    _named_files(
        c,
        "dataset_*_*.json",
        _MARC_NAME,
        "dataset_<lang>_{train,dev,test}.json (flat or in <split>/)",
        "dataset_<lang>_<train|dev|test>.json",
        read_marc_jsonl,
    )


def _table(c: _Collector) -> None:
    """SentiPers/Sentiraama: `<raw>/{train,dev,test}.{tsv,csv}`, optional `<raw>/format.json`."""
    settings = dict(TABLE_DEFAULTS[c.dataset])
    fmt_file = c.raw / "format.json"
    if fmt_file.is_file():
        override = read_json(fmt_file)
        if not isinstance(override, dict):
            raise DataError(f"{fmt_file}: expected a JSON object of table format keys")
        settings.update(override)
    lang = str(settings.pop("lang"))
    found = False
    for split in SPLITS:
        for ext, delim in ((".tsv", "\t"), (".csv", ",")):
            f = c.raw / f"{split}{ext}"
            if not f.is_file():
                continue
            found = True
            try:
                fmt = TableFormat.from_dict({"delimiter": delim, **settings})
            except (PipelineError, TypeError) as e:
                raise DataError(f"{fmt_file}: {e}") from None
            if c.want(lang):
                c.add(read_sentiment_table(f, lang, fmt), split, f)
    if not found:
        raise _nothing(c.raw, "{train,dev,test}.tsv or .csv (and optionally format.json)")


# --------------------------------------------------------------------------- translate-train


def _translate_train(c: _Collector) -> None:
    """XTREME translate-train files of one dataset, either layout: all `train`, one language
    per file (`en-<lang>` in the name). QA files go through the SQuAD reader (which makes
    TyDiQA's repeated ids unique), XNLI/PAWS-X through the translate-train TSV reader."""
    spec = TRANSLATE_TRAIN[c.dataset]
    candidates = spec.dirs(c.raw, c.layout)
    files: list[Path] = []
    for d in candidates:
        if d.is_dir():
            files = sorted(f for f in d.iterdir() if f.is_file() and spec.name.match(f.name))
        if files:
            break
    if not files:
        where = ", ".join(f"{c._rel(d)}/" for d in candidates)
        raise _nothing(c.raw, f"{spec.pattern} in one of {where} ({c.layout} layout)")
    for f in files:
        m = spec.name.match(f.name)
        assert m
        lang = m["lang"]
        if not c.want(lang):
            continue
        if c.task == "qa":
            res = read_squad_json(f, lang)
        else:
            res = read_translate_train_tsv(f, c.task, lang)
        c.add(res, "train", f)


# --------------------------------------------------------------------------- xtreme layout

_XTREME_TSV = re.compile(r"^(?P<split>train|dev|test)-(?P<lang>[^.]+)\.tsv$")


def _xtreme_tsv_files(c: _Collector, sub: str) -> list[tuple[str, str, Path]]:
    root = _sub(c.raw, sub)
    out = []
    for f in sorted(root.glob("*.tsv")):
        m = _XTREME_TSV.match(f.name)
        if m:
            out.append((m["split"], m["lang"], f))
    if not out:
        raise _nothing(c.raw, f"{sub}/{{train,dev,test}}-<lang>.tsv (XTREME layout)")
    return out


def _xtreme_pair(sub: str) -> Callable[[_Collector], None]:
    def collect(c: _Collector) -> None:
        for split, lang, f in _xtreme_tsv_files(c, sub):
            if c.want(lang):
                c.add(read_xtreme_pair_tsv(f, c.task, lang), split, f)

    return collect


def _xtreme_tagging(sub: str) -> Callable[[_Collector], None]:
    def collect(c: _Collector) -> None:
        for split, lang, f in _xtreme_tsv_files(c, sub):
            if c.want(lang):
                c.add(read_xtreme_tagging_tsv(f, lang), split, f)

    return collect


_TYDIQA_XTREME = re.compile(r"^tydiqa\.goldp\.(?P<lang>[^.]+)\.(?P<split>train|dev)\.json$")


def _tydiqa_xtreme(c: _Collector) -> None:
    root = _sub(c.raw, "tydiqa")
    files = sorted(
        f for f in (*root.glob("*.json"), *root.glob("*/*.json")) if _TYDIQA_XTREME.match(f.name)
    )
    if not files:
        raise _nothing(
            c.raw, "tydiqa/tydiqa-goldp-v1.1-{train,dev}/tydiqa.goldp.<lang>.{train,dev}.json"
        )
    for f in files:
        m = _TYDIQA_XTREME.match(f.name)
        assert m
        if c.want(m["lang"]):
            c.add(read_squad_json(f, m["lang"]), m["split"], f)


_COLLECT: dict[tuple[str, str], Callable[[_Collector], None]] = {
    ("xnli", "original"): _xnli,
    ("mnli", "original"): _mnli,
    ("pawsx", "original"): _pawsx,
    ("panx", "original"): _panx,
    ("udpos", "original"): _udpos,
    ("squad", "original"): _squad,
    ("mlqa", "original"): _mlqa,
    ("xquad", "original"): _xquad,
    ("tydiqa", "original"): _tydiqa,
    ("mtod", "original"): _mtod,
    ("marc", "original"): _marc,
    ("sentipers", "original"): _table,
    ("sentiraama", "original"): _table,
    ("xnli", "xtreme"): _xtreme_pair("xnli"),
    ("pawsx", "xtreme"): _xtreme_pair("pawsx"),
    ("panx", "xtreme"): _xtreme_tagging("panx"),
    ("udpos", "xtreme"): _xtreme_tagging("udpos"),
    ("squad", "xtreme"): _squad,
    ("mlqa", "xtreme"): _mlqa,
    ("xquad", "xtreme"): _xquad,
    ("tydiqa", "xtreme"): _tydiqa_xtreme,
    **{(ds, layout): _translate_train for ds in TRANSLATE_TRAIN for layout in LAYOUTS},
}


def _collect(dataset: str, layout: str, raw: Path, languages: set[str] | None) -> _Collector:
    if layout not in LAYOUTS:
        raise PipelineError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if (dataset, layout) not in _COLLECT:
        raise PipelineError(
            f"dataset {dataset!r} has no {layout} layout; XTREME's layout covers "
            f"{', '.join(XTREME_DATASETS)}"
        )
    c = _Collector(dataset, layout, raw, languages)
    _COLLECT[(dataset, layout)](c)
    c.finish()
    return c


def _synthetic(raw: Path, languages: set[str] | None) -> list[_Collector]:
    """Run each listed dataset's reader on `<raw>/<path>` (see pipeline/data/synthetic.py)."""
    manifest_path = raw / SYNTHETIC_MANIFEST
    if not manifest_path.is_file():
        raise DataError(f"{manifest_path}: file not found; expected the synthetic manifest")
    manifest = read_json(manifest_path)
    tasks = manifest.get("tasks") if isinstance(manifest, dict) else None
    if not isinstance(tasks, dict) or not tasks:
        raise DataError(f"{manifest_path}: tasks: expected an object task -> {{dataset, path}}")
    collectors = []
    for task, entry in sorted(tasks.items()):
        key = f"{manifest_path}: tasks.{task}"
        if not isinstance(entry, dict):
            raise DataError(f"{key}: expected an object with 'dataset' and 'path'")
        ds, sub = entry.get("dataset"), entry.get("path")
        if ds not in DATASET_TASKS or DATASET_TASKS[ds] != task:
            choices = [d for d, t in DATASET_TASKS.items() if t == task]
            raise DataError(f"{key}.dataset: expected one of {choices}, got {ds!r}")
        if not isinstance(sub, str) or not sub:
            raise DataError(f"{key}.path: expected a folder name under {raw}")
        layout = entry.get("layout", "original")
        path = _need_dir(raw / sub, f"the {ds} files named in {manifest_path}")
        collectors.append(_collect(ds, layout, path, languages))
    return collectors


def prepare(
    dataset: str,
    raw: Path,
    out: Path,
    layout: str = "original",
    languages: list[str] | None = None,
) -> dict[str, Any]:
    """Read `raw` (a `dataset` release), write normalized records to `out`, return the summary.

    `languages` keeps only those languages (and fails if one of them has no data). The summary
    (also written to `out/summary.json`) holds `counts` (TLP → split → n), `skipped` (reason →
    n, reasons prefixed with the dataset), `dedup_ids` (ids made unique) and `notes` per dataset
    (split mapping, files read, informational counts).
    """
    if dataset not in DATASETS:
        raise PipelineError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    if layout not in LAYOUTS:
        raise PipelineError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    raw = Path(raw)
    langs = set(languages) if languages else None
    if dataset == "synthetic":
        _need_dir(raw, f"the synthetic benchmark folder with {SYNTHETIC_MANIFEST}")
        collectors = _synthetic(raw, langs)
    else:
        _need_dir(raw, f"the {dataset} release ({layout} layout)")
        collectors = [_collect(dataset, layout, raw, langs)]

    records: dict[TLP, dict[str, list[dict[str, Any]]]] = {}
    skipped: Counter[str] = Counter()
    for c in collectors:
        for tlp, splits in c.records.items():
            kept = {s: r for s, r in splits.items() if r}
            if kept:
                records.setdefault(tlp, {}).update(kept)
        for reason, n in c.skipped.items():
            skipped[f"{c.dataset}: {reason}"] += n

    found = sorted({t.lang for t in records})
    if not records:
        raise DataError(f"{raw}: no records of {dataset} read (skipped: {dict(skipped) or 'none'})")
    if langs:
        missing = sorted(langs - set(found))
        if missing:
            raise DataError(
                f"{raw}: no {dataset} data for language(s) {', '.join(missing)}; "
                f"found {', '.join(found)}"
            )
    extra = {
        "dataset": dataset,
        "layout": layout,
        "tasks": sorted({c.task for c in collectors}),
        "languages": found,
        "dedup_ids": sum(c.counters["dedup_ids"] for c in collectors),
        "notes": {c.dataset: c.notes() for c in collectors},
    }
    return store.save_prepared(
        out, records, skipped=dict(sorted(skipped.items())), extra_summary=extra
    )
