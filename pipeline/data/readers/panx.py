"""PAN-X / WikiAnn NER files as distributed (`panx_dataset/<lang>.tar.gz` → train, dev, test).

One token per line, `<lang>:<token><TAB><tag>`, a blank line between sentences, IOB2 tags.
Only the FIRST ':' separates the language prefix, because tokens themselves can contain ':'
(URLs, times, or the token ':' itself, `th::`).
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.data.readers.base import ReadResult, bad_line, iter_lines, tagging_record

IOB2_TAG = re.compile(r"^(O|[BI]-\S+)$")


def read_panx(path: Path, lang: str | None = None, id_prefix: str | None = None) -> ReadResult:
    """One PAN-X split file. The language defaults to the first line's prefix; ids are
    `<id_prefix>-<n>` with n the 1-based sentence index (id_prefix defaults to `<lang>-<stem>`,
    e.g. `en-dev`)."""
    path = Path(path)
    res = ReadResult()
    tokens: list[str] = []
    tags: list[str] = []
    count = 0
    prefix = id_prefix

    def flush() -> None:
        nonlocal tokens, tags, count
        if tokens:
            count += 1
            res.records.append(tagging_record(f"{prefix}-{count}", lang, tokens, tags))  # type: ignore[arg-type]
        tokens, tags = [], []

    for lineno, line in iter_lines(path):
        if not line.strip():
            flush()
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise bad_line(
                path, lineno, f"expected '<lang>:<token><TAB><tag>', got {len(fields)} field(s)"
            )
        code, sep, token = fields[0].partition(":")
        if not sep or not code:
            raise bad_line(path, lineno, f"expected '<lang>:<token>', got {fields[0]!r}")
        tag = fields[1].strip()
        if not IOB2_TAG.match(tag):
            raise bad_line(path, lineno, f"expected an IOB2 tag (O, B-X, I-X), got {tag!r}")
        if lang is None:
            lang = code
        if prefix is None:
            prefix = f"{lang}-{path.stem}"
        tokens.append(token)
        tags.append(tag)
    flush()
    return res
