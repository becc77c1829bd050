"""Cross-lingual episodes for XLA-MAML (Liu et al. 2021, §3 and Algorithm 1): per meta-task,
disjoint language subsets for the support and the query, and batches drawn from their unions.

* Languages: `subset_size` support languages drawn from the `support` pool, then
  `subset_size` query languages from the `query` pool minus those (disjoint, so that every task
  simulates a transfer).
* Examples (Table 6): `cover` walks a shuffled permutation of the union's examples, so that all
  of them are used once per pass (the paper's "c."); `random` draws a fresh batch at random at
  every episode ("r.").
* Parallelism (Table 7): `parallel` draws the items first, among the example ids every language
  of the task shares (XNLI is fully parallel, MLQA partially), and takes the support and the query
  example of each item in one of the subset's languages (translations of one another);
  non-parallel draws the two batches independently.

Everything is deterministic from the seed: the languages and random batches of episode e come
from a generator seeded by (seed, e), the `cover` permutations from (seed, pool, pass); the
state is the episode counter and each permutation's position, so a resumed run draws the same
episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pipeline.engine import TrainContext
from pipeline.errors import ConfigError
from pipeline.records import TLP

Batch = dict[str, torch.Tensor]

SAMPLING = ("cover", "random")


def _key_seed(seed: int, key: str) -> int:
    return (seed * 1_000_003 + sum(ord(c) * 131**i for i, c in enumerate(key))) % 2**31


class Cover:
    """Endless passes over `n` items, each pass a permutation seeded by (seed, key, pass)."""

    def __init__(self, n: int, seed: int, key: str) -> None:
        self.n, self.seed = n, _key_seed(seed, key)
        self.epoch, self.pos = 0, 0
        self._perm: torch.Tensor | None = None

    def take(self, k: int) -> torch.Tensor:
        k = min(k, self.n)
        if self.pos + k > self.n:
            self.epoch, self.pos, self._perm = self.epoch + 1, 0, None
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            self._perm = torch.randperm(self.n, generator=g)
        out = self._perm[self.pos : self.pos + k]
        self.pos += k
        return out

    def state_dict(self) -> dict[str, int]:
        return {"n": self.n, "epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos, self._perm = state["epoch"], state["pos"], None


class Episodes:
    """Support and query batches of cross-lingual meta-tasks over one run's TLPs."""

    def __init__(
        self,
        ctx: TrainContext,
        support: Sequence[str],
        query: Sequence[str],
        subset_size: int,
        sampling: str,
        parallel: bool,
        batch_size: int,
        seed: int,
    ) -> None:
        if sampling not in SAMPLING:
            raise ConfigError(f"sampling: expected one of {', '.join(SAMPLING)}, got {sampling!r}")
        self.ctx, self.k, self.sampling, self.parallel = ctx, subset_size, sampling, parallel
        self.batch_size, self.seed = batch_size, seed
        self.tasks = list(dict.fromkeys(t.task for t in ctx.tlps))
        self.support, self.query = list(support), list(query)
        have = {(t.task, t.lang) for t in ctx.tlps}
        for task in self.tasks:
            for side, langs in (("support", self.support), ("query", self.query)):
                missing = [lg for lg in langs if (task, lg) not in have]
                if missing:
                    raise ConfigError(
                        f"{side}: {', '.join(f'{task}/{lg}' for lg in missing)} not among the "
                        f"run's TLPs ({', '.join(map(str, ctx.tlps))})"
                    )
        if len(self.support) < subset_size:
            raise ConfigError(f"subset_size {subset_size}: the support pool has {self.support}")
        worst = min(len(set(self.query) - set(s)) for s in self._subsets(self.support))
        if worst < subset_size:
            raise ConfigError(
                f"subset_size {subset_size}: support {self.support} and query {self.query} "
                "leave too few query languages disjoint from some support subset"
            )
        # per TLP: example id -> its first training feature (QA: the first window)
        self.first: dict[TLP, dict[str, int]] = {}
        for t in ctx.tlps:
            ids = ctx.train[t].features["example_id"]
            self.first[t] = {}
            for i, rid in enumerate(ids):
                self.first[t].setdefault(str(rid), i)
        self.shared: dict[str, list[str]] = {}
        if parallel:
            for task in self.tasks:
                langs = dict.fromkeys([*self.support, *self.query])
                common = set.intersection(*(set(self.first[TLP(task, lg)]) for lg in langs))
                if not common:
                    raise ConfigError(
                        f"parallel: the {task} data of {', '.join(langs)} share no example id; "
                        "set parallel: false"
                    )
                self.shared[task] = sorted(common)
        self.episode = 0
        self.covers: dict[str, Cover] = {}

    def _subsets(self, pool: Sequence[str]) -> list[tuple[str, ...]]:
        from itertools import combinations

        return list(combinations(pool, self.k))

    # -- drawing --------------------------------------------------------------------------

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(_key_seed(self.seed, f"episode:{self.episode}"))

    def _pick(self, g: torch.Generator, pool: Sequence[str], k: int) -> list[str]:
        idx = torch.randperm(len(pool), generator=g)[:k].tolist()
        return [pool[i] for i in sorted(idx)]

    def _cover(self, key: str, n: int) -> Cover:
        if key not in self.covers:
            self.covers[key] = Cover(n, self.seed, key)
        return self.covers[key]

    def _items(self, g: torch.Generator, key: str, n: int) -> torch.Tensor:
        """Indices of one batch out of n items: the next of a cover pass, or random."""
        if self.sampling == "cover":
            return self._cover(key, n).take(self.batch_size)
        return torch.randperm(n, generator=g)[: min(self.batch_size, n)]

    def _gather(self, task: str, picks: list[tuple[str, int]]) -> Batch:
        """One batch of (language, feature index) picks, in the order given."""
        parts = []
        for lg, i in picks:
            data = self.ctx.train[TLP(task, lg)].tensors
            parts.append({k: v[i : i + 1] for k, v in data.items()})
        stacked = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        return self.ctx.take(stacked, slice(None))

    def _union(self, g: torch.Generator, task: str, langs: list[str]) -> Batch:
        """A non-parallel batch from the union of `langs`' examples."""
        sizes = [len(self.ctx.train[TLP(task, lg)]) for lg in langs]
        key = f"{task}:{'+'.join(langs)}"
        idx = self._items(g, key, sum(sizes)).tolist()
        picks = []
        for j in idx:
            for lg, n in zip(langs, sizes, strict=True):
                if j < n:
                    picks.append((lg, j))
                    break
                j -= n
        return self._gather(task, picks)

    def _parallel(
        self, g: torch.Generator, task: str, s_langs: list[str], q_langs: list[str]
    ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """Support and query picks of the same items (translations), each item in one
        language of its subset."""
        ids = self.shared[task]
        chosen = [ids[j] for j in self._items(g, f"{task}:parallel", len(ids)).tolist()]
        s_lang = torch.randint(len(s_langs), (len(chosen),), generator=g).tolist()
        q_lang = torch.randint(len(q_langs), (len(chosen),), generator=g).tolist()
        sup = [(s_langs[a], self.first[TLP(task, s_langs[a])][i]) for a, i in zip(s_lang, chosen)]
        qry = [(q_langs[b], self.first[TLP(task, q_langs[b])][i]) for b, i in zip(q_lang, chosen)]
        return sup, qry

    def draw(self, inner_steps: int) -> dict[str, Any]:
        """The next meta-task: its task, language subsets, `inner_steps` support batches and
        one query batch (parallel: the query holds the translations of the first support
        batch's items)."""
        g = self._generator()
        task = self.tasks[self.episode % len(self.tasks)]
        s_langs = self._pick(g, self.support, self.k)
        q_pool = [lg for lg in self.query if lg not in s_langs]
        q_langs = self._pick(g, q_pool, self.k)
        if self.parallel:  # the query: the first draw's translations (one draw if n = 0)
            picks = [self._parallel(g, task, s_langs, q_langs) for _ in range(max(inner_steps, 1))]
            support = [self._gather(task, sup) for sup, _ in picks[:inner_steps]]
            query = self._gather(task, picks[0][1])
        else:
            support = [self._union(g, task, s_langs) for _ in range(inner_steps)]
            query = self._union(g, task, q_langs)
        self.episode += 1
        return {
            "task": task,
            "support_langs": s_langs,
            "query_langs": q_langs,
            "support": support,
            "query": query,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "covers": {k: c.state_dict() for k, c in self.covers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episode = state["episode"]
        self.covers = {}
        for key, st in state["covers"].items():
            self._cover(key, st["n"]).load_state_dict(st)
