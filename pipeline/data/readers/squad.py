"""SQuAD v1.1-style JSON, shared by SQuAD, MLQA, XQuAD and TyDiQA-GoldP.

`{"version": …, "data": [{"title"?, "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}`. The version is a string in SQuAD/XQuAD/TyDiQA and
a number in MLQA (`1.0`); it is not interpreted.

* TyDiQA-GoldP as published keeps all languages in one file; the language is the id prefix
  (`swahili-…` → sw), see `TYDIQA_LANGS`.
* XTREME's re-distribution cuts TyDiQA train ids down to their last part, so they repeat
  (Swahili: 2,755 questions, 74 distinct ids). Repeats are made unique in file order
  (`12`, `12#2`, `12#3`, …) and counted as `dedup_ids`.
* XTREME blanks held-out gold as `[{"answer_start": 0, "text": ""}]`; empty-text answers are
  dropped, and a question left without answers is skipped and counted (it cannot be scored).
* Answers whose `answer_start` does not point at their text are kept (that is what the
  publishers shipped) and counted as `answer_offset_mismatch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.data.readers.base import ReadResult, dedup_ids, load_json, qa_record
from pipeline.errors import DataError

#: TyDiQA-GoldP id prefix (language name) -> language code; the 9 GoldP languages.
TYDIQA_LANGS: dict[str, str] = {
    "arabic": "ar",
    "bengali": "bn",
    "english": "en",
    "finnish": "fi",
    "indonesian": "id",
    "korean": "ko",
    "russian": "ru",
    "swahili": "sw",
    "telugu": "te",
}

SKIP_NO_ANSWER = "no gold answer (empty or blanked answers)"


def tydiqa_lang(qid: str) -> str | None:
    """Language code from a TyDiQA id such as `swahili-4351626306223284859-0`, or None."""
    return TYDIQA_LANGS.get(qid.split("-", 1)[0])


def _str_field(obj: Any, key: str, path: Path, where: str) -> str:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
        raise DataError(f"{path}: {where}: expected a string field {key!r}")
    return obj[key]


def read_squad_json(path: Path, lang: str | None = None, lang_from_id: bool = False) -> ReadResult:
    """All questions of one SQuAD-style file, in file order.

    Give `lang` for single-language files (SQuAD, MLQA, XQuAD, XTREME's per-language TyDiQA
    files) or `lang_from_id=True` for the published all-language TyDiQA-GoldP files.
    """
    path = Path(path)
    if lang is None and not lang_from_id:
        raise DataError(f"{path}: a language is needed (give lang, or lang_from_id for TyDiQA)")
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{path}: expected a SQuAD-style object with a 'data' list")
    res = ReadResult()
    for ai, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}: data[{ai}]: expected a 'paragraphs' list")
        for pi, par in enumerate(paragraphs):
            where = f"data[{ai}].paragraphs[{pi}]"
            context = _str_field(par, "context", path, where)
            qas = par.get("qas")
            if not isinstance(qas, list):
                raise DataError(f"{path}: {where}: expected a 'qas' list")
            for qi, qa in enumerate(qas):
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), str | int):
                    raise DataError(f"{path}: {where}.qas[{qi}]: expected an 'id'")
                qid = str(qa["id"])
                rec_where = f"record {qid!r}"
                question = _str_field(qa, "question", path, rec_where)
                answers = qa.get("answers")
                if not isinstance(answers, list):
                    raise DataError(f"{path}: {rec_where}: expected an 'answers' list")
                texts: list[str] = []
                starts: list[int] = []
                for ans in answers:
                    text = _str_field(ans, "text", path, rec_where + " answer")
                    start = ans.get("answer_start")
                    if isinstance(start, str) and start.strip().isdigit():
                        start = int(start)
                    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
                        raise DataError(
                            f"{path}: {rec_where}: expected a non-negative integer "
                            f"answer_start, got {ans.get('answer_start')!r}"
                        )
                    if not text:
                        continue  # blanked gold (XTREME) or an empty annotation
                    if context[start : start + len(text)] != text:
                        res.notes["answer_offset_mismatch"] += 1
                    texts.append(text)
                    starts.append(start)
                rlang = lang
                if lang_from_id:
                    rlang = tydiqa_lang(qid)
                    if rlang is None:
                        raise DataError(
                            f"{path}: {rec_where}: expected an id starting with a TyDiQA "
                            f"language name ({', '.join(TYDIQA_LANGS)})"
                        )
                if not texts:
                    res.skipped[SKIP_NO_ANSWER] += 1
                    continue
                res.records.append(qa_record(qid, rlang, context, question, texts, starts))  # type: ignore[arg-type]
    n = dedup_ids(res.records)
    if n:
        res.notes["dedup_ids"] += n
    return res
