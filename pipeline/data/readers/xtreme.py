"""Readers for the TSV files XTREME's `download_data.sh` writes (`--layout xtreme`).

* `xnli/`, `pawsx/`: `{train,dev,test}-<lang>.tsv`, no header, written with Python's csv module
  (tab delimiter, `"`-quoting: a field with a quote is wrapped in quotes and inner quotes are
  doubled, `""`). Columns sentence1, sentence2, label; XTREME strips the label from test files.
* `panx/`, `udpos/`: `{train,dev,test}-<lang>.tsv` with one `token<TAB>tag` line per token and a
  blank line between sentences; test files hold tokens only.

Unlabeled rows/sentences (XTREME's stripped test labels) are skipped and counted, so the
prepared data only ever holds gold-labeled records. Ids are `<file stem>-<row>` (from 1).
PAWS-X rows with an `NS` sentence are skipped unless `keep_untranslated` (see readers/pawsx.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.data.readers.base import (
    ReadResult,
    bad_line,
    check_file,
    iter_lines,
    pair_record,
    tagging_record,
)
from pipeline.data.readers.pawsx import (
    NOTE_NS_KEPT,
    PAWSX_LABELS,
    is_untranslated,
    pawsx_row_problem,
)
from pipeline.data.readers.xnli import NLI_LABELS, nli_label
from pipeline.errors import DataError

SKIP_UNLABELED = "no gold label (XTREME strips test labels)"


def read_xtreme_pair_tsv(
    path: Path, task: str, lang: str, keep_untranslated: bool = False
) -> ReadResult:
    """`xnli/*-<lang>.tsv` (task "nli") or `pawsx/*-<lang>.tsv` (task "pa"); keep_untranslated
    keeps PAWS-X rows with an `NS` sentence."""
    if task not in ("nli", "pa"):
        raise DataError(f"{path}: XTREME pair files hold task nli or pa, not {task!r}")
    path = check_file(path)
    res = ReadResult()
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter="\t", quotechar='"', doublequote=True, strict=True)
            row_no = 0
            width = 0  # 3 for a labeled file, 2 for a test file without labels (first row decides)
            while True:
                start = reader.line_num + 1
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    raise bad_line(
                        path, start, f"expected csv-style tab-separated fields ({e})"
                    ) from None
                if not fields or fields == [""]:
                    continue
                row_no += 1
                width = width or (len(fields) if len(fields) in (2, 3) else 3)
                if len(fields) != width:
                    what = "sentence1, sentence2, label" if width == 3 else "sentence1, sentence2"
                    raise bad_line(
                        path,
                        start,
                        f"expected {width} tab-separated fields ({what}), got {len(fields)}",
                    )
                if width == 2:
                    res.skipped[SKIP_UNLABELED] += 1
                    continue
                rid = f"{path.stem}-{row_no}"
                a, b, raw = fields
                if task == "pa":
                    problem = pawsx_row_problem(a, b, raw, keep_untranslated)
                    if problem:
                        res.skipped[problem] += 1
                        continue
                    label = raw.strip()
                    if label not in PAWSX_LABELS:
                        raise bad_line(path, start, f"expected label 0 or 1, got {raw!r}")
                    if is_untranslated(a, b):
                        res.notes[NOTE_NS_KEPT] += 1
                else:
                    if not a.strip() or not b.strip():
                        res.skipped["empty sentence"] += 1
                        continue
                    label = nli_label(raw)
                    if label is None:
                        raise bad_line(
                            path,
                            start,
                            f"expected an NLI label ({', '.join(NLI_LABELS)}), got {raw!r}",
                        )
                res.records.append(pair_record(rid, lang, a, b, label))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: expected UTF-8 text ({e.reason})") from None
    return res


def read_xtreme_tagging_tsv(path: Path, lang: str) -> ReadResult:
    """`panx/` or `udpos/` `{split}-<lang>.tsv`: `token<TAB>tag` lines, blank line between
    sentences. A sentence whose lines hold tokens only (XTREME test files) is skipped."""
    path = Path(path)
    res = ReadResult()
    tokens: list[str] = []
    tags: list[str] = []
    labeled: bool | None = None  # the file's first token line decides: token+tag or token only
    row = 0

    def flush() -> None:
        nonlocal row, tokens, tags
        if not tokens:
            return
        row += 1
        if labeled:
            res.records.append(tagging_record(f"{path.stem}-{row}", lang, tokens, tags))
        else:
            res.skipped[SKIP_UNLABELED] += 1
        tokens, tags = [], []

    for lineno, line in iter_lines(path):
        if not line.strip():
            flush()
            continue
        fields = line.split("\t")
        if labeled is None:
            labeled = len(fields) != 1
        if labeled and (len(fields) != 2 or not fields[1].strip()):
            raise bad_line(path, lineno, f"expected 'token<TAB>tag', got {len(fields)} field(s)")
        if not labeled and len(fields) != 1:
            raise bad_line(path, lineno, "expected a token without tag, like the file's first line")
        tokens.append(fields[0])
        if labeled:
            tags.append(fields[1].strip())
    flush()
    return res
