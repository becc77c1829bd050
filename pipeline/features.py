"""TLP splits as model-ready tensors: locate prepared records, featurize once, cache by key.

Featurized caches live under data/features/<key>/ where the key covers the tokenizer, the
feature settings, the task, its labels and the split kind (see tasks.common.feature_cache_key),
so a change of any of them never reuses a stale cache.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch

from pipeline.data.pseudo_tasks import downsample_ids
from pipeline.data.store import load_labels, load_split, locate
from pipeline.io import atomic_dir
from pipeline.records import TLP
from pipeline.tasks import FeatureSettings, TaskFeatureSettings, for_task
from pipeline.tasks.common import column_array, feature_cache_key

FEATURE_CACHE = Path("data/features")
log = logging.getLogger(__name__)


def capped_subset(tlp: TLP, split: str, n: int, k: int) -> list[int]:
    """A seeded random `k` of `n` record indices (in file order), the same for every run and seed.

    Not the first k: the first records of a file are often a few documents (SQuAD dev starts
    with a handful of articles), which would make model selection see one topic.
    """
    rng = random.Random(f"capped-subset:{tlp}:{split}")
    return sorted(rng.sample(range(n), k))


def merged_labels(prepared_dirs: Sequence[str | Path]) -> dict[str, dict[str, list[str]]]:
    """Label inventories per task, the union over datasets (sorted, so ids are stable)."""
    out: dict[str, dict[str, set[str]]] = {}
    for d in prepared_dirs:
        for task, fields in load_labels(d).items():
            task_labels = out.setdefault(task, {})
            for f, vals in fields.items():
                task_labels.setdefault(f, set()).update(vals)
    return {t: {f: sorted(v) for f, v in fs.items()} for t, fs in sorted(out.items())}


@dataclass
class SplitData:
    """Records, features and (for training) tensors of one TLP split."""

    tlp: TLP
    split: str
    dataset_dir: Path
    records: datasets.Dataset
    features: datasets.Dataset
    tensors: dict[str, torch.Tensor]
    settings: FeatureSettings  # what the features were made with (decoding needs the same)

    def __len__(self) -> int:
        return len(self.features)


#: `training.padding`: `dynamic` cuts each batch to its longest row; `fixed` keeps max_length
PADDINGS = ("dynamic", "fixed")


def trim_padding(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`batch` with its sequence columns cut to the longest row's length (dynamic padding).

    Why it changes nothing but speed: features are right-padded to max_length (checked by
    tasks.common.check_tokenizer), every padded position has attention_mask 0 and label
    IGNORE_INDEX, so the model's outputs and losses at real positions are the same up to float
    rounding (other matmul shapes), and the loss never read the rest. Sequence columns are the
    2-D ones as wide as attention_mask; per-example columns (class labels, answer positions) stay.
    """
    mask = batch.get("attention_mask")
    if mask is None or mask.ndim != 2 or mask.shape[0] == 0:
        return batch
    width = mask.shape[1]
    longest = int(mask.sum(dim=1).max())
    if longest >= width:
        return batch
    keep = max(longest, 1)
    return {k: v[:, :keep] if v.ndim == 2 and v.shape[1] == width else v for k, v in batch.items()}


def take(
    tensors: dict[str, torch.Tensor],
    rows: torch.Tensor | slice,
    device: torch.device,
    padding: str = "dynamic",
    pin_memory: bool = True,
) -> dict[str, torch.Tensor]:
    """One batch: `rows` of every column, padding cut (on the host, before the copy) unless
    `padding` is `fixed`, then moved to `device`.

    On CUDA with `pin_memory` the gathered batch is page-locked first (torch's caching host
    allocator makes that cheap) so the copy is asynchronous, as a DataLoader with
    pin_memory=True does; the features already live in memory, so there is no per-batch CPU
    work for DataLoader workers to hide.
    """
    batch = {k: v[rows] for k, v in tensors.items()}
    if padding == "dynamic":
        batch = trim_padding(batch)
    elif padding != "fixed":
        raise ValueError(f"padding: expected one of {PADDINGS}, got {padding!r}")
    if device.type == "cuda" and pin_memory:
        return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
    return {k: v.to(device) for k, v in batch.items()}


