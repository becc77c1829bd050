"""Task types: featurization, heads, losses and decoding, on a tiny WordPiece tokenizer built here."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random

import datasets
import numpy as np
import pytest
import torch
from tokenizers import (
    Tokenizer,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)
from transformers import PreTrainedTokenizerFast

from pipeline.errors import DataError, PipelineError
from pipeline.models.encoder import SPECIAL_TOKENS, finish_bert_tokenizer
from pipeline.tasks import FeatureSettings, TaskFeatureSettings, get_task_type
from pipeline.tasks.common import (
    ENCODER_COLUMNS,
    FEATURIZER_VERSION,
    IGNORE_INDEX,
    align_word_labels,
    encode_unpadded,
    feature_cache_key,
    first_subtoken_mask,
    padded_columns,
    tokenizer_fingerprint,
    word_ids_array,
)
from pipeline.tasks.qa import NO_OFFSET, _pair_windows, best_span

COMMON = "the a cat dog sat ran on under mat river bank by and was is big small red".split()
RARE = "catdogmat"  # never seen whole in training text, so WordPiece splits it


def make_tokenizer(vocab_size: int = 120) -> PreTrainedTokenizerFast:
    rng = random.Random(0)
    sents = [" ".join(rng.choice(COMMON) for _ in range(10)) for _ in range(400)]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        sents, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    )
    return finish_bert_tokenizer(tok, lowercase=True)


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    return make_tokenizer()


def ds(rows: list[dict]) -> datasets.Dataset:
    return datasets.Dataset.from_list(rows)


NER = {"tags": ["B-PER", "I-PER", "O"]}
POS = {"tags": ["DET", "NOUN", "VERB"]}


# --------------------------------------------------------------------------- alignment


def test_align_word_labels_by_hand():
    wids = np.array([[-1, 0, 0, 1, 2, 2, 2, -1, -1]])
    got = align_word_labels(wids, [[5, 7, 9]])
    assert got.tolist() == [[-100, 5, -100, 7, 9, -100, -100, -100, -100]]
    assert first_subtoken_mask(wids).sum() == 3


def test_tagging_labels_first_subtoken_of_split_word(tok):
    pieces = tok.tokenize(RARE)
    assert len(pieces) >= 3, pieces  # the test needs a word in several pieces
    k = len(pieces)
    recs = ds(
        [{"id": "s1", "lang": "en", "tokens": ["the", RARE, "cat"], "tags": ["O", "B-PER", "O"]}]
    )
    f = get_task_type("tagging").featurize(recs, tok, NER, FeatureSettings(max_length=16), True)
    row = f[0]
    real = k + 4  # [CLS] the <k pieces> cat [SEP]
    expected_wids = [-1, 0] + [1] * k + [2, -1]
    expected_wids += [-1] * (16 - len(expected_wids))
    assert row["word_ids"] == expected_wids
    o_id, b_id = 2, 0
    expected = [IGNORE_INDEX, o_id, b_id] + [IGNORE_INDEX] * (k - 1) + [o_id, IGNORE_INDEX]
    expected += [IGNORE_INDEX] * (16 - len(expected))
    assert row["labels"] == expected
    assert row["attention_mask"] == [1] * real + [0] * (16 - real)
    assert tok.convert_ids_to_tokens(row["input_ids"][2 : 2 + k]) == pieces
    assert set(f.column_names) >= set(get_task_type("tagging").model_columns(True))


def test_tagging_unknown_tag_is_data_error(tok):
    recs = ds([{"id": "bad7", "lang": "en", "tokens": ["the"], "tags": ["X-TAG"]}])
    with pytest.raises(DataError, match="bad7"):
        get_task_type("tagging").featurize(recs, tok, NER, FeatureSettings(max_length=8), True)


def test_tagging_decode_one_tag_per_word_including_truncated(tok):
    task = get_task_type("tagging")
    words = ["the", "cat", "sat", "on", "the", "mat", "by", "the", "river", "bank"]  # 10 words
    s = FeatureSettings(max_length=8)  # [CLS] + 6 words + [SEP]: 4 words cut off
    for labels, fallback in ((NER, "O"), (POS, "DET")):
        tags = [labels["tags"][i % 3] for i in range(10)]
        recs = ds([{"id": "r", "lang": "en", "tokens": words, "tags": tags}])
        f = task.featurize(recs, tok, labels, s, False)
        assert task.word_coverage(recs, f) == {"words": 10, "truncated": 4, "no_subtoken": 0}
        # logits predict, at every sub-token, label (position % 3): word w sits at position w + 1
        logits = np.zeros((1, 8, 3), dtype=np.float32)
        for pos in range(8):
            logits[0, pos, (pos + 1) % 3] = 5.0
        pred = task.decode(recs, f, {"logits": logits}, labels, s)["r"]
        assert len(pred) == 10
        assert pred[:6] == [labels["tags"][(w + 2) % 3] for w in range(6)]
        assert pred[6:] == [fallback] * 4


# --------------------------------------------------------------------------- classification


def test_pair_and_single_classification_labels(tok):
    inv = {"label": ["contradiction", "entailment", "neutral"]}
    recs = ds(
        [
            {
                "id": "p1",
                "lang": "en",
                "text_a": "the cat sat",
                "text_b": "a dog ran",
                "label": "neutral",
            },
            {
                "id": "p2",
                "lang": "en",
                "text_a": "the mat",
                "text_b": "the mat",
                "label": "entailment",
            },
        ]
    )
    s = FeatureSettings(max_length=12)
    f = get_task_type("pair").featurize(recs, tok, inv, s, True)
    assert f["labels"] == [2, 1]
    assert f["example_id"] == ["p1", "p2"]
    toks = tok.convert_ids_to_tokens(f[0]["input_ids"])
    assert toks[:9] == ["[CLS]", "the", "cat", "sat", "[SEP]", "a", "dog", "ran", "[SEP]"]
    assert f[0]["token_type_ids"][:9] == [0] * 5 + [1] * 4
    assert len(f[0]["input_ids"]) == 12

    single = ds([{"id": "x", "lang": "en", "text": "big red dog", "label": "positive"}])
    g = get_task_type("single").featurize(single, tok, {"label": ["negative", "positive"]}, s, True)
    assert g["labels"] == [1]
    assert g[0]["attention_mask"] == [1] * 5 + [0] * 7

    logits = np.array([[0.1, 0.2, 3.0], [0.0, 2.0, 1.0]])
    pred = get_task_type("pair").decode(recs, f, {"logits": logits}, inv, s)
    assert pred == {"p1": "neutral", "p2": "entailment"}


@pytest.mark.parametrize("kind", ["words", "pair", "single"])
def test_unpadded_backend_call_equals_the_padded_transformers_call(tok, kind):
    """`encode_unpadded` + `padded_columns` (+ `word_ids_array`) give what transformers' padded
    call gives, truncation (longest_first, both sides of a pair) included, and the backend's
    truncation/padding state is left as it was."""
    rng = random.Random(3)
    vocab = [*COMMON, RARE, "!", "catdog"]

    def words(k: int) -> list[str]:
        return [rng.choice(vocab) for _ in range(k)]

    n, length = 40, 16
    if kind == "words":
        inputs = [words(rng.randint(0, 20)) for _ in range(n)]
        ref = tok(inputs, is_split_into_words=True, truncation=True, max_length=length,
                  padding="max_length", return_token_type_ids=True)  # fmt: skip
    else:
        a = [" ".join(words(rng.randint(1, 14))) for _ in range(n)]
        b = [" ".join(words(rng.randint(1, 14))) for _ in range(n)]
        args = (a, b) if kind == "pair" else (a,)
        inputs = list(zip(a, b)) if kind == "pair" else a
        ref = tok(*args, truncation=True, max_length=length, padding="max_length",
                  return_token_type_ids=True)  # fmt: skip
    tok.backend_tokenizer.enable_padding(length=7)
    before = (tok.backend_tokenizer.truncation, tok.backend_tokenizer.padding)
    encs = encode_unpadded(tok, inputs, length, pretokenized=kind == "words")
    assert (tok.backend_tokenizer.truncation, tok.backend_tokenizer.padding) == before
    tok.backend_tokenizer.no_padding()
    cols = padded_columns(encs, tok, length)
    assert any(len(e) == length for e in encs) and any(len(e) < length for e in encs)
    for c in ENCODER_COLUMNS:
        assert cols[c].tolist() == ref[c], c
    if kind == "words":
        wids = [[-1 if w is None else w for w in ref.word_ids(i)] for i in range(n)]
        assert word_ids_array(encs, length).tolist() == wids


def test_qa_windows_equal_the_padded_transformers_call(tok):
    """QA's unpadded windows (stride, only_second, overflow) are transformers' padded ones."""
    rng = random.Random(5)
    qs = [" ".join(rng.choice(COMMON) for _ in range(rng.randint(1, 5))) for _ in range(12)]
    cs = [" ".join(rng.choice([*COMMON, RARE]) for _ in range(rng.randint(1, 40))) for _ in qs]
    s = FeatureSettings(max_length=24)
    ref = tok(qs, cs, truncation="only_second", stride=4, return_overflowing_tokens=True,
              return_offsets_mapping=True, max_length=24, padding="max_length",
              return_token_type_ids=True)  # fmt: skip
    sample, cols, offsets, ctx = _pair_windows(tok, qs, cs, s, 4)
    assert len(sample) > len(qs)  # some contexts need several windows
    assert sample.tolist() == ref["overflow_to_sample_mapping"]
    for c in ENCODER_COLUMNS:
        assert cols[c].tolist() == ref[c], c
    assert offsets.tolist() == [[list(o) for o in row] for row in ref["offset_mapping"]]
    seq = [[x == 1 for x in ref.sequence_ids(i)] for i in range(len(sample))]
    assert ctx.tolist() == seq


# --------------------------------------------------------------------------- intent + slots


def test_intent_slots_columns_match_tagging_alignment(tok):
    labels = {"intent": ["alarm/set", "weather/find"], "slots": ["B-loc", "I-loc", "O"]}
    rec = {
        "id": "m1",
        "lang": "en",
        "tokens": ["the", RARE, "river", "bank"],
        "slots": ["O", "O", "B-loc", "I-loc"],
        "intent": "weather/find",
    }
    s = FeatureSettings(max_length=16)
    task = get_task_type("intent_slots")
    f = task.featurize(ds([rec]), tok, labels, s, True)
    assert set(task.model_columns(True)) == {
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "intent_labels",
        "labels",
    }
    assert set(task.model_columns(True)) <= set(f.column_names)
    assert f["intent_labels"] == [1]
    tag_rec = {"id": "m1", "lang": "en", "tokens": rec["tokens"], "tags": rec["slots"]}
    t = get_task_type("tagging").featurize(ds([tag_rec]), tok, {"tags": labels["slots"]}, s, True)
    assert f[0]["labels"] == t[0]["labels"]
    assert f[0]["word_ids"] == t[0]["word_ids"]
    # slot 'B-loc' (0) sits at the first sub-token of word 2
    assert f[0]["labels"][f[0]["word_ids"].index(2)] == 0

    slot_logits = np.zeros((1, 16, 3), dtype=np.float32)
    slot_logits[0, :, 2] = 1.0  # O everywhere ...
    first = {w: f[0]["word_ids"].index(w) for w in range(4)}
    slot_logits[0, first[2], 0] = 5.0  # ... but B-loc on "river", I-loc on "bank"
    slot_logits[0, first[3], 1] = 3.0
    crf = {
        "crf_start": np.zeros((1, 3)),
        "crf_end": np.zeros((1, 3)),
        "crf_trans": np.zeros((1, 3, 3)),
    }
    out = {"intent_logits": np.array([[0.0, 1.0]]), "slot_logits": slot_logits, **crf}
    pred = task.decode(ds([rec]), f, out, labels, s)
    assert pred == {"m1": {"intent": "weather/find", "slots": ["O", "O", "B-loc", "I-loc"]}}
    # decoding is Viterbi over the first sub-tokens: a forbidden B-loc -> I-loc transition
    # turns "bank" into O although its emission prefers I-loc
    crf["crf_trans"][0, 0, 1] = -100.0
    pred = task.decode(ds([rec]), f, {**out, **crf}, labels, s)
    assert pred["m1"]["slots"] == ["O", "O", "B-loc", "O"]


# --------------------------------------------------------------------------- QA


CONTEXT = " ".join(
    ["the cat sat on the mat by the river bank"] * 2
    + ["a big red dog ran"]
    + ["and the small dog sat under the mat"] * 2
)


def qa_records(
    answer: str, occurrence_start: int, question: str = "where was the dog"
) -> datasets.Dataset:
    return ds(
        [
            {
                "id": "q1",
                "lang": "en",
                "context": CONTEXT,
                "question": question,
                "answers": {"text": [answer], "answer_start": [occurrence_start]},
            }
        ]
    )


def test_qa_positions_map_back_to_answer_text(tok):
    start = CONTEXT.index("big red dog")
    recs = qa_records("big red dog", start)
    s = FeatureSettings(max_length=96, doc_stride=16, max_query_length=8)
    qa = get_task_type("qa")
    train = qa.featurize(recs, tok, {}, s, True)
    assert len(train) == 1
    evalf = qa.featurize(recs, tok, {}, s, False)
    off = evalf[0]["offset_mapping"]
    sp, ep = train[0]["start_positions"], train[0]["end_positions"]
    assert 0 < sp <= ep
    assert CONTEXT[off[sp][0] : off[ep][1]] == "big red dog"
    assert tok.convert_ids_to_tokens(train[0]["input_ids"][sp : ep + 1]) == ["big", "red", "dog"]
    # offsets are [-1, -1] on [CLS], the question and its [SEP]
    n_q = len(tok.tokenize("where was the dog"))
    assert off[: n_q + 2] == [[-1, -1]] * (n_q + 2)
    assert qa.model_columns(True) == [
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "start_positions",
        "end_positions",
    ]
    assert set(qa.model_columns(False)) <= set(evalf.column_names)
    assert "start_positions" not in evalf.column_names


def test_qa_question_truncated_to_max_query_length(tok):
    long_q = "where " + " ".join(["the big red dog"] * 10)
    recs = qa_records("big red dog", CONTEXT.index("big red dog"), question=long_q)
    s = FeatureSettings(max_length=64, doc_stride=16, max_query_length=6)
    f = get_task_type("qa").featurize(recs, tok, {}, s, True)
    toks = tok.convert_ids_to_tokens(f[0]["input_ids"])
    assert toks.index("[SEP]") == 1 + 6
    assert toks[1:7] == tok.tokenize(long_q)[:6]


@pytest.mark.parametrize("mode", ["overlap", "step"])
def test_qa_long_context_windows(tok, mode):
    s = FeatureSettings(max_length=32, doc_stride=8, max_query_length=6, doc_stride_mode=mode)
    qa = get_task_type("qa")
    n_ctx = len(tok.tokenize(CONTEXT))
    # the question (7 sub-tokens) is cut to max_query_length
    budget = 32 - 3 - min(len(tok.tokenize("where was the dog")), s.max_query_length)
    # every window after the first advances by budget - stride ("overlap") or stride ("step")
    advance = budget - s.doc_stride if mode == "overlap" else s.doc_stride
    n_windows = 1 + -(-(n_ctx - budget) // advance)
    recs = qa_records("big red dog", CONTEXT.index("big red dog"))
    evalf = qa.featurize(recs, tok, {}, s, False)
    train = qa.featurize(recs, tok, {}, s, True)
    assert len(evalf) == len(train) == n_windows >= 3
    assert evalf["example_id"] == ["q1"] * n_windows
    # consecutive windows share exactly budget - advance context tokens (doc_stride in "overlap")
    spans = [[o for o in row if o[0] >= 0] for row in evalf["offset_mapping"]]
    shared = budget - advance
    assert len(spans[-1]) <= budget
    for a, b in zip(spans, spans[1:]):
        assert len(a) == budget
        assert a[-shared:] == b[:shared] and a[advance] == b[0]
    # every answer position (each word of the context as the answer) against every window
    pos = 0
    for word in CONTEXT.split():
        start = CONTEXT.index(word, pos)
        pos = start + len(word)
        end = start + len(word)
        train = qa.featurize(qa_records(word, start), tok, {}, s, True)
        hits = 0
        for ctx_offs, row, full in zip(spans, train, evalf["offset_mapping"]):
            inside = ctx_offs[0][0] <= start and ctx_offs[-1][1] >= end
            sp, ep = row["start_positions"], row["end_positions"]
            if inside:
                hits += 1
                assert CONTEXT[full[sp][0] : full[ep][1]] == word
            else:
                assert (sp, ep) == (0, 0)
        assert hits >= 1


@pytest.mark.parametrize("mode", ["overlap", "step"])
def test_qa_decode_across_windows_and_max_answer_length(tok, mode):
    s = FeatureSettings(
        max_length=32,
        doc_stride=8,
        max_query_length=6,
        max_answer_length=3,
        n_best=5,
        doc_stride_mode=mode,
    )
    qa = get_task_type("qa")
    recs = qa_records("big red dog", CONTEXT.index("big red dog"))
    f = qa.featurize(recs, tok, {}, s, False)
    offs = np.array(f["offset_mapping"])
    n, t = len(f), 32
    start = np.zeros((n, t), dtype=np.float32)
    end = np.zeros((n, t), dtype=np.float32)
    ctx0 = [i for i in range(t) if offs[0, i, 0] >= 0]
    ctx1 = [i for i in range(t) if offs[1, i, 0] >= 0]
    # window 0: a 2-token span scoring 6; window 1: a 3-token span scoring 8 (wins)
    start[0, ctx0[2]], end[0, ctx0[3]] = 3.0, 3.0
    start[1, ctx1[4]], end[1, ctx1[6]] = 4.0, 4.0
    # distractors: highest start logit on a question token; a 5-token span scoring 20
    start[1, 1] = 50.0
    start[0, ctx0[5]], end[0, ctx0[9]] = 10.0, 10.0
    pred = qa.decode(recs, f, {"start_logits": start, "end_logits": end}, {}, s)
    want = CONTEXT[offs[1, ctx1[4], 0] : offs[1, ctx1[6], 1]]
    assert pred == {"q1": want}
    # with max_answer_length 5 the long span wins
    s5 = FeatureSettings(
        max_length=32,
        doc_stride=8,
        max_query_length=6,
        max_answer_length=5,
        n_best=5,
        doc_stride_mode=mode,
    )
    pred5 = qa.decode(recs, f, {"start_logits": start, "end_logits": end}, {}, s5)
    assert pred5["q1"] == CONTEXT[offs[0, ctx0[5], 0] : offs[0, ctx0[9], 1]]


def test_best_span_none_and_end_before_start():
    offs = np.array([[-1, -1], [0, 3], [4, 7], [-1, -1]])
    # n_best=2 keeps starts (2, 3) and ends (3, 1): a special token, or end before start
    assert best_span(np.array([0, 0, 9, 0.0]), np.array([0, 9, 0, 9.0]), offs, 2, 30) is None
    assert best_span(np.array([0, 0, 9, 0.0]), np.array([0, 9, 0, 9.0]), offs, 3, 30) == (9.0, 4, 7)
    assert best_span(np.array([0, 9, 0, 0.0]), np.array([0, 0, 9, 0.0]), offs, 20, 30) == (
        18.0,
        0,
        7,
    )


def test_qa_decode_empty_when_nothing_valid(tok):
    s = FeatureSettings(max_length=96, doc_stride=16, max_query_length=8, n_best=1)
    qa = get_task_type("qa")
    recs = qa_records("big red dog", CONTEXT.index("big red dog"))
    f = qa.featurize(recs, tok, {}, s, False)
    start = np.zeros((1, 96), dtype=np.float32)
    end = np.zeros((1, 96), dtype=np.float32)
    start[0, 0] = end[0, 0] = 5.0  # n_best=1: only [CLS] is considered, which is not context
    assert qa.decode(recs, f, {"start_logits": start, "end_logits": end}, {}, s) == {"q1": ""}


@pytest.mark.parametrize("mode", ["overlap", "step"])
def test_qa_batched_equals_one_by_one(tok, mode):
    rows = []
    for i, word in enumerate(["cat", "river", "dog", "mat", "bank"]):
        st = CONTEXT.index(word)
        rows.append(
            {
                "id": f"q{i}",
                "lang": "en",
                "context": CONTEXT[: 60 + 40 * i],
                # questions of 2, 4, 6, 6 (cut) and 2 sub-tokens: "step" groups them by length
                "question": f"  which {word}" + " big red" * min(i, 3) * (i < 4),
                "answers": {"text": [word], "answer_start": [st]},
            }
        )
    s = FeatureSettings(max_length=32, doc_stride=8, max_query_length=6, doc_stride_mode=mode)
    qa = get_task_type("qa")
    for train in (True, False):
        together = qa.featurize(ds(rows), tok, {}, s, train).to_list()
        apart = [r for row in rows for r in qa.featurize(ds([row]), tok, {}, s, train).to_list()]
        assert together == apart


def test_qa_settings_too_tight(tok):
    s = FeatureSettings(max_length=40, doc_stride=30, max_query_length=8)
    with pytest.raises(PipelineError, match="doc_stride"):
        get_task_type("qa").featurize(qa_records("cat", 4), tok, {}, s, True)


WINDOW_QUESTION = "was the big dog"  # 4 sub-tokens


def long_context() -> str:
    """100 words of COMMON, each one sub-token: 100 context tokens."""
    rng = random.Random(1)
    return " ".join(rng.choice(COMMON) for _ in range(100))


def window_starts(tok, context: str, features: datasets.Dataset) -> list[tuple[int, int]]:
    """(first context token index, context token count) of each eval window."""
    enc = tok(context, add_special_tokens=False, return_offsets_mapping=True)
    index = {tuple(o): i for i, o in enumerate(enc["offset_mapping"])}
    out = []
    for row in features["offset_mapping"]:
        ctx = [tuple(o) for o in row if o[0] != NO_OFFSET]
        first = index[ctx[0]]
        assert [index[o] for o in ctx] == list(range(first, first + len(ctx)))  # contiguous
        out.append((first, len(ctx)))
    return out


@pytest.mark.parametrize(
    ("mode", "starts"),
    [
        # budget 40 - 4 (question) - 3 (special) = 33 context tokens per window
        ("overlap", [0, 23, 46, 69]),  # advance 33 - 10; 69 + 33 >= 100 ends it
        ("step", [0, 10, 20, 30, 40, 50, 60, 70]),  # advance 10; 70 + 33 >= 100 ends it
    ],
)
def test_qa_window_starts_by_hand(tok, mode, starts):
    context = long_context()
    assert len(tok.tokenize(context)) == 100 and len(tok.tokenize(WINDOW_QUESTION)) == 4
    s = FeatureSettings(max_length=40, doc_stride=10, max_query_length=8, doc_stride_mode=mode)
    qa = get_task_type("qa")
    rec = {
        "id": "w",
        "lang": "en",
        "context": context,
        "question": WINDOW_QUESTION,
        "answers": {"text": [], "answer_start": []},
    }
    evalf = qa.featurize(ds([rec]), tok, {}, s, False)
    assert window_starts(tok, context, evalf) == [(b, min(33, 100 - b)) for b in starts]
    # every context token (0-based index k) as the answer: labelled in exactly the windows that
    # hold it, at its own position; elsewhere (0, 0)
    words = context.split()
    char_start = [len(" ".join(words[:k])) + (k > 0) for k in range(100)]
    for k in (0, 9, 10, 22, 23, 33, 45, 69, 70, 99):
        rec_k = {**rec, "answers": {"text": [words[k]], "answer_start": [char_start[k]]}}
        train = qa.featurize(ds([rec_k]), tok, {}, s, True)
        assert len(train) == len(starts)
        for b, row, full in zip(starts, train, evalf["offset_mapping"]):
            sp, ep = row["start_positions"], row["end_positions"]
            if b <= k < b + 33:
                assert sp == ep == 1 + 4 + 1 + (k - b)  # [CLS] question [SEP] context...
                assert context[full[sp][0] : full[ep][1]] == words[k]
            else:
                assert (sp, ep) == (0, 0)


def test_qa_step_mode_windows_may_touch(tok):
    """ "step" with doc_stride == the context budget: windows tile the context, no overlap."""
    context = long_context()
    s = FeatureSettings(max_length=40, doc_stride=33, max_query_length=4, doc_stride_mode="step")
    rec = {
        "id": "w",
        "lang": "en",
        "context": context,
        "question": WINDOW_QUESTION,
        "answers": {"text": [], "answer_start": []},
    }
    f = get_task_type("qa").featurize(ds([rec]), tok, {}, s, False)
    assert window_starts(tok, context, f) == [(0, 33), (33, 33), (66, 33), (99, 1)]
    with pytest.raises(PipelineError, match="more than doc_stride=33"):
        get_task_type("qa").featurize(
            ds([rec]),
            tok,
            {},
            FeatureSettings(max_length=40, doc_stride=33, max_query_length=4),
            False,
        )
    with pytest.raises(PipelineError, match="at least doc_stride=34"):
        get_task_type("qa").featurize(
            ds([rec]), tok, {}, dataclasses.replace(s, doc_stride=34), False
        )


def test_qa_default_mode_is_overlap_and_features_unchanged(tok):
    """A config without doc_stride_mode gives "overlap": one Hugging Face call with
    stride=doc_stride, exactly today's features."""
    cfg = {"max_length": 40, "doc_stride": 10, "max_query_length": 8, "max_answer_length": 30}
    cfg["n_best"] = 20
    tfs = TaskFeatureSettings.from_config({**cfg, "tasks": {"qa": {"max_length": 48}}})
    s = tfs.for_task("qa")
    assert s.doc_stride_mode == tfs.default.doc_stride_mode == "overlap"
    assert s == FeatureSettings(**{**cfg, "max_length": 48})
    rows = [
        {
            "id": f"r{i}",
            "lang": "en",
            "context": long_context()[: 150 + 120 * i],
            "question": WINDOW_QUESTION + " big" * i,
            "answers": {"text": ["the"], "answer_start": [0]},
        }
        for i in range(3)
    ]
    qa = get_task_type("qa")
    evalf = qa.featurize(ds(rows), tok, {}, s, False)
    enc = tok(
        [r["question"] for r in rows],
        [r["context"] for r in rows],
        truncation="only_second",
        max_length=48,
        stride=10,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
        return_token_type_ids=True,
    )
    assert len(evalf) == len(enc["input_ids"]) > 3
    for c in ("input_ids", "attention_mask", "token_type_ids"):
        assert evalf[c] == enc[c]
    want = [
        [list(o) if seq == 1 else [NO_OFFSET, NO_OFFSET] for o, seq in zip(offs, e.sequence_ids)]
        for offs, e in zip(enc["offset_mapping"], enc.encodings)
    ]
    assert evalf["offset_mapping"] == want
    assert evalf["example_id"] == [rows[j]["id"] for j in enc["overflow_to_sample_mapping"]]
    # per task: qa steps, the others keep the default
    per = TaskFeatureSettings.from_config({**cfg, "tasks": {"qa": {"doc_stride_mode": "step"}}})
    assert per.for_task("qa").doc_stride_mode == "step"
    assert per.for_task("nli").doc_stride_mode == "overlap"
    step = qa.featurize(ds(rows), tok, {}, per.for_task("qa"), False)
    assert len(step) > len(qa.featurize(ds(rows), tok, {}, per.default, False))


