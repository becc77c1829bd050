"""MultiNLI 1.0 JSON lines (`multinli_1.0_{train,dev_matched,dev_mismatched}.jsonl`)."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.readers.base import ReadResult, bad_line, iter_jsonl, pair_record
from pipeline.data.readers.xnli import NO_GOLD, label_or_fail


def read_mnli_jsonl(path: Path, lang: str = "en") -> ReadResult:
    """MultiNLI 1.0 JSON lines; pairs whose `gold_label` is '-' (no consensus) are dropped.

    Ids are the publisher's `pairID`.
    """
    path = Path(path)
    res = ReadResult()
    for lineno, obj in iter_jsonl(path):
        for key in ("gold_label", "sentence1", "sentence2", "pairID"):
            if not isinstance(obj.get(key), str):
                raise bad_line(path, lineno, f"expected a string field {key!r}")
        if obj["gold_label"].strip() == NO_GOLD:
            res.skipped["gold_label '-' (no annotator consensus)"] += 1
            continue
        label = label_or_fail(path, lineno, obj["gold_label"])
        if not obj["sentence1"].strip() or not obj["sentence2"].strip():
            res.skipped["empty sentence"] += 1
            continue
        res.records.append(
            pair_record(obj["pairID"], lang, obj["sentence1"], obj["sentence2"], label)
        )
    return res
