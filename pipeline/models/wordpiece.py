"""A deterministic WordPiece vocabulary learner.

`tokenizers`' WordPieceTrainer assigns ids (and breaks ties between equally frequent merges) in
the iteration order of Rust hash maps, which is randomised per process: the same corpus gives a
different vocabulary from run to run, and so different numbers downstream. This learner runs
the same algorithm — BPE merges over words split into a first character and `##`-continuations,
most frequent pair first — with every tie broken by the pair's strings, so the vocabulary is a
function of the corpus alone. It is meant for the tiny default encoder's small corpus; real runs
load a pretrained tokenizer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

PREFIX = "##"


def _split(word: str) -> tuple[str, ...]:
    return (word[0], *(PREFIX + c for c in word[1:]))


def _join(a: str, b: str) -> str:
    return a + b[len(PREFIX) :] if b.startswith(PREFIX) else a + b


def learn_vocab(
    words: Iterable[str], vocab_size: int, min_frequency: int, special_tokens: list[str]
) -> list[str]:
    """Special tokens, the alphabet (sorted), then merged pieces in merge order."""
    counts = Counter(w for w in words if w)
    splits = {w: _split(w) for w in sorted(counts)}
    alphabet = sorted({s for sp in splits.values() for s in sp})
    vocab = list(dict.fromkeys([*special_tokens, *alphabet]))
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[str]] = defaultdict(set)
    for w, sp in splits.items():
        for pair in zip(sp, sp[1:]):
            pairs[pair] += counts[w]
            where[pair].add(w)
    seen = set(vocab)
    while len(vocab) < vocab_size and pairs:
        # most frequent pair; ties broken by the strings (not by hash order)
        (a, b), n = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if n < min_frequency:
            break
        new = _join(a, b)
        if new not in seen:
            vocab.append(new)
            seen.add(new)
        for w in sorted(where.pop((a, b), ())):
            old = splits[w]
            for pair in zip(old, old[1:]):
                pairs[pair] -= counts[w]
                if pairs[pair] <= 0:
                    del pairs[pair]
            merged, i = [], 0
            while i < len(old):
                if i + 1 < len(old) and old[i] == a and old[i + 1] == b:
                    merged.append(new)
                    i += 2
                else:
                    merged.append(old[i])
                    i += 1
            splits[w] = tuple(merged)
            for pair in zip(merged, merged[1:]):
                pairs[pair] += counts[w]
                where[pair].add(w)
        pairs.pop((a, b), None)
    return vocab[:vocab_size]