def test_doc_stride_mode_unknown_is_error():
    with pytest.raises(PipelineError, match="doc_stride_mode"):
        FeatureSettings(doc_stride_mode="stride")


# --------------------------------------------------------------------------- heads and losses


def _batch(features: datasets.Dataset, cols: list[str]) -> dict[str, torch.Tensor]:
    return dict(features.with_format("torch", columns=cols)[:])


@pytest.mark.parametrize("type_name", ["pair", "single", "tagging", "qa", "intent_slots"])
def test_heads_shapes_losses_finite_and_backprop(tok, type_name):
    s = FeatureSettings(max_length=32, doc_stride=8, max_query_length=6)
    task = get_task_type(type_name)
    rows, labels = {
        "pair": (
            [
                {"id": f"{i}", "lang": "en", "text_a": "the cat", "text_b": "a dog", "label": "b"}
                for i in range(3)
            ],
            {"label": ["a", "b"]},
        ),
        "single": (
            [{"id": f"{i}", "lang": "en", "text": "the cat", "label": "a"} for i in range(3)],
            {"label": ["a", "b", "c"]},
        ),
        "tagging": (
            [
                {"id": f"{i}", "lang": "en", "tokens": ["the", RARE], "tags": ["DET", "NOUN"]}
                for i in range(3)
            ],
            POS,
        ),
        "qa": (qa_records("big red dog", CONTEXT.index("big red dog")).to_list(), {}),
        "intent_slots": (
            [
                {
                    "id": f"{i}",
                    "lang": "en",
                    "tokens": ["the", "river"],
                    "slots": ["O", "B-loc"],
                    "intent": "x",
                }
                for i in range(3)
            ],
            {"intent": ["x", "y"], "slots": ["B-loc", "O"]},
        ),
    }[type_name]
    f = task.featurize(ds(rows), tok, labels, s, True)
    batch = _batch(f, task.model_columns(True))
    b, t, h = len(f), 32, 8
    head = task.head(h, labels, dropout=0.1)
    hidden = torch.randn(b, t, h, requires_grad=True)
    out = head(hidden, batch["attention_mask"])
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    expected = {
        "pair": {"logits": (b, 2)},
        "single": {"logits": (b, 3)},
        "tagging": {"logits": (b, t, 3)},
        "qa": {"start_logits": (b, t), "end_logits": (b, t)},
        "intent_slots": {
            "intent_logits": (b, 2),
            "slot_logits": (b, t, 2),
            "crf_start": (b, 2),
            "crf_end": (b, 2),
            "crf_trans": (b, 2, 2),
        },
    }[type_name]
    assert shapes == expected
    loss = task.loss(out, batch)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert hidden.grad is not None and torch.isfinite(hidden.grad).all()
    assert hidden.grad.abs().sum() > 0
    assert all(p.grad is not None for p in head.parameters())


