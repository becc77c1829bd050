"""The pseudo-task sets of one X-METRA(-ADA) run (M'hamdi et al. 2021, §2.3 and §3.2).

Written once per run by the `pseudo_tasks` step (a tracked artifact), read by the method:

* meta-train: support from the `support` languages' **train** split (English), query from the
  `query` languages' **dev** split — all of it for X-METRA, its first `meta_train_fraction`
  (MTOD 75%, QA 60%, after a seeded shuffle) for X-METRA-ADA;
* meta-adapt (X-METRA-ADA): the rest of the target dev split; MTOD takes support and query of
  each task from that one pool (disjoint within the task), QA splits it again
  (`adapt_support_fraction`, 60%) into a support and a query pool.

MTOD tasks hold k items per intent in the support and q per intent in the query
(`pseudo_tasks.intent_tasks`); QA tasks q random queries, each with its k // q most similar
support items by cosine of sentence embeddings of "question context answer"
(`pseudo_tasks.similarity_tasks`; the embedder: `embedder`, a hub sentence encoder in real runs,
default the run's encoder, mean-pooled). `dev_fraction` < 1 keeps only that share of the
target dev split (the downsampling analysis; the trainer keeps the same subset). Ids refer to prepared records; the method maps
them to features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.config import method_params, train_split_of
from pipeline.data import pseudo_tasks as pt
from pipeline.errors import ConfigError
from pipeline.methods.episodes import _key_seed
from pipeline.records import TASK_TYPES, TLP

#: the paper's share of the target dev split that forms meta-train queries (X-METRA-ADA)
META_TRAIN_FRACTION = {"intent_slots": 0.75, "qa": 0.6}

Records = Sequence[Mapping[str, Any]]
#: (texts) -> [n, d] sentence embeddings
Embed = Callable[[list[str]], np.ndarray]


def task_kind(task: str) -> str:
    kind = TASK_TYPES[task]
    if kind not in META_TRAIN_FRACTION:
        raise ConfigError(
            f"x-metra: pseudo-tasks exist for MTOD (intent_slots) and QA tasks, not {task} ({kind})"
        )
    return kind


def pairs(run_tlps: Sequence[TLP], p: Mapping[str, Any]) -> list[tuple[TLP, TLP]]:
    """(support TLP, query TLP) per task and support/query language pair of the run."""
    have = set(run_tlps)
    out = []
    for task in dict.fromkeys(t.task for t in run_tlps):
        for s in p["support"]:
            for q in p["query"]:
                st, qt = TLP(task, s), TLP(task, q)
                for side, t in (("support", st), ("query", qt)):
                    if t not in have:
                        raise ConfigError(
                            f"{side}: {t} is not among the run's TLPs "
                            f"({', '.join(map(str, run_tlps))})"
                        )
                out.append((st, qt))
    return out


def check_splits(params: Mapping[str, Any], tlps: Sequence[tuple[TLP, TLP]]) -> None:
    """Support on train splits, queries on dev splits (`dev_tlps`), as the paper's data."""
    for s, q in tlps:
        if train_split_of(params, s) != "train" or train_split_of(params, q) != "dev":
            raise ConfigError(
                f"x-metra: expected the support {s} on its train split and the query {q} on its "
                f"dev split (dev_tlps: [{q}])"
            )


