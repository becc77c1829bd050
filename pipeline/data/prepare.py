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

Where the files are (`find_fileset`): each dataset names the things its publisher distributes
(an archive, or a single file) as `FileSet`s, globs relative to the folder that holds them, e.g.
`*/dev_2k.tsv` for PAWS-X's `x-final/`. `--raw` may be that folder itself or any folder above it,
so an archive unpacked as published (`ud-treebanks-v2.5.tgz` → `ud-treebanks-v2.5/UD_*/`,
`XNLI-1.0.zip` → `XNLI-1.0/`) or into a folder named after the archive (`XNLI-1.0.zip/XNLI-1.0/`)
is read as it is. The holding folder is `--raw` itself if a glob matches there, else every folder
at most `SEARCH_DEPTH` levels below where one matches (hidden folders and `__MACOSX` skipped, no
search inside a match). None: that file set is absent (a dataset with none of its file sets is one
error line naming the folder, the dataset and the globs); two or more: an error naming the copies,
never a mix of them. XTREME's task folders share file names (`dev-<lang>.tsv`), so their file
sets also name the folder (`FileSet.folders`, checked only where it lies below `--raw`).

PAWS-X dev/test rows whose sentence is `NS` (a failed translation) are kept by default, as XTREME
scores all 2,000 rows of each file; `drop_untranslated=True` drops them. Train rows with `NS` are
always dropped. The summary records the option (`options`) and per split how many such rows were
kept or dropped (`notes.<dataset>.untranslated`).

Sentiraama and SentiPers come either as split tables (`{train,dev,test}.tsv`, see
`TABLE_DEFAULTS`) or as published (Sentiraama's `product_{pos,neg}.txt`, SentiPers' `data/main/`
and `data/extra/` files) beside MetaXL's `data_index.txt`, whose entries select train/dev/test
(`pipeline.data.readers.metaxl_index`); a folder holding both forms, or neither, is an error.
How the entries were applied (what an index addresses, `None` entries, repeats and overlaps
between splits, which are kept as published) is in `notes.<dataset>.metaxl_index`.