def test_qa_loss_ignores_positions_beyond_sequence():
    qa = get_task_type("qa")
    logits = torch.zeros(2, 4)
    logits[0, 1] = 10.0
    out = {"start_logits": logits, "end_logits": logits}
    inside = {"start_positions": torch.tensor([1, 1]), "end_positions": torch.tensor([1, 1])}
    outside = {"start_positions": torch.tensor([1, 9]), "end_positions": torch.tensor([1, 9])}
    # row 1 (uniform logits) costs log 4 when labelled; ignored when its positions are beyond T
    assert qa.loss(out, outside).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:1], torch.tensor([1])).item()
    )
    assert qa.loss(out, inside).item() > qa.loss(out, outside).item()


def test_intent_slots_loss_is_intent_ce_plus_crf_nll():
    """With zero CRF scores the chain factorizes: the CRF's −log p is the sum of per-token
    cross-entropies over the labelled (first sub-token) positions, averaged over sequences;
    a transition score changes it by exactly the hand-computed amount."""
    task = get_task_type("intent_slots")
    il, sl = torch.randn(2, 3), torch.randn(2, 4, 5)
    batch = {
        "intent_labels": torch.tensor([0, 2]),
        "labels": torch.tensor([[-100, 1, 4, -100]] * 2),
    }
    ce = torch.nn.functional.cross_entropy
    zero = {
        "crf_start": torch.zeros(2, 5),
        "crf_end": torch.zeros(2, 5),
        "crf_trans": torch.zeros(2, 5, 5),
    }
    token_ce = ce(sl[:, 1:3].reshape(-1, 5), torch.tensor([1, 4, 1, 4]), reduction="sum") / 2
    want = ce(il, batch["intent_labels"]) + token_ce
    got = task.loss({"intent_logits": il, "slot_logits": sl, **zero}, batch)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    # a transition score t on 1 -> 4: −log p changes by −t + log Σ_paths-normalizer change
    trans = torch.zeros(2, 5, 5)
    trans[:, 1, 4] = 2.0
    em = sl[:, 1:3]
    logz = torch.logsumexp(em[:, 0, :, None] + em[:, 1, None, :] + trans[0], dim=(1, 2))
    nll = (logz - (em[:, 0, 1] + em[:, 1, 4] + 2.0)).mean()
    got = task.loss({"intent_logits": il, "slot_logits": sl, **zero, "crf_trans": trans}, batch)
    assert got.item() == pytest.approx((ce(il, batch["intent_labels"]) + nll).item(), rel=1e-6)


