"""Extractive QA (SQuAD, MLQA, XQuAD, TyDiQA-GoldP), after Hugging Face's run_qa.py/utils_qa.py.

A question (cut to settings.max_query_length sub-tokens, as in the original BERT run_squad) is paired
with windows of its context: `max_length` tokens, consecutive windows overlapping by `doc_stride`
context tokens (doc_stride_mode "overlap", the default: Hugging Face's `stride`), or each window
starting `doc_stride` context tokens after the previous one (doc_stride_mode "step": XTREME's and
transformers 2.x's `doc_stride`, so the overlap is the context budget minus doc_stride and depends
on the question's length). In both modes the last window is the first that reaches the context's
end.
Train features label the first answer's sub-token span, or [CLS] (index 0) where the answer is not
wholly inside the window. Eval features keep each context token's character offsets ([-1, -1] for
question, special tokens and padding), and decoding picks, across all windows of an example, the
highest start+end logit span that lies in the context and is at most max_answer_length long.
"""

from __future__ import annotations

import itertools
from typing import Any

import datasets
import numpy as np
import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.tasks.base import FeatureSettings
from pipeline.tasks.common import (
    ENCODER_COLUMNS,
    Batch,
    BatchedTask,
    check_tokenizer,
    column_array,
    encode_unpadded,
    encoder_features,
    filled_positions,
    int_seq,
    masked_cross_entropy,
    output_array,
    padded_columns,
    padded_field,
    windows,
)

#: offset pair of tokens outside the context (Arrow needs one type, so not None)
NO_OFFSET = -1


def context_budget(tokenizer: Any, settings: FeatureSettings, question_length: int) -> int:
    """Context tokens in a window next to a question of question_length sub-tokens."""
    return settings.max_length - question_length - tokenizer.num_special_tokens_to_add(pair=True)


def check_settings(tokenizer: Any, settings: FeatureSettings) -> None:
    """Windows must advance and leave no context token out, whatever the question's length.

    "overlap": the context part of a window must be longer than doc_stride; "step": at least
    doc_stride long (equal: windows that touch without overlapping).
    """
    budget = context_budget(tokenizer, settings, settings.max_query_length)
    step = settings.doc_stride_mode == "step"
    if budget < settings.doc_stride or (budget == settings.doc_stride and not step):
        raise PipelineError(
            f"features: max_length={settings.max_length} leaves {budget} context tokens after "
            f"max_query_length={settings.max_query_length} and special tokens; expected "
            f"{'at least' if step else 'more than'} doc_stride={settings.doc_stride} "
            f"(doc_stride_mode={settings.doc_stride_mode})"
        )


