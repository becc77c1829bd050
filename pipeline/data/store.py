"""Prepared-data storage: normalized records per TLP split, as `datasets` saved to disk.

Layout of a prepared dataset directory (written atomically by `prepare`):

    <out>/<task>/<lang>/<split>/     datasets.Dataset.save_to_disk
    <out>/labels.json                {task: {field: [label, ...]}}  sorted label inventories
    <out>/summary.json               counts per TLP and split, skipped records with reasons
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import DataError, PipelineError
from pipeline.io import atomic_dir, atomic_write_json, read_json
from pipeline.records import RECORD_FIELDS, SPLITS, TLP, task_type

#: label-carrying fields per task type (the inventories go to labels.json)
LABEL_FIELDS: dict[str, tuple[str, ...]] = {
    "pair": ("label",),
    "single": ("label",),
    "tagging": ("tags",),
    "qa": (),
    "intent_slots": ("intent", "slots"),
}


def check_record(rec: Mapping[str, Any], task: str, where: str) -> None:
    """Raise DataError unless `rec` has exactly the fields of its task type."""
    want = RECORD_FIELDS[task_type(task)]
    if tuple(rec) != want and set(rec) != set(want):
        raise DataError(f"{where}: record has fields {sorted(rec)}, expected {list(want)}")


def label_inventory(task: str, records: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Sorted label sets of a task's records (tags and slots: every tag seen)."""
    fields = LABEL_FIELDS[task_type(task)]
    seen: dict[str, set[str]] = {f: set() for f in fields}
    for rec in records:
        for f in fields:
            v = rec[f]
            if isinstance(v, list):
                seen[f].update(v)
            else:
                seen[f].add(v)
    return {f: sorted(s) for f, s in seen.items()}


def _to_columns(task: str, records: list[Mapping[str, Any]]) -> Any:
    import datasets  # ~0.6 s: only where records are read or written, not for Sources/locate

    fields = RECORD_FIELDS[task_type(task)]
    return datasets.Dataset.from_dict({f: [r[f] for r in records] for f in fields})


def save_prepared(
    out: str | Path,
    records: Mapping[TLP, Mapping[str, list[Mapping[str, Any]]]],
    skipped: Mapping[str, int] | None = None,
    extra_summary: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `{tlp: {split: [record, ...]}}` atomically under `out`; return the summary.

    Ids must be unique within a TLP split (readers make them unique and count what they did).
    """
    out = Path(out)
    counts: dict[str, dict[str, int]] = {}
    labels: dict[str, dict[str, set[str]]] = {}
    with atomic_dir(out) as tmp:
        for tlp in sorted(records):
            for split, recs in sorted(records[tlp].items()):
                if split not in SPLITS:
                    raise DataError(f"{tlp}: unknown split {split!r}, expected one of {SPLITS}")
                if not recs:
                    continue
                ids = [r["id"] for r in recs]
                if len(set(ids)) != len(ids):
                    raise DataError(f"{tlp} {split}: ids are not unique")
                _to_columns(tlp.task, list(recs)).save_to_disk(
                    str(tmp / tlp.task / tlp.lang / split)
                )
                counts.setdefault(str(tlp), {})[split] = len(recs)
                task_labels = labels.setdefault(tlp.task, {})  # QA has no label fields: {}
                for field, vals in label_inventory(tlp.task, recs).items():
                    task_labels.setdefault(field, set()).update(vals)
        summary = {
            "counts": counts,
            "skipped": dict(skipped or {}),
            **dict(extra_summary or {}),
        }
        atomic_write_json(
            tmp / "labels.json",
            {t: {f: sorted(v) for f, v in fs.items()} for t, fs in sorted(labels.items())},
        )
        atomic_write_json(tmp / "summary.json", summary)
    return summary


def prepared_tlps(prepared: str | Path) -> dict[TLP, list[str]]:
    """The TLPs present in a prepared directory, with their splits."""
    summary = read_json(Path(prepared) / "summary.json")
    return {TLP.parse(k): sorted(v) for k, v in summary["counts"].items()}


def load_split(prepared: str | Path, tlp: TLP, split: str) -> Any:
    """Load one TLP split (a `datasets.Dataset`); a missing one is an error naming the path."""
    import datasets

    path = Path(prepared) / tlp.task / tlp.lang / split
    if not (path / "dataset_info.json").exists():
        raise DataError(f"{path}: no prepared {split} data for {tlp}")
    return datasets.load_from_disk(str(path))


def load_labels(prepared: str | Path) -> dict[str, dict[str, list[str]]]:
    return read_json(Path(prepared) / "labels.json")


class Sources(list):
    """The prepared dataset directories (a list, in `data.datasets` order) plus, per task and
    split, the ones that split may come from (`data.sources`; default: all, in order).

    Making the source explicit matters: with SQuAD and MLQA both prepared, qa/en's dev split
    would otherwise come from whichever is listed first, while its test comes from MLQA.
    """

    def __init__(
        self,
        dirs: Sequence[str | Path],
        per_split: Mapping[tuple[str, str], Sequence[str | Path]] | None = None,
    ) -> None:
        super().__init__(Path(d) for d in dirs)
        self.per_split = {k: [Path(d) for d in v] for k, v in (per_split or {}).items()}

    def candidates(self, task: str, split: str | None) -> list[Path]:
        if split is None:
            return list(self)
        return self.per_split.get((task, split), list(self))


def locate(tlp: TLP, prepared_dirs: Sequence[str | Path], split: str | None = None) -> Path:
    """The first prepared dataset directory that holds `tlp` (with its `split`, when given).

    A TLP's splits may live in different datasets: XTREME's translate-train data gives qa/de its
    train split, MLQA its dev/test. With `split`, each split is found in the first directory that
    has it (among the split's `Sources.candidates` when `prepared_dirs` is a `Sources`); without,
    the first directory holding the TLP at all is returned.
    """
    if split is not None and split not in SPLITS:
        raise PipelineError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if isinstance(prepared_dirs, Sources):
        prepared_dirs = prepared_dirs.candidates(tlp.task, split)
    for d in prepared_dirs:
        splits = prepared_tlps(d).get(tlp)
        if splits is not None and (split is None or split in splits):
            return Path(d)
    where = ", ".join(str(d) for d in prepared_dirs)
    what = f"TLP {tlp}" if split is None else f"TLP {tlp} split {split}"
    raise PipelineError(f"{what} is in no prepared dataset ({where})")
