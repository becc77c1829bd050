"""XLA-MAML (Liu et al. 2021): cross-lingual episodes, dev-split meta-training, options, resume."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pipeline.config import Run, method_defaults
from pipeline.data.store import save_prepared
from pipeline.errors import ConfigError
from pipeline.records import TLP
from pipeline.trainer import Trainer, selection_tlps
from tests.conftest import make_records
from tests.meta_helpers import BASE, assert_resumes_bit_identically, trainer

LANGS = ("l0", "l1", "l2")


@pytest.fixture(scope="module")
def parallel_world(tiny_world, tmp_path_factory):
    """nli and qa in three languages whose examples share ids across languages (translations,
    as XNLI and MLQA), on the tiny world's encoder."""
    root = tmp_path_factory.mktemp("parallel")
    base = make_records(n_train=24, n_eval=16, seed=5)
    records = {}
    for tlp, splits in base.items():
        if tlp.task == "ner" or tlp.lang != "l0":
            continue
        for lang in LANGS:
            records[TLP(tlp.task, lang)] = {
                split: [{**r, "id": r["id"].split("-", 1)[1], "lang": lang} for r in rows]
                for split, rows in splits.items()
            }
    # one unshared example per language: parallel draws only the shared ids
    records[TLP("nli", "l2")]["dev"].append(
        {**records[TLP("nli", "l2")]["dev"][0], "id": "only-l2"}
    )
    save_prepared(root / "prepared", records)
    return {"root": root, "prepared": root / "prepared", "encoder": tiny_world["encoder"]}


def xla_run(tlps=("nli/l0", "nli/l1", "nli/l2"), evals=None, **over) -> Run:
    t = tuple(TLP.parse(x) for x in tlps)
    e = tuple(TLP.parse(x) for x in evals) if evals else t
    params = {
        **BASE,
        "method": "xla_maml",
        "train_split": "dev",
        "support": ["l0"],
        "query": ["l1", "l2"],
        **over,
    }
    return Run("xla-test", "xla", "xla_maml", t, e, params)


def ids_of(t: Trainer, task: str, lang: str, batch: dict) -> list[str]:
    """Example ids of a batch's rows, found by their input ids among the TLP's features."""
    data = t.ctx.train[TLP(task, lang)]
    rows = data.tensors["input_ids"][:, : batch["input_ids"].shape[1]]  # a batch is cut
    out = []
    for row in batch["input_ids"]:
        hit = (rows == row).all(dim=1).nonzero()
        out.append(str(data.features["example_id"][int(hit[0])]) if len(hit) else "?")
    return out


def test_defaults_are_the_papers_where_it_is_clear():
    d = method_defaults("xla_maml")
    assert d["inner_lr"] == 1e-5 and d["sampling"] == "cover" and d["parallel"] is True
    assert d["inner_steps"] == 1 and d["first_order"] is False and d["subset_size"] == 1
    assert d["support"] == ["en"] and d["query"] == ["aux"]


def test_support_and_query_languages_are_disjoint_subsets(parallel_world, tmp_path):
    run = xla_run(support=list(LANGS), query=list(LANGS), parallel=False)
    t = trainer(parallel_world, run, tmp_path / "c")
    seen = Counter()
    for _ in range(30):
        ep = t.method.episodes.draw(1)
        s, q = ep["support_langs"], ep["query_langs"]
        assert len(s) == len(q) == 1 and not set(s) & set(q)
        seen[s[0], q[0]] += 1
    assert len(seen) == 6  # every ordered pair of distinct languages occurs


def test_subset_size_two_draws_unions(parallel_world, tmp_path):
    run = xla_run(support=["l0", "l1"], query=["l1", "l2", "l0"], subset_size=2, parallel=False)
    with pytest.raises(ConfigError, match="too few query languages"):
        trainer(parallel_world, run, tmp_path / "a")
    run = xla_run(support=["l0", "l1"], query=["l2", "l1", "l0"], subset_size=1, parallel=False)
    trainer(parallel_world, run, tmp_path / "b")


