"""Pseudo-tasks of X-METRA-ADA (M'hamdi et al. 2021, §3.2): which records form each meta-task.

Pure functions of records (or their embeddings) and a seed, so that a Snakemake rule can write
the tasks once as a tracked artifact and every method reads the same ones.

* MTOD (`intent_tasks`): k support and q query items **per intent**, over the intents both pools
  share with enough items; balanced (every intent the same k and q), support and query disjoint
  (also when both come from one pool, as in meta-adaptation), deterministic from the seed.
* QA (`similarity_tasks`): q query items at random; for each, the k/q pool items most similar
  to it (cosine of sentence embeddings of "question context answer", `qa_text`) as its
  support, ranked along the pool axis of that query's own row, excluding every query item. Each
  support keeps its own id, so its own answer span (the reference code ranked along the wrong
  axis and gave supports other examples' spans: seed-implementations §5).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.errors import PipelineError


def _rng(seed: int, *key: Any) -> random.Random:
    return random.Random(":".join(map(str, (seed, *key))))


def intent_tasks(
    support: Sequence[Mapping[str, Any]],
    query: Sequence[Mapping[str, Any]] | None,
    k: int,
    q: int,
    n_tasks: int,
    seed: int,
) -> list[dict[str, list[str]]]:
    """`n_tasks` MTOD tasks {"support": ids, "query": ids, "intents": [...]} (see the module
    docstring); `query=None`: both sides from `support` (disjoint within each task)."""
    same = query is None
    by_s: dict[str, list[str]] = {}
    for r in support:
        by_s.setdefault(r["intent"], []).append(str(r["id"]))
    by_q: dict[str, list[str]] = {}
    for r in support if same else query:  # type: ignore[union-attr]
        by_q.setdefault(r["intent"], []).append(str(r["id"]))
    need_s, need_q = (k + q, k + q) if same else (k, q)
    intents = sorted(
        i for i in set(by_s) & set(by_q) if len(by_s[i]) >= need_s and len(by_q[i]) >= need_q
    )
    if not intents:
        raise PipelineError(
            f"pseudo-tasks: no intent has {k} support and {q} query items on both sides "
            f"(support intents {len(by_s)}, query intents {len(by_q)})"
        )
    tasks = []
    for t in range(n_tasks):
        rng = _rng(seed, "mtod", t)
        s_ids: list[str] = []
        q_ids: list[str] = []
        for intent in intents:
            if same:
                drawn = rng.sample(by_s[intent], k + q)
                s_ids += drawn[:k]
                q_ids += drawn[k:]
            else:
                s_ids += rng.sample(by_s[intent], k)
                q_ids += rng.sample(by_q[intent], q)
        tasks.append({"support": s_ids, "query": q_ids, "intents": intents})
    return tasks


def qa_text(record: Mapping[str, Any]) -> str:
    """What a QA triplet is embedded as: "question context answer" (first answer)."""
    answers = record["answers"]["text"]
    return f"{record['question']} {record['context']} {answers[0] if answers else ''}".strip()


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] cosine similarities of two embedding matrices."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def nearest_supports(
    sim: np.ndarray, query_rows: Sequence[int], per_query: int, exclude: set[int]
) -> list[list[int]]:
    """For each query row i of `sim` ([n_query_candidates, n_pool]), the `per_query` pool
    columns most similar to it, best first, skipping `exclude` and the supports already given
    to earlier queries (a task's supports are distinct; ties: lower index first)."""
    out = []
    taken = set(exclude)
    for i in query_rows:
        row = sim[i]
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))
        chosen = [j for j in order if j not in taken][:per_query]
        taken.update(chosen)
        if len(chosen) < per_query:
            raise PipelineError(
                f"pseudo-tasks: query {i} has {len(chosen)} candidate supports, needs {per_query}"
            )
        out.append(chosen)
    return out


def similarity_tasks(
    ids: Sequence[str],
    embeddings: np.ndarray,
    k: int,
    q: int,
    n_tasks: int,
    seed: int,
    support_ids: Sequence[str] | None = None,
    support_embeddings: np.ndarray | None = None,
) -> list[dict[str, list[str]]]:
    """`n_tasks` QA tasks: q random queries from `ids`, each with its k // q nearest items of
    the support pool (`support_ids`; default: the other items of `ids`) as supports. k must be
    a multiple of q: the paper's k = q = 6 gives one each."""
    if k % q:
        raise PipelineError(f"pseudo-tasks: k = {k} is not a multiple of q = {q}")
    same = support_ids is None
    pool_ids = ids if same else support_ids
    pool_emb = embeddings if same else support_embeddings
    if len(ids) < q or len(pool_ids) < k + (q if same else 0):
        raise PipelineError(
            f"pseudo-tasks: {len(ids)} query and {len(pool_ids)} support items, a task needs "
            f"{q} and {k}" + (" (one pool: q + k)" if same else "")
        )
    sim = cosine_matrix(embeddings, pool_emb)  # [query candidates, support pool]
    tasks = []
    for t in range(n_tasks):
        rng = _rng(seed, "qa", t)
        queries = rng.sample(range(len(ids)), q)
        sup = nearest_supports(sim, queries, k // q, set(queries) if same else set())
        tasks.append(
            {
                "query": [ids[i] for i in queries],
                "support": [pool_ids[j] for row in sup for j in row],
            }
        )
    return tasks


def split_ids(
    ids: Sequence[str], fractions: Sequence[float], seed: int, key: str
) -> list[list[str]]:
    """`ids` shuffled (seeded by `key`) and cut into consecutive parts of the given fractions
    (the rest last): M'hamdi et al.'s 75/25 (MTOD) and 60/40 (QA) dev splits."""
    order = sorted(map(str, ids))
    _rng(seed, "split", key).shuffle(order)
    parts, start = [], 0
    for f in fractions:
        end = start + round(f * len(order))
        parts.append(order[start:end])
        start = end
    parts.append(order[start:])
    return parts


def downsample_ids(ids: Sequence[str], fraction: float, seed: int, tlp: str) -> list[str]:
    """The share `fraction` of a TLP's dev ids a run trains on (M'hamdi et al.'s downsampling
    analysis): the same subset for every method of a seed, so that X-METRA-ADA and FT see
    the same target data."""
    if fraction >= 1:
        return [str(i) for i in ids]
    return split_ids(ids, [fraction], seed, f"{tlp}:downsample")[0]
