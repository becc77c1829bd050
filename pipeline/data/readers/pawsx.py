"""PAWS-X `x-final/<lang>/{train,translated_train,dev_2k,test_2k}.tsv` (Yang et al. 2019).

Header `id sentence1 sentence2 label`, labels 0/1, quotes literal (split on tabs only). The
machine-translated files hold `NS` where translation failed, and some rows have empty sentences
or an empty label; those rows are skipped and counted, never guessed.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.data.readers.base import ReadResult, bad_line, iter_lines, pair_record, split_fields

PAWSX_LABELS: tuple[str, ...] = ("0", "1")
#: what PAWS-X writes in place of a sentence whose machine translation failed
NOT_TRANSLATED = "NS"

SKIP_NS = "NS sentence (failed translation)"
SKIP_EMPTY_SENTENCE = "empty sentence"
SKIP_EMPTY_LABEL = "empty label"


def pawsx_row_problem(a: str, b: str, label: str) -> str | None:
    """Why a PAWS-X row must be skipped, or None when it is usable."""
    if a.strip() == NOT_TRANSLATED or b.strip() == NOT_TRANSLATED:
        return SKIP_NS
    if not a.strip() or not b.strip():
        return SKIP_EMPTY_SENTENCE
    if not label.strip():
        return SKIP_EMPTY_LABEL
    return None


def read_pawsx_tsv(path: Path, lang: str) -> ReadResult:
    """One PAWS-X file of one language. Ids are the publisher's `id` column."""
    path = Path(path)
    res = ReadResult()
    lines = iter_lines(path)
    first = next(lines, None)
    if first is None or first[1].split("\t") != ["id", "sentence1", "sentence2", "label"]:
        raise bad_line(path, 1, "expected the header 'id<TAB>sentence1<TAB>sentence2<TAB>label'")
    for lineno, line in lines:
        if not line:
            continue
        id_, a, b, label = split_fields(path, lineno, line, 4, "id, sentence1, sentence2, label")
        problem = pawsx_row_problem(a, b, label)
        if problem:
            res.skipped[problem] += 1
            continue
        label = label.strip()
        if label not in PAWSX_LABELS:
            raise bad_line(path, lineno, f"expected label 0 or 1, got {label!r}")
        res.records.append(pair_record(id_.strip(), lang, a, b, label))
    return res
