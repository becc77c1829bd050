"""Raw-format writers: one per publisher format, matching the real releases byte for byte in shape.

Why: the synthetic benchmark and the readers' test fixtures must go through the same readers as
the real data, so they are written exactly as publishers distribute them (headers, column order,
no quoting where the publisher has none, JSON shape and escaping). Layout notes per format are in
/work/shared/realdata/README.md. Every writer writes atomically and refuses values that would
corrupt the format (a tab or newline inside a TSV field, an answer offset that misses its text),
raising DataError naming the file and the record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.data.readers import xnli as readers_xnli
from pipeline.errors import DataError
from pipeline.io import atomic_write_text

#: XNLI 1.0 `xnli.{dev,test}.tsv` header, in file order (19 columns).
# the real 19-column header, shared with the reader
XNLI_COLUMNS = readers_xnli.XNLI_COLUMNS
#: XNLI-MT 1.0 `multinli.train.<lang>.tsv` header.
XNLI_MT_COLUMNS: tuple[str, ...] = ("premise", "hypo", "label")
#: PAWS-X `x-final/<lang>/*.tsv` header.
PAWSX_COLUMNS: tuple[str, ...] = ("id", "sentence1", "sentence2", "label")
#: MARC `dataset_<lang>_<split>.json` keys, in line order.
MARC_FIELDS: tuple[str, ...] = (
    "review_id",
    "product_id",
    "reviewer_id",
    "stars",
    "review_body",
    "review_title",
    "language",
    "product_category",
)
#: punctuation written without a space before it when `text`/spacing is derived from tokens
NO_SPACE_BEFORE = frozenset({".", ",", "?", "!", ";", ":"})


def _field(path: Path, where: str, name: str, value: Any) -> str:
    """A TSV field as text; tabs and newlines would silently shift columns, so refuse them."""
    text = "" if value is None else str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        raise DataError(f"{path}: {where}: field {name!r} contains a tab or newline: {text[:60]!r}")
    return text


def _tsv(path: Path, header: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> None:
    lines = ["\t".join(header)] if header is not None else []
    lines.extend("\t".join(r) for r in rows)
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def _require(path: Path, where: str, row: Mapping[str, Any], keys: Iterable[str]) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise DataError(f"{path}: {where}: missing field(s) {', '.join(missing)}")


def write_xnli_tsv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """XNLI 1.0 `xnli.dev.tsv`/`xnli.test.tsv`: 19-column header, all languages in one file.

    Each row needs `language`, `gold_label`, `sentence1`, `sentence2`, `pairID`; the other columns
    default as in the real file where a value is unknown: empty parses, `promptID` = `pairID`,
    genre `facetoface`, label1..5 = gold_label, tokenized = the sentence, match `True`. No quoting:
    the publisher writes quotes literally.
    """
    path = Path(path)
    out = []
    for i, row in enumerate(rows):
        where = f"row {i + 1}"
        _require(path, where, row, ("language", "gold_label", "sentence1", "sentence2", "pairID"))
        full = {c: "" for c in XNLI_COLUMNS[2:6]}
        full.update(
            promptID=row["pairID"],
            genre="facetoface",
            match="True",
            sentence1_tokenized=row["sentence1"],
            sentence2_tokenized=row["sentence2"],
            **{f"label{k}": row["gold_label"] for k in range(1, 6)},
        )
        full.update(row)
        unknown = set(full) - set(XNLI_COLUMNS)
        if unknown:
            raise DataError(f"{path}: {where}: unknown column(s) {', '.join(sorted(unknown))}")
        out.append([_field(path, where, c, full[c]) for c in XNLI_COLUMNS])
    _tsv(path, XNLI_COLUMNS, out)


def write_xnli_mt_tsv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """XNLI-MT 1.0 `multinli.train.<lang>.tsv`: header `premise hypo label`, no quoting.

    Labels are written as given; the real full files spell contradiction `contradictory`.
    """
    path = Path(path)
    out = []
    for i, row in enumerate(rows):
        where = f"row {i + 1}"
        _require(path, where, row, XNLI_MT_COLUMNS)
        out.append([_field(path, where, c, row[c]) for c in XNLI_MT_COLUMNS])
    _tsv(path, XNLI_MT_COLUMNS, out)


def write_pawsx_tsv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """PAWS-X `train.tsv`/`translated_train.tsv`/`dev_2k.tsv`/`test_2k.tsv`: `id sentence1 sentence2 label`."""
    path = Path(path)
    out = []
    for i, row in enumerate(rows):
        where = f"row {i + 1}"
        _require(path, where, row, PAWSX_COLUMNS)
        out.append([_field(path, where, c, row[c]) for c in PAWSX_COLUMNS])
    _tsv(path, PAWSX_COLUMNS, out)


def write_panx(path: str | os.PathLike, sentences: Iterable[Mapping[str, Any]]) -> None:
    """PAN-X (Rahimi splits) `train`/`dev`/`test`: `<lang>:<token>\\t<tag>` lines, blank line after each sentence.

    Each sentence is a tagging record: `lang`, `tokens`, `tags` (IOB2).
    """
    path = Path(path)
    lines: list[str] = []
    for i, sent in enumerate(sentences):
        where = f"sentence {i + 1}"
        _require(path, where, sent, ("lang", "tokens", "tags"))
        toks, tags = list(sent["tokens"]), list(sent["tags"])
        if not toks or len(toks) != len(tags):
            raise DataError(f"{path}: {where}: {len(toks)} tokens but {len(tags)} tags")
        for tok, tag in zip(toks, tags):
            if not tok or any(c.isspace() for c in tok):
                raise DataError(f"{path}: {where}: token {tok!r} is empty or holds whitespace")
            lines.append(f"{sent['lang']}:{tok}\t{_field(path, where, 'tag', tag)}\n")
        lines.append("\n")
    atomic_write_text(path, "".join(lines))


def detokenize(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join tokens with single spaces except before closing punctuation; return text and char spans."""
    text, spans = "", []
    for i, tok in enumerate(tokens):
        if i and tok not in NO_SPACE_BEFORE:
            text += " "
        spans.append((len(text), len(text) + len(tok)))
        text += tok
    return text, spans


