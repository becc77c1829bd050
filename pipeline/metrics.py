"""Official-compatible metrics, as pure functions (no I/O, no network).

Every metric is a percentage (0-100) and every scorer returns a flat dict, so a score file can be
compared with the numbers the papers print. The definitions follow the reference scripts exactly,
quirks included, because the point is comparability:

* QA, SQuAD v1.1 (`evaluate-v1.1.py`; XTREME uses it for SQuAD, XQuAD, TyDiQA-GoldP) and MLQA
  (`mlqa_evaluation_v1.py`; XTREME uses it for MLQA only), with the answer language.
* Tagging: `seqeval` span F1 in its default (lenient) mode, as XTREME's `run_tag.py`, and in strict
  IOB2 mode, reported under separate keys.
* Classification: accuracy; for sentiment also the F1 of the positive class (MetaXL, sklearn).
* MTOD: intent accuracy, seqeval slot span F1, and X-METRA-ADA's token-level macro F1.

Each scorer of a metric that is a function of sums over examples also has a `*_example_stats`
twin: one row of sufficient statistics per example (`STAT_KINDS`), from which
`metric_from_stats` gives the corpus number back, so a bootstrap can resample test examples.

A prediction of `None` means "the model gave no prediction for this item"; it is scored as wrong
(see each scorer for what that means for span metrics).
"""

from __future__ import annotations

import re
import string
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

# seqeval and scikit-learn are imported where they are used: importing them costs ~1.5 s
# (seqeval pulls in scikit-learn and SciPy), which every short pipeline step would pay.
from pipeline.records import task_type

QA_STYLES: tuple[str, ...] = ("squad", "mlqa")

# ---------------------------------------------------------------------------------------------
# QA: SQuAD v1.1
# ---------------------------------------------------------------------------------------------