# --------------------------------------------------------------------------- cache key


def test_feature_cache_key(tok):
    s = FeatureSettings()
    k = feature_cache_key(tok, s, "ner", NER, True)
    assert len(k) == 16
    # stable across tokenizer calls that change the backend's truncation/padding state
    tok(
        ["the cat"],
        ["a dog"],
        truncation="only_second",
        max_length=9,
        stride=2,
        padding="max_length",
    )
    assert feature_cache_key(tok, s, "ner", NER, True) == k
    others = {
        feature_cache_key(tok, FeatureSettings(max_length=64), "ner", NER, True),
        feature_cache_key(tok, s, "pos", NER, True),
        feature_cache_key(tok, s, "ner", POS, True),
        feature_cache_key(tok, s, "ner", NER, False),
        feature_cache_key(make_tokenizer(vocab_size=100), s, "ner", NER, True),
        feature_cache_key(tok, FeatureSettings(doc_stride_mode="step"), "ner", NER, True),
    }
    assert k not in others and len(others) == 6
    # the default mode leaves the key as it was before doc_stride_mode existed
    payload = {
        "version": FEATURIZER_VERSION,
        "tokenizer": tokenizer_fingerprint(tok),
        "settings": {
            "max_length": 128,
            "doc_stride": 64,
            "max_query_length": 32,
            "max_answer_length": 30,
            "n_best": 20,
        },
        "task": "qa",
        "labels": {},
        "train": True,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert feature_cache_key(tok, s, "qa", {}, True) == hashlib.sha256(blob).hexdigest()[:16]
    step = feature_cache_key(tok, FeatureSettings(doc_stride_mode="step"), "qa", {}, True)
    assert step != feature_cache_key(tok, s, "qa", {}, True)
