"""SentiPers (Hosseini et al. 2018), Persian sentence-level sentiment, as its repository has it.

github.com/phosseini/SentiPers keeps the corpus in `data/`:

* `main/*.xml`: one XML document per product, `<Product Title=… Type=…>`, whose `<Review>`
  element (and the review elements inside `<General_Reviews>` / `<Critical_Reviews>`, where a
  file has them) hold `<Sentence ID="rev-1" Value="+1">text</Sentence>` elements; `Value` is the
  polarity `-2`, `-1`, `0`, `+1`, `+2`. Features, advantages, opinion tags etc. are ignored.
* `extra/*.xml`: despite the name, not XML: one token per line (`<position>\\t<token>[\\t<tag>…]`),
  a line `[<polarity>]` after a sentence's tokens and a line `[@@@]` closing the sentence. The
  sentence text is its tokens joined by single spaces, stripped.

Polarity follows MetaXL (§3.1): -2, -1 → negative; +1, +2 → positive; 0 (neutral) dropped.

**The sentence table MetaXL's indices address** (`data_index.txt`, sections `# fa <split>
index`) is not published, so this mapping is our assumption. MetaXL looked each sampled
sentence up in a table with a `text` column (the stray code in its `utils.py` compares with
`a.text`), and the published indices run up to 15,668, matching the "more than 15,500 unique
sentences" of the repository's own reader `sentipers.py` (`read_all_sentences`, which also
builds the published `sentipers.xlsx`). We rebuild that table:

1. the `main/` part: every `main/*.xml` file, **files sorted by name** (Python string order),
   sentences in document order; sentences with an empty text or polarity are dropped, then
   every sentence whose text occurs more than once in the part is dropped (all copies);
2. the `extra/` part, built the same way from `extra/*.xml`, appended after the main part
   (a sentence in both parts stays twice).

The repository's reader takes files in `os.listdir` order, which depends on the file system,
so the order of files is the one thing we cannot recover: we sort by name. An index past the
end of the table is an error; an index landing on a neutral (or unlabelled) sentence is
skipped and counted, and a high count means our table is not MetaXL's. Ids are `fa-<index>`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.data.readers.base import ReadResult, bad_line, check_file, iter_lines, single_record
from pipeline.data.readers.metaxl_index import Entry
from pipeline.errors import DataError

#: SentiPers polarity as written -> label; None: neutral, dropped as in MetaXL
POLARITY: dict[str, str | None] = {
    "-2": "negative",
    "-1": "negative",
    "0": None,
    "+1": "positive",
    "1": "positive",
    "+2": "positive",
    "2": "positive",
}
PARTS: tuple[str, ...] = ("main", "extra")
REVIEW_GROUPS: tuple[str, ...] = ("General_Reviews", "Critical_Reviews")
END_OF_SENTENCE = "[@@@]"
SKIP_NONE = "index entry None (MetaXL found no matching sentence)"
SKIP_NEUTRAL = "indexed sentence has polarity 0 (neutral, dropped as in MetaXL)"


@dataclass(frozen=True)
class SentiPersRow:
    """One sentence of the table: text, polarity as written, and where it came from."""

    text: str
    polarity: str
    file: str  # `<part>/<file name>`
    sid: str  # the Sentence ID (main files) or "-" (extra files have none)


def _sentences(path: Path, review: ET.Element, rel: str) -> list[SentiPersRow]:
    rows = []
    for sent in review:
        if sent.tag != "Sentence":
            continue
        if "Value" not in sent.attrib:
            sid = sent.attrib.get("ID", "?")
            raise DataError(f"{path}: Sentence {sid!r}: expected a Value attribute (polarity)")
        rows.append(
            SentiPersRow(
                sent.text or "", sent.attrib["Value"].strip(), rel, sent.attrib.get("ID", "")
            )
        )
    return rows


def read_sentipers_xml(path: str | Path, rel: str | None = None) -> list[SentiPersRow]:
    """The sentences of one `main/` XML file in document order (nothing dropped yet)."""
    path = check_file(Path(path))
    rel = rel or f"main/{path.name}"
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        line = e.position[0] if getattr(e, "position", None) else 1
        raise DataError(f"{path}:{line}: expected well-formed SentiPers XML ({e})") from None
    if root.tag != "Product":
        raise DataError(f"{path}: expected a SentiPers <Product> document, got <{root.tag}>")
    rows: list[SentiPersRow] = []
    for child in root:
        if child.tag == "Review":
            rows.extend(_sentences(path, child, rel))
        elif child.tag in REVIEW_GROUPS:
            for review in child:
                rows.extend(_sentences(path, review, rel))
    return rows


def read_sentipers_extra(path: str | Path, rel: str | None = None) -> list[SentiPersRow]:
    """The sentences of one `extra/` file (token lines, `[polarity]`, `[@@@]`), in file order."""
    path = Path(path)
    rel = rel or f"extra/{path.name}"
    rows: list[SentiPersRow] = []
    tokens: list[str] = []
    label = ""
    for lineno, line in iter_lines(path):
        if END_OF_SENTENCE in line:
            rows.append(SentiPersRow(" ".join(tokens).strip(), label, rel, "-"))
            tokens, label = [], ""
        elif "\t" in line:
            tokens.append(line.split("\t")[1])
        elif "[" in line:
            label = line.replace("[", "").replace("]", "").strip()
        elif line.strip():
            raise bad_line(
                path,
                lineno,
                "expected '<position>\\t<token>', '[<polarity>]' or '[@@@]' (SentiPers extra file)",
            )
    return rows


def _part(rows: list[SentiPersRow], notes: Counter[str]) -> list[SentiPersRow]:
    kept = [r for r in rows if r.text != "" and r.polarity != ""]
    notes["dropped_empty"] += len(rows) - len(kept)
    counts = Counter(r.text for r in kept)
    unique = [r for r in kept if counts[r.text] == 1]
    notes["dropped_repeated_text"] += len(kept) - len(unique)
    return unique


def sentipers_table(data_dir: str | Path) -> tuple[list[SentiPersRow], dict[str, Any]]:
    """The sentence table MetaXL's `fa` indices are taken to address (see the module docstring),
    and counts of how it was built (rows per part, sentences dropped and why)."""
    data_dir = Path(data_dir)
    table: list[SentiPersRow] = []
    notes: Counter[str] = Counter()
    files: dict[str, int] = {}
    for part in PARTS:
        folder = data_dir / part
        paths = sorted(
            (p for p in folder.glob("*.xml") if p.is_file() and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        files[part] = len(paths)
        read = read_sentipers_xml if part == "main" else read_sentipers_extra
        rows = [r for p in paths for r in read(p, f"{part}/{p.name}")]
        kept = _part(rows, notes)
        notes[f"rows_{part}"] = len(kept)
        table.extend(kept)
    info = {
        "rows": len(table),
        **{k: notes[k] for k in ("rows_main", "rows_extra")},
        "files": files,
        "dropped_empty": notes["dropped_empty"],
        "dropped_repeated_text": notes["dropped_repeated_text"],
        "order": "main/*.xml then extra/*.xml, files sorted by name, sentences in file order; "
        "empty sentences and texts repeated within a part dropped (our reconstruction of "
        "SentiPers' sentipers.py table; MetaXL's table is not published)",
    }
    return table, info


def read_sentipers_metaxl(
    data_dir: str | Path,
    splits: dict[str, list[Entry]],
    index_path: str | Path,
    lang: str = "fa",
    code: str = "fa",
) -> tuple[dict[str, ReadResult], dict[str, Any]]:
    """The sentences MetaXL's index entries select, per split in index order, and the table's
    notes. `None` entries and neutral/unlabelled sentences are skipped and counted; repeated
    entries are kept (the caller makes ids unique and counts them)."""
    table, info = sentipers_table(data_dir)
    out: dict[str, ReadResult] = {}
    for split, entries in splits.items():
        res = ReadResult()
        for k, (i, _) in enumerate(entries):
            if i is None:
                res.skipped[SKIP_NONE] += 1
                continue
            if i >= len(table):
                raise DataError(
                    f"{index_path}: {code} {split} entry {k}: index {i} is past the end of the "
                    f"SentiPers sentence table built from {data_dir} ({len(table)} rows)"
                )
            row = table[i]
            if row.polarity not in POLARITY:
                res.skipped[f"indexed sentence has polarity {row.polarity!r} (not -2..2)"] += 1
                continue
            label = POLARITY[row.polarity]
            if label is None:
                res.skipped[SKIP_NEUTRAL] += 1
                continue
            res.records.append(single_record(f"{lang}-{i}", lang, row.text, label))
        out[split] = res
    return out, info