def write_conllu(path: str | os.PathLike, sentences: Iterable[Mapping[str, Any]]) -> None:
    """Universal Dependencies CoNLL-U: `# sent_id`, `# text`, then 10 tab-separated columns per token.

    A sentence maps `sent_id`, `tokens` (syntactic words) and `upos`; optional per-token lists
    `lemmas`, `xpos`, `feats`, `heads` (ints, 0 = root), `deprels`, `space_after` (bools), optional
    `multiword`: [(first, last, form), ...] with 1-based inclusive word ids, written as a range line
    `first-last` before the words (the range carries the surface form and the spacing), optional
    `newdoc` (a `# newdoc id` line) and `text` (else derived from the surface forms and spacing).
    """
    path = Path(path)
    lines: list[str] = []
    for i, sent in enumerate(sentences):
        where = f"sentence {i + 1}"
        _require(path, where, sent, ("sent_id", "tokens", "upos"))
        toks = list(sent["tokens"])
        n = len(toks)
        cols: dict[str, list[Any]] = {}
        for key, col in (("lemmas", "lemma"), ("xpos", "xpos"), ("feats", "feats")):
            cols[col] = list(sent.get(key) or ["_"] * n)
        cols["upos"] = list(sent["upos"])
        cols["heads"] = list(sent.get("heads") or ["_"] * n)
        cols["deprel"] = list(sent.get("deprels") or ["_"] * n)
        if sent.get("space_after") is not None:
            space_after = [bool(x) for x in sent["space_after"]]
        else:
            space_after = [tok not in NO_SPACE_BEFORE for tok in toks[1:]] + [True]
        for name, col in (*cols.items(), ("space_after", space_after)):
            if len(col) != n:
                raise DataError(f"{path}: {where}: {len(col)} {name} for {n} tokens")
        ranges = {int(a): (int(b), str(form)) for a, b, form in sent.get("multiword") or ()}
        for a, (b, _) in ranges.items():
            if not 1 <= a < b <= n:
                raise DataError(f"{path}: {where}: bad multiword range {a}-{b} for {n} tokens")
        # surface text: ranges replace their words; spacing comes from the last word of a range
        surface, j = "", 1
        while j <= n:
            b, form = ranges.get(j, (j, toks[j - 1]))
            surface += form + (" " if space_after[b - 1] and b < n else "")
            j = b + 1
        text = sent.get("text", surface)
        if sent.get("newdoc"):
            lines.append(f"# newdoc id = {sent['newdoc']}\n")
        lines.append(f"# sent_id = {_field(path, where, 'sent_id', sent['sent_id'])}\n")
        lines.append(f"# text = {_field(path, where, 'text', text)}\n")
        for j in range(1, n + 1):
            if j in ranges:
                b, form = ranges[j]
                misc = "_" if space_after[b - 1] or b == n else "SpaceAfter=No"
                lines.append(f"{j}-{b}\t{form}\t_\t_\t_\t_\t_\t_\t_\t{misc}\n")
            in_range = any(a <= j <= b for a, (b, _) in ranges.items())
            misc = "_" if in_range or space_after[j - 1] or j == n else "SpaceAfter=No"
            row = [
                str(j),
                toks[j - 1],
                cols["lemma"][j - 1],
                cols["upos"][j - 1],
                cols["xpos"][j - 1],
                cols["feats"][j - 1],
                str(cols["heads"][j - 1]),
                cols["deprel"][j - 1],
                "_",
                misc,
            ]
            lines.append("\t".join(_field(path, where, "column", v) for v in row) + "\n")
        lines.append("\n")
    atomic_write_text(path, "".join(lines))