Nothing is written unless every file reads cleanly: all records are collected first, then
`store.save_prepared` writes the directory atomically.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
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
from pipeline.data.readers.metaxl_index import METAXL_LANGS, index_notes, read_metaxl_index
from pipeline.data.readers.pawsx import NOTE_NS_KEPT, SKIP_EMPTY_LABEL, SKIP_NS
from pipeline.data.readers.sentipers import read_sentipers_metaxl
from pipeline.data.readers.sentiraama import (
    SENTIRAAMA_FILES,
    read_sentiraama_blocks,
    read_sentiraama_metaxl,
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

#: how many folder levels below `--raw` the file lookup descends (archive wrapper folders)
SEARCH_DEPTH = 4


@dataclass(frozen=True)
class FileSet:
    """One thing a publisher distributes (an archive, or one file), as `find_fileset` looks for it.

    `patterns` are globs relative to the folder that holds the set (any one matching a file
    suffices), e.g. `*/dev_2k.tsv` for PAWS-X's `x-final/` or `*-ud-*.conllu` for one treebank.
    `folders` (optional) are the names the holding folder and its parents must have, e.g.
    `pawsx` or `PAWSX/translate-train`, where needed because other datasets use the same file
    names; only the parts of the path below `--raw` are checked. `shows` is how messages name
    the set (with the publisher's folders).
    """

    shows: str
    patterns: tuple[str, ...]
    folders: tuple[str, ...] = ()

    def describe(self) -> str:
        """`shows`, with the accepted places when the folder names matter."""
        if not self.folders:
            return self.shows
        places = ["./"]
        longest = max(len(f.split("/")) for f in self.folders)
        for n in range(longest, 0, -1):
            for f in self.folders:
                parts = f.split("/")
                tail = "/".join(parts[-n:]) + "/"
                if len(parts) >= n and tail not in places:
                    places.append(tail)
        return f"{self.shows} in one of {', '.join(places)}"

    def named(self, folder: Path, raw: Path) -> bool:
        """Whether `folder` (`raw` or below it) has one of the required names."""
        if not self.folders:
            return True
        rel = folder.relative_to(raw).parts
        for want in (f.split("/") for f in self.folders):
            n = min(len(rel), len(want))
            if all(fnmatchcase(rel[-i], want[-i]) for i in range(1, n + 1)):
                return True
        return False

    def held_by(self, folder: Path) -> bool:
        """Whether `folder` holds a file of the set (hidden files and folders do not count)."""
        for pattern in self.patterns:
            for f in folder.glob(pattern):
                rel = f.relative_to(folder).parts
                if not any(_ignored(part) for part in rel) and f.is_file():
                    return True
        return False


def _ignored(name: str) -> bool:
    """Hidden entries and the `__MACOSX/` resource forks some zip files carry."""
    return name.startswith(".") or name == "__MACOSX"


def _subdirs(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:  # unreadable: nothing to find there
        return []
    return [d for d in entries if not _ignored(d.name) and d.is_dir()]


def find_fileset(raw: Path, fs: FileSet, depth: int = SEARCH_DEPTH) -> list[Path]:
    """Every folder that holds `fs`: `raw` itself if it does, else the folders at most `depth`
    levels below it that do (and have the names `fs.folders` asks for), outermost first in path
    order, without looking inside a folder that matched. One folder is the answer; several are
    copies (the caller refuses to pick one)."""
    found: list[Path] = []
    level = [raw]
    for d_level in range(depth + 1):
        below: list[Path] = []
        for d in level:
            if fs.named(d, raw) and fs.held_by(d):
                found.append(d)
            elif d_level < depth:
                below.extend(_subdirs(d))
        level = below
    return found


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
    glob: str  # the same file names as a glob (for the file lookup)
    pattern: str  # the file name for messages and notes
    source: str  # what was machine-translated
    eval_datasets: tuple[str, ...]  # where the dev/test splits of these TLPs come from
    processor_dir: str | None = None  # `<task_dir>/<processor_dir>/` of XTREME's processors

    def fileset(self, layout: str) -> FileSet:
        """The files, in the folder itself (the flat download) or, below it, in
        `<bucket>/translate-train/` (a copy of the bucket; original layout) or in
        `<task_dir>/translate-train/` or `<task_dir>/<processor_dir>/` (xtreme layout)."""
        tt = "translate-train"
        if layout == "original":
            folders: tuple[str, ...] = (f"{self.bucket}/{tt}",)
        else:
            extra = (self.processor_dir,) if self.processor_dir else ()
            folders = tuple(f"{self.task_dir}/{d}" for d in (tt, *extra))
        return FileSet(self.pattern, (self.glob,), folders)

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
        glob="en-*-translated.tsv",
        pattern="en-<lang>-translated.tsv",
        source="MultiNLI train (English), translated by the XTREME authors",
        eval_datasets=("xnli",),
        processor_dir="XNLI-Translated",
    ),
    "pawsx_translate_train": TranslateTrain(
        bucket="PAWSX",
        task_dir="pawsx",
        name=TRANSLATED_TSV_NAME,
        glob="en-*-translated.tsv",
        pattern="en-<lang>-translated.tsv",
        source="PAWS train (English), translated by the XTREME authors",
        eval_datasets=("pawsx",),
        processor_dir="translated",
    ),
    "squad_translate_train": TranslateTrain(
        bucket="SQuAD",
        task_dir="squad",
        name=re.compile(r"^squad\.translate\.train\.en-(?P<lang>[^./]+)\.json$"),
        glob="squad.translate.train.en-*.json",
        pattern="squad.translate.train.en-<lang>.json",
        source="SQuAD v1.1 train, translated by the XTREME authors",
        eval_datasets=("xquad", "mlqa"),
    ),
    "tydiqa_translate_train": TranslateTrain(
        bucket="TyDiQA-GoldP",
        task_dir="tydiqa",
        name=re.compile(r"^tydiqa\.translate\.train\.en-(?P<lang>[^./]+)\.json$"),
        glob="tydiqa.translate.train.en-*.json",
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
    # the split tables; MetaXL's published form (data_index.txt) writes its own mapping
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

    def __init__(
        self,
        dataset: str,
        layout: str,
        raw: Path,
        languages: set[str] | None,
        drop_untranslated: bool = False,
    ):
        self.dataset = dataset
        self.task = DATASET_TASKS[dataset]
        self.layout = layout
        self.raw = raw
        self.languages = languages
        self.drop_untranslated = drop_untranslated
        self.records: dict[TLP, dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.skipped: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.split_skipped: dict[str, Counter[str]] = defaultdict(Counter)
        self.split_notes: dict[str, Counter[str]] = defaultdict(Counter)
        self.files: dict[str, list[str]] = defaultdict(list)
        self.searched: list[FileSet] = []
        self.found: dict[str, str] = {}
        #: replaces SPLIT_NOTES[(dataset, layout)] where the files read call for another mapping
        self.splits_note: dict[str, str] | None = None
        #: further notes of one dataset (e.g. how MetaXL's split indices were applied)
        self.extra_notes: dict[str, Any] = {}

    def want(self, lang: str) -> bool:
        return self.languages is None or lang in self.languages

    def find(self, fs: FileSet) -> Path | None:
        """The one folder holding `fs` under `raw` (see `find_fileset`), or None."""
        self.searched.append(fs)
        hits = find_fileset(self.raw, fs)
        if len(hits) > 1:
            where = ", ".join(f"{self._rel(h)}/" for h in hits)
            raise DataError(
                f"{self.raw}: found {len(hits)} copies of the {self.dataset} files "
                f"{fs.shows} ({where}); expected one: point --raw at the copy to read"
            )
        if not hits:
            return None
        self.found[fs.shows] = self._rel(hits[0])
        return hits[0]

    def nothing(self) -> DataError:
        expected = " and/or ".join(fs.describe() for fs in self.searched)
        return DataError(
            f"{self.raw}: no data found; expected {expected} ({self.layout} layout) for dataset "
            f"{self.dataset}, in this folder or up to {SEARCH_DEPTH} folder levels below it"
        )

    def keep_untranslated(self, split: str) -> bool:
        """PAWS-X `NS` rows: kept in dev/test (XTREME scores them) unless asked to drop them."""
        return split != "train" and not self.drop_untranslated

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
        self.split_skipped[split].update(res.skipped)
        self.split_notes[split].update(res.notes)
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
        read = [s for s in SPLITS if s in self.files]
        by_split = {s: dict(sorted(self.split_skipped[s].items())) for s in read}
        extra: dict[str, Any] = {}
        if self.task == "pa":  # PAWS-X `NS` rows and empty labels, per split
            extra["untranslated"] = {
                s: {
                    "kept": self.split_notes[s][NOTE_NS_KEPT],
                    "dropped": self.split_skipped[s][SKIP_NS],
                }
                for s in read
            }
            extra["empty_label_skipped"] = {
                s: self.split_skipped[s][SKIP_EMPTY_LABEL] for s in read
            }
        return {
            "task": self.task,
            "layout": self.layout,
            "splits": self.splits_note or SPLIT_NOTES.get((self.dataset, self.layout), {}),
            "found_in": dict(self.found),
            "files": {s: sorted(self.files[s]) for s in read},
            **({"skipped_by_split": {s: v for s, v in by_split.items() if v}}),
            **extra,
            **({"translate_train": tt.note()} if tt else {}),
            **self.extra_notes,
            **dict(sorted(self.counters.items())),
        }


# --------------------------------------------------------------------------- helpers


def _need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: directory not found; expected {what}")
    return path


def _lang_dirs(root: Path) -> list[Path]:
    return _subdirs(root)


# --------------------------------------------------------------------------- original layouts

XNLI_EVAL = FileSet("XNLI-1.0/xnli.{dev,test}.tsv", ("xnli.dev.tsv", "xnli.test.tsv"))
XNLI_MT = FileSet("XNLI-MT-1.0/multinli/multinli.train.<lang>.tsv", ("multinli.train.*.tsv",))


def _xnli(c: _Collector) -> None:
    xdir = c.find(XNLI_EVAL)  # XNLI-1.0.zip
    if xdir is not None:
        for split in ("dev", "test"):
            f = xdir / f"xnli.{split}.tsv"
            if not f.is_file():
                raise DataError(f"{f}: file not found; expected XNLI 1.0 {split} pairs")
            c.add(read_xnli_tsv(f, c.languages), split, f)
    mt = c.find(XNLI_MT)  # XNLI-MT-1.0.zip
    if mt is not None:
        for f in sorted(mt.glob("multinli.train.*.tsv")):
            lang = f.name[len("multinli.train.") : -len(".tsv")]
            if c.want(lang):
                c.add(read_xnli_mt_train(f, lang), "train", f)


_MNLI_FILES = {
    "train": "multinli_1.0_train.jsonl",
    "dev": "multinli_1.0_dev_matched.jsonl",
    "test": "multinli_1.0_dev_mismatched.jsonl",
}
MNLI = FileSet(
    "multinli_1.0/multinli_1.0_{train,dev_matched,dev_mismatched}.jsonl",
    tuple(_MNLI_FILES.values()),
)


def _mnli(c: _Collector) -> None:
    root = c.find(MNLI)
    if root is None:
        return
    for split, name in _MNLI_FILES.items():
        f = root / name
        if f.is_file():
            c.add(read_mnli_jsonl(f, "en"), split, f)


_PAWSX_NAMES = ("train.tsv", "translated_train.tsv", "dev_2k.tsv", "test_2k.tsv")
PAWSX = FileSet(
    "x-final/<lang>/{train,translated_train,dev_2k,test_2k}.tsv",
    tuple(f"*/{n}" for n in _PAWSX_NAMES),
)


def _pawsx(c: _Collector) -> None:
    root = c.find(PAWSX)
    if root is None:
        return
    for d in _lang_dirs(root):
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
            keep = c.keep_untranslated(split)
            for f in paths:
                c.add(read_pawsx_tsv(f, lang, keep_untranslated=keep), split, f)


PANX = FileSet(
    "panx_dataset/<lang>/{train,dev,test}",
    ("*/train", "*/dev", "*/test"),
)


def _panx(c: _Collector) -> None:
    root = c.find(PANX)
    if root is None:
        return
    for d in _lang_dirs(root):
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
UDPOS = FileSet(
    "ud-treebanks-v2.5/UD_<Name>/<code>_<treebank>-ud-{train,dev,test}.conllu",
    ("*-ud-*.conllu", "*/*-ud-*.conllu"),
)


def _named_files(
    c: _Collector,
    fs: FileSet,
    glob: str,
    pattern: re.Pattern[str],
    name: str,
    read: Callable[[Path, str], Any],
) -> None:
    """Read every `glob` file in the folder holding `fs` or one level down; language and split
    come from the file name (`pattern` groups `lang`, `split`)."""
    root = c.find(fs)
    if root is None:
        return
    files = sorted({*root.glob(glob), *root.glob(f"*/{glob}")})
    for f in files:
        if any(_ignored(p) for p in f.relative_to(root).parts):
            continue
        m = pattern.match(f.name)
        if not m:
            raise DataError(f"{f}: expected a file named {name}")
        if c.want(m["lang"]):
            c.add(read(f, m["lang"]), m["split"], f)


def _udpos(c: _Collector) -> None:
    _named_files(c, UDPOS, "*.conllu", _UD_NAME, "<code>_<treebank>-ud-<split>.conllu", read_conllu)


#: SQuAD v1.1 train and dev are two downloads: each is looked up on its own
SQUAD = {s: FileSet(f"{s}-v1.1.json", (f"{s}-v1.1.json",)) for s in ("train", "dev")}


def _squad(c: _Collector) -> None:
    for split, fs in SQUAD.items():
        root = c.find(fs)
        if root is not None and c.want("en"):
            f = root / fs.shows
            c.add(read_squad_json(f, "en"), split, f)


_MLQA_NAME = re.compile(
    r"^(?P<split>train|dev|test)-context-(?P<c>[^-]+)-question-(?P<q>[^-]+)\.json$"
)
MLQA = FileSet(
    "MLQA_V1/{dev,test}/{dev,test}-context-<l>-question-<l>.json",
    tuple(f"{s}/{s}-context-*-question-*.json" for s in ("train", "dev", "test")),
)


def _mlqa(c: _Collector) -> None:
    root = c.find(MLQA)
    if root is None:
        return
    for split in ("train", "dev", "test"):
        d = root / split
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            if _ignored(f.name):
                continue
            m = _MLQA_NAME.match(f.name)
            if not m or m["split"] != split:
                raise DataError(f"{f}: expected a file named {split}-context-<l>-question-<l>.json")
            if m["c"] != m["q"]:
                c.counters["gxlt_files_ignored"] += 1  # cross-lingual pairs (G-XLT), not TLPs
                continue
            if c.want(m["c"]):
                c.add(read_squad_json(f, m["c"]), split, f)


XQUAD = FileSet("xquad.<lang>.json", ("xquad.*.json",))


def _xquad(c: _Collector) -> None:
    root = c.find(XQUAD)
    if root is None:
        return
    for f in sorted(root.glob("xquad.*.json")):
        lang = f.name[len("xquad.") : -len(".json")]
        if c.want(lang):
            c.add(read_squad_json(f, lang), "test", f)


#: TyDiQA-GoldP train and dev are two downloads: each is looked up on its own
TYDIQA = {
    s: FileSet(f"tydiqa-goldp-v1.1-{s}.json", (f"tydiqa-goldp-v1.1-{s}.json",))
    for s in ("train", "dev")
}


def _tydiqa(c: _Collector) -> None:
    for split, fs in TYDIQA.items():
        root = c.find(fs)
        if root is not None:
            f = root / fs.shows
            c.add(read_squad_json(f, lang_from_id=True), split, f)


_MTOD_SPLITS = {"train": "train", "eval": "dev", "test": "test"}
MTOD = FileSet(
    "<lang>/{train,eval,test}-<lang>.tsv",
    tuple(f"*/{s}-*.tsv" for s in _MTOD_SPLITS),
)


def _mtod(c: _Collector) -> None:
    root = c.find(MTOD)
    if root is None:
        return
    for d in _lang_dirs(root):
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
MARC = FileSet(
    "dataset_<lang>_{train,dev,test}.json, flat or in <split>/",
    ("dataset_*_*.json", "*/dataset_*_*.json"),
)


def _marc(c: _Collector) -> None:
    _named_files(
        c,
        MARC,
        "dataset_*_*.json",
        _MARC_NAME,
        "dataset_<lang>_<train|dev|test>.json",
        read_marc_jsonl,
    )


_TABLE_EXTS = ((".tsv", "\t"), (".csv", ","))
TABLE = FileSet(
    "{train,dev,test}.tsv or .csv, and optionally format.json",
    tuple(f"{s}{ext}" for s in SPLITS for ext, _ in _TABLE_EXTS),
)


def _table(c: _Collector, root: Path | None = None) -> None:
    """SentiPers/Sentiraama: `{train,dev,test}.{tsv,csv}`, optional `format.json` beside them."""
    root = root or c.find(TABLE)
    if root is None:
        return
    settings = dict(TABLE_DEFAULTS[c.dataset])
    fmt_file = root / "format.json"
    if fmt_file.is_file():
        override = read_json(fmt_file)
        if not isinstance(override, dict):
            raise DataError(f"{fmt_file}: expected a JSON object of table format keys")
        settings.update(override)
    lang = str(settings.pop("lang"))
    for split in SPLITS:
        for ext, delim in _TABLE_EXTS:
            f = root / f"{split}{ext}"
            if not f.is_file():
                continue
            try:
                fmt = TableFormat.from_dict({"delimiter": delim, **settings})
            except (PipelineError, TypeError) as e:
                raise DataError(f"{fmt_file}: {e}") from None
            if c.want(lang):
                c.add(read_sentiment_table(f, lang, fmt), split, f)


#: MetaXL's published split indices (github.com/microsoft/MetaXL, data/data_index.txt)
METAXL_INDEX = FileSet("data_index.txt (MetaXL's data/data_index.txt)", ("data_index.txt",))


@dataclass(frozen=True)
class MetaXLCorpus:
    """A corpus MetaXL samples by published index: its files as distributed, its index code."""

    code: str  # MetaXL's language code in data_index.txt (METAXL_LANGS)
    fileset: FileSet
    addresses: str  # what an index is, for the summary


METAXL_CORPORA: dict[str, MetaXLCorpus] = {
    "sentiraama": MetaXLCorpus(
        "tir",
        FileSet(
            '"Product Reviews"/product_pos.txt and product_neg.txt',
            tuple(SENTIRAAMA_FILES),
        ),
        "0-based line numbers of product_pos.txt / product_neg.txt (lines as Python's "
        "readlines() splits them, stripped), as MetaXL's utils.find_index computed them",
    ),
    "sentipers": MetaXLCorpus(
        "fa",
        FileSet("SentiPers data/main/*.xml (and data/extra/*.xml)", ("main/*.xml",)),
        "rows of the SentiPers sentence table as we rebuild it (MetaXL's table is not "
        "published; see sentence_table.order)",
    ),
}

METAXL_POLICY = (
    "None entries skipped (counted in skipped); entries repeated within a split and entries "
    "shared by two splits kept as published (repeats get ids <id>#2, counted in dedup_ids)"
)


def _sentiment(c: _Collector) -> None:
    """Sentiraama/SentiPers: split tables (`_table`), or the corpus as its publisher distributes
    it plus MetaXL's `data_index.txt`, whose entries select each split. Exactly one of the two
    forms must be there."""
    spec = METAXL_CORPORA[c.dataset]
    tab, orig, idx = c.find(TABLE), c.find(spec.fileset), c.find(METAXL_INDEX)
    published = f"{spec.fileset.shows} with {METAXL_INDEX.shows}"
    if tab is not None and (orig is not None or idx is not None):
        parts = [c._rel(p) + "/" for p in (orig, idx) if p is not None]
        raise DataError(
            f"{c.raw}: found both {c.dataset} split tables ({c._rel(tab)}/) and MetaXL's "
            f"published form ({', '.join(parts)}); expected one of {TABLE.shows} or "
            f"{published}: point --raw at a folder holding only one"
        )
    if tab is not None:
        _table(c, tab)
        return
    if orig is None and idx is None:
        raise DataError(
            f"{c.raw}: no data found; expected {TABLE.describe()}, or {published} "
            f"({c.layout} layout) for dataset {c.dataset}, in this folder or up to "
            f"{SEARCH_DEPTH} folder levels below it"
        )
    if orig is None or idx is None:
        have, lack = (spec.fileset, METAXL_INDEX) if idx is None else (METAXL_INDEX, spec.fileset)
        where = c._rel(orig if idx is None else idx)
        raise DataError(
            f"{c.raw}: found {have.shows} ({where}/) but not {lack.shows}; expected {published} "
            f"(MetaXL's published form of {c.dataset}), or {TABLE.shows}"
        )
    index_file = idx / "data_index.txt"
    index = read_metaxl_index(index_file)
    if spec.code not in index:
        raise DataError(
            f"{index_file}: no '{spec.code}' sections; expected '# {spec.code} train index"
            f"{' and file' if METAXL_LANGS[spec.code].files else ''}' and the dev and test ones"
        )
    lang = METAXL_LANGS[spec.code].ours
    splits = index[spec.code]
    if not c.want(lang):
        return
    note: dict[str, Any] = {
        "file": c._rel(index_file),
        "language": f"{spec.code} -> {lang}"
        + (" (MetaXL's code for Telugu is Tigrinya's ISO code)" if spec.code == "tir" else ""),
        "addresses": spec.addresses,
        "policy": METAXL_POLICY,
        **index_notes(splits),
    }
    if c.dataset == "sentiraama":
        missing = [n for n in SENTIRAAMA_FILES if not (orig / n).is_file()]
        if missing:
            raise DataError(
                f"{orig}: {' and '.join(missing)} not found; expected both of "
                f"{', '.join(SENTIRAAMA_FILES)} in one folder"
            )
        results = read_sentiraama_metaxl(orig, splits, index_file, lang, spec.code)
        note["reviews_in_files"] = {
            n: len(read_sentiraama_blocks(orig / n)) for n in SENTIRAAMA_FILES
        }
        note["corpus"] = [c._rel(orig / n) for n in SENTIRAAMA_FILES]
    else:
        results, table = read_sentipers_metaxl(orig, splits, index_file, lang, spec.code)
        note["sentence_table"] = table
        note["corpus"] = c._rel(orig) + "/"
    for split in SPLITS:
        c.add(results[split], split, index_file)
    header = "index and file" if METAXL_LANGS[spec.code].files else "index"
    c.splits_note = {
        s: f"the entries of '# {spec.code} {s} {header}' in data_index.txt (see metaxl_index)"
        for s in SPLITS
    }
    c.extra_notes["metaxl_index"] = note


# --------------------------------------------------------------------------- translate-train


def _translate_train(c: _Collector) -> None:
    """XTREME translate-train files of one dataset, either layout: all `train`, one language
    per file (`en-<lang>` in the name). QA files go through the SQuAD reader (which makes
    TyDiQA's repeated ids unique), XNLI/PAWS-X through the translate-train TSV reader."""
    spec = TRANSLATE_TRAIN[c.dataset]
    root = c.find(spec.fileset(c.layout))
    if root is None:
        return
    files = sorted(f for f in root.iterdir() if f.is_file() and spec.name.match(f.name))
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
    """`<sub>/{train,dev,test}-<lang>.tsv`: the file names of four tasks, so the folder must be
    named `sub` (or be --raw itself)."""
    fs = FileSet("{train,dev,test}-<lang>.tsv", ("train-*.tsv", "dev-*.tsv", "test-*.tsv"), (sub,))
    root = c.find(fs)
    if root is None:
        return []
    out = []
    for f in sorted(root.glob("*.tsv")):
        m = _XTREME_TSV.match(f.name)
        if m:
            out.append((m["split"], m["lang"], f))
    return out


def _xtreme_pair(sub: str) -> Callable[[_Collector], None]:
    def collect(c: _Collector) -> None:
        for split, lang, f in _xtreme_tsv_files(c, sub):
            if c.want(lang):
                keep = c.task == "pa" and c.keep_untranslated(split)
                c.add(read_xtreme_pair_tsv(f, c.task, lang, keep_untranslated=keep), split, f)

    return collect


def _xtreme_tagging(sub: str) -> Callable[[_Collector], None]:
    def collect(c: _Collector) -> None:
        for split, lang, f in _xtreme_tsv_files(c, sub):
            if c.want(lang):
                c.add(read_xtreme_tagging_tsv(f, lang), split, f)

    return collect


_TYDIQA_XTREME = re.compile(r"^tydiqa\.goldp\.(?P<lang>[^.]+)\.(?P<split>train|dev)\.json$")
TYDIQA_XTREME = FileSet(
    "tydiqa/tydiqa-goldp-v1.1-{train,dev}/tydiqa.goldp.<lang>.{train,dev}.json",
    ("tydiqa.goldp.*.json", "*/tydiqa.goldp.*.json"),
)


def _tydiqa_xtreme(c: _Collector) -> None:
    root = c.find(TYDIQA_XTREME)
    if root is None:
        return
    files = sorted(
        f for f in (*root.glob("*.json"), *root.glob("*/*.json")) if _TYDIQA_XTREME.match(f.name)
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
    ("sentipers", "original"): _sentiment,
    ("sentiraama", "original"): _sentiment,
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


def _collect(
    dataset: str,
    layout: str,
    raw: Path,
    languages: set[str] | None,
    drop_untranslated: bool = False,
) -> _Collector:
    if layout not in LAYOUTS:
        raise PipelineError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if (dataset, layout) not in _COLLECT:
        raise PipelineError(
            f"dataset {dataset!r} has no {layout} layout; XTREME's layout covers "
            f"{', '.join(XTREME_DATASETS)}"
        )
    c = _Collector(dataset, layout, raw, languages, drop_untranslated)
    _COLLECT[(dataset, layout)](c)
    if not c.found:
        raise c.nothing()
    c.finish()
    return c


def _synthetic(
    raw: Path, languages: set[str] | None, drop_untranslated: bool = False
) -> list[_Collector]:
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
        collectors.append(_collect(ds, layout, path, languages, drop_untranslated))
    return collectors


def _hold_out_dev(
    records: dict[TLP, dict[str, list[dict[str, Any]]]], fraction: float, raw: Path, dataset: str
) -> None:
    """dev -> test, and `fraction` of train -> dev, per TLP (see `prepare`)."""
    from pipeline.data.pseudo_tasks import split_ids

    if not 0 < fraction < 1:
        raise PipelineError(f"heldout_dev: expected a fraction in (0, 1), got {fraction}")
    for tlp, splits in records.items():
        if "test" in splits:
            raise DataError(
                f"{raw}: {dataset} {tlp} has a test split; heldout_dev is for releases without one"
            )
        if "dev" in splits:
            splits["test"] = splits.pop("dev")
        if splits.get("train"):
            ids = [str(r["id"]) for r in splits["train"]]
            held = set(split_ids(ids, [fraction], 0, f"{tlp}:heldout")[0])
            splits["dev"] = [r for r in splits["train"] if str(r["id"]) in held]
            splits["train"] = [r for r in splits["train"] if str(r["id"]) not in held]


def prepare(
    dataset: str,
    raw: Path,
    out: Path,
    layout: str = "original",
    languages: list[str] | None = None,
    drop_untranslated: bool = False,
    heldout_dev: float | None = None,
) -> dict[str, Any]:
    """Read `raw` (a `dataset` release), write normalized records to `out`, return the summary.

    `heldout_dev` (a fraction): the release's dev split becomes the test split and that share
    of each TLP's train split (a fixed shuffle of its ids) the dev split — M'hamdi et al.'s
    TyDiQA-GoldP protocol (their dev = 10% of train, test = the official GoldP dev set), for
    a release that ships no test split.

    `raw` is the folder holding the files or any folder above it, down to `SEARCH_DEPTH` levels
    (an archive unpacked as published; see the module docstring). `languages` keeps only those
    languages (and fails if one of them has no data). `drop_untranslated` drops PAWS-X dev/test
    rows whose sentence is `NS` (kept by default, as XTREME scores them; train drops them
    always). The summary (also written to `out/summary.json`) holds `counts` (TLP → split → n),
    `skipped` (reason → n, reasons prefixed with the dataset), `dedup_ids` (ids made unique),
    `options` (the settings above that change records) and `notes` per dataset (split mapping,
    the folders the files were found in, files read, per-split skips, informational counts).
    """
    if dataset not in DATASETS:
        raise PipelineError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    if layout not in LAYOUTS:
        raise PipelineError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    raw = Path(raw)
    langs = set(languages) if languages else None
    if dataset == "synthetic":
        _need_dir(raw, f"the synthetic benchmark folder with {SYNTHETIC_MANIFEST}")
        collectors = _synthetic(raw, langs, drop_untranslated)
    else:
        _need_dir(raw, f"the {dataset} release ({layout} layout)")
        collectors = [_collect(dataset, layout, raw, langs, drop_untranslated)]

    records: dict[TLP, dict[str, list[dict[str, Any]]]] = {}
    skipped: Counter[str] = Counter()
    for c in collectors:
        for tlp, splits in c.records.items():
            kept = {s: r for s, r in splits.items() if r}
            if kept:
                records.setdefault(tlp, {}).update(kept)
        for reason, n in c.skipped.items():
            skipped[f"{c.dataset}: {reason}"] += n

    if heldout_dev is not None:
        _hold_out_dev(records, heldout_dev, raw, dataset)
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
        "options": {
            "drop_untranslated": drop_untranslated,
            **({"heldout_dev": heldout_dev} if heldout_dev is not None else {}),
        },
        "tasks": sorted({c.task for c in collectors}),
        "languages": found,
        "dedup_ids": sum(c.counters["dedup_ids"] for c in collectors),
        "notes": {c.dataset: c.notes() for c in collectors},
    }
    return store.save_prepared(
        out, records, skipped=dict(sorted(skipped.items())), extra_summary=extra
    )
