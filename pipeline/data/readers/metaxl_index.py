"""MetaXL's published sentiment split indices, `data/data_index.txt` of microsoft/MetaXL.

MetaXL (Xia et al. 2021, §3.1) samples its Telugu (Sentiraama) and Persian (SentiPers) train,
dev and test sets and publishes only the indices of the sampled examples. The file is a series
of sections separated by blank lines; each section is a header comment and Python list literals,
one per line (read with `ast.literal_eval`, never `eval`):

    # tir train index and file
    [187, 124, ...]                               <- one int per example
    ['product_pos.txt', 'product_neg.txt', ...]   <- the file the i-th index points into

    # fa train index
    [995, 14663, None, ...]                       <- one int (or None) per example

`tir` sections (train/dev/test) have an index list and a file list of equal length; `fa` sections
have one index list. MetaXL writes `None` where it could not find an example's text in the
corpus; such entries are kept here as `(None, None)` (or `(None, file)`) and left to the caller
to skip and count.

**Language codes**: MetaXL labels Telugu `tir`, which is the ISO 639 code of Tigrinya; the data
is Telugu (Sentiraama), whose code is `te`. `METAXL_LANGS` maps MetaXL's codes to ours
(`tir` → `te`, `fa` → `fa`). `read_metaxl_index` returns MetaXL's codes as they are in the file.

What the indices address is a property of each corpus, not of this file: see
`pipeline.data.readers.sentiraama` and `pipeline.data.readers.sentipers`.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.data.readers.base import bad_line, iter_lines
from pipeline.errors import DataError
from pipeline.records import SPLITS

#: one entry of a split: (index into the corpus or None, file it points into or None)
Entry = tuple[int | None, str | None]
MetaXLIndex = dict[str, dict[str, list[Entry]]]


@dataclass(frozen=True)
class IndexLanguage:
    """A language section family of data_index.txt."""

    ours: str  # our language code
    corpus: str  # dataset name in pipeline.data.prepare
    #: the file names the index points into (sections "<code> <split> index and file"), or None
    #: for a single table (sections "<code> <split> index")
    files: tuple[str, ...] | None


#: MetaXL's language code -> how its sections look. `tir` is MetaXL's (wrong) name for Telugu.
METAXL_LANGS: dict[str, IndexLanguage] = {
    "tir": IndexLanguage("te", "sentiraama", ("product_pos.txt", "product_neg.txt")),
    "fa": IndexLanguage("fa", "sentipers", None),
}

_HEADER = re.compile(r"^#\s*(?P<lang>\S+)\s+(?P<split>\S+)\s+index(?P<files>\s+and\s+file)?\s*$")


def _header_text(code: str, split: str) -> str:
    spec = METAXL_LANGS[code]
    return f"# {code} {split} index" + (" and file" if spec.files is not None else "")


def _known_headers() -> str:
    return ", ".join(repr(_header_text(c, s)) for c in METAXL_LANGS for s in SPLITS)


def _literal_list(path: Path, lineno: int, line: str, what: str) -> list[Any]:
    try:
        value = ast.literal_eval(line.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise bad_line(path, lineno, f"expected a Python list literal of {what}") from None
    if not isinstance(value, list):
        raise bad_line(
            path, lineno, f"expected a Python list literal of {what}, got {type(value).__name__}"
        )
    return value


def _indices(path: Path, lineno: int, line: str) -> list[int | None]:
    values = _literal_list(path, lineno, line, "indices (ints >= 0 or None)")
    for i, v in enumerate(values):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise bad_line(
                path, lineno, f"entry {i}: expected an int >= 0 or None as index, got {v!r}"
            )
    return values


def _files(
    path: Path, lineno: int, line: str, allowed: tuple[str, ...], indices: list[int | None]
) -> list[str | None]:
    values = _literal_list(path, lineno, line, f"file names ({', '.join(allowed)})")
    if len(values) != len(indices):
        raise bad_line(
            path,
            lineno,
            f"expected {len(indices)} file names (one per index of the line above), "
            f"got {len(values)}",
        )
    for i, (f, idx) in enumerate(zip(values, indices)):
        if f is None and idx is None:
            continue
        if f not in allowed:
            raise bad_line(
                path, lineno, f"entry {i}: expected a file name in {list(allowed)}, got {f!r}"
            )
    return values


def read_metaxl_index(path: str | Path) -> MetaXLIndex:
    """`{metaxl_code: {split: [(index, file), ...]}}` from a data_index.txt, in file order.

    Codes are MetaXL's (`tir`, `fa`; see `METAXL_LANGS` for ours). For `fa` the file of each
    entry is None. Every language present must have all of train, dev and test. Anything
    malformed (an unknown header, a list that is not a list of ints/None or of the known file
    names, index and file lists of different lengths, a repeated or missing section) is a
    one-line DataError naming the file and line.
    """
    path = Path(path)
    out: MetaXLIndex = {}
    first_line: dict[str, int] = {}
    # state: None (between sections), ("indices", code, split, hdr), ("files", code, split, idx)
    state: tuple[Any, ...] | None = None
    last = 0
    for lineno, line in iter_lines(path):
        last = lineno
        if not line.strip():
            if state is not None:
                raise bad_line(
                    path, lineno, f"expected the {_what_next(state)} list, got a blank line"
                )
            continue
        if state is None:
            m = _HEADER.match(line.strip())
            code = m["lang"] if m else None
            if (
                not m
                or code not in METAXL_LANGS
                or m["split"] not in SPLITS
                or bool(m["files"]) != (METAXL_LANGS[code].files is not None)
            ):
                raise bad_line(
                    path, lineno, f"expected a section header, one of {_known_headers()}"
                )
            split = m["split"]
            if split in out.get(code, {}):
                raise bad_line(path, lineno, f"repeated section {_header_text(code, split)!r}")
            first_line.setdefault(code, lineno)
            state = ("indices", code, split)
            continue
        kind, code, split = state[:3]
        if kind == "indices":
            indices = _indices(path, lineno, line)
            files = METAXL_LANGS[code].files
            if files is None:
                out.setdefault(code, {})[split] = [(i, None) for i in indices]
                state = None
            else:
                state = ("files", code, split, indices)
        else:
            indices = state[3]
            names = _files(path, lineno, line, METAXL_LANGS[code].files, indices)
            out.setdefault(code, {})[split] = list(zip(indices, names))
            state = None
    if state is not None:
        raise DataError(f"{path}:{last}: expected the {_what_next(state)} list, got end of file")
    if not out:
        raise DataError(f"{path}:{last}: no sections; expected headers such as {_known_headers()}")
    for code, splits in out.items():
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            want = " and ".join(repr(_header_text(code, s)) for s in missing)
            raise DataError(
                f"{path}:{first_line[code]}: {code} has no {'/'.join(missing)} section; "
                f"expected {want}"
            )
    return out


def _what_next(state: tuple[Any, ...]) -> str:
    kind, code, split = state[:3]
    return f"{code} {split} {'index' if kind == 'indices' else 'file'}"


def index_notes(splits: dict[str, list[Entry]]) -> dict[str, Any]:
    """How the published entries of one language repeat: per split the entries, the `None`
    entries, the repeats of an earlier entry of the same split, and the entries shared by two
    splits (as sets of distinct (index, file) pairs)."""
    distinct = {s: {e for e in splits[s] if e[0] is not None} for s in SPLITS}
    pairs = [("train", "dev"), ("train", "test"), ("dev", "test")]
    return {
        "entries": {s: len(splits[s]) for s in SPLITS},
        "none_entries": {s: sum(e[0] is None for e in splits[s]) for s in SPLITS},
        "duplicates_kept": {
            s: sum(n - 1 for n in Counter(e for e in splits[s] if e[0] is not None).values())
            for s in SPLITS
        },
        "overlaps_kept": {f"{a}&{b}": len(distinct[a] & distinct[b]) for a, b in pairs},
    }
