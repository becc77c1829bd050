"""CoNLL-U (Universal Dependencies) → POS tagging records (tokens + UPOS tags).

Only syntactic-word lines (integer ID) become tokens. Multiword-token range lines (`1-2`, the
surface form `del` of `de`+`el`) and empty nodes (`8.1`, enhanced-graph extras) are skipped, so
no word is ever counted twice; XTREME's udpos preprocessing keeps the same words. FORM is kept
verbatim.

Sentences whose FORMs are withheld (`_` for all but at most one word, as in treebanks distributed
without text) are skipped and counted, as XTREME does.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.data.readers.base import ReadResult, bad_line, iter_lines, tagging_record

_WORD_ID = re.compile(r"^[1-9][0-9]*$")
_RANGE_ID = re.compile(r"^[1-9][0-9]*-[1-9][0-9]*$")
_EMPTY_ID = re.compile(r"^[0-9]+\.[1-9][0-9]*$")
_SENT_ID = re.compile(r"^#\s*sent_id\s*=\s*(?P<id>\S.*?)\s*$")

SKIP_WITHHELD = "forms withheld ('_' tokens)"


def conllu_lang(path: Path) -> str:
    """Language code from a UD file name: `en_ewt-ud-test.conllu` → `en`."""
    return Path(path).name.split("_", 1)[0].split("-", 1)[0]


def read_conllu(path: Path, lang: str | None = None, id_prefix: str | None = None) -> ReadResult:
    """All sentences of one .conllu file.

    Ids are `<id_prefix>-<sent_id>` (the `# sent_id` comment) or `<id_prefix>-<n>` (1-based
    sentence index) when a sentence has none; id_prefix defaults to the file stem, e.g.
    `en_ewt-ud-test`. The language defaults to the file-name prefix.
    """
    path = Path(path)
    lang = lang or conllu_lang(path)
    prefix = id_prefix or path.stem
    res = ReadResult()
    tokens: list[str] = []
    tags: list[str] = []
    sent_id: str | None = None
    index = 0
    expect = 1  # next word ID in the current sentence

    def flush() -> None:
        nonlocal tokens, tags, sent_id, index, expect
        if tokens:
            index += 1
            withheld = sum(t == "_" for t in tokens)
            if withheld and withheld >= len(tokens) - 1:
                res.skipped[SKIP_WITHHELD] += 1
            else:
                rid = f"{prefix}-{sent_id if sent_id is not None else index}"
                res.records.append(tagging_record(rid, lang, tokens, tags))
        elif sent_id is not None:
            index += 1
            res.skipped["sentence without words"] += 1
        tokens, tags, sent_id, expect = [], [], None, 1

    for lineno, line in iter_lines(path):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            m = _SENT_ID.match(line)
            if m:
                if tokens:
                    raise bad_line(path, lineno, "expected a blank line before a new sent_id")
                sent_id = m["id"]
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise bad_line(
                path, lineno, f"expected 10 tab-separated CoNLL-U columns, got {len(cols)}"
            )
        wid = cols[0]
        if _RANGE_ID.match(wid) or _EMPTY_ID.match(wid):
            continue  # multiword token or empty node: its words are on their own lines
        if not _WORD_ID.match(wid):
            raise bad_line(path, lineno, f"expected a word ID (1, 2-3 or 4.1), got {wid!r}")
        if int(wid) != expect:
            raise bad_line(path, lineno, f"expected word ID {expect}, got {wid}")
        expect += 1
        if not cols[3] or cols[3] == "_":
            raise bad_line(path, lineno, "expected a UPOS tag in column 4")
        tokens.append(cols[1])
        tags.append(cols[3])
    flush()
    return res
