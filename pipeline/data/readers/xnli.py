"""XNLI readers: XNLI 1.0 `xnli.{dev,test}.tsv` and XNLI-MT 1.0 `multinli.train.<lang>.tsv`.

Both keep quotes literal (the publishers wrote them unescaped), so lines are split on tabs
only — the equivalent of csv.QUOTE_NONE. Labels are normalized to entailment/neutral/
contradiction; XNLI-MT spells one of them `contradictory`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from pipeline.data.readers.base import (
    ReadResult,
    bad_line,
    iter_lines,
    pair_record,
    split_fields,
)
from pipeline.errors import DataError

NLI_LABELS: tuple[str, ...] = ("contradiction", "entailment", "neutral")
_ALIASES = {"contradictory": "contradiction"}
#: what annotators wrote when they did not agree (MultiNLI/SNLI); such pairs have no gold label
NO_GOLD = "-"

XNLI_COLUMNS: tuple[str, ...] = (
    "language",
    "gold_label",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "promptID",
    "pairID",
    "genre",
    "label1",
    "label2",
    "label3",
    "label4",
    "label5",
    "sentence1_tokenized",
    "sentence2_tokenized",
    "match",
)
_XNLI_USED = ("language", "gold_label", "sentence1", "sentence2", "pairID")


def nli_label(raw: str) -> str | None:
    """The normalized label, or None for an unknown one (the caller decides how to fail)."""
    lab = raw.strip()
    lab = _ALIASES.get(lab, lab)
    return lab if lab in NLI_LABELS else None


def label_or_fail(path: Path, lineno: int, raw: str) -> str:
    lab = nli_label(raw)
    if lab is None:
        raise bad_line(
            path, lineno, f"expected an NLI label ({', '.join(NLI_LABELS)}), got {raw!r}"
        )
    return lab


def read_xnli_tsv(path: Path, languages: Collection[str] | None = None) -> ReadResult:
    """XNLI 1.0 `xnli.{dev,test}.tsv`: all languages in one file, 19-column header.

    Columns are located by header name. Ids are the publisher's `pairID` (unique within a
    language; the same pair has the same id in every language). `languages` filters early.
    """
    path = Path(path)
    res = ReadResult()
    lines = iter_lines(path)
    header = next(lines, None)
    if header is None:
        raise DataError(f"{path}:1: expected the XNLI header line, found an empty file")
    cols = header[1].split("\t")
    missing = [c for c in _XNLI_USED if c not in cols]
    if missing:
        raise bad_line(
            path, 1, f"expected an XNLI header with columns {list(_XNLI_USED)}, missing {missing}"
        )
    idx = {c: cols.index(c) for c in _XNLI_USED}
    for lineno, line in lines:
        if not line:
            continue
        f = split_fields(path, lineno, line, len(cols), "XNLI columns as in the header")
        lang = f[idx["language"]].strip()
        if languages is not None and lang not in languages:
            continue
        raw = f[idx["gold_label"]]
        if raw.strip() == NO_GOLD:
            res.skipped["gold_label '-' (no annotator consensus)"] += 1
            continue
        label = label_or_fail(path, lineno, raw)
        a, b = f[idx["sentence1"]], f[idx["sentence2"]]
        if not a.strip() or not b.strip():
            res.skipped["empty sentence"] += 1
            continue
        res.records.append(pair_record(f[idx["pairID"]].strip(), lang, a, b, label))
    return res


_MT_NAME = re.compile(r"^multinli\.train\.(?P<lang>[^.]+)\.tsv$")


def read_xnli_mt_train(path: Path, lang: str | None = None) -> ReadResult:
    """XNLI-MT 1.0 `multinli.train.<lang>.tsv`: header `premise hypo label`, no ids.

    The language comes from the file name unless given. Ids are `<file stem>-<row>` (data rows
    counted from 1), stable for a given file.
    """
    path = Path(path)
    if lang is None:
        m = _MT_NAME.match(path.name)
        if not m:
            raise DataError(f"{path}: expected a file named multinli.train.<lang>.tsv")
        lang = m["lang"]
    res = ReadResult()
    lines = iter_lines(path)
    first = next(lines, None)
    if first is None or first[1].split("\t") != ["premise", "hypo", "label"]:
        raise bad_line(path, 1, "expected the header 'premise<TAB>hypo<TAB>label'")
    row = 0
    for lineno, line in lines:
        if not line:
            continue
        row += 1
        a, b, raw = split_fields(path, lineno, line, 3, "premise, hypo, label")
        if raw.strip() == NO_GOLD:
            res.skipped["gold_label '-' (no annotator consensus)"] += 1
            continue
        label = label_or_fail(path, lineno, raw)
        if not a.strip() or not b.strip():
            res.skipped["empty sentence"] += 1
            continue
        res.records.append(pair_record(f"{path.stem}-{row}", lang, a, b, label))
    return res