def write_squad_json(
    path: str | os.PathLike,
    articles: Sequence[Mapping[str, Any]],
    version: float | str = 1.0,
    check: bool = True,
) -> None:
    """SQuAD v1.1 JSON as MLQA/XQuAD/SQuAD publish it: `{"version": 1.0, "data": [articles]}`.

    An article is `{"title", "paragraphs": [{"context", "qas": [{"question", "answers":
    [{"text", "answer_start"}], "id"}]}]}`. MLQA writes `version` as the number 1.0 (SQuAD as the
    string "1.1"), non-ASCII as \\u escapes and no final newline; so does this. With `check`, every
    answer must sit at its `answer_start` and ids must be unique (turn it off to write a deliberately
    broken fixture).
    """
    path = Path(path)
    if check:
        seen: set[str] = set()
        for a in articles:
            for p in a["paragraphs"]:
                for qa in p["qas"]:
                    if qa["id"] in seen:
                        raise DataError(f"{path}: question id {qa['id']}: duplicate id")
                    seen.add(qa["id"])
                    for ans in qa["answers"]:
                        s = ans["answer_start"]
                        if p["context"][s : s + len(ans["text"])] != ans["text"]:
                            raise DataError(
                                f"{path}: question id {qa['id']}: answer {ans['text']!r} "
                                f"not at answer_start {s}"
                            )
    atomic_write_text(path, json.dumps({"version": version, "data": list(articles)}))


def write_marc_jsonl(path: str | os.PathLike, reviews: Iterable[Mapping[str, Any]]) -> None:
    """MARC `dataset_<lang>_<split>.json`: one JSON object per line, keys in publisher order.

    Each review needs `stars` (written as a string, like "1"), `review_body` and `language`; ids,
    title and category default to plausible values. Non-ASCII is \\u-escaped as in the real files.
    """
    path = Path(path)
    lines = []
    for i, rev in enumerate(reviews):
        where = f"line {i + 1}"
        _require(path, where, rev, ("stars", "review_body", "language"))
        lang = rev["language"]
        full = {
            "review_id": f"{lang}_{i:07d}",
            "product_id": f"product_{lang}_{i:07d}",
            "reviewer_id": f"reviewer_{lang}_{i:07d}",
            "review_title": "",
            "product_category": "other",
            **rev,
        }
        full["stars"] = str(full["stars"])
        unknown = set(full) - set(MARC_FIELDS)
        if unknown:
            raise DataError(f"{path}: {where}: unknown field(s) {', '.join(sorted(unknown))}")
        lines.append(json.dumps({k: full[k] for k in MARC_FIELDS}) + "\n")
    atomic_write_text(path, "".join(lines))


def mtod_tokenization(utterance: str) -> dict[str, Any]:
    """The tokenization object of an MTOD row: lower-cased whitespace tokens with their spans."""
    tokens, spans, pos = [], [], 0
    for tok in utterance.split():
        start = utterance.index(tok, pos)
        tokens.append(tok.lower())
        spans.append({"start": start, "length": len(tok)})
        pos = start + len(tok)
    return {
        "tokenizations": [
            {"tokens": tokens, "tokenSpans": spans, "tokenizerType": 2, "normalizerType": 1}
        ]
    }


def write_mtod_tsv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """MTOD (Schuster et al. 2019) `<split>-<lang>.tsv`: no header, 5 columns.

    Each row maps `intent`, `slots` ([(start, end, slot), ...] character offsets, end exclusive, or
    the literal `start:end:slot,...` string), `utterance`, `locale` (e.g. `es_XX`) and optionally
    `tokenization` (default: `mtod_tokenization(utterance)`), written as compact JSON like the
    English files.
    """
    path = Path(path)
    out = []
    for i, row in enumerate(rows):
        where = f"row {i + 1}"
        _require(path, where, row, ("intent", "slots", "utterance", "locale"))
        utt = row["utterance"]
        slots = row["slots"]
        if not isinstance(slots, str):
            for s, e, name in slots:
                if not 0 <= s < e <= len(utt):
                    raise DataError(f"{path}: {where}: slot {s}:{e}:{name} outside the utterance")
            slots = ",".join(f"{s}:{e}:{name}" for s, e, name in slots)
        tok = row.get("tokenization") or mtod_tokenization(utt)
        tok_json = json.dumps(tok, ensure_ascii=False, separators=(",", ":"))
        vals = {"intent": row["intent"], "slots": slots, "utterance": utt, "locale": row["locale"]}
        out.append([_field(path, where, k, v) for k, v in vals.items()] + [tok_json])
    _tsv(path, None, out)


def write_text_corpus(path: str | os.PathLike, documents: Iterable[Sequence[str]]) -> None:
    """Unlabelled running text as in a CC-100 dump: UTF-8, one sentence per line, documents
    separated by one blank line (the file ends with a newline, no trailing blank line)."""
    path = Path(path)
    blocks = []
    for d, doc in enumerate(documents):
        for j, sent in enumerate(doc):
            if not sent.strip() or "\n" in sent or "\r" in sent:
                raise DataError(
                    f"{path}: document {d + 1}, sentence {j + 1}: empty or holds a newline: "
                    f"{sent[:60]!r}"
                )
        if not doc:
            raise DataError(f"{path}: document {d + 1} has no sentence")
        blocks.append("".join(s + "\n" for s in doc))
    atomic_write_text(path, "\n".join(blocks))