def lengths(data: SplitData) -> torch.Tensor:
    """Real (unpadded) sub-token count of every feature: what length grouping sorts by."""
    mask = data.tensors.get("attention_mask")
    if mask is None:
        return torch.ones(len(data), dtype=torch.long)
    return mask.sum(dim=1)


def load_split_data(
    tlp: TLP,
    split: str,
    prepared_dirs: Sequence[str | Path],
    tokenizer: Any,
    labels: dict[str, dict[str, list[str]]],
    settings: FeatureSettings | TaskFeatureSettings,
    train: bool,
    max_examples: int | None = None,
    cache_dir: str | Path | None = FEATURE_CACHE,
    fraction: tuple[float, int] | None = None,
) -> SplitData:
    """Load `tlp`'s `split`, featurized for training (`train=True`) or for prediction;
    `fraction` = (share, seed): only that seeded share of the records (`downsample_ids`)."""
    where = locate(tlp, prepared_dirs, split)
    records = load_split(where, tlp, split)
    size = f"n{len(records)}"
    if fraction is not None and fraction[0] < 1:
        keep = set(downsample_ids(records["id"], fraction[0], fraction[1], str(tlp)))
        records = records.select([i for i, r in enumerate(records["id"]) if str(r) in keep])
        size = f"d{len(records)}of{size[1:]}s{fraction[1]}"
    if max_examples is not None and len(records) > max_examples:
        records = records.select(capped_subset(tlp, split, len(records), max_examples))
        size = f"r{max_examples}of{size[1:]}"
    task = for_task(tlp.task)
    if isinstance(settings, TaskFeatureSettings):
        settings = settings.for_task(tlp.task)
    key = feature_cache_key(tokenizer, settings, tlp.task, labels[tlp.task], train)
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / f"{where.name}.{tlp.slug}.{split}.{size}.{key}"
    if cached is not None and (cached / "dataset_info.json").exists():
        features = datasets.load_from_disk(str(cached))
    else:
        features = task.featurize(records, tokenizer, labels[tlp.task], settings, train)
        coverage = getattr(task, "word_coverage", None)  # word-level tasks: truncation report
        if coverage is not None:
            cov = coverage(records, features)
            if cov["truncated"]:
                log.warning(
                    "%s %s: %d of %d words cut off by max_length %d (predicted as the fallback tag)",
                    tlp,
                    split,
                    cov["truncated"],
                    cov["words"],
                    settings.max_length,
                )
        if cached is not None:
            # concurrent jobs may featurize the same split: the first copy to land is kept
            with atomic_dir(cached, keep_existing=True) as tmp:
                features.save_to_disk(str(tmp))
    cols = task.model_columns(train)
    tensors = {c: torch.from_numpy(column_array(features, c)).long() for c in cols}
    return SplitData(tlp, split, where, records, features, tensors, settings)


def cluster_split(
    data: SplitData, assignments: dict[str, int], k: int, name: Any
) -> dict[Any, SplitData]:
    """`data` (one TLP's training split) as `k` tasks by a cluster assignment {record id: c}
    (Lee et al. §4.3: GMM clusters of one English training set as the tasks of MTL methods).

    Every feature follows its record (a QA example's windows stay together), so a record is in
    exactly one task; `name(c)` is task c's key. A record without an assignment, or a cluster
    left empty (e.g. by `train_examples`), is an error: the run would silently have fewer tasks.
    """
    from pipeline.errors import PipelineError

    ids = [str(i) for i in data.features["example_id"]]
    missing = sorted({i for i in ids if i not in assignments})
    if missing:
        raise PipelineError(
            f"{data.tlp} {data.split}: {len(missing)} records have no cluster (first: "
            f"{missing[0]!r}); the cluster file was made from other data: rerun the clusters step"
        )
    rec_ids = [str(i) for i in data.records["id"]]
    out: dict[Any, SplitData] = {}
    for c in range(k):
        rows = [j for j, i in enumerate(ids) if assignments[i] == c]
        if not rows:
            raise PipelineError(f"{data.tlp} {data.split}: cluster {c} of {k} has no example")
        index = torch.tensor(rows, dtype=torch.long)
        out[name(c)] = SplitData(
            name(c),
            data.split,
            data.dataset_dir,
            data.records.select([j for j, i in enumerate(rec_ids) if assignments.get(i) == c]),
            data.features.select(rows),
            {col: t[index] for col, t in data.tensors.items()},
            data.settings,
        )
    return out
