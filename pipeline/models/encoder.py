"""The tiny default encoder: a WordPiece tokenizer and a BERT pretrained by masked-LM.

Both are saved with `save_pretrained`, so every later stage loads them with
`AutoTokenizer.from_pretrained(path)` / `AutoModel.from_pretrained(path)` — the same call that
loads a hub name such as `bert-base-multilingual-cased` in real runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tqdm.auto import tqdm
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertTokenizerFast,
    DataCollatorForLanguageModeling,
)

from pipeline.checkpoint import (
    checkpoint_key,
    clear_checkpoint,
    load_checkpoint,
    path_fingerprint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pipeline.config import fingerprint
from pipeline.errors import TrainingError
from pipeline.io import atomic_dir
from pipeline.models.wordpiece import learn_vocab
from pipeline.optim import make_optimizer, make_scheduler
from pipeline.runtime.signals import Interrupted, sigterm_flag

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def finish_bert_tokenizer(tok: Tokenizer, lowercase: bool) -> BertTokenizerFast:
    """Add BERT's decoder and `[CLS] A [SEP] B [SEP]` template (segment ids 0/1) to a WordPiece
    tokenizer whose vocabulary holds SPECIAL_TOKENS, and wrap it for transformers."""
    tok.decoder = decoders.WordPiece()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, min_frequency: int, out: str | Path
) -> BertTokenizerFast:
    """Learn a cased BERT WordPiece vocabulary (deterministically) and save the tokenizer
    (atomically) with save_pretrained."""
    normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = (
        w
        for text in texts
        for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    )
    vocab = learn_vocab(words, vocab_size, min_frequency, SPECIAL_TOKENS)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    fast = finish_bert_tokenizer(tok, lowercase=False)
    with atomic_dir(out) as tmp:
        fast.save_pretrained(str(tmp))
    return fast


def build_config(tokenizer: Any, arch: dict[str, Any]) -> BertConfig:
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch["hidden_size"],
        num_hidden_layers=arch["num_hidden_layers"],
        num_attention_heads=arch["num_attention_heads"],
        intermediate_size=arch["intermediate_size"],
        max_position_embeddings=arch["max_position_embeddings"],
        hidden_dropout_prob=arch["dropout"],
        attention_probs_dropout_prob=arch["dropout"],
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )


def pack_segments(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> list[dict[str, list[int]]]:
    """Consecutive texts packed into BERT-style two-segment sequences of at most `max_length`
    tokens: `[CLS] A [SEP] B [SEP]`, A the first half of a run of consecutive sentences, B the
    rest (token type 1). Lines of a document stay together, so masked words can be recovered
    from the neighbouring sentence (as in BERT's pretraining on document chunks); a sentence
    longer than a sequence is truncated."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    budget = max_length - 3
    seqs: list[dict[str, list[int]]] = []

    def flush(chunk: list[list[int]]) -> None:
        half = max(1, len(chunk) // 2)
        a = [t for s in chunk[:half] for t in s][: max_length - 2]
        b = [t for s in chunk[half:] for t in s][: max(0, budget - len(a))]
        seq = [cls, *a, sep] + ([*b, sep] if b else [])
        types = [0] * (len(a) + 2) + [1] * (len(b) + 1 if b else 0)
        seqs.append({"input_ids": seq, "token_type_ids": types})

    chunk: list[list[int]] = []
    size = 0
    for s in ids:
        if chunk and size + len(s) > budget:
            flush(chunk)
            chunk, size = [], 0
        chunk.append(s)
        size += len(s)
    if chunk:
        flush(chunk)
    return seqs


def _mlm_batches(
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int,
    max_length: int,
    seed: int,
    pack: bool = False,
) -> Iterable[list[dict[str, list[int]]]]:
    """Endless shuffled batches of tokenized sentences (or, with `pack`, of packed sentence
    pairs, see `pack_segments`); epoch e uses permutation(seed + e)."""
    if pack:
        seqs = pack_segments(tokenizer, texts, max_length)
    else:
        enc = tokenizer(list(texts), truncation=True, max_length=max_length)
        seqs = [{"input_ids": x} for x in enc["input_ids"]]
    n = len(seqs)
    epoch = 0
    while True:
        g = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g).tolist()
        for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            idx = order[i : i + batch_size]
            yield [seqs[j] for j in idx]
        epoch += 1


def pretrain_mlm(
    tokenizer_dir: str | Path,
    texts: Sequence[str],
    arch: dict[str, Any],
    cfg: dict[str, Any],
    seed: int,
    out: str | Path,
    checkpoint_dir: str | Path,
    pack: bool = False,
) -> dict[str, Any]:
    """Masked-LM pretraining for cfg['steps'] steps; resumes from `checkpoint_dir`.

    `pack`: train on consecutive texts packed into two-segment sequences (`pack_segments`, for
    running text such as `pipeline.corpus.text_corpus`) instead of one text per sequence.

    Returns the loss history. The final model and the tokenizer go to `out` (atomically).
    """
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = BertForMaskedLM(build_config(tokenizer, arch))
    opt = make_optimizer(model, lr=cfg["lr"], weight_decay=0.01)
    sched = make_scheduler(opt, cfg["warmup_steps"], cfg["steps"], "linear")
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=cfg["mlm_probability"], return_tensors="pt"
    )
    key = fingerprint(
        {
            "arch": arch,
            "cfg": cfg,
            "seed": seed,
            "pack": pack,
            "texts": fingerprint(texts),
            "tokenizer": path_fingerprint(tokenizer_dir),
        }
    )
    step, history = 0, []
    if checkpoint_key(checkpoint_dir) == key:  # a checkpoint of another config is ignored
        state, _ = load_checkpoint(checkpoint_dir, model)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        step, history = state["step"], state["history"]
        log.info("resuming MLM pretraining at step %d", step)
    batches = _mlm_batches(tokenizer, texts, cfg["batch_size"], cfg["max_length"], seed, pack)
    for _ in range(step):  # fast-forward the data stream (cheap: index arithmetic only)
        next(batches)
    model.train()
    bar = tqdm(total=cfg["steps"], initial=step, desc="MLM pretraining", unit="step")

    def checkpoint() -> None:
        save_checkpoint(
            checkpoint_dir,
            model,
            {
                "key": key,
                "step": step,
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": rng_state(),
                "history": history,
            },
        )

    with sigterm_flag() as term:
        while step < cfg["steps"]:
            step = _pretrain_step(model, opt, sched, collator(next(batches)), step, history)
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['mlm_loss']:.3f}")
            if term["set"]:  # preempted: keep this step's work, then stop
                checkpoint()
                raise Interrupted(
                    f"MLM pretraining: SIGTERM at step {step}: checkpoint written to "
                    f"{checkpoint_dir}; rerun to resume"
                )
            if step % cfg["checkpoint_every"] == 0 and step < cfg["steps"]:
                checkpoint()
    bar.close()
    with atomic_dir(out) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    clear_checkpoint(checkpoint_dir)
    return {"history": history}


def _pretrain_step(
    model: Any, opt: Any, sched: Any, batch: dict[str, Any], step: int, history: list
) -> int:
    """One MLM step; a non-finite loss stops before the update reaches any checkpoint."""
    loss = model(**batch).loss
    if not math.isfinite(loss.item()):
        raise TrainingError(f"MLM pretraining: loss is {loss.item()} at step {step + 1}")
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    history.append({"step": step + 1, "mlm_loss": loss.item()})
    return step + 1
