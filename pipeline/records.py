"""Normalized record schemas (DESIGN.md) and task-language pair (TLP) names.

Every reader produces, and every trainer consumes, plain dicts with exactly these fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import PipelineError

#: task name -> task type. A task type owns featurization, head, loss, decoding and metrics.
TASK_TYPES: dict[str, str] = {
    "nli": "pair",  # XNLI / MultiNLI
    "pa": "pair",  # PAWS-X
    "sa": "single",  # sentiment (MARC, SentiPers, Sentiraama)
    "pos": "tagging",  # UD POS
    "ner": "tagging",  # PAN-X / WikiAnn
    "qa": "qa",  # SQuAD, MLQA, XQuAD, TyDiQA-GoldP
    "mtod": "intent_slots",  # Schuster et al. 2019
}

#: task type -> record fields, in order.
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "pair": ("id", "lang", "text_a", "text_b", "label"),
    "single": ("id", "lang", "text", "label"),
    "tagging": ("id", "lang", "tokens", "tags"),
    "qa": ("id", "lang", "context", "question", "answers"),
    "intent_slots": ("id", "lang", "tokens", "slots", "intent"),
}

SPLITS: tuple[str, ...] = ("train", "dev", "test")


def task_type(task: str) -> str:
    """The task type of a task name, with a clear error for an unknown task."""
    try:
        return TASK_TYPES[task]
    except KeyError:
        raise PipelineError(
            f"unknown task {task!r}: expected one of {', '.join(sorted(TASK_TYPES))}"
        ) from None


#: a language code (`~` joins a cluster index to it: Lee et al.'s zero-shot tasks)
LANG_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_~-]*")


@dataclass(frozen=True, order=True)
class TLP:
    """A task-language pair, written `task/lang` in configs and `task.lang` in file names."""

    task: str
    lang: str

    @classmethod
    def parse(cls, text: str) -> TLP:
        sep = "/" if "/" in text else "."
        task, _, lang = text.partition(sep)
        # (a language code becomes part of file names and job commands: letters, digits, _-~)
        if not task or not LANG_CODE.fullmatch(lang):
            raise PipelineError(f"bad TLP {text!r}: expected 'task/lang', e.g. 'ner/en'")
        task_type(task)
        return cls(task, lang)

    def __str__(self) -> str:
        return f"{self.task}/{self.lang}"

    @property
    def slug(self) -> str:
        """File-name form, `task.lang`."""
        return f"{self.task}.{self.lang}"

    @property
    def type(self) -> str:
        return task_type(self.task)
