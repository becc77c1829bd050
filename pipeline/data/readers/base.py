"""Shared pieces of the raw-format readers: the result type, line reading, errors, id dedup.

Every reader returns a `ReadResult`: normalized records (plain dicts with exactly the fields of
`pipeline.records.RECORD_FIELDS` for their task type, in that order) plus counts of what it
skipped and why, so `prepare` can report every dropped record instead of hiding it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import DataError

Record = dict[str, Any]


@dataclass
class ReadResult:
    """Records read from one or more raw files, with skip reasons and informational counts."""

    records: list[Record] = field(default_factory=list)
    #: reason -> number of raw records left out (e.g. "NS sentence (failed translation)")
    skipped: Counter[str] = field(default_factory=Counter)
    #: informational counts that change nothing but must be visible (e.g. "dedup_ids")
    notes: Counter[str] = field(default_factory=Counter)

    def extend(self, other: ReadResult) -> ReadResult:
        self.records.extend(other.records)
        self.skipped.update(other.skipped)
        self.notes.update(other.notes)
        return self


# Record constructors: one place that fixes the field order of each task type.
def pair_record(id_: str, lang: str, text_a: str, text_b: str, label: str) -> Record:
    return {"id": id_, "lang": lang, "text_a": text_a, "text_b": text_b, "label": label}


def single_record(id_: str, lang: str, text: str, label: str) -> Record:
    return {"id": id_, "lang": lang, "text": text, "label": label}


def tagging_record(id_: str, lang: str, tokens: list[str], tags: list[str]) -> Record:
    return {"id": id_, "lang": lang, "tokens": tokens, "tags": tags}


def qa_record(
    id_: str, lang: str, context: str, question: str, texts: list[str], starts: list[int]
) -> Record:
    answers = {"text": texts, "answer_start": starts}
    return {"id": id_, "lang": lang, "context": context, "question": question, "answers": answers}


def intent_slots_record(
    id_: str, lang: str, tokens: list[str], slots: list[str], intent: str
) -> Record:
    return {"id": id_, "lang": lang, "tokens": tokens, "slots": slots, "intent": intent}


def check_file(path: Path) -> Path:
    """`path` as a Path, or a DataError saying which file was expected."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return path


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line ending) for each line of a UTF-8 file.

    Lines end only at '\\n' (a stray '\\r' or other control character inside a field stays in
    the text); a trailing '\\r' is dropped so CRLF files read the same. A UTF-8 BOM is ignored.
    """
    path = check_file(path)
    lineno = 0
    try:
        with open(path, encoding="utf-8-sig", newline="\n") as f:
            for lineno, line in enumerate(f, start=1):
                yield lineno, line.rstrip("\n").removesuffix("\r")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}:{lineno + 1}: expected UTF-8 text ({e.reason})") from None


def read_text(path: Path) -> str:
    path = check_file(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: expected UTF-8 text ({e.reason} at byte {e.start})") from None


def load_json(path: Path) -> Any:
    """Parse a whole JSON file; a syntax error names file and line."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: expected valid JSON ({e.msg})") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}:{lineno}: expected one JSON object per line ({e.msg})"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def bad_line(path: Path, lineno: int, what: str) -> DataError:
    """The one-line error for a malformed raw line: `<file>:<line>: <what was expected>`."""
    return DataError(f"{path}:{lineno}: {what}")


def split_fields(path: Path, lineno: int, line: str, n: int, what: str) -> list[str]:
    """Split a tab-separated line (quotes literal) into exactly `n` fields, or raise."""
    fields = line.split("\t")
    if len(fields) != n:
        raise bad_line(
            path, lineno, f"expected {n} tab-separated fields ({what}), got {len(fields)}"
        )
    return fields


def dedup_ids(records: list[Record]) -> int:
    """Make ids unique in place, deterministically: repeats get `#2`, `#3`, … in list order.

    The first occurrence keeps its id. A suffixed id that already exists is skipped over, so the
    result is unique whatever the input. Returns how many ids were changed.
    """
    seen: set[str] = {r["id"] for r in records}
    if len(seen) == len(records):
        return 0
    used: set[str] = set()
    count: Counter[str] = Counter()
    changed = 0
    for rec in records:
        rid = rec["id"]
        if rid not in used:
            used.add(rid)
            count[rid] = 1
            continue
        k = count[rid]
        while True:
            k += 1
            cand = f"{rid}#{k}"
            if cand not in used and cand not in seen:
                break
        count[rid] = k
        rec["id"] = cand
        used.add(cand)
        changed += 1
    return changed
