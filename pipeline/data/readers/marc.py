"""Multilingual Amazon Reviews Corpus (Keung et al. 2020), `dataset_<lang>_<split>.json`.

JSON lines with `review_id, product_id, reviewer_id, stars, review_body, review_title, language,
product_category`. Polarity follows MetaXL (Xia et al. 2021, §3.1 "Pre-processing"): stars 1–2
→ negative, 4–5 → positive, 3 (neutral) dropped and counted. The paper does not say which text
field it feeds the model; we use `review_body` (the review itself; titles are short summaries
and often repeat the rating, e.g. "Five Stars"). Ids are the publisher's `review_id`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.data.readers.base import ReadResult, bad_line, iter_jsonl, single_record
from pipeline.errors import DataError

SA_LABELS: tuple[str, ...] = ("negative", "positive")
STARS_TO_POLARITY: dict[int, str | None] = {
    1: "negative",
    2: "negative",
    3: None,
    4: "positive",
    5: "positive",
}
SKIP_NEUTRAL = "stars 3 (neutral, dropped as in MetaXL)"

MARC_NAME = re.compile(r"^dataset_(?P<lang>[^_]+)_(?P<split>train|dev|test)\.jsonl?$")


def read_marc_jsonl(path: Path, lang: str | None = None) -> ReadResult:
    """One MARC file; the language comes from the file name unless given."""
    path = Path(path)
    if lang is None:
        m = MARC_NAME.match(path.name)
        if not m:
            raise DataError(f"{path}: expected a file named dataset_<lang>_<split>.json")
        lang = m["lang"]
    res = ReadResult()
    for lineno, obj in iter_jsonl(path):
        raw = obj.get("stars")
        try:
            stars = int(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            stars = None
        if stars not in STARS_TO_POLARITY:
            raise bad_line(path, lineno, f"expected 'stars' 1-5, got {raw!r}")
        if not isinstance(obj.get("review_id"), str) or not isinstance(obj.get("review_body"), str):
            raise bad_line(path, lineno, "expected string fields 'review_id' and 'review_body'")
        label = STARS_TO_POLARITY[stars]
        if label is None:
            res.skipped[SKIP_NEUTRAL] += 1
            continue
        if not obj["review_body"].strip():
            res.skipped["empty review_body"] += 1
            continue
        res.records.append(single_record(obj["review_id"], lang, obj["review_body"], label))
    return res