def truncate_questions(tokenizer: Any, questions: list[str], max_query_length: int) -> list[str]:
    """Cut each question after its first max_query_length sub-tokens (one batch call).

    The cut is made in characters at the end of the last kept sub-token, so the pair call below
    tokenizes the kept part the same way (exactly so for WordPiece's greedy longest match).
    """
    enc = tokenizer(
        questions,
        add_special_tokens=False,
        truncation=True,
        max_length=max_query_length,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    out = []
    for q, e in zip(questions, enc.encodings):
        out.append(q[: e.offsets[-1][1]] if e.overflowing and e.offsets else q)
    return out


def question_lengths(tokenizer: Any, questions: list[str]) -> np.ndarray:
    """Sub-tokens of each question as the pair call tokenizes it (alone, no special tokens)."""
    enc = tokenizer(
        questions,
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return np.asarray([len(e.ids) for e in enc.encodings], dtype=np.int64)


def encode_windows(
    tokenizer: Any, questions: list[str], contexts: list[str], settings: FeatureSettings
) -> tuple[np.ndarray, Batch, np.ndarray, np.ndarray]:
    """All windows of each (question, context) pair, in record order, then window order.

    Returns sample [N] (the record index of each window), the encoder columns, offsets [N, T, 2]
    and the context mask [N, T]. "overlap" is one pair call with stride=doc_stride. "step" needs
    the overlap budget - doc_stride, which depends on the question's length, so it makes one
    call per question length and puts the windows back in record order.
    """
    if settings.doc_stride_mode == "overlap" or not questions:
        return _pair_windows(tokenizer, questions, contexts, settings, settings.doc_stride)
    q_len = question_lengths(tokenizer, questions)
    parts = []
    for length in np.unique(q_len).tolist():
        rows = np.flatnonzero(q_len == length)
        overlap = context_budget(tokenizer, settings, length) - settings.doc_stride
        sample, cols, offsets, ctx = _pair_windows(
            tokenizer,
            [questions[j] for j in rows],
            [contexts[j] for j in rows],
            settings,
            overlap,
        )
        parts.append((rows[sample], cols, offsets, ctx))
    sample = np.concatenate([p[0] for p in parts])
    order = np.argsort(sample, kind="stable")  # windows of one record keep their order
    cols = {c: np.concatenate([p[1][c] for p in parts])[order] for c in ENCODER_COLUMNS}
    offsets = np.concatenate([p[2] for p in parts])[order]
    ctx = np.concatenate([p[3] for p in parts])[order]
    return sample[order], cols, offsets, ctx


def _pair_windows(
    tokenizer: Any,
    questions: list[str],
    contexts: list[str],
    settings: FeatureSettings,
    overlap: int,
) -> tuple[np.ndarray, Batch, np.ndarray, np.ndarray]:
    """One pair call: windows of the contexts sharing `overlap` tokens (Hugging Face `stride`).

    The backend's unpadded call (`encode_unpadded`), padded in numpy: what
    `tokenizer(..., truncation="only_second", stride=overlap, return_overflowing_tokens=True,
    return_offsets_mapping=True, padding="max_length")` returns, without its list conversion.
    """
    length = settings.max_length
    encodings, sample = windows(
        encode_unpadded(
            tokenizer,
            list(zip(questions, contexts)),
            length,
            strategy="only_second",
            stride=overlap,
        )
    )
    filled = filled_positions(encodings, length)
    count = int(filled.sum())
    offsets = padded_field(encodings, "offsets", 0, filled, count)
    return (
        sample,
        padded_columns(encodings, tokenizer, length),
        offsets,
        context_mask(encodings, filled, count),
    )


def context_mask(encodings: list[Any], filled: np.ndarray, count: int) -> np.ndarray:
    """[n, length] True where a token belongs to the context (sequence id 1)."""
    mask = np.zeros(filled.shape, dtype=bool)
    if count:  # None -> NaN in one C-level conversion
        flat = list(itertools.chain.from_iterable(e.sequence_ids for e in encodings))
        mask[filled] = np.array(flat, dtype=np.float64) == 1
    return mask


def answer_positions(
    offsets: np.ndarray, ctx: np.ndarray, start_char: np.ndarray, end_char: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-token start/end of each feature's answer, or (0, 0) ([CLS]) when not inside the window.

    offsets [N, T, 2], ctx [N, T], start_char/end_char [N] (start_char -1: no answer). The start is
    the last context token starting at or before start_char, the end the first context token ending
    at or after end_char (HF's rule, without its overrun past the context's last token).
    """
    n, t = ctx.shape
    rows = np.arange(n)
    any_ctx = ctx.any(axis=1)
    first = ctx.argmax(axis=1)
    last = t - 1 - ctx[:, ::-1].argmax(axis=1)
    inside = (
        (start_char >= 0)
        & any_ctx
        & (offsets[rows, first, 0] <= start_char)
        & (offsets[rows, last, 1] >= end_char)
    )
    starts_before = ctx & (offsets[:, :, 0] <= start_char[:, None])
    start = t - 1 - starts_before[:, ::-1].argmax(axis=1)
    ends_after = ctx & (offsets[:, :, 1] >= end_char[:, None])
    end = ends_after.argmax(axis=1)
    return np.where(inside, start, 0), np.where(inside, end, 0)


def best_span(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: np.ndarray,
    n_best: int,
    max_answer_length: int,
) -> tuple[float, int, int] | None:
    """(score, char_start, char_end) of one feature's best valid span, None if there is none.

    Candidates: the n_best start and n_best end indices by logit (utils_qa's order); valid when both
    are context tokens, end >= start and end - start + 1 <= max_answer_length. Ties go to the
    first candidate in that order, as utils_qa's stable sort does.
    """
    s_idx = np.argsort(start_logits)[-1 : -n_best - 1 : -1]
    e_idx = np.argsort(end_logits)[-1 : -n_best - 1 : -1]
    length = e_idx[None, :] - s_idx[:, None] + 1
    ok = (
        (offsets[s_idx, 0] != NO_OFFSET)[:, None]
        & (offsets[e_idx, 0] != NO_OFFSET)[None, :]
        & (length >= 1)
        & (length <= max_answer_length)
    )
    if not ok.any():
        return None
    score = np.where(ok, start_logits[s_idx][:, None] + end_logits[e_idx][None, :], -np.inf)
    i, j = np.unravel_index(int(score.argmax()), score.shape)
    return float(score[i, j]), int(offsets[s_idx[i], 0]), int(offsets[e_idx[j], 1])


class QAHead(nn.Module):
    """Linear to 2 per sub-token → start and end logits [B, T].

    No dropout before it, as in BertForQuestionAnswering (the encoder applies its own)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.out = nn.Linear(hidden_size, 2)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        start, end = self.out(hidden_states).unbind(dim=-1)
        return {"start_logits": start.contiguous(), "end_logits": end.contiguous()}


class ExtractiveQA(BatchedTask):
    name = "qa"
    #: a cut-off padding position ranks below every real one, so it never takes an n-best slot
    #: (with fixed padding, padding logits can displace context tokens from the n-best: the
    #: one way dynamic padding can change a QA prediction; `padding: fixed` keeps utils_qa's)
    token_outputs = {  # noqa: RUF012
        "start_logits": float(np.finfo(np.float32).min),
        "end_logits": float(np.finfo(np.float32).min),
    }

    def encode_batch(
        self,
        batch: Batch,
        tokenizer: Any,
        labels: dict[str, list[str]],
        settings: FeatureSettings,
        train: bool,
    ) -> Batch:
        """Featurize one batch of records into one or more windows each (one pair call)."""
        # Leading spaces are dropped: some questions have many, and they would eat the budget.
        questions = truncate_questions(
            tokenizer, [q.lstrip() for q in batch["question"]], settings.max_query_length
        )
        sample, out, offsets, ctx = encode_windows(
            tokenizer, questions, list(batch["context"]), settings
        )
        out["example_id"] = [batch["id"][j] for j in sample.tolist()]
        if train:
            start_char = np.full(len(questions), -1, dtype=np.int64)
            end_char = np.full(len(questions), -1, dtype=np.int64)
            for j, ans in enumerate(batch["answers"]):
                if ans["answer_start"] and ans["text"] and ans["text"][0]:
                    start_char[j] = ans["answer_start"][0]
                    end_char[j] = ans["answer_start"][0] + len(ans["text"][0])
            out["start_positions"], out["end_positions"] = answer_positions(
                offsets, ctx, start_char[sample], end_char[sample]
            )
        else:
            out["offset_mapping"] = np.where(ctx[:, :, None], offsets, NO_OFFSET)
        return out

    def check(self, tokenizer: Any, settings: FeatureSettings) -> None:
        check_tokenizer(tokenizer)
        check_settings(tokenizer, settings)

    def feature_schema(self, settings: FeatureSettings, train: bool) -> dict[str, Any]:
        features: dict[str, Any] = {**encoder_features(settings)}
        if train:
            features["start_positions"] = datasets.Value("int64")
            features["end_positions"] = datasets.Value("int64")
        else:
            features["offset_mapping"] = datasets.List(int_seq(2), length=settings.max_length)
        features["example_id"] = datasets.Value("string")
        return features

    def model_columns(self, train: bool) -> list[str]:
        return (
            [*ENCODER_COLUMNS, "start_positions", "end_positions"] if train else [*ENCODER_COLUMNS]
        )

    def head(self, hidden_size: int, labels: dict[str, list[str]], dropout: float) -> nn.Module:
        return QAHead(hidden_size)

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Mean of start and end cross-entropy over the window's real sub-tokens; positions
        beyond the sequence are ignored, as HF clamps them to T and uses T as ignore index.

        Padding positions get no probability mass. HF's BertForQuestionAnswering spreads some
        over them too, so its loss depends on how much padding a batch carries (fixed or
        dynamic, and the batch's longest window); masking makes the loss the same under any
        padding, which is what lets `padding: dynamic` train exactly as `fixed` does.
        """
        t = outputs["start_logits"].shape[1]
        start = batch["start_positions"].long().clamp(0, t)
        end = batch["end_positions"].long().clamp(0, t)
        s_logits, e_logits = outputs["start_logits"], outputs["end_logits"]
        if "attention_mask" in batch:
            pad = batch["attention_mask"][:, :t] == 0
            low = torch.finfo(s_logits.dtype).min
            s_logits, e_logits = s_logits.masked_fill(pad, low), e_logits.masked_fill(pad, low)
        return (
            masked_cross_entropy(s_logits, start, ignore_index=t)
            + masked_cross_entropy(e_logits, end, ignore_index=t)
        ) / 2

    def decode(
        self,
        records: datasets.Dataset,
        features: datasets.Dataset,
        outputs: dict[str, Any],
        labels: dict[str, list[str]],
        settings: FeatureSettings,
    ) -> dict[str, Any]:
        """{record id: answer text}; "" where no window has a valid span.

        Padding positions rank below every real one: utils_qa lets them take n-best slots
        (they are never valid spans, so a model unsure of the answer can end up with fewer
        candidates or none), which would make a prediction depend on the padding (fixed or
        dynamic); here it does not, and no real candidate is lost.
        """
        n = len(features)
        start = output_array(outputs, "start_logits", n)
        end = output_array(outputs, "end_logits", n)
        if n:
            pad = column_array(features, "attention_mask")[:, : start.shape[1]] == 0
            low = np.finfo(np.float32).min
            start, end = np.where(pad, low, start), np.where(pad, low, end)
        contexts = dict(zip(records["id"], records["context"]))
        best: dict[str, tuple[float, str]] = {}
        if n:
            offsets = column_array(features, "offset_mapping")
            for i, rid in enumerate(features["example_id"]):
                if rid not in contexts:
                    raise PipelineError(f"decode: feature {i} has example_id {rid!r}, not a record")
                span = best_span(
                    start[i], end[i], offsets[i], settings.n_best, settings.max_answer_length
                )
                if span is not None and (rid not in best or span[0] > best[rid][0]):
                    best[rid] = (span[0], contexts[rid][span[1] : span[2]])
        return {rid: best[rid][1] if rid in best else "" for rid in contexts}
