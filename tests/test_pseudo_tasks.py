"""X-METRA-ADA's pseudo-tasks (pipeline.data.pseudo_tasks) on hand-made data."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pipeline.data.pseudo_tasks import (
    intent_tasks,
    nearest_supports,
    qa_text,
    similarity_tasks,
)
from pipeline.errors import PipelineError


def dialog(lang: str, counts: dict[str, int]) -> list[dict]:
    return [
        {"id": f"{lang}-{intent}-{i}", "intent": intent}
        for intent, n in counts.items()
        for i in range(n)
    ]


def test_intent_tasks_are_balanced_over_shared_intents_and_deterministic():
    en = dialog("en", {"alarm": 5, "weather": 4, "reminder": 1})
    th = dialog("th", {"alarm": 3, "weather": 2, "music": 9})
    tasks = intent_tasks(en, th, k=2, q=2, n_tasks=4, seed=1)
    intent = lambda rid: rid.split("-")[1]  # noqa: E731
    for t in tasks:
        # reminder has too few support items, music no support at all: only the shared two
        assert t["intents"] == ["alarm", "weather"]
        assert Counter(map(intent, t["support"])) == {"alarm": 2, "weather": 2}
        assert Counter(map(intent, t["query"])) == {"alarm": 2, "weather": 2}
        assert all(r.startswith("en-") for r in t["support"])
        assert all(r.startswith("th-") for r in t["query"])
        assert len(set(t["support"])) == 4 and len(set(t["query"])) == 4
    assert tasks == intent_tasks(en, th, k=2, q=2, n_tasks=4, seed=1)
    assert tasks != intent_tasks(en, th, k=2, q=2, n_tasks=4, seed=2)


def test_one_pool_gives_disjoint_support_and_query():
    th = dialog("th", {"alarm": 4, "weather": 3})
    for t in intent_tasks(th, None, k=1, q=2, n_tasks=10, seed=0):
        assert not set(t["support"]) & set(t["query"])
        assert len(t["support"]) == 2 and len(t["query"]) == 4


def test_no_shared_intent_is_a_clear_error():
    with pytest.raises(PipelineError, match="no intent has 3 support and 3 query items"):
        intent_tasks(dialog("en", {"a": 5}), dialog("th", {"b": 5}), 3, 3, 1, 0)


def test_each_query_gets_its_own_nearest_supports():
    """Ranked along the pool axis of the query's own row: query 0's best is 3, query 1's is 4
    (column-wise ranking would give other answers), and supports are never queries."""
    sim = np.array(
        [
            [1.0, 0.9, 0.1, 0.8, 0.2, 0.3],
            [0.9, 1.0, 0.2, 0.1, 0.7, 0.6],
        ]
    )
    assert nearest_supports(sim, [0, 1], 1, {0, 1}) == [[3], [4]]
    assert nearest_supports(sim, [0, 1], 2, {0, 1}) == [[3, 5], [4, 2]]


def test_similarity_tasks_keep_each_supports_own_answer():
    recs = [
        {
            "id": "a",
            "question": "who won",
            "context": "Ana won the race",
            "answers": {"text": ["Ana"], "answer_start": [0]},
        },
        {
            "id": "b",
            "question": "who lost",
            "context": "Bo lost the race",
            "answers": {"text": ["Bo"], "answer_start": [0]},
        },
        {
            "id": "c",
            "question": "who won",
            "context": "Cy won the cup",
            "answers": {"text": ["Cy"], "answer_start": [0]},
        },
        {
            "id": "d",
            "question": "who lost",
            "context": "Dee lost the cup",
            "answers": {"text": ["Dee"], "answer_start": [0]},
        },
    ]
    assert qa_text(recs[0]) == "who won Ana won the race Ana"
    # embeddings: a ~ c and b ~ d
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    by_id = {r["id"]: r for r in recs}
    for t in similarity_tasks([r["id"] for r in recs], emb, k=2, q=2, n_tasks=5, seed=3):
        q1, q2 = t["query"]
        s1, s2 = t["support"]
        pairs = {frozenset("ac"), frozenset("bd")}
        if {q1, q2} in ({"a", "b"}, {"c", "d"}, {"a", "d"}, {"b", "c"}):
            assert frozenset((q1, s1)) in pairs and frozenset((q2, s2)) in pairs, t
        # a support's answer is its own record's
        for sid in t["support"]:
            assert by_id[sid]["answers"]["text"][0] in by_id[sid]["context"]
    with pytest.raises(PipelineError, match="not a multiple"):
        similarity_tasks(["a", "b", "c", "d"], emb, k=3, q=2, n_tasks=1, seed=0)
