"""Scoring a prediction file against gold data: the `score` step of the DAG.

Predictions are the JSON files the pipeline writes (one object keyed by record id; QA uses the
official SQuAD/MLQA `{id: answer_text}` format, so official scripts can read the same file). Gold is
a prepared split, a `.jsonl` of normalized records, or, for QA, a SQuAD-format JSON as published.
This module only matches predictions to gold and checks them; the numbers come from
`pipeline.metrics`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline import metrics
from pipeline.errors import DataError, PipelineError
from pipeline.io import read_json
from pipeline.records import RECORD_FIELDS, task_type

ACCEPTED_GOLD = (
    "a prepared split directory (with dataset_info.json), a .jsonl of normalized records, "
    "or (qa only) a SQuAD-format .json (data[].paragraphs[].qas[])"
)

#: Sentiment: the class whose F1 is reported besides accuracy (MetaXL).
SENTIMENT_POSITIVE = "positive"


def style_for(task: str, dataset: str | None) -> str | None:
    """The metric style to pass to `score` for a TLP of `task` from `dataset` (None unless QA)."""
    return default_qa_style(dataset) if task_type(task) == "qa" else None


def default_qa_style(dataset: str | None) -> str:
    """The QA normalization XTREME uses for a dataset: MLQA's own script for MLQA only, the SQuAD
    v1.1 script for everything else (SQuAD, XQuAD, TyDiQA-GoldP) and when the dataset is unknown."""
    return "mlqa" if dataset is not None and dataset.lower() == "mlqa" else "squad"


# ---------------------------------------------------------------------------------------------
# Matching predictions to gold
# ---------------------------------------------------------------------------------------------


def _tag_prediction(rid: str, pred: Any, n_gold: int, what: str = "tags") -> list[str] | None:
    """A per-token prediction checked against the gold length; None when missing."""
    if pred is None:
        return None
    if not isinstance(pred, list) or not all(isinstance(t, str) for t in pred):
        raise DataError(f"prediction {rid!r}: expected a list of {what} (strings)")
    if len(pred) != n_gold:
        raise DataError(f"prediction {rid!r}: {len(pred)} {what} predicted for {n_gold} tokens")
    return pred


def _label(rid: str, value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise DataError(f"prediction {rid!r}: expected a {what} string, got {type(value).__name__}")
    return str(value)


def _check_gold(gold: Sequence[Mapping[str, Any]], task: str) -> None:
    if not gold:
        raise DataError(f"{task}: no gold records to score")
    want = set(RECORD_FIELDS[task_type(task)])
    for i, rec in enumerate(gold):
        if not isinstance(rec, Mapping) or not want <= set(rec):
            have = sorted(rec) if isinstance(rec, Mapping) else type(rec).__name__
            raise DataError(f"gold record {i}: has {have}, expected fields {sorted(want)}")
    # Predictions are keyed by id, so repeated gold ids cannot be told apart (XTREME's TyDiQA
    # train copy repeats them; `prepare` makes them unique).
    n_ids = len({str(rec["id"]) for rec in gold})
    if n_ids != len(gold):
        raise DataError(
            f"gold ids repeat ({len(gold)} records, {n_ids} distinct ids): predictions keyed by "
            "id cannot be matched; score the prepared split instead"
        )


def _score_qa(gold, predictions, lang: str, style: str, with_examples: bool = False):
    items: list[tuple[str, list[str]]] = []
    any_text = False
    for rec in gold:
        rid = str(rec["id"])
        answers = rec["answers"]
        texts = answers.get("text") if isinstance(answers, Mapping) else None
        if not isinstance(texts, list) or not texts:
            raise DataError(f"gold record {rid!r}: no gold answer (answers.text is empty)")
        any_text = any_text or any(t.strip() for t in texts)
        items.append((rid, texts))
        pred = predictions.get(rid)
        if rid in predictions and not isinstance(pred, str):
            raise DataError(f"prediction {rid!r}: expected an answer string, got {pred!r}")
    if not any_text:
        raise DataError("gold answers are all blank (e.g. XTREME's TyDiQA-GoldP dev copy)")
    out = metrics.qa_scores(items, predictions, style=style, lang=lang)
    stats = (
        metrics.qa_example_stats(items, predictions, style=style, lang=lang)
        if with_examples
        else None
    )
    return out, stats


def _score_tagging(task, gold, predictions, with_examples: bool = False):
    y_true, y_pred = [], []
    for rec in gold:
        rid = str(rec["id"])
        tags = list(rec["tags"])
        if len(tags) != len(rec["tokens"]):
            raise DataError(
                f"gold record {rid!r}: {len(tags)} tags for {len(rec['tokens'])} tokens"
            )
        y_true.append(tags)
        y_pred.append(_tag_prediction(rid, predictions.get(rid), len(tags)))
    if task == "pos":
        out = metrics.pos_scores(y_true, y_pred)
        return out, metrics.pos_example_stats(y_true, y_pred) if with_examples else None
    out = metrics.tagging_scores(y_true, y_pred)
    return out, metrics.tagging_example_stats(y_true, y_pred) if with_examples else None


def _score_classification(task, gold, predictions, with_examples: bool = False):
    y_true = [str(rec["label"]) for rec in gold]
    y_pred = [_label(str(rec["id"]), predictions.get(str(rec["id"])), "label") for rec in gold]
    positive = SENTIMENT_POSITIVE if task == "sa" else None
    out = metrics.classification_scores(y_true, y_pred, positive_label=positive)
    stats = (
        metrics.classification_example_stats(y_true, y_pred, positive_label=positive)
        if with_examples
        else None
    )
    return out, stats


def _score_mtod(gold, predictions, with_examples: bool = False):
    it, ip, st, sp = [], [], [], []
    for rec in gold:
        rid = str(rec["id"])
        slots = list(rec["slots"])
        if len(slots) != len(rec["tokens"]):
            raise DataError(
                f"gold record {rid!r}: {len(slots)} slots for {len(rec['tokens'])} tokens"
            )
        pred = predictions.get(rid)
        if pred is not None and not (
            isinstance(pred, Mapping) and {"intent", "slots"} <= set(pred)
        ):
            raise DataError(f'prediction {rid!r}: expected {{"intent": str, "slots": [tag, ...]}}')
        it.append(str(rec["intent"]))
        st.append(slots)
        ip.append(None if pred is None else _label(rid, pred["intent"], "intent"))
        sp.append(
            None if pred is None else _tag_prediction(rid, pred["slots"], len(slots), "slots")
        )
    out = metrics.mtod_scores(it, ip, st, sp)
    return out, metrics.mtod_example_stats(it, ip, st, sp) if with_examples else None


def score(
    task: str,
    lang: str,
    gold: list[dict],
    predictions: dict[str, Any],
    style: str | None = None,
    with_examples: bool = False,
) -> dict[str, Any]:
    """Score `predictions` ({id: prediction}) against normalized gold records of one TLP.

    A gold item without a prediction counts as wrong (QA: 0, as the official scripts); predictions
    for ids not in gold are ignored (counted in `n_extra`). `style` (qa only): "squad" (default)
    or "mlqa"; the CLI passes `default_qa_style(dataset)`. The result always has `n` (gold items),
    `n_missing` and the task's `metrics.main_metric` key.

    `with_examples`: also return `examples` = {"ids": gold ids in gold order, "stats": {metric
    key: {"kind", "values"}}}, the per-example sufficient statistics (`metrics.STAT_KINDS`) of
    every key of the result that is a function of per-example sums, one row per gold id, with
    the same missing-prediction semantics; `metrics.metric_from_stats(kind, values)` gives the
    key's value back. This is what a bootstrap over test examples resamples (`pipeline.report.stats`).
    """
    ttype = task_type(task)
    if style is not None and ttype != "qa":
        raise PipelineError(f"--style applies to qa only, not to {task}")
    style = style or "squad"
    if style not in metrics.QA_STYLES:
        raise PipelineError(
            f"unknown QA style {style!r}: expected one of {', '.join(metrics.QA_STYLES)}"
        )
    if not isinstance(predictions, Mapping):
        raise DataError(
            f"predictions: expected a JSON object {{id: prediction}}, got {type(predictions).__name__}"
        )
    _check_gold(gold, task)

    try:
        if ttype == "qa":
            out, stats = _score_qa(gold, predictions, lang, style, with_examples)
            out.pop("n_answered", None)
        elif ttype == "tagging":
            out, stats = _score_tagging(task, gold, predictions, with_examples)
        elif ttype in ("pair", "single"):
            out, stats = _score_classification(task, gold, predictions, with_examples)
        else:
            out, stats = _score_mtod(gold, predictions, with_examples)
    except ValueError as e:  # metric-level input errors (e.g. a tag that is not IOB2)
        raise DataError(f"{task}/{lang}: {e}") from None

    gold_ids = {str(rec["id"]) for rec in gold}
    result: dict[str, Any] = {"n": len(gold)}
    result.update(out)
    result["n_missing"] = sum(predictions.get(str(rec["id"])) is None for rec in gold)
    result["n_extra"] = sum(k not in gold_ids for k in predictions)
    if with_examples:
        result["examples"] = {
            "ids": [str(rec["id"]) for rec in gold],
            "stats": {k: v for k, v in stats.items() if k in out},
        }
    return result


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def load_predictions(path: str | os.PathLike) -> dict[str, Any]:
    """A prediction JSON file: one object {id: prediction}."""
    obj = read_json(path)  # DataError naming file:line on bad JSON
    if not isinstance(obj, dict):
        raise DataError(
            f"{path}: expected a JSON object {{id: prediction}}, got a {type(obj).__name__}"
        )
    return obj


def _squad_records(path: Path, obj: Any, lang: str) -> list[dict]:
    """Minimal SQuAD v1.1 parse (MLQA, XQuAD, TyDiQA-GoldP share it); `version` is not checked,
    as it is a number in MLQA ("version": 1.0) and a string elsewhere."""
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DataError(
            f"{path}: not a SQuAD-format JSON (no data[] list); accepted: {ACCEPTED_GOLD}"
        )
    records = []
    for i, article in enumerate(obj["data"]):
        for j, para in enumerate(
            article.get("paragraphs", []) if isinstance(article, dict) else []
        ):
            where = f"{path}: data[{i}].paragraphs[{j}]"
            try:
                context = para["context"]
                for k, qa in enumerate(para["qas"]):
                    try:
                        answers = qa["answers"]
                        records.append(
                            {
                                "id": str(qa["id"]),
                                "lang": lang,
                                "context": context,
                                "question": qa["question"],
                                "answers": {
                                    "text": [a["text"] for a in answers],
                                    "answer_start": [int(a["answer_start"]) for a in answers],
                                },
                            }
                        )
                    except (KeyError, TypeError, ValueError) as e:
                        raise DataError(
                            f"{where}.qas[{k}]: bad question ({e!r}); expected id, "
                            "question, answers[{text, answer_start}]"
                        ) from None
            except (KeyError, TypeError) as e:
                raise DataError(
                    f"{where}: bad paragraph ({e!r}); expected context and qas[]"
                ) from None
    if not records:
        raise DataError(f"{path}: no questions found in data[].paragraphs[].qas[]")
    return records


def _jsonl_records(path: Path, task: str) -> list[dict]:
    from pipeline.data.store import check_record

    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object (a normalized record)")
            check_record(rec, task, f"{path}:{lineno}")
            records.append(rec)
    return records


def _only_lang(records: list[dict], lang: str, path: Path) -> list[dict]:
    """Keep the records of `lang` (a file may hold several languages); none left is an error."""
    kept = [r for r in records if r.get("lang") == lang]
    if not kept:
        found = sorted({str(r.get("lang")) for r in records})
        raise DataError(
            f"{path}: no gold records for lang {lang!r} (found: {', '.join(found) or 'none'})"
        )
    return kept


def load_gold(path: str | os.PathLike, task: str, lang: str) -> list[dict]:
    """Gold records of one TLP from a prepared split dir, a .jsonl, or (qa) a SQuAD-format JSON."""
    ttype = task_type(task)
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: gold file not found")
    if path.is_dir():
        if not (path / "dataset_info.json").exists():
            raise DataError(
                f"{path}: not a prepared split directory (no dataset_info.json); "
                f"accepted: {ACCEPTED_GOLD}"
            )
        import datasets

        from pipeline.data.store import check_record

        records = datasets.load_from_disk(str(path)).to_list()
        for i, rec in enumerate(records):
            check_record(rec, task, f"{path}: row {i}")
        return _only_lang(records, lang, path)
    if path.suffix == ".jsonl":
        return _only_lang(_jsonl_records(path, task), lang, path)
    if path.suffix == ".json" and ttype == "qa":
        return _squad_records(path, read_json(path), lang)
    raise DataError(f"{path}: unsupported gold file for {task}; accepted: {ACCEPTED_GOLD}")


def score_files(
    task: str,
    lang: str,
    gold_path: str | os.PathLike,
    pred_path: str | os.PathLike,
    style: str | None = None,
    with_examples: bool = False,
) -> dict[str, Any]:
    """`python -m pipeline score`: load both files and `score` them."""
    gold = load_gold(gold_path, task, lang)
    predictions = load_predictions(pred_path)
    try:
        return score(task, lang, gold, predictions, style=style, with_examples=with_examples)
    except DataError as e:  # say which pair of files the id-level message is about
        raise DataError(f"{pred_path} (gold {gold_path}): {e}") from None