def build(
    method: str,
    params: Mapping[str, Any],
    run_tlps: Sequence[TLP],
    records: Callable[[TLP, str], Records],
    embed: Embed | None,
) -> dict[str, Any]:
    """The run's pseudo-tasks: {"meta_train": [...], "meta_adapt": [...], "options": {...}};
    each task {"support": {"tlp", "ids"}, "query": {"tlp", "ids"}}. `records(tlp, split)`
    gives prepared records; `embed` is needed for QA only."""
    p = method_params(method, params)
    seed = int(params["seed"])
    k, q = int(p["k"]), int(p["q"])
    ada = method == "xmetra_ada"
    out: dict[str, list] = {"meta_train": [], "meta_adapt": []}
    pp = pairs(run_tlps, p)
    check_splits(params, pp)
    for s_tlp, q_tlp in pp:
        kind = task_kind(q_tlp.task)
        frac = p["meta_train_fraction"] or META_TRAIN_FRACTION[kind]
        sup, tgt = records(s_tlp, "train"), records(q_tlp, "dev")
        key = f"{s_tlp}->{q_tlp}"
        ids = pt.downsample_ids(
            [r["id"] for r in tgt], params.get("dev_fraction", 1.0), seed, str(q_tlp)
        )
        train_ids, adapt_ids = pt.split_ids(ids, [frac], seed, str(q_tlp)) if ada else (ids, [])
        by_id = {str(r["id"]): r for r in tgt}
        q_train = [by_id[i] for i in train_ids]
        q_adapt = [by_id[i] for i in adapt_ids]
        n, na = int(p["n_tasks"]), int(p["adapt_tasks"])
        if kind == "intent_slots":
            train = pt.intent_tasks(sup, q_train, k, q, n, _key_seed(seed, key))
            adapt = (
                pt.intent_tasks(q_adapt, None, k, q, na, _key_seed(seed, key + ":adapt"))
                if ada
                else []
            )
        else:
            if embed is None:
                raise ConfigError("x-metra: QA pseudo-tasks need an embedder")
            s_emb = embed([pt.qa_text(r) for r in sup])
            t_emb = embed([pt.qa_text(by_id[i]) for i in ids])
            row = {i: j for j, i in enumerate(ids)}

            def emb_of(sel: list[str], t_emb: np.ndarray = t_emb, row: dict = row) -> np.ndarray:
                return t_emb[[row[i] for i in sel]]

            train = pt.similarity_tasks(
                train_ids,
                emb_of(train_ids),
                k,
                q,
                n,
                _key_seed(seed, key),
                [str(r["id"]) for r in sup],
                s_emb,
            )
            adapt = []
            if ada:
                a_sup, a_qry = pt.split_ids(
                    adapt_ids, [p["adapt_support_fraction"]], seed, f"{q_tlp}:adapt"
                )
                adapt = pt.similarity_tasks(
                    a_qry,
                    emb_of(a_qry),
                    k,
                    q,
                    na,
                    _key_seed(seed, key + ":adapt"),
                    a_sup,
                    emb_of(a_sup),
                )
        out["meta_train"] += [_tagged(t, s_tlp, q_tlp) for t in train]
        if ada:
            out["meta_adapt"] += [_tagged(t, q_tlp, q_tlp) for t in adapt]
    # tasks of several (support, query) pairs and tasks interleave: task i of each pair in turn
    for side in out:
        out[side] = _interleave(out[side], len(pp))
    return {
        **out,
        "options": {
            "k": k,
            "q": q,
            "n_tasks": len(out["meta_train"]),
            "adapt_tasks": len(out["meta_adapt"]),
            "dev_fraction": params.get("dev_fraction", 1.0),
            "meta_train_fraction": p["meta_train_fraction"] or "paper (MTOD 0.75, QA 0.6)",
            "adapt_support_fraction": p["adapt_support_fraction"],
            "embedder": p["embedder"] or "run encoder (mean-pooled)",
        },
    }


def inputs(method: str, params: Mapping[str, Any], run_tlps: Sequence[TLP]) -> dict[str, Any]:
    """What a run's pseudo-tasks depend on (the rule's params: a learning-rate change does
    not rebuild them)."""
    p = method_params(method, params)
    keys = ("support", "query", "k", "q", "n_tasks", "adapt_tasks", "meta_train_fraction")
    return {
        "method": method,
        "tlps": [str(t) for t in run_tlps],
        "seed": params["seed"],
        "dev_tlps": list(params.get("dev_tlps", [])),
        "train_split": params.get("train_split", "train"),
        "dev_fraction": params.get("dev_fraction", 1.0),
        **{k: p[k] for k in (*keys, "adapt_support_fraction", "embedder")},
    }


def _tagged(task: Mapping[str, Any], s: TLP, q: TLP) -> dict[str, Any]:
    return {
        "support": {"tlp": str(s), "ids": task["support"]},
        "query": {"tlp": str(q), "ids": task["query"]},
    }


def _interleave(tasks: list[dict[str, Any]], groups: int) -> list[dict[str, Any]]:
    if groups <= 1 or not tasks:
        return tasks
    per = len(tasks) // groups
    return [tasks[g * per + i] for i in range(per) for g in range(groups)]
