"""Text for the tiny encoder (pipeline/corpus.py): unlabelled running text of every language."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.corpus import text_corpus
from pipeline.errors import DataError


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_text_corpus_reads_folders_in_order_and_files_sorted(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a / "text" / "l1.txt", "Ana met Bo.\n\nBo left.\n")
    _write(a / "text" / "l0.txt", "  First line.  \n\n\nSecond line.\n")
    _write(a / "text" / "notes.md", "not text\n")  # only *.txt
    _write(b / "text" / "l0.txt", "From b.")  # no final newline
    _write(a / "xnli" / "xnli.dev.tsv", "task data is not text\n")
    got = list(text_corpus([b, a]))
    assert got == ["From b.", "First line.", "Second line.", "Ana met Bo.", "Bo left."]
    assert list(text_corpus([str(a)])) == got[1:]  # str paths too


def test_text_corpus_without_text_names_the_folders(tmp_path):
    (tmp_path / "raw" / "text").mkdir(parents=True)
    with pytest.raises(DataError, match=r"raw/text, .*other/text: no unlabelled text") as e:
        text_corpus([tmp_path / "raw", tmp_path / "other"])  # raises at the call
    assert "\n" not in str(e.value)
    with pytest.raises(DataError):
        text_corpus([])


def test_text_corpus_of_the_synthetic_benchmark_covers_every_language(tmp_path):
    from pipeline.data.synthetic import generate

    m = generate(
        tmp_path / "raw", languages=3, scale=0.1, eval_size=5, text_sentences=40, verbose=False
    )
    lines = list(text_corpus([tmp_path / "raw"]))
    assert len(lines) == 40 * len(m["languages"]) and all(lines)
    per_file = [
        (tmp_path / "raw" / rel).read_text(encoding="utf-8").split("\n")
        for rel in sorted(m["text"]["files"].values())
    ]
    assert lines == [x for f in per_file for x in f if x]


def test_pack_segments_keeps_consecutive_sentences_together(tmp_path):
    from pipeline.models.encoder import pack_segments, train_tokenizer

    texts = [f"Ana met Bo in Riga {i}." for i in range(30)] + ["Bo " * 80]
    tok = train_tokenizer(texts, vocab_size=120, min_frequency=1, out=tmp_path / "tok")
    seqs = pack_segments(tok, texts, max_length=32)
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    flat = [t for s in ids[:-1] for t in s]
    got: list[int] = []
    for s in seqs:
        x, types = s["input_ids"], s["token_type_ids"]
        assert len(x) == len(types) <= 32 and x[0] == tok.cls_token_id and x[-1] == tok.sep_token_id
        assert x.count(tok.sep_token_id) in (1, 2) and types == sorted(types)
        got += [t for t in x if t not in (tok.cls_token_id, tok.sep_token_id)]
    assert len(seqs) > 5 and any(1 in s["token_type_ids"] for s in seqs)
    assert got[: len(flat)] == flat  # every sentence, in order; the overlong one truncated
