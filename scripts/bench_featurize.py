"""Featurization throughput: batched fast path vs per-example tokenization, same data, same run.

    python scripts/bench_featurize.py [--n-qa 2000] [--n-tagging 5000] [--repeats 3] [--json OUT]

Data and a WordPiece tokenizer (8k vocabulary) are generated here from a seed, so it runs offline.
Three measurements per task, in examples per second (best of --repeats):

* batched: `task.featurize` (Dataset.map, 1000 records per tokenizer call);
* per-example: the same featurizer code called with one record at a time (one tokenizer call per
  example in a Python loop), collected into a Dataset; its output is checked equal to batched;
* bare loop: only the tokenizer calls of a per-example path (no labels, no Dataset): a lower
  bound on the cost of any per-example featurizer.

It also reports which share of the batched time is spent inside tokenizer calls: that work is done
by both paths, so it bounds the achievable ratio (by the cores the Rust tokenizer can use).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datasets  # noqa: E402
from tokenizers import (  # noqa: E402
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast  # noqa: E402

from pipeline.tasks import FeatureSettings, get_task_type  # noqa: E402
from pipeline.tasks.qa import truncate_questions  # noqa: E402

QA_SETTINGS = FeatureSettings(max_length=384, doc_stride=128, max_query_length=64)
TAG_SETTINGS = FeatureSettings(max_length=128)
TAGS = ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]


def make_lexicon(rng: random.Random, n: int = 20000) -> list[str]:
    syl = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["an", "er", "in", "on", "st"]
    words = {
        "".join(rng.choice(syl) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))) for _ in range(n)
    }
    return sorted(words)


def sampler(rng: random.Random, lexicon: list[str]) -> Callable[[int], list[str]]:
    """Zipf-like word sampler: a few frequent words, a long tail that WordPiece splits."""
    weights = [1.0 / (r + 1) for r in range(len(lexicon))]

    def words(k: int) -> list[str]:
        return rng.choices(lexicon, weights=weights, k=k)

    return words


def make_tokenizer(texts: list[str], vocab_size: int = 8000) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def qa_records(rng: random.Random, words: Callable[[int], list[str]], n: int) -> list[dict]:
    rows = []
    for i in range(n):
        ctx_words = words(rng.randint(80, 400))  # some contexts need several 384-token windows
        a = rng.randrange(len(ctx_words) - 4)
        answer_words = ctx_words[a : a + rng.randint(1, 4)]
        context = " ".join(ctx_words)
        start = len(" ".join(ctx_words[:a])) + (1 if a else 0)
        answer = " ".join(answer_words)
        assert context[start : start + len(answer)] == answer
        rows.append(
            {
                "id": f"qa{i}",
                "lang": "xx",
                "context": context,
                "question": " ".join(words(rng.randint(5, 15))) + " ?",
                "answers": {"text": [answer], "answer_start": [start]},
            }
        )
    return rows


def tagging_records(rng: random.Random, words: Callable[[int], list[str]], n: int) -> list[dict]:
    rows = []
    for i in range(n):
        k = rng.randint(5, 40)  # PAN-X/UD sentence lengths
        rows.append(
            {"id": f"t{i}", "lang": "xx", "tokens": words(k), "tags": rng.choices(TAGS, k=k)}
        )
    return rows


class TimedTokenizer:
    """Forwards to a tokenizer and adds up the time spent in its __call__ (Rust work + transformers)."""

    def __init__(self, tokenizer) -> None:
        self._tok = tokenizer
        self.seconds = 0.0

    def __getattr__(self, name):
        return getattr(self._tok, name)

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._tok(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def per_example(task, rows, tokenizer, labels, settings, train, schema) -> datasets.Dataset:
    """The same featurizer, one record per tokenizer call, collected into a Dataset."""
    cols: dict[str, list] = {k: [] for k in schema}
    for row in rows:
        out = task.encode_batch(
            {k: [v] for k, v in row.items()}, tokenizer, labels, settings, train
        )
        for k in cols:
            cols[k].extend(list(out[k]))
    return datasets.Dataset.from_dict(cols, features=schema)


def bare_loop_qa(rows: list[dict], tokenizer, s: FeatureSettings) -> int:
    n = 0
    for row in rows:
        (q,) = truncate_questions(tokenizer, [row["question"].lstrip()], s.max_query_length)
        enc = tokenizer(
            q,
            row["context"],
            truncation="only_second",
            max_length=s.max_length,
            stride=s.doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length",
        )
        n += len(enc["input_ids"])
    return n


def bare_loop_tagging(rows: list[dict], tokenizer, s: FeatureSettings) -> int:
    n = 0
    for row in rows:
        enc = tokenizer(
            row["tokens"],
            is_split_into_words=True,
            truncation=True,
            max_length=s.max_length,
            padding="max_length",
        )
        n += len(enc.word_ids())
    return n


def bench(name, type_name, rows, tokenizer, labels, settings, repeats) -> dict:
    task = get_task_type(type_name)
    records = datasets.Dataset.from_list(rows)
    bare = bare_loop_qa if type_name == "qa" else bare_loop_tagging
    t_batched, feats = best_time(
        lambda: task.featurize(records, tokenizer, labels, settings, True), repeats
    )
    t_single, single = best_time(
        lambda: per_example(task, rows, tokenizer, labels, settings, True, feats.features), repeats
    )
    t_bare, _ = best_time(lambda: bare(rows, tokenizer, settings), repeats)
    if single.to_dict() != feats.to_dict():
        raise SystemExit(f"{name}: per-example features differ from batched features")
    timed = TimedTokenizer(tokenizer)
    t0 = time.perf_counter()
    task.featurize(records, timed, labels, settings, True)
    share = timed.seconds / (time.perf_counter() - t0)
    n = len(rows)
    return {
        "task": name,
        "examples": n,
        "features": len(feats),
        "batched_ex_per_s": n / t_batched,
        "per_example_ex_per_s": n / t_single,
        "bare_loop_ex_per_s": n / t_bare,
        "ratio_vs_per_example": t_single / t_batched,
        "ratio_vs_bare_loop": t_bare / t_batched,
        "batched_share_in_tokenizer_calls": share,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-qa", type=int, default=2000)
    ap.add_argument("--n-tagging", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    datasets.disable_progress_bars()
    rng = random.Random(args.seed)
    words = sampler(rng, make_lexicon(rng))
    tokenizer = make_tokenizer([" ".join(words(30)) for _ in range(20000)])
    qa_rows = qa_records(rng, words, args.n_qa)
    tag_rows = tagging_records(rng, words, args.n_tagging)

    results = [
        bench("qa", "qa", qa_rows, tokenizer, {}, QA_SETTINGS, args.repeats),
        bench(
            "tagging", "tagging", tag_rows, tokenizer, {"tags": TAGS}, TAG_SETTINGS, args.repeats
        ),
    ]
    env = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "(unset: on)"),
        "loadavg_1min": os.getloadavg()[0],
    }
    print(
        f"cpus={env['cpus']} loadavg={env['loadavg_1min']:.1f} vocab={tokenizer.vocab_size}  "
        f"qa: {QA_SETTINGS}  tagging: max_length={TAG_SETTINGS.max_length}"
    )
    head = f"{'task':8} {'examples':>8} {'features':>8} {'batched ex/s':>13} "
    head += f"{'per-example ex/s':>17} {'ratio':>6} {'bare-loop ex/s':>15} {'ratio':>6}"
    head += f" {'in tokenizer':>12}"
    print(head)
    for r in results:
        print(
            f"{r['task']:8} {r['examples']:>8} {r['features']:>8} {r['batched_ex_per_s']:>13.0f} "
            f"{r['per_example_ex_per_s']:>17.0f} {r['ratio_vs_per_example']:>5.1f}x "
            f"{r['bare_loop_ex_per_s']:>15.0f} {r['ratio_vs_bare_loop']:>5.1f}x"
            f" {100 * r['batched_share_in_tokenizer_calls']:>11.0f}%"
        )
    print(
        "in tokenizer: share of the batched time spent inside tokenizer calls. The batched path\n"
        "can beat a per-example loop by at most the per-call overhead it removes plus the\n"
        "tokenizer's own multi-core parallelism; the rest is tokenization work both must do."
    )
    if args.json:
        args.json.write_text(json.dumps({"env": env, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
