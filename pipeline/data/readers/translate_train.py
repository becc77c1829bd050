"""XTREME translate-train TSVs for XNLI and PAWS-X: `en-<lang>-translated.tsv`.

Machine translations of the English training set (MultiNLI train for XNLI, PAWS train for PAWS-X)
released by the XTREME authors under gs://xtreme_translations/{XNLI,PAWSX}/translate-train/. The
files have no header and quotes are literal: lines are split on tabs only, as XTREME's own
processors and TFDS's `xtreme_xnli` builder read them. Two row shapes exist; the file's first row
decides which one the file has:

* 5 columns `en_sentence1, en_sentence2, sentence1, sentence2, label` — the files as published
  since September 2020 (the English source pair was added so rows can be matched to the original,
  google-research/xtreme#37; the TFDS builders and the digests in sources.yaml are of these). The
  translated pair (columns 3 and 4) is kept; the English pair is ignored.
* 3 columns `sentence1, sentence2, label` — the earlier files, which XTREME's processors read.

Labels: XNLI as in XNLI-MT (`contradictory` → contradiction; `-` means no gold label and is
skipped). PAWS-X 0/1; TFDS's `xtreme_pawsx` builder warns that some rows are "wrongly populated"
and keeps only rows labelled 0/1, so PAWS-X rows with another label or another field count are
skipped and counted (never guessed), while in XNLI files such a row is an error.
Ids are `<file stem>-<row>` (data rows counted from 1, skipped ones included): stable per file.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.data.readers.base import ReadResult, bad_line, iter_lines, pair_record
from pipeline.data.readers.pawsx import PAWSX_LABELS, pawsx_row_problem
from pipeline.data.readers.xnli import NO_GOLD, label_or_fail
from pipeline.errors import DataError

#: XNLI and PAWS-X translate-train file names; the language is the target side of `en-<lang>`
TRANSLATED_TSV_NAME = re.compile(r"^en-(?P<lang>[^./]+)-translated\.tsv$")

COLUMNS_5 = ("en_sentence1", "en_sentence2", "sentence1", "sentence2", "label")
COLUMNS_3 = ("sentence1", "sentence2", "label")

SKIP_PA_FIELDS = "malformed row (field count differs from the file's first row)"
SKIP_PA_LABEL = "malformed row (label not 0 or 1)"


def translated_tsv_lang(path: Path) -> str:
    """The target language of `en-<lang>-translated.tsv`, or a DataError naming the file."""
    m = TRANSLATED_TSV_NAME.match(Path(path).name)
    if not m:
        raise DataError(f"{path}: expected a file named en-<lang>-translated.tsv")
    return m["lang"]


def read_translate_train_tsv(path: Path, task: str, lang: str | None = None) -> ReadResult:
    """One XNLI (task "nli") or PAWS-X (task "pa") translate-train file of one language.

    The language comes from the file name (`en-<lang>-translated.tsv`) unless given. The note
    `translate_train_<n>_column_files` records which row shape the file had.
    """
    path = Path(path)
    if task not in ("nli", "pa"):
        raise DataError(f"{path}: translate-train TSVs hold task nli or pa, not {task!r}")
    if lang is None:
        lang = translated_tsv_lang(path)
    res = ReadResult()
    width = 0
    row = 0
    for lineno, line in iter_lines(path):
        if not line:
            continue
        row += 1
        fields = line.split("\t")
        if not width:
            if len(fields) not in (len(COLUMNS_5), len(COLUMNS_3)):
                raise bad_line(
                    path,
                    lineno,
                    f"expected 5 tab-separated fields ({', '.join(COLUMNS_5)}) or 3 "
                    f"({', '.join(COLUMNS_3)}), got {len(fields)}",
                )
            width = len(fields)
            res.notes[f"translate_train_{width}_column_files"] += 1
        if len(fields) != width:
            if task == "pa":
                res.skipped[SKIP_PA_FIELDS] += 1
                continue
            raise bad_line(
                path,
                lineno,
                f"expected {width} tab-separated fields like the file's first row, "
                f"got {len(fields)}",
            )
        a, b, raw = fields[-3:]  # the translated pair and the label, in both shapes
        if task == "pa":
            problem = pawsx_row_problem(a, b, raw)
            if problem:
                res.skipped[problem] += 1
                continue
            label = raw.strip()
            if label not in PAWSX_LABELS:
                res.skipped[SKIP_PA_LABEL] += 1
                continue
        else:
            if raw.strip() == NO_GOLD:
                res.skipped["gold_label '-' (no annotator consensus)"] += 1
                continue
            label = label_or_fail(path, lineno, raw)
            if not a.strip() or not b.strip():
                res.skipped["empty sentence"] += 1
                continue
        res.records.append(pair_record(f"{path.stem}-{row}", lang, a, b, label))
    return res
