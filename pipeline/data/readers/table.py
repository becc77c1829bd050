"""Plain delimited sentiment tables (SentiPers, Sentiraama and the like).

These corpora come in no single published TSV layout (MetaXL made its own splits), so the reader
is configured: which column holds the text and which the label (by header name or 0-based
index), the delimiter, whether there is a header, whether fields use csv quoting, and how raw
labels map to `positive`/`negative`. Rows whose label is not in the mapping (e.g. SentiPers'
neutral 0) are skipped and counted.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.data.readers.base import ReadResult, bad_line, check_file, single_record
from pipeline.data.readers.marc import SA_LABELS
from pipeline.errors import DataError, PipelineError


@dataclass(frozen=True)
class TableFormat:
    """How to read one sentiment table."""

    text: str | int = 0
    label: str | int = 1
    #: raw label (as written in the file, stripped) -> "positive" | "negative"
    label_map: Mapping[str, str] = field(
        default_factory=lambda: {"positive": "positive", "negative": "negative"}
    )
    delimiter: str = "\t"
    header: bool = False
    #: csv-style `"` quoting; False reads quotes literally (csv.QUOTE_NONE)
    quoting: bool = True
    #: optional id column; without it ids are `<file stem>-<row>`
    id: str | int | None = None

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.label_map.items() if v not in SA_LABELS}
        if bad:
            raise PipelineError(f"label_map: expected values in {list(SA_LABELS)}, got {bad}")
        if isinstance(self.text, str) or isinstance(self.label, str) or isinstance(self.id, str):
            if not self.header:
                raise PipelineError("columns given by name need header: true")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableFormat:
        known = {"text", "label", "label_map", "delimiter", "header", "quoting", "id"}
        extra = set(d) - known
        if extra:
            raise PipelineError(
                f"unknown table format keys {sorted(extra)}: expected {sorted(known)}"
            )
        kw = dict(d)
        if "label_map" in kw:
            kw["label_map"] = {str(k): v for k, v in kw["label_map"].items()}
        return cls(**kw)


def read_sentiment_table(path: Path, lang: str, fmt: TableFormat | None = None) -> ReadResult:
    """Sentiment records from one delimited file."""
    fmt = fmt or TableFormat()
    path = check_file(path)
    res = ReadResult()
    quoting = csv.QUOTE_MINIMAL if fmt.quoting else csv.QUOTE_NONE
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=fmt.delimiter, quoting=quoting)
            cols: dict[str | int, int] = {}
            row = 0
            for fields in reader:
                lineno = reader.line_num
                if not fields or fields == [""]:
                    continue
                if fmt.header and not cols:
                    names = [c.strip() for c in fields]
                    for key in (fmt.text, fmt.label, fmt.id):
                        if key is None:
                            continue
                        if isinstance(key, str):
                            if key not in names:
                                raise bad_line(path, lineno, f"expected a header column {key!r}")
                            cols[key] = names.index(key)
                        else:
                            cols[key] = key
                    width = len(fields)
                    continue
                if not cols:
                    cols = {k: k for k in (fmt.text, fmt.label, fmt.id) if k is not None}  # type: ignore[misc]
                    width = max(cols.values()) + 1
                if len(fields) < width:
                    raise bad_line(
                        path, lineno, f"expected at least {width} fields, got {len(fields)}"
                    )
                row += 1
                raw = fields[cols[fmt.label]].strip()
                label = fmt.label_map.get(raw)
                if label is None:
                    res.skipped[f"label {raw!r} not mapped to positive/negative"] += 1
                    continue
                text = fields[cols[fmt.text]]
                if not text.strip():
                    res.skipped["empty text"] += 1
                    continue
                rid = fields[cols[fmt.id]].strip() if fmt.id is not None else f"{path.stem}-{row}"
                res.records.append(single_record(rid, lang, text, label))
    except csv.Error as e:
        raise DataError(f"{path}: expected {fmt.delimiter!r}-delimited text ({e})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: expected UTF-8 text ({e.reason})") from None
    return res
