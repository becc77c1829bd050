"""Catastrophic forgetting (Lee et al. 2022 §4.2, Figure 5): how far training moved an encoder
from what it learned in pretraining.

Two measures per trained run, against the pretrained encoder θ₀:

* the masked-LM loss on held-out text, per language, of the languages the run trained on
  (seen) and of the others (unseen). The paper masks CC-100 sentences (Wenzek et al. 2020) and
  computes the reconstruction loss of the fine-tuned BERT: fine-tuning drops the MLM head, so the
  head comes from the pretrained model (`set_encoder`: the trained encoder's weights go into a
  copy of the pretrained BertForMaskedLM, whose head, i.e. its transform and output bias, stays
  pretrained; the output matrix is tied to the word embeddings in BERT, so it is the evaluated
  encoder's own). Before training (the pretrained model itself) and after training use the
  same head and the same masked inputs, so the difference is the encoder's alone.
* the l2 distance ‖θ − θ₀‖₂ over the encoder parameters the two models share (`l2_distance`):
  embeddings, every layer; not the task heads (they have no θ₀) and not BERT's pooler (absent
  from BertForMaskedLM, so no pretrained value to compare with); summed in float64.

Pure functions on models, tokenizers and lists of sentences, besides reading the held-out text
files (`heldout_files`, `read_sentences`); the step (pipeline.steps.forgetting) loads the
models and writes the JSON.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from pipeline.errors import DataError, PipelineError

#: the label of unmasked positions (ignored by the loss, as in transformers)
IGNORE = -100


# ---------------------------------------------------------------------------------------------
# Held-out text


def heldout_files(folder: str | Path) -> dict[str, Path]:
    """{lang: <folder>/<lang>.txt} of every held-out text file, sorted by language."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no held-out text folder (forgetting.text)")
    files = {p.stem: p for p in sorted(folder.glob("*.txt"))}
    if not files:
        raise DataError(f"{folder}: no held-out text files (<lang>.txt) (forgetting.text)")
    return files


def read_sentences(path: str | Path, n: int) -> list[str]:
    """The first `n` non-empty lines of `path`, stripped, in file order (blank lines, e.g.
    between CC-100's documents, are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no held-out text for language {path.stem!r} (forgetting.text)")
    out: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(line)
                if len(out) == n:
                    break
    if not out:
        raise DataError(f"{path}: no sentence in the held-out text of {path.stem!r}")
    return out


def text_digest(sentences: Sequence[str]) -> str:
    """sha256 of the sentences scored (so a per-run result can check it used the same text)."""
    return hashlib.sha256("\n".join(sentences).encode("utf-8")).hexdigest()


def language_split(train_langs: Iterable[str], available: Iterable[str]) -> tuple[list, list]:
    """(seen, unseen): the run's training languages, and every other language with text."""
    seen = sorted(set(train_langs))
    return seen, sorted(set(available) - set(seen))


# ---------------------------------------------------------------------------------------------
# Masking


@dataclass(frozen=True)
class Masked:
    """Tokenized sentences with BERT's masking applied: `input_ids` (special tokens included)
    and `labels` (the original token at each masked position, IGNORE elsewhere)."""

    input_ids: list[list[int]]
    labels: list[list[int]]

    @property
    def n_masked(self) -> int:
        return sum(1 for row in self.labels for t in row if t != IGNORE)


def language_seed(seed: int, lang: str) -> list[int]:
    """The masking seed of one language: its masks do not depend on which others are scored."""
    return [int(seed), zlib.crc32(lang.encode("utf-8"))]


