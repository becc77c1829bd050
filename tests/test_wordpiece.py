"""The deterministic WordPiece learner: hand-checked merges and byte-identical output across
processes with different hash seeds (the `tokenizers` trainer differs from run to run)."""

from __future__ import annotations

import subprocess
import sys

from pipeline.models.wordpiece import learn_vocab
from tests.conftest import REPO
from tests.e2e import env


def test_merges_by_hand():
    # "abab" x3, "ab" x2: pairs (a,##b)=3*2+2=8, (##b,##a)=3 -> first merge a##b -> "ab"
    vocab = learn_vocab(["abab"] * 3 + ["ab"] * 2, 100, 1, ["[UNK]"])
    assert vocab[:4] == ["[UNK]", "##a", "##b", "a"]
    assert vocab[4] == "ab"
    # then (ab, ##a)=3 is the best pair left -> "aba", then (aba, ##b)=3 -> "abab"
    assert vocab[5:] == ["aba", "abab"]


def test_ties_are_broken_by_strings_and_min_frequency_stops():
    vocab = learn_vocab(["xy", "uv"], 100, 1, [])
    assert vocab[-2:] == ["xy", "uv"]  # equal counts: the larger pair string first
    assert learn_vocab(["xy", "uv"], 100, 2, []) == ["##v", "##y", "u", "x"]


SCRIPT = """
import sys
from pipeline.models.encoder import train_tokenizer
texts = [f"w{i % 7} v{i % 5}ab q{i % 3}abc zz{i % 11}" for i in range(300)]
train_tokenizer(texts, 60, 1, sys.argv[1])
"""


def test_same_corpus_same_tokenizer_across_hash_seeds(tmp_path):
    outs = []
    for seed in ("1", "2"):
        e = env()
        e["PYTHONHASHSEED"] = seed
        out = tmp_path / f"tok{seed}"
        subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=REPO, env=e, check=True)
        outs.append((out / "tokenizer.json").read_bytes())
    assert outs[0] == outs[1]
