"""Raw text of prepared records, for tokenizer training and MLM pretraining.

Only train splits are read: dev and test text never reaches the encoder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.data.store import load_split, prepared_tlps


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
