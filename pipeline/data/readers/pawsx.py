"""PAWS-X `x-final/<lang>/{train,translated_train,dev_2k,test_2k}.tsv` (Yang et al. 2019).

Header `id sentence1 sentence2 label`, labels 0/1, quotes literal (split on tabs only). The
machine-translated files hold `NS` where translation failed, and some rows have empty sentences
or an empty label; those rows are skipped and counted, never guessed.

`keep_untranslated=True` keeps the `NS` rows, their text as it is in the file (counted as the
note `untranslated_rows_kept`): XTREME evaluates all 2,000 rows of each dev/test file, so
`prepare` keeps them in those splits unless asked to drop them. Empty sentences and empty labels
are skipped either way.
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
#: note: rows with an `NS` sentence kept (keep_untranslated)
NOTE_NS_KEPT = "untranslated_rows_kept"


def is_untranslated(a: str, b: str) -> bool:
    """Whether a PAWS-X pair holds `NS` (a failed machine translation) for a sentence."""
    return a.strip() == NOT_TRANSLATED or b.strip() == NOT_TRANSLATED


def pawsx_row_problem(a: str, b: str, label: str, keep_untranslated: bool = False) -> str | None:
    """Why a PAWS-X row must be skipped, or None when it is usable (an `NS` sentence is usable
    with keep_untranslated)."""
    if not keep_untranslated and is_untranslated(a, b):
        return SKIP_NS
    if not a.strip() or not b.strip():
        return SKIP_EMPTY_SENTENCE
    if not label.strip():
        return SKIP_EMPTY_LABEL
    return None


def read_pawsx_tsv(path: Path, lang: str, keep_untranslated: bool = False) -> ReadResult:
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
        problem = pawsx_row_problem(a, b, label, keep_untranslated)
        if problem:
            res.skipped[problem] += 1
            continue
        label = label.strip()
        if label not in PAWSX_LABELS:
            raise bad_line(path, lineno, f"expected label 0 or 1, got {label!r}")
        if is_untranslated(a, b):
            res.notes[NOTE_NS_KEPT] += 1
        res.records.append(pair_record(id_.strip(), lang, a, b, label))
    return res
