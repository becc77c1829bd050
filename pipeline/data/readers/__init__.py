"""One reader per raw format; each returns normalized records and counts what it skipped.

Readers know file formats, never training. `read_file` sniffs the format of a single raw file
(for scoring a gold file against predictions without running `prepare`).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.data.readers.base import ReadResult, Record, check_file, dedup_ids, load_json
from pipeline.data.readers.conllu import read_conllu
from pipeline.data.readers.marc import read_marc_jsonl
from pipeline.data.readers.mnli import read_mnli_jsonl
from pipeline.data.readers.mtod import read_mtod_tsv
from pipeline.data.readers.panx import read_panx
from pipeline.data.readers.pawsx import read_pawsx_tsv
from pipeline.data.readers.squad import TYDIQA_LANGS, read_squad_json, tydiqa_lang
from pipeline.data.readers.table import TableFormat, read_sentiment_table
from pipeline.data.readers.xnli import read_xnli_mt_train, read_xnli_tsv
from pipeline.data.readers.xtreme import read_xtreme_pair_tsv, read_xtreme_tagging_tsv
from pipeline.errors import DataError
from pipeline.records import task_type

__all__ = [
    "TYDIQA_LANGS",
    "ReadResult",
    "Record",
    "TableFormat",
    "dedup_ids",
    "read_conllu",
    "read_file",
    "read_marc_jsonl",
    "read_mnli_jsonl",
    "read_mtod_tsv",
    "read_panx",
    "read_pawsx_tsv",
    "read_sentiment_table",
    "read_squad_json",
    "read_xnli_mt_train",
    "read_xnli_tsv",
    "read_xtreme_pair_tsv",
    "read_xtreme_tagging_tsv",
]


def _head(path: Path, n: int = 20) -> list[str]:
    """The first `n` non-blank lines (for sniffing)."""
    out: list[str] = []
    with open(path, encoding="utf-8-sig", errors="replace", newline="\n") as f:
        for line in f:
            line = line.rstrip("\n").removesuffix("\r")
            if line.strip():
                out.append(line)
                if len(out) == n:
                    break
    return out


def _is_panx(head: list[str], lang: str) -> bool:
    """PAN-X lines are `<lang>:<token>\\t<tag>` with one shared prefix."""
    prefixes = set()
    for line in head:
        first = line.split("\t", 1)[0]
        code, sep, _ = first.partition(":")
        if not sep or not code:
            return False
        prefixes.add(code)
    return len(prefixes) == 1 and (lang in prefixes or "\t" in head[0])


def read_file(path: str | Path, task: str, lang: str) -> list[Record]:
    """Records of language `lang` from one raw file of `task`, whatever its format.

    Recognized: XNLI 1.0 TSV, XNLI-MT train TSV, MultiNLI jsonl, PAWS-X TSV, XTREME pair and
    tagging TSVs, CoNLL-U, PAN-X, SQuAD-style JSON (TyDiQA's all-language files included), MTOD
    TSV, MARC jsonl, and for `sa` a headerless `text<TAB>label` table with positive/negative
    labels. Files holding several languages are filtered to `lang`.
    """
    path = check_file(Path(path))
    ttype = task_type(task)
    head = _head(path)
    if not head:
        raise DataError(f"{path}: empty file, expected {task} data")
    first = head[0]
    first_cols = first.split("\t")
    res: ReadResult
    if ttype == "pair":
        if first_cols[:2] == ["language", "gold_label"]:
            res = read_xnli_tsv(path, languages=[lang])
        elif first_cols == ["premise", "hypo", "label"]:
            res = read_xnli_mt_train(path, lang=lang)
        elif first_cols == ["id", "sentence1", "sentence2", "label"]:
            res = read_pawsx_tsv(path, lang)
        elif first.lstrip().startswith("{"):
            res = read_mnli_jsonl(path, lang=lang)
        else:
            res = read_xtreme_pair_tsv(path, task, lang)
    elif ttype == "tagging":
        if path.suffix == ".conllu" or first.startswith("#") or len(first_cols) == 10:
            res = read_conllu(path, lang=lang)
        elif task == "ner" and _is_panx(head, lang):
            res = read_panx(path, lang=lang)
        else:
            res = read_xtreme_tagging_tsv(path, lang)
    elif ttype == "qa":
        doc = load_json(path)
        first_ids = (
            [
                str(q.get("id"))
                for a in (doc.get("data") or [])[:1]
                if isinstance(a, dict)
                for p in (a.get("paragraphs") or [])[:1]
                if isinstance(p, dict)
                for q in (p.get("qas") or [])[:1]
                if isinstance(q, dict)
            ]
            if isinstance(doc, dict)
            else []
        )
        # the published TyDiQA-GoldP files hold every language; the id prefix names it
        by_id = bool(first_ids) and tydiqa_lang(first_ids[0]) is not None
        res = read_squad_json(path, lang=None if by_id else lang, lang_from_id=by_id)
    elif ttype == "single":
        if first.lstrip().startswith("{"):
            res = read_marc_jsonl(path, lang=lang)
        else:
            res = read_sentiment_table(path, lang)
    elif ttype == "intent_slots":
        res = read_mtod_tsv(path, lang=lang)
    else:  # pragma: no cover - task_type() only returns the types above
        raise DataError(f"{path}: no reader for task type {ttype}")
    return [r for r in res.records if r["lang"] == lang]
