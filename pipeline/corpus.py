"""Text for tokenizer training and MLM pretraining.

`train_texts`: the input texts of prepared train splits (dev and test text never reaches the
encoder). `text_corpus`: unlabelled running text, one sentence per line, as the synthetic
benchmark writes it for every language (`<raw>/text/<lang>.txt`, like a CC-100 dump).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.data.store import load_split, prepared_tlps
from pipeline.errors import DataError

TEXT_DIR = "text"


def record_texts(rec: dict, kind: str) -> list[str]:
    """The input text(s) of one normalized record, by task type."""
    if kind == "pair":
        return [rec["text_a"], rec["text_b"]]
    if kind == "single":
        return [rec["text"]]
    if kind == "qa":
        return [rec["question"], rec["context"]]
    return [" ".join(rec["tokens"])]  # tagging, intent_slots


def train_texts(prepared_dirs: Sequence[str | Path]) -> Iterator[str]:
    """Every input text of every train split, in a stable order (datasets, then TLPs)."""
    for d in prepared_dirs:
        for tlp, splits in sorted(prepared_tlps(d).items()):
            if "train" not in splits:
                continue
            seen: set[str] = set()
            for rec in load_split(d, tlp, "train"):
                for text in record_texts(rec, tlp.type):
                    if text not in seen:  # QA contexts repeat across questions
                        seen.add(text)
                        yield text


def text_corpus(raw_dirs: Sequence[str | Path]) -> Iterator[str]:
    """The non-empty lines (stripped) of every `<raw_dir>/text/*.txt`, in a stable order: the
    folders as given, the files of each sorted by name. Raises DataError (at the call, not at the
    first line read) when none exists."""
    files = [f for d in raw_dirs for f in sorted((Path(d) / TEXT_DIR).glob("*.txt"))]
    if not files:
        where = ", ".join(str(Path(d) / TEXT_DIR) for d in raw_dirs) or "(no folder given)"
        raise DataError(f"{where}: no unlabelled text files (*.txt) found")
    return _lines(files)


def _lines(files: Sequence[Path]) -> Iterator[str]:
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    yield line
