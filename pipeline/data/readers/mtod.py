"""Multilingual task-oriented dialog (Schuster et al. 2019), the publisher's TSV files.

`<lang>/{train,eval,test}-<lang>.tsv`, no header, five tab-separated columns:

1. intent (`alarm/set_alarm`)
2. slots, `start:end:slot` comma-separated, character offsets into the utterance (empty: none)
3. utterance
4. locale (`es_XX`, `th_TH`) → language `es`, `th`
5. tokenization JSON, `{"tokenizations": [{"tokens": [...], "tokenSpans": [{"start", "length"}]}]}`

Slots become BIO tags over the file's own tokens: a token is inside a slot when its character
span [start, start+length) overlaps the slot span [start, end), so a slot that begins inside a
token (Thai tokens can hold several words, e.g. `ถึง6โมง55นาที`) still marks it; the first such
token gets `B-<slot>`, the rest `I-<slot>`, all others `O`. (The later CoNLL rendering writes
`NoLabel` for O, and leaves such partly covered first tokens O, which yields I- tags without a
B-; here they are B-.)
Slots that cover no token, and tokens claimed by two slots (first slot wins), are counted.

Quirk: in 406 of the 8,643 published Spanish utterances (train/eval/test) the token spans
count characters of the NFD-decomposed utterance (`á` = 2), while the slot offsets count
characters of the utterance as written; e.g. es test row 873, `sábado` gets length 7 and every
later token is shifted by one. When the published spans do not spell the tokens but NFD-mapped spans do, the
spans are mapped back onto the utterance (counted as `token_spans_nfd_realigned`); spans that
match neither way are kept as published and counted as `token_span_text_mismatch`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

from pipeline.data.readers.base import (
    ReadResult,
    bad_line,
    intent_slots_record,
    iter_lines,
    split_fields,
)

_INT = re.compile(r"^-?[0-9]+$")


def locale_lang(locale: str) -> str:
    """`es_XX` → `es`; a bare code stays as it is."""
    return locale.strip().split("_", 1)[0]


def parse_slots(
    path: Path, lineno: int, text: str, notes: Any = None
) -> list[tuple[int, int, str]]:
    """`19:41:datetime,50:55:location` → [(19, 41, 'datetime'), (50, 55, 'location')].

    The published files hold a few negative starts (es test: `-2:30:datetime` for a slot that
    begins the utterance); they are clamped to 0 and counted as `slot_start_clamped`.
    """
    slots = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        parts = item.split(":", 2)
        if len(parts) != 3 or not _INT.match(parts[0]) or not _INT.match(parts[1]) or not parts[2]:
            raise bad_line(path, lineno, f"expected slots as 'start:end:slot', got {item!r}")
        start, end = int(parts[0]), int(parts[1])
        if start < 0:
            start = 0
            if notes is not None:
                notes["slot_start_clamped"] += 1
        if end < start:
            raise bad_line(path, lineno, f"expected slot start <= end, got {item!r}")
        slots.append((start, end, parts[2]))
    return slots


def _tokenization(path: Path, lineno: int, text: str) -> tuple[list[str], list[tuple[int, int]]]:
    try:
        obj: Any = json.loads(text)
    except json.JSONDecodeError as e:
        raise bad_line(path, lineno, f"expected tokenization JSON in column 5 ({e.msg})") from None
    if (
        isinstance(obj, dict)
        and isinstance(obj.get("tokenizations"), list)
        and obj["tokenizations"]
    ):
        obj = obj["tokenizations"][0]
    tokens = obj.get("tokens") if isinstance(obj, dict) else None
    spans = obj.get("tokenSpans") if isinstance(obj, dict) else None
    if not isinstance(tokens, list) or not isinstance(spans, list) or len(tokens) != len(spans):
        raise bad_line(path, lineno, "expected 'tokens' and as many 'tokenSpans' in column 5")
    out = []
    for sp in spans:
        if (
            not isinstance(sp, dict)
            or not isinstance(sp.get("start"), int)
            or not isinstance(sp.get("length"), int)
        ):
            raise bad_line(path, lineno, "expected tokenSpans items {'start': int, 'length': int}")
        out.append((sp["start"], sp["start"] + sp["length"]))
    return [str(t) for t in tokens], out


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _spells(utt: str, tokens: list[str], spans: list[tuple[int, int]]) -> bool:
    return all(_norm(utt[a:b]) == _norm(t) for t, (a, b) in zip(tokens, spans))


def align_spans(
    utt: str, tokens: list[str], spans: list[tuple[int, int]], notes: Any = None
) -> list[tuple[int, int]]:
    """Token spans in utterance characters (see the module docstring for the NFD quirk)."""
    if _spells(utt, tokens, spans):
        return spans
    to_utt: dict[int, int] = {}
    pos = 0
    for i, ch in enumerate(utt):
        to_utt[pos] = i
        pos += len(unicodedata.normalize("NFD", ch))
    to_utt[pos] = len(utt)
    if all(a in to_utt and b in to_utt for a, b in spans):
        mapped = [(to_utt[a], to_utt[b]) for a, b in spans]
        if _spells(utt, tokens, mapped):
            if notes is not None:
                notes["token_spans_nfd_realigned"] += 1
            return mapped
    if notes is not None:
        notes["token_span_text_mismatch"] += 1
    return spans


def bio_slots(
    spans: list[tuple[int, int]], slots: list[tuple[int, int, str]], notes: Any = None
) -> list[str]:
    """BIO tags for tokens with character spans [start, end) given slot spans [start, end).

    `notes` (a Counter) receives `slot_without_token` and `slot_overlap` counts.
    """
    tags = ["O"] * len(spans)
    for s_start, s_end, name in sorted(slots, key=lambda s: (s[0], s[1])):
        inside = [
            i for i, (t0, t1) in enumerate(spans) if t0 < max(s_end, s_start + 1) and t1 > s_start
        ]
        if not inside:
            if notes is not None:
                notes["slot_without_token"] += 1
            continue
        first = True
        for i in inside:
            if tags[i] != "O":
                if notes is not None:
                    notes["slot_overlap"] += 1
                continue
            tags[i] = ("B-" if first else "I-") + name
            first = False
    return tags


def read_mtod_tsv(path: Path, lang: str | None = None) -> ReadResult:
    """One MTOD split file. Ids are `<file stem>-<row>` (rows from 1), e.g. `test-es-1`; the
    language comes from the locale column unless given."""
    path = Path(path)
    res = ReadResult()
    row = 0
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        row += 1
        intent, slot_text, utt, locale, tok_json = split_fields(
            path, lineno, line, 5, "intent, slots, utterance, locale, tokenization"
        )
        if not intent.strip():
            raise bad_line(path, lineno, "expected an intent in column 1")
        slots = parse_slots(path, lineno, slot_text, res.notes)
        tokens, spans = _tokenization(path, lineno, tok_json)
        if not tokens:
            res.skipped["utterance without tokens"] += 1
            continue
        spans = align_spans(utt, tokens, spans, res.notes)
        tags = bio_slots(spans, slots, res.notes)
        rlang = lang or locale_lang(locale)
        res.records.append(
            intent_slots_record(f"{path.stem}-{row}", rlang, tokens, tags, intent.strip())
        )
    return res