def mask_sentences(
    tokenizer: Any,
    sentences: Sequence[str],
    mlm_probability: float = 0.15,
    max_length: int = 128,
    seed: int | Sequence[int] = 0,
) -> Masked:
    """Mask `sentences` deterministically, with BERT's rule.

    Per sentence (truncated to `max_length` tokens, [CLS] and [SEP] included), max(1,
    round(n·p)) of its n maskable tokens (every token but the special ones, [UNK] among them)
    are picked without replacement, as BERT's create_pretraining_data picks them (a fixed count,
    so every sentence is scored); each picked token becomes [MASK] with probability 0.8, a random
    non-special token with 0.1, and stays itself with 0.1; the loss is read at all picked ones.

    Why a fixed seed: the loss of a model on randomly masked text varies with the masks; with
    masks drawn anew per model, a difference between two models (or between a model and the
    pretrained one) would mix in masking noise. Drawn from `seed` alone (numpy's generator, in
    sentence order), the masks depend only on the tokenizer, the sentences and the seed, so EVERY
    model, the pretrained one included, is scored on exactly the same masked inputs and
    differences are the models' own.
    """
    if not 0 < mlm_probability <= 1:
        raise PipelineError(f"mlm_probability: expected a number in (0, 1], got {mlm_probability}")
    mask_id = tokenizer.mask_token_id
    if mask_id is None:
        raise PipelineError(f"{type(tokenizer).__name__}: the tokenizer has no mask token")
    special = set(tokenizer.all_special_ids)
    vocab = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
    rng = np.random.default_rng(seed)
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length)["input_ids"]
    inputs, labels = [], []
    for ids in enc:
        ids = list(ids)
        lab = [IGNORE] * len(ids)
        cand = [i for i, t in enumerate(ids) if t not in special]
        if cand:
            k = max(1, int(round(len(cand) * mlm_probability)))
            for pos in sorted(rng.choice(cand, size=k, replace=False).tolist()):
                lab[pos] = ids[pos]
                r = rng.random()
                if r < 0.8:
                    ids[pos] = mask_id
                elif r < 0.9:
                    ids[pos] = int(vocab[rng.integers(len(vocab))])
        inputs.append(ids)
        labels.append(lab)
    return Masked(inputs, labels)


