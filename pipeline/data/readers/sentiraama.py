"""Sentiraama (Gangula and Mamidi 2018), Telugu product reviews as LTRC distributes them.

`Product Reviews/product_pos.txt` and `product_neg.txt`: plain UTF-8 text, reviews separated by
a line made of underscores (`__________________________`). Labels come from the file: pos →
`positive`, neg → `negative`.

**What MetaXL's indices address** (`data_index.txt`, sections `# tir <split> index and file`):
0-based *line numbers* of the file, lines as Python's text-mode `readlines()` splits them
(universal newlines), the review being that line with surrounding whitespace stripped. MetaXL
made the pairs with the helper `find_index` in its `utils.py`, which returns, per sampled
review, the position of the first line of the file equal to it after stripping (or `None` when
there is none; the Telugu lists have no `None`, so every sampled review was one whole line).
Block numbers would be the other possible reading; we follow the helper that wrote the file.
So a review written over several lines contributes only the addressed line, as in MetaXL's own
data. Nothing is renumbered: blank and separator lines count as lines, and an index landing on
one of them is skipped and counted (the files then differ from MetaXL's); an index past the
end of the file is an error.

`read_sentiraama_blocks` gives the reviews as blocks (the text between separator lines, lines
joined by a space; whitespace-only blocks, e.g. after the last separator, are left out): used
for counts, not for indexing. Ids are `te-pos-<index>` / `te-neg-<index>`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.data.readers.base import ReadResult, check_file, single_record
from pipeline.data.readers.metaxl_index import Entry
from pipeline.errors import DataError

#: file name -> (label, id infix)
SENTIRAAMA_FILES: dict[str, tuple[str, str]] = {
    "product_pos.txt": ("positive", "pos"),
    "product_neg.txt": ("negative", "neg"),
}
SEPARATOR = "_" * 26
SKIP_NONE = "index entry None (MetaXL found no matching review)"
SKIP_NOT_REVIEW = "index points at a blank or separator line (files differ from MetaXL's)"


def is_separator(line: str) -> bool:
    """A line made only of underscores (three or more), surrounding whitespace allowed."""
    s = line.strip()
    return len(s) >= 3 and set(s) == {"_"}


def read_sentiraama_lines(path: str | Path) -> list[str]:
    """The file's lines as MetaXL's indices count them: universal newlines, each stripped."""
    path = check_file(Path(path))
    try:
        with open(path, encoding="utf-8-sig") as f:  # newline=None: \n, \r\n and \r end lines
            return [line.strip() for line in f.readlines()]
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: expected UTF-8 text ({e.reason} at byte {e.start})") from None


def read_sentiraama_blocks(path: str | Path) -> list[str]:
    """The reviews of one file: text between separator lines, its non-blank lines joined by a
    space; whitespace-only blocks are left out (they hold no review)."""
    blocks: list[str] = []
    current: list[str] = []
    for line in [*read_sentiraama_lines(path), SEPARATOR]:
        if is_separator(line):
            if current:
                blocks.append(" ".join(current))
            current = []
        elif line:
            current.append(line)
    return blocks


def read_sentiraama_metaxl(
    folder: str | Path,
    splits: dict[str, list[Entry]],
    index_path: str | Path,
    lang: str = "te",
    code: str = "tir",
) -> dict[str, ReadResult]:
    """The reviews MetaXL's index entries select, per split, in index order.

    `folder` holds product_pos.txt and product_neg.txt; `splits` is one language of
    `read_metaxl_index` (MetaXL's `tir`). `None` entries and entries that land on a blank or
    separator line are skipped and counted; repeated entries are kept (the caller makes ids
    unique and counts them)."""
    folder = Path(folder)
    lines = {name: read_sentiraama_lines(folder / name) for name in SENTIRAAMA_FILES}
    out: dict[str, ReadResult] = {}
    for split, entries in splits.items():
        res = ReadResult()
        for k, (i, name) in enumerate(entries):
            if i is None:
                res.skipped[SKIP_NONE] += 1
                continue
            if name not in SENTIRAAMA_FILES:  # read_metaxl_index checks this already
                raise DataError(f"{index_path}: {code} {split} entry {k}: unknown file {name!r}")
            file_lines = lines[name]
            if i >= len(file_lines):
                raise DataError(
                    f"{index_path}: {code} {split} entry {k}: index {i} is past the end of "
                    f"{folder / name} ({len(file_lines)} lines; MetaXL's indices are 0-based "
                    "line numbers)"
                )
            text = file_lines[i]
            if not text or is_separator(text):
                res.skipped[SKIP_NOT_REVIEW] += 1
                continue
            label, infix = SENTIRAAMA_FILES[name]
            res.records.append(single_record(f"{lang}-{infix}-{i}", lang, text, label))
        out[split] = res
    return out
