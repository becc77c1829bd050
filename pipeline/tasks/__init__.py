"""Task types: featurize, head, loss, decode (see `base.TaskType`)."""

from __future__ import annotations

from pipeline.records import task_type
from pipeline.tasks.base import FeatureSettings, TaskFeatureSettings, TaskType

__all__ = ["FeatureSettings", "TaskFeatureSettings", "TaskType", "get_task_type", "for_task"]


def get_task_type(name: str) -> TaskType:
    """The task-type implementation by type name (pair, single, tagging, qa, intent_slots)."""
    from pipeline.tasks import classification, intent_slots, qa, tagging

    registry: dict[str, TaskType] = {
        "pair": classification.PairClassification(),
        "single": classification.SingleClassification(),
        "tagging": tagging.Tagging(),
        "qa": qa.ExtractiveQA(),
        "intent_slots": intent_slots.IntentSlots(),
    }
    return registry[name]


def for_task(task: str) -> TaskType:
    """The task-type implementation for a task name (nli, pa, sa, pos, ner, qa, mtod)."""
    return get_task_type(task_type(task))