def test_cover_uses_every_example_once_per_pass_and_random_does_not(parallel_world, tmp_path):
    run = xla_run(support=["l0"], query=["l1"], parallel=False, batch_size=4)
    t = trainer(parallel_world, run, tmp_path / "c")
    n = len(t.ctx.train[TLP("nli", "l1")])
    query_ids = []
    for _ in range(n // 4):
        query_ids += ids_of(t, "nli", "l1", t.method.episodes.draw(1)["query"])
    assert sorted(query_ids) == sorted(set(query_ids)) and len(query_ids) == n // 4 * 4
    rand = trainer(
        parallel_world,
        xla_run(support=["l0"], query=["l1"], parallel=False, batch_size=4, sampling="random"),
        tmp_path / "r",
    )
    drawn = []
    for _ in range(n // 4):
        drawn += ids_of(rand, "nli", "l1", rand.method.episodes.draw(1)["query"])
    assert len(set(drawn)) < len(drawn)  # a fresh random batch per episode repeats examples


def test_parallel_support_and_query_are_translations(parallel_world, tmp_path):
    run = xla_run(support=["l0"], query=["l2"], parallel=True, batch_size=4)
    t = trainer(parallel_world, run, tmp_path / "p")
    assert "only-l2" not in t.method.episodes.shared["nli"]
    for _ in range(3):
        ep = t.method.episodes.draw(1)
        s = ids_of(t, "nli", "l0", ep["support"][0])
        q = ids_of(t, "nli", "l2", ep["query"])
        assert s == q and "?" not in s
    non = trainer(
        parallel_world,
        xla_run(support=["l0"], query=["l2"], parallel=False, batch_size=4),
        tmp_path / "n",
    )
    pairs = [non.method.episodes.draw(1) for _ in range(3)]
    assert any(
        ids_of(non, "nli", "l0", ep["support"][0]) != ids_of(non, "nli", "l2", ep["query"])
        for ep in pairs
    )


def test_parallel_without_shared_ids_is_a_clear_error(tiny_world, tmp_path):
    run = xla_run(tlps=("nli/l0", "nli/l1"), support=["l0"], query=["l1"], parallel=True)
    with pytest.raises(ConfigError, match="share no example id; set parallel: false"):
        trainer(tiny_world, run, tmp_path / "a")


def test_languages_must_be_among_the_runs_tlps(parallel_world, tmp_path):
    run = xla_run(tlps=("nli/l0", "nli/l1"), support=["l0"], query=["l9"])
    with pytest.raises(ConfigError, match="query: nli/l9 not among the run's TLPs"):
        trainer(parallel_world, run, tmp_path / "a")


def test_trains_on_dev_and_selects_on_unseen_languages(parallel_world, tmp_path):
    """train_split: dev reads the dev split; the model is chosen on the evaluated TLPs it did
    not train on (Liu et al. §4.2); with none left it keeps the last step."""
    run = xla_run(
        tlps=("nli/l0", "nli/l1"),
        evals=("nli/l0", "nli/l1", "nli/l2"),
        support=["l0"],
        query=["l1"],
        steps=4,
        eval_every=2,
    )
    t = trainer(parallel_world, run, tmp_path / "c")
    assert all(d.split == "dev" for d in t.ctx.train.values())
    assert list(t.dev_data) == [TLP("nli", "l2")] == selection_tlps(run)
    summary = t.fit(tmp_path / "out")
    assert summary["train_split"] == "dev" and summary["selection_tlps"] == ["nli/l2"]
    assert summary["best_dev"] and set(summary["best_dev"]) == {"nli/l2"}
    last = xla_run(tlps=("nli/l0", "nli/l1"), support=["l0"], query=["l1"], steps=2)
    s = trainer(parallel_world, last, tmp_path / "c2").fit(tmp_path / "out2")
    assert s["selection"] == "last" and s["best_step"] == 2 and s["best_dev_mean"] is None


def test_multi_task_runs_take_the_tasks_in_turn(parallel_world, tmp_path):
    tlps = [f"{task}/{lg}" for task in ("nli", "qa") for lg in ("l0", "l1")]
    run = xla_run(tlps=tlps, support=["l0"], query=["l1"], steps=4, eval_every=4)
    t = trainer(parallel_world, run, tmp_path / "c")
    t.fit(tmp_path / "out")
    hist = json.loads((tmp_path / "out" / "history.json").read_text())
    assert [h["tasks"] for h in hist] == [["nli/l0->l1"], ["qa/l0->l1"]] * 2
    opts = json.loads((tmp_path / "out" / "summary.json").read_text())["options"]
    assert opts["sampling"] == "cover" and opts["parallel"] is True and opts["order"] == "second"


@pytest.mark.parametrize(
    "over",
    [
        # languages, random batches and a meta-batch of two: the episode generator's state
        {
            "support": ["l0", "l1"],
            "query": ["l1", "l2"],
            "meta_batch": 2,
            "sampling": "random",
            "parallel": False,
        },
        # cover passes over the shared ids: the permutations' positions
        {"support": ["l0"], "query": ["l1"], "parallel": True},
    ],
    ids=["random", "cover-parallel"],
)
def test_resumes_bit_identically(parallel_world, tmp_path, over):
    run = xla_run(steps=5, checkpoint_every=2, **over)
    assert_resumes_bit_identically(parallel_world, run, tmp_path)