_ASCII_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 `normalize_answer`: lower, drop ASCII punctuation, drop a/an/the, fix spaces.

    Order matters and is the official one (punctuation before articles), so "the-cat" -> "thecat".
    """
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    text = _EN_ARTICLES.sub(" ", text)
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# QA: MLQA
# ---------------------------------------------------------------------------------------------

#: Article patterns of the official MLQA script. Arabic: the script's `'\sال^|ال'` can only ever
#: match its second branch, so every occurrence of the letters ال, inside words too, becomes a space.
_MLQA_ARTICLES: dict[str, re.Pattern[str]] = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile("ال"),
}
#: Languages segmented character-wise for CJK (the official MIXED_SEGMENTATION_LANGS).
MIXED_SEGMENTATION_LANGS: frozenset[str] = frozenset({"zh"})
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def is_mlqa_punct(ch: str) -> bool:
    """The official PUNCT set: any Unicode category P* character, plus ASCII string.punctuation
    (which adds symbols such as $ + < = > ^ ` | ~)."""
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def mixed_segmentation(text: str) -> list[str]:
    """MLQA's Chinese tokenization: every CJK character (U+4E00-U+9FA5) and every punctuation
    character is a token of its own; the runs between them are split on whitespace."""
    out: list[str] = []
    run: list[str] = []
    for ch in text:
        if _CJK.match(ch) or is_mlqa_punct(ch):
            if run:
                out.extend("".join(run).split())
                run = []
            out.append(ch)
        else:
            run.append(ch)
    if run:
        out.extend("".join(run).split())
    return out


def mlqa_tokens(text: str, lang: str) -> list[str]:
    """Tokens of the MLQA-normalized answer (what F1 counts).

    Languages the official script does not know (it raises for them) are treated like hi:
    no articles, whitespace tokens.
    """
    text = "".join(ch for ch in text.lower() if not is_mlqa_punct(ch))
    articles = _MLQA_ARTICLES.get(lang)
    if articles is not None:
        text = articles.sub(" ", text)
    if lang in MIXED_SEGMENTATION_LANGS:
        tokens = mixed_segmentation(text)
    else:
        tokens = text.split()
    return [t for t in tokens if t.strip()]


def mlqa_normalize(text: str, lang: str) -> str:
    """MLQA `normalize_answer(s, lang)`: the tokens joined by single spaces (what EM compares)."""
    return " ".join(mlqa_tokens(text, lang))


# ---------------------------------------------------------------------------------------------
# QA: EM / F1
# ---------------------------------------------------------------------------------------------


def _normalizer(style: str, lang: str) -> Callable[[str], str]:
    if style == "squad":
        return squad_normalize
    if style == "mlqa":
        return lambda s: mlqa_normalize(s, lang)
    raise ValueError(f"unknown QA style {style!r}: expected one of {', '.join(QA_STYLES)}")


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    """Official token-overlap F1; 0 when nothing is shared, even if both token lists are empty."""
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_exact_match(
    prediction: str, ground_truth: str, style: str = "squad", lang: str = "en"
) -> float:
    """1.0 when the normalized strings are equal (also when both normalize to ''), else 0.0."""
    norm = _normalizer(style, lang)
    return float(norm(prediction) == norm(ground_truth))


def qa_f1(prediction: str, ground_truth: str, style: str = "squad", lang: str = "en") -> float:
    """Token-overlap F1 in [0, 1] of one prediction against one gold answer."""
    norm = _normalizer(style, lang)
    return _token_f1(norm(prediction).split(), norm(ground_truth).split())


def qa_scores(
    gold: Sequence[tuple[str, Sequence[str]]],
    predictions: dict[str, str],
    style: str = "squad",
    lang: str = "en",
) -> dict[str, float]:
    """`exact_match` and `f1` (0-100), each the max over a question's gold answers, averaged over
    all gold questions; a question whose id is not in `predictions` scores 0 (as officially).

    `gold` is a sequence of (question id, gold answer texts); each question needs >= 1 answer.
    """
    norm = _normalizer(style, lang)
    em_sum = f1_sum = 0.0
    answered = 0
    for qid, answers in gold:
        if not answers:
            raise ValueError(f"question {qid!r} has no gold answer")
        if qid not in predictions:
            continue
        answered += 1
        pred = norm(predictions[qid])
        pred_tokens = pred.split()
        golds = [norm(a) for a in answers]
        em_sum += max(float(pred == g) for g in golds)
        f1_sum += max(_token_f1(pred_tokens, g.split()) for g in golds)
    total = len(gold)
    return {
        "exact_match": 100.0 * em_sum / total if total else 0.0,
        "f1": 100.0 * f1_sum / total if total else 0.0,
        "n_answered": answered,
    }


# ---------------------------------------------------------------------------------------------
# Tagging
# ---------------------------------------------------------------------------------------------


def _check_lengths(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold sequences but {len(y_pred)} predicted")
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if p is not None and len(t) != len(p):
            raise ValueError(f"sequence {i}: {len(t)} gold tags but {len(p)} predicted")


def _fill_missing_with_o(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]
) -> list[list[str]]:
    """A missing prediction is 'no entity predicted' for span metrics: all 'O'."""
    return [["O"] * len(t) if p is None else list(p) for t, p in zip(y_true, y_pred)]


def _seqeval(y_true: list[list[str]], y_pred: list[list[str]], **kw) -> tuple[float, float, float]:
    """(precision, recall, f1) in 0-100; seqeval's 'not a NE tag' and zero-division warnings are
    expected on some inputs (UPOS tags, no entities) and silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from seqeval.metrics import f1_score as _seq_f1
        from seqeval.metrics import precision_score as _seq_precision
        from seqeval.metrics import recall_score as _seq_recall

        p = _seq_precision(y_true, y_pred, zero_division=0, **kw)
        r = _seq_recall(y_true, y_pred, zero_division=0, **kw)
        f = _seq_f1(y_true, y_pred, zero_division=0, **kw)
    return 100.0 * float(p), 100.0 * float(r), 100.0 * float(f)  # plain floats, not numpy


def _check_iob2(seqs: Sequence[Sequence[str]], what: str) -> None:
    for i, seq in enumerate(seqs):
        for tag in seq:
            if tag != "O" and not (tag.startswith("B-") or tag.startswith("I-")):
                raise ValueError(f"{what} sequence {i}: tag {tag!r} is not IOB2 (O, B-x, I-x)")


def tagging_scores(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]
) -> dict[str, float]:
    """Entity span scores (NER).

    `precision`/`recall`/`f1`: seqeval default mode, `seqeval.metrics.f1_score(y_true, y_pred)` as
    XTREME, which also counts a chunk opened by an I- tag. `*_strict`: seqeval
    `mode='strict', scheme=IOB2`, where such a chunk does not exist. A missing prediction (None)
    predicts no entity.
    """
    _check_lengths(y_true, y_pred)
    true = [list(t) for t in y_true]
    pred = _fill_missing_with_o(y_true, y_pred)
    p, r, f = _seqeval(true, pred)
    _check_iob2(true, "gold")
    _check_iob2(pred, "predicted")
    from seqeval.scheme import IOB2

    ps, rs, fs = _seqeval(true, pred, mode="strict", scheme=IOB2)
    return {
        "f1": f,
        "precision": p,
        "recall": r,
        "f1_strict": fs,
        "precision_strict": ps,
        "recall_strict": rs,
        # word-level tag accuracy, "O" included: what Tarunesh et al. report for NER (§4.1)
        "accuracy": token_accuracy(y_true, y_pred),
    }


def token_accuracy(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]
) -> float:
    """Share of tokens tagged correctly, 0-100; every token of a missing prediction is wrong."""
    _check_lengths(y_true, y_pred)
    total = correct = 0
    for t, p in zip(y_true, y_pred):
        total += len(t)
        if p is not None:
            correct += sum(a == b for a, b in zip(t, p))
    return 100.0 * correct / total if total else 0.0


def pos_scores(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]
) -> dict[str, float]:
    """`accuracy`: token accuracy (the usual UD POS metric).

    `seqeval_f1_upos`: what XTREME's `run_tag.py` reports for UD-POS, i.e. seqeval's default-mode
    `f1_score` called on the raw UPOS tags. It is not a tagging accuracy: seqeval reads the first
    letter of a tag as a chunk prefix and the rest as the type (seqeval 1.2.2: NOUN -> prefix 'N',
    type 'OUN'), so a run of equal tags (NOUN NOUN) is one chunk, tags starting with S (SCONJ,
    SYM) are single-token chunks, and CCONJ/SCONJ share the type 'CONJ'. We call it exactly that
    way (pinned seqeval 1.2.2; XTREME installed seqeval unpinned, older versions parse the type
    differently) so the number is comparable with XTREME's printed POS figures. A missing
    prediction counts as all-'O' here (no chunk).
    """
    _check_lengths(y_true, y_pred)
    _, _, f = _seqeval([list(t) for t in y_true], _fill_missing_with_o(y_true, y_pred))
    return {"accuracy": token_accuracy(y_true, y_pred), "seqeval_f1_upos": f}


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------

#: Stand-in for a missing prediction: never equal to a gold label, and never counted as a class.
_MISSING = "\x00<missing>"


def _with_missing(y_pred: Sequence[str | None]) -> list[str]:
    return [_MISSING if p is None else p for p in y_pred]


def accuracy(y_true: Sequence[str], y_pred: Sequence[str | None]) -> float:
    """Share of exact label matches, 0-100; a missing prediction (None) is wrong."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold labels but {len(y_pred)} predicted")
    if not y_true:
        return 0.0
    return 100.0 * sum(p is not None and t == p for t, p in zip(y_true, y_pred)) / len(y_true)


def classification_scores(
    y_true: Sequence[str], y_pred: Sequence[str | None], positive_label: str | None = None
) -> dict[str, float]:
    """`accuracy`; with `positive_label` also `f1`, the F1 of that class (MetaXL's sentiment F1,
    sklearn `f1_score`; identical to `average='binary', pos_label=...` on binary labels, but it
    also works when a missing prediction adds a third value)."""
    out = {"accuracy": accuracy(y_true, y_pred)}
    if positive_label is not None:
        from sklearn.metrics import f1_score as _sk_f1

        f = _sk_f1(
            list(y_true),
            _with_missing(y_pred),
            labels=[positive_label],
            average=None,
            zero_division=0,
        )
        out["f1"] = 100.0 * float(f[0])
    return out


# ---------------------------------------------------------------------------------------------
# MTOD (intent + slots)
# ---------------------------------------------------------------------------------------------


def slot_token_macro_f1(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]
) -> float:
    """X-METRA-ADA's slot "F1": sklearn `f1_score(flat_true, flat_pred, average='macro')` over the
    BIO slot labels of all tokens flattened (their `nlu_evaluation` in `pre_train_base.py`; the
    paper only says "slot F1"). Macro over every label seen in gold or predictions, O included;
    they drop sub-word ('X') positions, so a word-level tag list is the same input. Tokens of a
    missing prediction are wrong for their gold label, without adding a class.
    """
    _check_lengths(y_true, y_pred)
    flat_true = [tag for seq in y_true for tag in seq]
    flat_pred = [
        tag for t, p in zip(y_true, y_pred) for tag in ([_MISSING] * len(t) if p is None else p)
    ]
    if not flat_true:
        return 0.0
    labels = sorted((set(flat_true) | set(flat_pred)) - {_MISSING})
    from sklearn.metrics import f1_score as _sk_f1

    f = _sk_f1(flat_true, flat_pred, labels=labels, average="macro", zero_division=0)
    return 100.0 * float(f)


def mtod_scores(
    intents_true: Sequence[str],
    intents_pred: Sequence[str | None],
    slots_true: Sequence[Sequence[str]],
    slots_pred: Sequence[Sequence[str] | None],
) -> dict[str, float]:
    """`intent_accuracy`; `slot_f1`/`slot_precision`/`slot_recall`: seqeval default-mode span
    scores over BIO slot tags (the usual MTOD slot F1, Schuster et al.); `slot_token_macro_f1`:
    X-METRA-ADA's token-level macro F1 (see `slot_token_macro_f1`); `intent_slot_mean`: the mean
    of intent accuracy and slot_f1, used for model selection."""
    _check_lengths(slots_true, slots_pred)
    intent_acc = accuracy(intents_true, intents_pred)
    p, r, f = _seqeval([list(t) for t in slots_true], _fill_missing_with_o(slots_true, slots_pred))
    return {
        "intent_accuracy": intent_acc,
        "slot_f1": f,
        "slot_precision": p,
        "slot_recall": r,
        "slot_token_macro_f1": slot_token_macro_f1(slots_true, slots_pred),
        "intent_slot_mean": (intent_acc + f) / 2,
    }


# ---------------------------------------------------------------------------------------------
# Per-example sufficient statistics (for confidence intervals)
# ---------------------------------------------------------------------------------------------
# numpy, too, is imported where it is used, so `import pipeline.metrics` stays cheap.

#: Kinds of per-example sufficient statistics and how many values each example has. A corpus
#: metric of a kind is a function of the column sums only, so resampling examples (bootstrap)
#: needs nothing but these rows:
#:
#: * "mean" (v): 100 * mean(v), 0 on no example (accuracy; QA EM and F1 per question in [0, 1]);
#: * "ratio" (a, b): 100 * sum(a) / sum(b), 0 when sum(b) = 0 (token accuracy; span precision
#:   (tp, n_pred) and recall (tp, n_gold));
#: * "f1" (tp, n_pred, n_gold): 100 * 2 sum(tp) / (sum(n_pred) + sum(n_gold)), 0 when sum(tp) = 0
#:   (seqeval micro span F1, positive-class F1);
#: * "intent_slot_mean" (intent correct, slot tp, slot n_pred, slot n_gold): the mean of the
#:   "mean" of column 0 and the "f1" of columns 1-3 (MTOD `intent_slot_mean`).
#:
#: `slot_token_macro_f1` (a macro average over labels, not a function of per-example sums) and
#: POS `seqeval_f1_upos` (kept for comparison with XTREME's printed figures only, not a POS metric
#: worth an interval) have no stats.
STAT_KINDS: dict[str, int] = {"mean": 1, "ratio": 2, "f1": 3, "intent_slot_mean": 4}

#: {metric key: {"kind": kind, "values": one row per example}}, JSON-ready.
ExampleStats = dict[str, dict]


def _stats(kind: str, rows: list[list[int]] | list[list[float]]) -> dict:
    return {"kind": kind, "values": rows}


def _div100(num, den):
    """100 * num / den elementwise, 0 where den == 0 (the scorers' zero_division=0)."""
    import numpy as np

    num = np.asarray(num, dtype=np.float64)
    den = np.broadcast_to(np.asarray(den, dtype=np.float64), num.shape)
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(100.0 * num, den, out=out, where=den != 0)
    return out


def metric_from_sums(kind: str, sums, n):
    """The metric (0-100) of `kind` from column sums `sums` (shape (..., k)) over `n` examples
    (a number or an array of shape (...)), vectorized over the leading axes: the bootstrap in
    `pipeline.report.stats` evaluates thousands of resamples at once with it. Returns an ndarray of
    shape (...)."""
    import numpy as np

    if kind not in STAT_KINDS:
        raise ValueError(f"unknown stats kind {kind!r}: expected one of {', '.join(STAT_KINDS)}")
    sums = np.asarray(sums, dtype=np.float64)
    if sums.shape[-1:] != (STAT_KINDS[kind],):
        raise ValueError(f"{kind!r} stats have {STAT_KINDS[kind]} values, got shape {sums.shape}")
    if kind == "mean":
        return _div100(sums[..., 0], n)
    if kind == "ratio":
        return _div100(sums[..., 0], sums[..., 1])
    if kind == "f1":
        tp = sums[..., 0]
        # tp = 0 gives 0 by itself; the denominator is 0 only when tp is.
        return _div100(2.0 * tp, sums[..., 1] + sums[..., 2])
    return (_div100(sums[..., 0], n) + metric_from_sums("f1", sums[..., 1:], n)) / 2


def metric_from_stats(kind: str, values) -> float:
    """The corpus metric (0-100) recomputed from per-example stats `values` (n x k, one row per
    example, see `STAT_KINDS`): equal, to float rounding, to what the scorer reports for the same
    examples, so a resample of rows gives the metric of that resample."""
    import numpy as np

    if kind not in STAT_KINDS:
        raise ValueError(f"unknown stats kind {kind!r}: expected one of {', '.join(STAT_KINDS)}")
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        arr = arr.reshape(0, STAT_KINDS[kind])
    if arr.ndim != 2 or arr.shape[1] != STAT_KINDS[kind]:
        raise ValueError(
            f"{kind!r} stats: expected n x {STAT_KINDS[kind]} values, got shape {arr.shape}"
        )
    return float(metric_from_sums(kind, arr.sum(axis=0), arr.shape[0]))


def qa_example_stats(
    gold: Sequence[tuple[str, Sequence[str]]],
    predictions: dict[str, str],
    style: str = "squad",
    lang: str = "en",
) -> ExampleStats:
    """Per-question stats of `qa_scores` ("mean"): the official max over gold answers of EM and
    of F1, in [0, 1]; an unanswered question 0."""
    norm = _normalizer(style, lang)
    em: list[list[float]] = []
    f1: list[list[float]] = []
    for qid, answers in gold:
        if not answers:
            raise ValueError(f"question {qid!r} has no gold answer")
        if qid not in predictions:
            em.append([0.0])
            f1.append([0.0])
            continue
        pred = norm(predictions[qid])
        pred_tokens = pred.split()
        golds = [norm(a) for a in answers]
        em.append([max(float(pred == g) for g in golds)])
        f1.append([max(_token_f1(pred_tokens, g.split()) for g in golds)])
    return {"exact_match": _stats("mean", em), "f1": _stats("mean", f1)}


def _span_counts(
    y_true: list[list[str]], y_pred: list[list[str]], strict: bool = False
) -> list[list[int]]:
    """[tp, n_pred, n_gold] entity counts per sentence, with seqeval's own chunking: default mode
    `get_entities` (an I- tag may open a chunk), strict mode IOB2 `Entities`. seqeval extracts
    chunks sentence by sentence (it joins sentences with an 'O'), so these rows sum to the counts
    behind its micro-averaged corpus scores."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'not a NE tag' warnings, as in `_seqeval`
        if strict:
            from seqeval.scheme import IOB2, Entities

            true_ents = [{e.to_tuple() for e in s} for s in Entities(y_true, IOB2).entities]
            pred_ents = [{e.to_tuple() for e in s} for s in Entities(y_pred, IOB2).entities]
        else:
            from seqeval.metrics.sequence_labeling import get_entities

            true_ents = [set(get_entities(list(s))) for s in y_true]
            pred_ents = [set(get_entities(list(s))) for s in y_pred]
    return [[len(t & p), len(p), len(t)] for t, p in zip(true_ents, pred_ents)]


def _span_stats(counts: list[list[int]], prefix: str = "", suffix: str = "") -> ExampleStats:
    return {
        f"{prefix}f1{suffix}": _stats("f1", counts),
        f"{prefix}precision{suffix}": _stats("ratio", [[tp, n_pred] for tp, n_pred, _ in counts]),
        f"{prefix}recall{suffix}": _stats("ratio", [[tp, n_gold] for tp, _, n_gold in counts]),
    }


def tagging_example_stats(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]
) -> ExampleStats:
    """Per-sentence stats of `tagging_scores`: "f1" (tp, n_pred, n_gold) for `f1`, "ratio"
    (tp, n_pred) for `precision` and (tp, n_gold) for `recall`, in default and strict mode; a
    missing prediction predicts no entity."""
    _check_lengths(y_true, y_pred)
    true = [list(t) for t in y_true]
    pred = _fill_missing_with_o(y_true, y_pred)
    out = _span_stats(_span_counts(true, pred))
    _check_iob2(true, "gold")
    _check_iob2(pred, "predicted")
    out.update(_span_stats(_span_counts(true, pred, strict=True), suffix="_strict"))
    out["accuracy"] = _token_accuracy_stats(y_true, y_pred)
    return out


def _token_accuracy_stats(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]
) -> dict[str, Any]:
    """(correct tokens, tokens) per sentence, as "ratio"; a missing prediction is all wrong."""
    rows = [
        [0 if p is None else sum(a == b for a, b in zip(t, p)), len(t)]
        for t, p in zip(y_true, y_pred)
    ]
    return _stats("ratio", rows)


def pos_example_stats(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str] | None]
) -> ExampleStats:
    """Per-sentence stats of `pos_scores`: `accuracy` as "ratio" (correct tokens, tokens); every
    token of a missing prediction is wrong. `seqeval_f1_upos` gets none (see `STAT_KINDS`)."""
    _check_lengths(y_true, y_pred)
    return {"accuracy": _token_accuracy_stats(y_true, y_pred)}


def classification_example_stats(
    y_true: Sequence[str], y_pred: Sequence[str | None], positive_label: str | None = None
) -> ExampleStats:
    """Per-item stats of `classification_scores`: `accuracy` as "mean" (1 if correct); with
    `positive_label`, `f1` as "f1" (tp, predicted positive, gold positive). Missing is wrong."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold labels but {len(y_pred)} predicted")
    out = {
        "accuracy": _stats(
            "mean", [[int(p is not None and t == p)] for t, p in zip(y_true, y_pred)]
        )
    }
    if positive_label is not None:
        rows = []
        for t, p in zip(y_true, y_pred):
            gold_pos, pred_pos = int(t == positive_label), int(p == positive_label)
            rows.append([gold_pos * pred_pos, pred_pos, gold_pos])
        out["f1"] = _stats("f1", rows)
    return out


def mtod_example_stats(
    intents_true: Sequence[str],
    intents_pred: Sequence[str | None],
    slots_true: Sequence[Sequence[str]],
    slots_pred: Sequence[Sequence[str] | None],
) -> ExampleStats:
    """Per-utterance stats of `mtod_scores`: `intent_accuracy` ("mean"), `slot_f1` ("f1"),
    `slot_precision`/`slot_recall` ("ratio"), `intent_slot_mean` (intent correct, slot tp,
    n_pred, n_gold). `slot_token_macro_f1` gets none (see `STAT_KINDS`)."""
    _check_lengths(slots_true, slots_pred)
    if not (len(intents_true) == len(intents_pred) == len(slots_true)):
        raise ValueError(
            f"{len(intents_true)} gold intents, {len(intents_pred)} predicted, "
            f"{len(slots_true)} slot sequences"
        )
    correct = [int(p is not None and t == p) for t, p in zip(intents_true, intents_pred)]
    counts = _span_counts(
        [list(t) for t in slots_true], _fill_missing_with_o(slots_true, slots_pred)
    )
    out = {"intent_accuracy": _stats("mean", [[c] for c in correct])}
    out.update(_span_stats(counts, prefix="slot_"))
    out["intent_slot_mean"] = _stats("intent_slot_mean", [[c, *k] for c, k in zip(correct, counts)])
    return out


# ---------------------------------------------------------------------------------------------
# Model selection
# ---------------------------------------------------------------------------------------------

_MAIN_METRIC: dict[str, str] = {
    "nli": "accuracy",
    "pa": "accuracy",
    "sa": "accuracy",
    "pos": "accuracy",
    "ner": "f1",
    "qa": "f1",
    "mtod": "intent_slot_mean",
}


#: the score keys each task's scorer produces (all higher-is-better percentages)
_METRIC_KEYS: dict[str, tuple[str, ...]] = {
    "pair": ("accuracy",),
    "single": ("accuracy", "f1"),
    "qa": ("exact_match", "f1"),
    "intent_slots": (
        "intent_accuracy",
        "slot_f1",
        "slot_precision",
        "slot_recall",
        "slot_token_macro_f1",
        "intent_slot_mean",
    ),
}
_TAGGING_KEYS = {
    "pos": ("accuracy", "seqeval_f1_upos"),
    "ner": (
        "f1",
        "precision",
        "recall",
        "f1_strict",
        "precision_strict",
        "recall_strict",
        "accuracy",
    ),
}


def metric_keys(task: str) -> tuple[str, ...]:
    """The metric keys `scoring.score` reports for `task` (choices of `metrics.main`)."""
    kind = task_type(task)
    if kind == "tagging":
        return _TAGGING_KEYS.get(task, _TAGGING_KEYS["ner"])
    if task == "sa":
        return _METRIC_KEYS["single"]
    return _METRIC_KEYS[kind]


def main_metric(task: str, overrides: dict[str, str] | None = None) -> str:
    """The score key used for model selection on dev data and in the tables (higher is better):
    the default of the task (what XTREME reports, e.g. NER seqeval F1), or `overrides[task]`
    (`metrics.main` in params.yaml, e.g. NER token accuracy as Tarunesh et al. report it)."""
    task_type(task)  # a clear error for an unknown task
    return (overrides or {}).get(task, _MAIN_METRIC[task])