# ---------------------------------------------------------------------------------------------
# Models


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_mlm(name_or_path: str | Path) -> tuple[nn.Module, Any]:
    """The pretrained masked-LM (BertForMaskedLM: the tiny local encoder, or a hub name such as
    bert-base-multilingual-cased) and its tokenizer, in eval mode; its MLM head must be in the
    checkpoint (a head initialized at random would make the losses meaningless)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model, info = AutoModelForMaskedLM.from_pretrained(str(name_or_path), output_loading_info=True)
    base = model.base_model_prefix
    missing = set(info.get("missing_keys", ()))
    params = dict(model.named_parameters(remove_duplicate=False))
    aliases: dict[int, set[str]] = {}
    for k, p in params.items():  # a tied weight (BERT's decoder) is loaded with its twin
        aliases.setdefault(p.data_ptr(), set()).add(k)
    fresh = sorted(
        k
        for k in missing
        if k in params and not k.startswith(f"{base}.") and aliases[params[k].data_ptr()] <= missing
    )
    if fresh:
        raise PipelineError(
            f"{name_or_path}: the checkpoint has no pretrained MLM head ({', '.join(fresh[:3])} "
            "would be initialized at random); the forgetting analysis needs one"
        )
    return model.eval(), AutoTokenizer.from_pretrained(str(name_or_path))


def mlm_head(model: nn.Module) -> nn.Module:
    """The MLM head of a masked-LM (`cls` of BERT, `lm_head` of RoBERTa/XLM-R)."""
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if head is not None:
            return head
    raise PipelineError(f"{type(model).__name__}: no MLM head (cls / lm_head) found")


def set_encoder(mlm: nn.Module, encoder: nn.Module) -> list[str]:
    """Copy a trained encoder's weights into the encoder of masked-LM `mlm` (in place); its
    head keeps the pretrained weights. Every encoder weight of `mlm` must be provided; the
    encoder's extra ones (BERT's pooler) are left out and returned."""
    target = mlm.base_model
    want = target.state_dict()
    have = encoder.state_dict()
    params = {n for n, _ in target.named_parameters()}
    missing = sorted(params - set(have))
    if missing:
        raise PipelineError(
            f"the trained encoder lacks {len(missing)} weights of the pretrained one "
            f"({', '.join(missing[:3])}): not the same architecture"
        )
    for k in want.keys() & have.keys():
        if want[k].shape != have[k].shape:
            raise PipelineError(f"{k}: shape {tuple(have[k].shape)} != {tuple(want[k].shape)}")
    target.load_state_dict({k: v for k, v in have.items() if k in want}, strict=False)
    return sorted(set(have) - set(want))


def l2_distance(encoder: nn.Module, reference: nn.Module) -> dict[str, Any]:
    """‖θ − θ₀‖₂ over the parameters `encoder` and `reference` share by name (embeddings and
    every layer of BERT; the pooler only when both have it), in float64: {"l2", "parameters"
    (scalars compared), "tensors", "left_out" (names in only one of them)}."""
    a, b = dict(encoder.named_parameters()), dict(reference.named_parameters())
    shared = sorted(a.keys() & b.keys())
    if not shared:
        raise PipelineError("l2 distance: the two models share no parameter name")
    squares, count = [], 0
    with torch.no_grad():
        for k in shared:
            x, y = a[k].detach(), b[k].detach()
            if x.shape != y.shape:
                raise PipelineError(f"{k}: shape {tuple(x.shape)} != {tuple(y.shape)}")
            d = x.to("cpu", torch.float64) - y.to("cpu", torch.float64)
            squares.append(float(torch.sum(d * d)))
            count += d.numel()
    return {
        "l2": math.sqrt(math.fsum(squares)),
        "parameters": count,
        "tensors": len(shared),
        "left_out": sorted(a.keys() ^ b.keys()),
    }


def mlm_loss(
    model: nn.Module,
    masked: Masked,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    pad_id: int = 0,
    desc: str = "MLM loss",
) -> dict[str, float | int]:
    """Mean token cross-entropy over the masked positions of `masked` (every masked token
    weighs the same, whatever its sentence): {"loss", "tokens"}.

    Batched by length (less padding; the result does not depend on the batching), eval mode,
    no gradients; the head is applied to the masked positions only (what the full vocabulary
    logits would give there, without an (n × length × vocabulary) tensor for mBERT)."""
    device = torch.device(device) if device is not None else default_device()
    model.eval().to(device)
    base, head = model.base_model, mlm_head(model)
    rows = [i for i, lab in enumerate(masked.labels) if any(t != IGNORE for t in lab)]
    rows.sort(key=lambda i: len(masked.input_ids[i]))
    total, tokens = 0.0, 0
    with torch.no_grad():
        for s in tqdm(range(0, len(rows), batch_size), desc=desc, unit="batch", leave=False):
            idx = rows[s : s + batch_size]
            width = max(len(masked.input_ids[i]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            labels = torch.full((len(idx), width), IGNORE, dtype=torch.long)
            attn = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                n = len(masked.input_ids[i])
                ids[r, :n] = torch.tensor(masked.input_ids[i])
                labels[r, :n] = torch.tensor(masked.labels[i])
                attn[r, :n] = 1
            ids, labels, attn = ids.to(device), labels.to(device), attn.to(device)
            hidden = base(input_ids=ids, attention_mask=attn).last_hidden_state
            sel = labels != IGNORE
            logits = head(hidden[sel]).float()
            total += float(F.cross_entropy(logits, labels[sel], reduction="sum").double())
            tokens += int(sel.sum())
    if not tokens:
        raise PipelineError(f"{desc}: no masked token to score")
    return {"loss": total / tokens, "tokens": tokens}


def mask_languages(
    tokenizer: Any,
    texts: Mapping[str, Sequence[str]],
    settings: Mapping[str, Any],
    max_positions: int | None = None,
) -> dict[str, Masked]:
    """Each language's sentences masked with its own seed (`language_seed`), truncated to
    `settings["max_length"]` tokens or the encoder's `max_positions`, whichever is shorter (a
    longer input has no position embedding)."""
    length = min(settings["max_length"], max_positions or settings["max_length"])
    return {
        lang: mask_sentences(
            tokenizer,
            sents,
            settings["mlm_probability"],
            length,
            language_seed(settings["seed"], lang),
        )
        for lang, sents in texts.items()
    }


def language_losses(
    model: nn.Module,
    masked: Mapping[str, Masked],
    batch_size: int,
    pad_id: int,
    device: torch.device | str | None = None,
) -> dict[str, dict[str, float | int]]:
    """{lang: {"loss", "tokens"}} of `model` on each language's masked text."""
    return {
        lang: mlm_loss(model, m, batch_size, device, pad_id, desc=f"MLM loss {lang}")
        for lang, m in masked.items()
    }


def mean(values: Iterable[float]) -> float | None:
    """Mean over languages (each weighs the same); None without any."""
    xs = list(values)
    return math.fsum(xs) / len(xs) if xs else None
