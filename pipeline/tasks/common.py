"""Shared pieces of the task types: featurization plumbing, word alignment, heads, losses.

Everything here is written once and used by several task types: the encoder columns and their
fixed-length schema, the cache key of featurized data, first-sub-token alignment of word labels
(tagging and intent_slots), per-word decoding, and the small heads and the masked cross-entropy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import DataError, PipelineError
from pipeline.tasks.base import FeatureSettings

#: Bump when featurized output changes for the same inputs, so stale caches are not reused.
FEATURIZER_VERSION = "1"

#: Settings added after FEATURIZER_VERSION 1, each with the value that gives version-1 features:
#: they enter the cache key only when set to something else, so existing caches stay valid.
LATER_SETTINGS_DEFAULTS: dict[str, Any] = {"doc_stride_mode": "overlap"}

#: Label id of positions that carry no label (later sub-tokens, special tokens, padding).
IGNORE_INDEX = -100

#: Encoder inputs every task type produces, each a fixed-length list of settings.max_length ints.
ENCODER_COLUMNS: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")

#: Rows per tokenizer call in `Dataset.map`: large enough that per-call overhead vanishes.
MAP_BATCH_SIZE = 1000

Batch = dict[str, Any]


# --------------------------------------------------------------------------- tokenizer + cache key


def check_tokenizer(tokenizer: Any) -> None:
    """Fail early on tokenizers the featurizers cannot use.

    Offsets and word ids need a fast (Rust) tokenizer; the heads read the first position as [CLS],
    which only holds with right padding.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise PipelineError(
            f"tokenizer {type(tokenizer).__name__}: expected a fast tokenizer "
            "(PreTrainedTokenizerFast), needed for offsets and word ids"
        )
    if getattr(tokenizer, "padding_side", "right") != "right":
        raise PipelineError(
            f"tokenizer padding_side={tokenizer.padding_side!r}: expected 'right' "
            "(heads read [CLS] at position 0)"
        )


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 of the tokenizer's definition (vocab, normalizer, pre-tokenizer, post-processor).

    The backend's truncation/padding state is dropped: transformers mutates it on every call, so it
    reflects call history, not the tokenizer.
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    spec["padding_side"] = getattr(tokenizer, "padding_side", None)
    spec["truncation_side"] = getattr(tokenizer, "truncation_side", None)
    blob = json.dumps(spec, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def feature_cache_key(
    tokenizer: Any,
    settings: FeatureSettings,
    task: str,
    labels: Mapping[str, list[str]],
    train: bool,
) -> str:
    """Short key of featurized data: same key ⇔ same tokenizer, settings, task, labels, train flag.

    Settings of `LATER_SETTINGS_DEFAULTS` at their default are left out of the key.
    """
    fields = {
        k: v
        for k, v in dataclasses.asdict(settings).items()
        if k not in LATER_SETTINGS_DEFAULTS or v != LATER_SETTINGS_DEFAULTS[k]
    }
    payload = {
        "version": FEATURIZER_VERSION,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "settings": fields,
        "task": task,
        "labels": {k: list(v) for k, v in sorted(labels.items())},
        "train": bool(train),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------- schema + map plumbing


def int_seq(length: int) -> datasets.List:
    """Fixed-length int64 list (Arrow FixedSizeList), so numpy/torch formatting stacks cheaply."""
    return datasets.List(datasets.Value("int64"), length=length)


def encoder_features(settings: FeatureSettings) -> dict[str, Any]:
    return {c: int_seq(settings.max_length) for c in ENCODER_COLUMNS}


def encode_unpadded(
    tokenizer: Any,
    inputs: list[Any],
    max_length: int,
    pretokenized: bool = False,
    strategy: str = "longest_first",
    stride: int = 0,
) -> list[Any]:
    """The Rust tokenizer's batch call, truncated to `max_length` but not padded.

    What `tokenizer(inputs, truncation=True, max_length=...)` computes (longest_first, the
    tokenizer's truncation side, special tokens), minus two costs: transformers' conversion of
    every encoding to Python lists, and padding every row to max_length inside the tokenizer.
    `padded_columns` pads in numpy instead. The backend's truncation/padding state is put back
    afterwards (transformers itself leaves it as its last call set it). With `stride`, each
    encoding's `overflowing` windows hold the rest (see `windows`).
    """
    backend = tokenizer.backend_tokenizer
    truncation, padding = backend.truncation, backend.padding
    backend.enable_truncation(
        max_length, stride=stride, strategy=strategy, direction=tokenizer.truncation_side
    )
    backend.no_padding()
    try:
        return backend.encode_batch(inputs, add_special_tokens=True, is_pretokenized=pretokenized)
    finally:
        if truncation is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(**truncation)
        if padding is not None:
            backend.enable_padding(**padding)


def windows(encodings: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    """Every window of overflowing encodings, in transformers' order (each input's first window,
    then its overflowing ones), and the input index of each (`overflow_to_sample_mapping`)."""
    flat, sample = [], []
    for i, e in enumerate(encodings):
        parts = [e, *e.overflowing]
        flat += parts
        sample += [i] * len(parts)
    return flat, np.asarray(sample, dtype=np.int64)


def filled_positions(encodings: Sequence[Any], length: int) -> np.ndarray:
    """[n, length] True at the real (unpadded) positions of each right-padded row."""
    lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
    return np.arange(length)[None, :] < lengths[:, None]


def padded_field(
    encodings: Sequence[Any], field: str, pad: int, filled: np.ndarray, count: int
) -> np.ndarray:
    """One integer field of every encoding (`ids`, `type_ids`; `offsets` adds a trailing 2),
    right-padded with `pad` into [n, length(, 2)]. `filled`: `filled_positions`; count: its sum."""
    pairs = field == "offsets"
    out = np.full((*filled.shape, 2) if pairs else filled.shape, pad, dtype=np.int64)
    flat: Any = itertools.chain.from_iterable(getattr(e, field) for e in encodings)
    if pairs:
        flat = itertools.chain.from_iterable(flat)
    values = np.fromiter(flat, dtype=np.int64, count=count * (2 if pairs else 1))
    out[filled] = values.reshape(count, 2) if pairs else values
    return out


def padded_columns(encodings: Sequence[Any], tokenizer: Any, length: int) -> Batch:
    """Encoder columns [n, length] of unpadded encodings, right-padded as the tokenizer would:
    pad_token_id, token type pad_token_type_id, attention mask 0."""
    filled = filled_positions(encodings, length)
    count = int(filled.sum())

    def column(field: str, pad: int) -> np.ndarray:
        return padded_field(encodings, field, pad, filled, count)

    return {
        "input_ids": column("ids", tokenizer.pad_token_id),
        "token_type_ids": column("type_ids", tokenizer.pad_token_type_id),
        "attention_mask": filled.astype(np.int64),
    }


def run_featurizer(
    records: datasets.Dataset,
    batch_fn: Callable[[Batch], Batch],
    features: dict[str, Any],
    fingerprint: str,
) -> datasets.Dataset:
    """Apply a batched featurizer with `Dataset.map`, in memory.

    keep_in_memory: records loaded from the prepared store would otherwise get cache files written
    next to them (inside a pipeline output). The caller persists features under its own cache key.
    `fingerprint` (from `feature_cache_key`) replaces datasets' hashing of the closure, which would
    pickle the whole tokenizer.
    """
    schema = datasets.Features(features)
    if len(records) == 0:  # map() on an empty dataset drops the schema
        return datasets.Dataset.from_dict({k: [] for k in schema}, features=schema)
    new_fp = hashlib.sha256(f"{records._fingerprint}:{fingerprint}".encode()).hexdigest()[:16]
    return records.map(
        batch_fn,
        batched=True,
        batch_size=MAP_BATCH_SIZE,
        remove_columns=records.column_names,
        features=schema,
        keep_in_memory=True,
        new_fingerprint=new_fp,
    )


def inventory(labels: Mapping[str, Sequence[str]], field: str) -> list[str]:
    """One label inventory of a task's labels.json entry; missing or empty is a PipelineError."""
    inv = labels.get(field)
    if not inv:
        raise PipelineError(
            f"labels.json: no {field!r} labels for this task (entry has {sorted(labels)})"
        )
    return list(inv)


class LabelIndex:
    """label → id lookup; an unknown label is a DataError naming the record and field."""

    def __init__(self, labels: Mapping[str, Sequence[str]], field: str) -> None:
        self.inventory = inventory(labels, field)
        self.field = field
        self._index = {lab: i for i, lab in enumerate(self.inventory)}

    def ids(self, values: Sequence[str], rec_id: str) -> list[int]:
        try:
            return [self._index[v] for v in values]
        except KeyError as e:
            raise DataError(
                f"record {rec_id}: {self.field} {e.args[0]!r} is not in the labels.json "
                f"inventory ({len(self.inventory)} labels)"
            ) from None

    def id(self, value: str, rec_id: str) -> int:
        return self.ids([value], rec_id)[0]


def output_array(outputs: Mapping[str, Any], name: str, n_features: int) -> np.ndarray:
    """One stacked model output as numpy, checked to have one row per feature."""
    if name not in outputs:
        raise PipelineError(f"decode: model outputs lack {name!r} (have {sorted(outputs)})")
    arr = outputs[name]
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    arr = np.asarray(arr)
    if arr.shape[0] != n_features:
        raise PipelineError(
            f"decode: outputs[{name!r}] has {arr.shape[0]} rows, expected {n_features} (features)"
        )
    return arr


def column_array(features: datasets.Dataset, name: str) -> np.ndarray:
    """A fixed-length feature column as one numpy array (no per-row Python objects)."""
    if len(features) == 0:
        return np.zeros((0,), dtype=np.int64)
    return features.with_format("numpy", columns=[name])[:][name]


# --------------------------------------------------------------------------- word alignment


def word_ids_array(encodings: Sequence[Any], length: int) -> np.ndarray:
    """[n, length] word index of every sub-token, -1 for special tokens and padding."""
    n = len(encodings)
    out = np.full((n, length), -1, dtype=np.int64)
    if n:
        flat = list(itertools.chain.from_iterable(e.word_ids for e in encodings))
        # None -> NaN in one C-level conversion
        ids = np.nan_to_num(np.array(flat, dtype=np.float64), nan=-1).astype(np.int64)
        out[filled_positions(encodings, length)] = ids
    return out


def first_subtoken_mask(word_ids: np.ndarray) -> np.ndarray:
    """True at the first sub-token of each word ([..., T] word ids with -1 for none)."""
    prev = np.full_like(word_ids, -1)
    prev[..., 1:] = word_ids[..., :-1]
    return (word_ids >= 0) & (word_ids != prev)


def align_word_labels(word_ids: np.ndarray, word_labels: Sequence[Sequence[int]]) -> np.ndarray:
    """Sub-token labels [B, T]: each word's label on its first sub-token, IGNORE_INDEX elsewhere."""
    b, _ = word_ids.shape
    width = max((len(x) for x in word_labels), default=0)
    table = np.full((b, max(width, 1)), IGNORE_INDEX, dtype=np.int64)
    for i, labs in enumerate(word_labels):
        table[i, : len(labs)] = labs
    safe = np.clip(word_ids, 0, None)
    gathered = np.take_along_axis(table, safe, axis=1)
    return np.where(first_subtoken_mask(word_ids), gathered, IGNORE_INDEX)


def encode_words(
    tokenizer: Any, words: Sequence[Sequence[str]], settings: FeatureSettings
) -> tuple[Batch, np.ndarray]:
    """Tokenize pre-split words (one fast batch call); return encoder columns and word ids."""
    encodings = encode_unpadded(tokenizer, list(words), settings.max_length, pretokenized=True)
    return padded_columns(encodings, tokenizer, settings.max_length), word_ids_array(
        encodings, settings.max_length
    )


def fallback_label(inventory: Sequence[str]) -> str:
    """Tag for words with no sub-token in the window (cut by max_length, or tokenized to nothing).

    "O" where the inventory has it (NER, slots): predicting "no entity" never invents a span.
    Otherwise (POS) the inventory's first label: arbitrary but fixed, so results are deterministic.
    """
    return "O" if "O" in inventory else inventory[0]


def decode_word_tags(
    pred_ids: np.ndarray, word_ids: np.ndarray, n_words: int, inventory: Sequence[str]
) -> list[str]:
    """One tag per word from per-sub-token predictions [T] read at first sub-tokens."""
    tags = [fallback_label(inventory)] * n_words
    mask = first_subtoken_mask(word_ids)
    for w, p in zip(word_ids[mask].tolist(), pred_ids[mask].tolist()):
        if w < n_words:
            tags[w] = inventory[p]
    return tags


def decode_tags_by_record(
    records: datasets.Dataset,
    features: datasets.Dataset,
    logits: np.ndarray,
    inventory: Sequence[str],
    field: str,
) -> dict[str, list[str]]:
    """{record id: one tag per word} from sub-token logits [N, T, C] (one feature per record).

    A record without a feature (none in practice) gets the fallback tag for every word.
    """
    n_words = {rid: len(words) for rid, words in zip(records["id"], records[field])}
    preds = {rid: [fallback_label(inventory)] * n for rid, n in n_words.items()}
    if len(features):
        pred = logits.argmax(axis=-1)
        wids = column_array(features, "word_ids")
        for i, rid in enumerate(features["example_id"]):
            if rid not in n_words:
                raise PipelineError(f"decode: feature {i} has example_id {rid!r}, not a record id")
            preds[rid] = decode_word_tags(pred[i], wids[i], n_words[rid], inventory)
    return preds


def word_coverage(
    records: datasets.Dataset, features: datasets.Dataset, field: str = "tokens"
) -> dict[str, int]:
    """How many words got no prediction position, for the featurize step to log.

    `truncated`: words after the last word that has a sub-token, i.e. cut off by max_length (this
    also counts, rarely, trailing words that tokenize to nothing: a record's features cannot tell);
    `no_subtoken`: earlier words that tokenized to nothing (e.g. a lone zero-width space).
    Both are decoded with `fallback_label`. Features are 1:1 with records (no overflow windows).
    """
    n_words = [len(t) for t in records[field]]
    if len(n_words) != len(features):
        raise PipelineError(f"word_coverage: {len(records)} records but {len(features)} features")
    wids = column_array(features, "word_ids")
    truncated = no_sub = 0
    for n, row in zip(n_words, wids):
        present = np.unique(row[row >= 0])
        last = int(present[-1]) if present.size else -1
        truncated += n - 1 - last
        no_sub += (last + 1) - present.size
    return {"words": int(sum(n_words)), "truncated": int(truncated), "no_subtoken": int(no_sub)}


# --------------------------------------------------------------------------- heads and losses


class FirstTokenHead(nn.Module):
    """Dropout + linear on the first ([CLS]) state → {name: [B, C]}.

    With `pooled` ([B, H], the encoder's pooler output tanh(W·h_[CLS])) it reads that instead,
    as BertForSequenceClassification does.
    """

    def __init__(self, hidden_size: int, n_labels: int, dropout: float, name: str = "logits"):
        super().__init__()
        self.name = name
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, n_labels)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        pooled: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        first = hidden_states[:, 0] if pooled is None else pooled
        return {self.name: self.out(self.dropout(first))}


class TokenHead(nn.Module):
    """Dropout + linear on every sub-token state → {name: [B, T, C]}."""

    def __init__(self, hidden_size: int, n_labels: int, dropout: float, name: str = "logits"):
        super().__init__()
        self.name = name
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, n_labels)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return {self.name: self.out(self.dropout(hidden_states))}


def masked_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Mean cross-entropy over labelled positions; 0 (not NaN) when a batch has none.

    logits [..., C], labels [...]. Labels are cast to long so int32 storage also works.
    """
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_labels = labels.reshape(-1).long()
    total = F.cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index, reduction="sum")
    count = (flat_labels != ignore_index).sum().clamp(min=1)
    return total / count


class BatchedTask:
    """The `featurize` every task type shares: check, cache key, one batched `Dataset.map`.

    A task type provides `name`, `feature_schema(settings, train)` (the output columns) and
    `encode_batch(batch, tokenizer, labels, settings, train)`; `check` may add checks.
    `uses_pooler` (default False) is set by the task types whose head reads the pooled output.
    """

    name: str
    uses_pooler: bool = False
    token_outputs: dict[str, float] = {}  # noqa: RUF012 - read-only class default

    def feature_schema(self, settings: Any, train: bool) -> dict[str, Any]:
        raise NotImplementedError

    def loss_count(self, batch: dict[str, torch.Tensor]) -> int:
        """What the task's training loss is a mean over, in `batch`: its rows here (per-example
        means). Data-parallel shards weight their loss by their share of it, so the mean over
        the ranks is the global batch's loss also where shards hold unequal counts."""
        return int(batch["input_ids"].shape[0])

    def check(self, tokenizer: Any, settings: Any) -> None:
        check_tokenizer(tokenizer)

    def featurize(
        self,
        records: datasets.Dataset,
        tokenizer: Any,
        labels: dict[str, list[str]],
        settings: Any,
        train: bool,
    ) -> datasets.Dataset:
        self.check(tokenizer, settings)
        key = feature_cache_key(tokenizer, settings, self.name, labels, train)
        return run_featurizer(
            records,
            lambda b: self.encode_batch(b, tokenizer, labels, settings, train),
            self.feature_schema(settings, train),
            key,
        )
