"""X-METRA and X-METRA-ADA: pseudo-task sets, the interleaved meta-gradient, the methods through
the trainer (batches, stages, resume), dev-split training keys and downsampling."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from pipeline.config import Run, method_params
from pipeline.data import pseudo_tasks as pt
from pipeline.data.store import save_prepared
from pipeline.errors import ConfigError
from pipeline.features import trim_padding
from pipeline.methods import maml_core, xmetra_tasks
from pipeline.methods.maml_core import MetaTask
from pipeline.methods.xmetra import feature_index
from pipeline.records import TLP
from tests.conftest import NAMES, WORDS
from tests.meta_helpers import BASE, assert_resumes_bit_identically, trainer
from tests.test_grid_init import runs_of
from tests.test_maml import A, LinearModel, batches, ce, ce_grad, ctx_for, hand_adapt

INTENTS = ("greet", "ask", "other")
EN, TG = TLP("mtod", "l0"), TLP("mtod", "l1")
QEN, QTG = TLP("qa", "l0"), TLP("qa", "l1")


def mtod_record(rng: random.Random, i: str, lang: str, intent: str) -> dict:
    tokens, slots = (["who", "is"], ["O", "O"]) if intent == "ask" else ([], [])
    for _ in range(4):
        if intent == "greet" and not slots:
            tokens += [rng.choice(NAMES), "Jr"]
            slots += ["B-PER", "I-PER"]
        else:
            tokens.append(rng.choice(WORDS))
            slots.append("O")
    return {"id": i, "lang": lang, "tokens": tokens, "slots": slots, "intent": intent}


def qa_record(rng: random.Random, i: str, lang: str, topic: int) -> dict:
    name = NAMES[topic % len(NAMES)]
    filler = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 30)))
    context = f"{filler} the winner was {name} today ."
    return {
        "id": i,
        "lang": lang,
        "context": context,
        "question": f"who was the winner {topic} ?",
        "answers": {"text": [name], "answer_start": [context.index(f"was {name}") + 4]},
    }


def make_world_records() -> dict:
    rng = random.Random(0)
    out: dict = {}
    for tlp, sizes in ((EN, (36, 6, 6)), (TG, (0, 48, 9))):
        out[tlp] = {
            sp: [
                mtod_record(rng, f"{tlp.lang}-{sp}{i}", tlp.lang, INTENTS[i % 3]) for i in range(n)
            ]
            for sp, n in zip(("train", "dev", "test"), sizes, strict=True)
            if n
        }
    for tlp, sizes in ((QEN, (24, 4, 4)), (QTG, (0, 30, 4))):
        out[tlp] = {
            sp: [qa_record(rng, f"{tlp.lang}-{sp}{i}", tlp.lang, i % 7) for i in range(n)]
            for sp, n in zip(("train", "dev", "test"), sizes, strict=True)
            if n
        }
    return out


@pytest.fixture(scope="module")
def xworld(tiny_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("xworld")
    records = make_world_records()
    save_prepared(root / "prepared", records)
    return {
        "root": root,
        "prepared": root / "prepared",
        "encoder": tiny_world["encoder"],
        "records": records,
    }


def params(method: str = "xmetra_ada", **over) -> dict:
    return {
        **BASE,
        "method": method,
        "seed": 5,
        "dev_tlps": ["mtod/l1"],
        "support": ["l0"],
        "query": ["l1"],
        "k": 2,
        "q": 2,
        "n_tasks": 12,
        "adapt_tasks": 6,
        "meta_batch": 2,
        "inner_steps": 2,
        "inner_lr": 0.05,
        "steps": 3,
        "adapt_steps": 2,
        "selection": "last",
        **over,
    }


def build(world, method="xmetra_ada", tlps=(EN, TG), embed=None, **over):
    recs = world["records"]
    return xmetra_tasks.build(
        method, params(method, **over), list(tlps), lambda t, sp: recs[t][sp], embed
    )


# -- pseudo-task sets --------------------------------------------------------------------------


def test_mtod_tasks_follow_the_papers_splits(xworld):
    recs = xworld["records"]
    dev = {r["id"]: r for r in recs[TG]["dev"]}
    en = {r["id"] for r in recs[EN]["train"]}
    out = build(xworld)
    train_q = {i for t in out["meta_train"] for i in t["query"]["ids"]}
    adapt = {i for t in out["meta_adapt"] for side in ("support", "query") for i in t[side]["ids"]}
    part_a, part_b = pt.split_ids(list(dev), [0.75], 5, "mtod/l1")
    assert len(part_a) == 36 and len(part_b) == 12  # 75% / 25% of the 48 dev items
    assert train_q <= set(part_a) and adapt <= set(part_b)  # the two stages never share data
    for t in out["meta_train"]:
        assert t["support"]["tlp"] == "mtod/l0" and t["query"]["tlp"] == "mtod/l1"
        assert set(t["support"]["ids"]) <= en
        per = [dev[i]["intent"] for i in t["query"]["ids"]]
        assert sorted(per) == sorted(INTENTS * 2)  # q = 2 per intent, balanced
    for t in out["meta_adapt"]:  # support and query from the one held-out pool, disjoint
        assert t["support"]["tlp"] == t["query"]["tlp"] == "mtod/l1"
        assert not set(t["support"]["ids"]) & set(t["query"]["ids"])
    assert len(out["meta_train"]) == 12 and len(out["meta_adapt"]) == 6
    assert out == build(xworld)  # deterministic from the seed
    assert out != build(xworld, seed=6)


def test_xmetra_queries_come_from_all_of_the_dev_split(xworld):
    out = build(xworld, "xmetra", n_tasks=60)
    used = {i for t in out["meta_train"] for i in t["query"]["ids"]}
    assert out["meta_adapt"] == []
    assert used == {r["id"] for r in xworld["records"][TG]["dev"]}


def topic_embed(texts: list[str]) -> np.ndarray:
    """One-hot of the question's topic number: items of one topic are each other's nearest."""
    out = np.full((len(texts), 8), 0.01)
    for i, t in enumerate(texts):
        topic = int(t.split("winner ")[1].split()[0])
        out[i, topic] = 1.0 + 0.001 * (len(t) % 7)
    return out


def test_qa_queries_get_their_nearest_english_supports_with_their_own_answers(xworld):
    recs = xworld["records"]
    topic = {
        r["id"]: r["question"]
        for tlp in (QEN, QTG)
        for r in recs[tlp]["train" if tlp == QEN else "dev"]
    }
    out = build(xworld, tlps=(QEN, QTG), embed=topic_embed, dev_tlps=["qa/l1"], k=2, q=2, n_tasks=8)
    en = {r["id"] for r in recs[QEN]["train"]}
    for t in out["meta_train"]:
        q, s = t["query"]["ids"], t["support"]["ids"]
        assert set(s) <= en and len(s) == 2  # k / q = 1 support per query
        for qi, si in zip(q, s, strict=True):  # each query's support shares its topic
            assert topic[qi] == topic[si]
    dev = [r["id"] for r in recs[QTG]["dev"]]
    part_a, part_b = pt.split_ids(dev, [0.6], 5, "qa/l1")
    a_sup, a_qry = pt.split_ids(part_b, [0.6], 5, "qa/l1:adapt")
    assert len(part_a) == 18 and len(a_sup) == 7 and len(a_qry) == 5  # 60/40, then 60/40
    for t in out["meta_adapt"]:
        assert set(t["support"]["ids"]) <= set(a_sup) and set(t["query"]["ids"]) <= set(a_qry)
    # the record of a support carries its own answer span: the ids are the records'
    by_id = {r["id"]: r for r in recs[QEN]["train"]}
    assert all(by_id[i]["answers"]["text"] for t in out["meta_train"] for i in t["support"]["ids"])


def test_qa_without_an_embedder_and_wrong_splits_are_clear_errors(xworld):
    with pytest.raises(ConfigError, match="embedder"):
        build(xworld, tlps=(QEN, QTG), dev_tlps=["qa/l1"])
    with pytest.raises(ConfigError, match=r"query mtod/l1 on its dev split \(dev_tlps"):
        build(xworld, dev_tlps=[])
    with pytest.raises(ConfigError, match="not among the run's TLPs"):
        build(xworld, tlps=(EN,))
    with pytest.raises(ConfigError, match="MTOD .* and QA"):
        xmetra_tasks.task_kind("nli")


def test_multi_task_runs_interleave_their_tasks(xworld):
    out = build(
        xworld,
        tlps=(EN, TG, QEN, QTG),
        embed=topic_embed,
        dev_tlps=["mtod/l1", "qa/l1"],
        n_tasks=4,
    )
    kinds = [t["query"]["tlp"] for t in out["meta_train"]]
    assert kinds == ["mtod/l1", "qa/l1"] * 4


# -- the interleaved (reference) meta-gradient: a chain continues from θ' ----------------------


@pytest.mark.parametrize("first_order", [True, False])
def test_a_chained_task_adds_the_adapt_query_gradient_at_the_continued_parameters(first_order):
    model = LinearModel(4, 3, seed=2)
    s1, q1, s2, q2 = batches(4, seed=3)
    task = MetaTask([(A, s1)] * 2, (A, q1), then=MetaTask([(A, s2)], (A, q2)))
    logs = maml_core.accumulate_meta_gradient(ctx_for(model), [task], 0.3, first_order)
    w0, b0 = model.w.detach().clone(), model.b.detach().clone()
    if first_order:  # ∇L_Q1 at θ' plus ∇L_Q2 at θ'' = θ' − α∇L_S2(θ'), no second derivatives
        w1, b1 = hand_adapt(w0, b0, [s1, s1], 0.3)
        w2, b2 = hand_adapt(w1, b1, [s2], 0.3)
        ga, gb = ce_grad(w1, b1, q1)
        ha, hb = ce_grad(w2, b2, q2)
        want = (ga + ha, gb + hb)
    else:
        w0.requires_grad_(True)
        b0.requires_grad_(True)
        w1, b1 = hand_adapt(w0, b0, [s1, s1], 0.3)
        w2, b2 = hand_adapt(w1, b1, [s2], 0.3)
        want = torch.autograd.grad(ce(w1, b1, q1) + ce(w2, b2, q2), (w0, b0))
    torch.testing.assert_close(model.w.grad, want[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(model.b.grad, want[1], rtol=1e-10, atol=1e-12)
    assert logs["loss"] == pytest.approx(
        (ce(w1, b1, q1).item() + ce(w2, b2, q2).item()) / 2, rel=1e-9
    )


def test_matches_learn2learn_when_it_installs():
    l2l = pytest.importorskip("learn2learn")  # (0.2.0 does not build on Python 3.11)
    model, ref = LinearModel(4, 3, seed=4), LinearModel(4, 3, seed=4)
    s1, q1, s2, q2 = batches(4, seed=8)
    task = MetaTask([(A, s1)] * 3, (A, q1), then=MetaTask([(A, s2)], (A, q2)))
    maml_core.accumulate_meta_gradient(ctx_for(model), [task], 0.2, True)
    maml = l2l.algorithms.MAML(ref, lr=0.2, first_order=True)
    learner = maml.clone()
    for _ in range(3):
        learner.adapt(ce(learner.w, learner.b, s1))
    ce(learner.w, learner.b, q1).backward(retain_graph=True)
    learner.adapt(ce(learner.w, learner.b, s2))
    ce(learner.w, learner.b, q2).backward()
    torch.testing.assert_close(model.w.grad, ref.w.grad)
    torch.testing.assert_close(model.b.grad, ref.b.grad)


# -- through the trainer -----------------------------------------------------------------------


def xrun(method="xmetra_ada", tlps=(EN, TG), **over) -> Run:
    p = params(method, **over)
    return Run(f"{method}-test", method, method, tuple(tlps), tuple(tlps), p)


def run_tasks(world, run, embed=None) -> dict:
    recs = world["records"]
    return xmetra_tasks.build(
        run.method, run.params, list(run.train_tlps), lambda t, sp: recs[t][sp], embed
    )


def tasks_trainer(world, run, ckpt, embed=None):
    tasks = run_tasks(world, run, embed)
    return trainer(world, run, ckpt, pseudo_tasks=tasks), tasks


def assert_batch_of(t, tlp: TLP, batch: dict, ids: list[str]) -> None:
    """`batch` holds exactly the features of record `ids`, in order."""
    feats = t.ctx.train[tlp].features
    index = feature_index(t.ctx)[tlp]
    rows = [index[i] for i in ids]
    assert [str(feats["example_id"][r]) for r in rows] == ids
    full = {k: v[rows] for k, v in t.ctx.train[tlp].tensors.items()}
    assert batch.keys() == full.keys()
    for k, v in trim_padding(full).items():  # batches are dynamically padded
        assert torch.equal(batch[k], v), k


def test_each_outer_step_reads_its_tasks_items_and_switches_stage(xworld, tmp_path):
    from types import SimpleNamespace

    t, tasks = tasks_trainer(xworld, xrun(), tmp_path / "ckpt")
    assert t.total_steps == 5  # 3 meta-train + 2 meta-adapt steps
    seen = []

    def spy(ctx, metatasks):
        seen.extend(metatasks)
        return {"loss": 0.0}

    t.method.maml = SimpleNamespace(step=spy, inner_steps=2)
    stages = [t.method.step()["stage"] for _ in range(5)]
    assert stages == ["meta_train"] * 3 + ["meta_adapt"] * 2
    expect = tasks["meta_train"][:6] + tasks["meta_adapt"][:4]  # meta_batch 2 per step
    assert len(seen) == 10
    for mt, raw in zip(seen, expect, strict=True):
        assert len(mt.support) == 2 and mt.support[0] is mt.support[1]  # n steps, whole set
        (s_tlp, s_batch), (q_tlp, q_batch) = mt.support[0], mt.query
        assert str(s_tlp) == raw["support"]["tlp"] and str(q_tlp) == raw["query"]["tlp"]
        assert_batch_of(t, s_tlp, s_batch, raw["support"]["ids"])
        assert_batch_of(t, q_tlp, q_batch, raw["query"]["ids"])


def test_interleaved_stages_chain_a_meta_adapt_task_to_every_task(xworld, tmp_path, monkeypatch):
    run = xrun(stages="interleaved", adapt_inner_steps=3)
    t, tasks = tasks_trainer(xworld, run, tmp_path / "ckpt")
    assert t.total_steps == 3  # adapt_steps unused
    captured = []
    real = maml_core.meta_step

    def spy(ctx, metatasks, *a, **k):
        captured.append(metatasks)
        return real(ctx, metatasks, *a, **k)

    monkeypatch.setattr(maml_core, "meta_step", spy)
    logs = t.method.step()
    assert logs["stage"] == "interleaved"
    first = captured[0][0]
    assert len(first.support) == 2 and len(first.then.support) == 3
    assert str(first.then.query[0]) == "mtod/l1"
    assert t.method.options()["stages"] == "interleaved"


def test_qa_items_train_on_the_window_holding_their_answer(xworld, tmp_path):
    run = xrun("xmetra", tlps=(QEN, QTG), dev_tlps=["qa/l1"])
    t, _ = tasks_trainer(xworld, run, tmp_path / "ckpt", embed=topic_embed)
    index = feature_index(t.ctx)[QEN]
    feats, start = t.ctx.train[QEN].features, t.ctx.train[QEN].tensors["start_positions"]
    ids = [str(i) for i in feats["example_id"]]
    multi = [i for i in set(ids) if ids.count(i) > 1]
    assert multi, "the fixture should have contexts longer than one window"
    for rid in multi:
        rows = [j for j, x in enumerate(ids) if x == rid]
        answered = [j for j in rows if int(start[j]) > 0]
        assert index[rid] == (answered[0] if answered else rows[0])


def test_xmetra_ada_resumes_bit_identically_across_the_stage_boundary(xworld, tmp_path):
    run = xrun(steps=3, adapt_steps=3, checkpoint_every=2)
    tasks = run_tasks(xworld, run)

    def make(world, r, ckpt):
        return trainer(world, r, ckpt, pseudo_tasks=tasks)

    assert_resumes_bit_identically(xworld, run, tmp_path, call=5, make=make)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["selection"] == "last" and summary["best_step"] == 6
    assert summary["train_split"] == {"mtod/l0": "train", "mtod/l1": "dev"}
    assert summary["options"]["order"] == "first" and summary["options"]["k"] == 2


def test_defaults_are_the_papers():
    p = method_params("xmetra_ada", {})
    assert (p["inner_steps"], p["k"], p["q"], p["first_order"]) == (5, 6, 6, True)
    assert p["inner_lr"] == 1e-3 and p["meta_batch"] == 4 and p["stages"] == "sequential"
    assert xmetra_tasks.META_TRAIN_FRACTION == {"intent_slots": 0.75, "qa": 0.6}
    assert p["adapt_support_fraction"] == 0.6


def test_dev_fraction_trains_every_method_on_the_same_subset(xworld, tmp_path):
    run = Run(
        "ft-test",
        "ft",
        "mtl",
        (TG,),
        (TG,),
        {**BASE, "method": "mtl", "train_split": "dev", "dev_fraction": 0.5, "selection": "last"},
    )
    t = trainer(xworld, run, tmp_path / "ckpt")
    got = {str(i) for i in t.train_data[TG].records["id"]}
    dev = [r["id"] for r in xworld["records"][TG]["dev"]]
    assert got == set(pt.downsample_ids(dev, 0.5, BASE["seed"], "mtod/l1")) and len(got) == 24
    out = build(xworld, "xmetra", dev_fraction=0.5, seed=BASE["seed"], n_tasks=40)
    used = {i for task in out["meta_train"] for i in task["query"]["ids"]}
    assert used <= got


# -- the experiment keys M'hamdi et al.'s protocol needs ---------------------------------------


@pytest.fixture()
def mcfg():
    from pipeline.config import load_params
    from tests.conftest import REPO

    c = load_params([REPO / "params.yaml"])
    c["seeds"] = [13, 14]
    c["experiments"] = {
        "pre": {
            "method": "mtl",
            "steps": 5,
            "tlps": ["mtod/l0"],
            "eval_tlps": ["mtod/l2"],
            "row": "PRE",
        },
        "ft": {
            "method": "mtl",
            "init": "pre",
            "target": ["l1", "l2"],
            "tlps": ["mtod/target"],
            "train_split": "dev",
            "steps": 3,
            "extra_eval": False,
        },
        "ft_en": {
            "method": "mtl",
            "init": "pre",
            "target": ["l2"],
            "tlps": ["mtod/l0", "mtod/target"],
            "dev_tlps": ["mtod/target"],
            "steps": 3,
            "selection": "last",
        },
        "xa": {
            "method": "xmetra_ada",
            "init": "pre",
            "target": ["l2"],
            "tlps": ["mtod/l0", "mtod/target"],
            "dev_tlps": ["mtod/target"],
            "support": ["l0"],
            "query": ["target"],
            "steps": 3,
            "sweep": [{"k": 1, "q": 1}, {"dev_fraction": 0.25}],
        },
    }
    return c


def test_dev_tlps_eval_tlps_and_sweeps_expand_as_documented(mcfg):
    from pipeline.config import train_split_of
    from pipeline.data.plan import needed_splits
    from pipeline.trainer import selection_tlps

    runs = runs_of(mcfg)
    pre = runs["pre.s13"]
    assert [str(t) for t in pre.eval_tlps] == ["mtod/l0", "mtod/l4", "mtod/l2"]
    assert selection_tlps(pre) == [TLP.parse("mtod/l0")]  # its own dev set
    ft = runs["ft.l1.s14"]  # extra_eval: false: the target only (no zero-shot l4, no init l0)
    assert [str(t) for t in ft.eval_tlps] == ["mtod/l1"] and ft.init == "pre.s14"
    en = runs["ft_en.l2.s13"]
    assert [str(t) for t in en.eval_tlps] == ["mtod/l0", "mtod/l2", "mtod/l4"]
    assert [train_split_of(en.params, t) for t in en.train_tlps] == ["train", "dev"]
    assert selection_tlps(en) == []  # `selection: last`
    need = needed_splits([en])
    assert need[TLP.parse("mtod/l0")] == {"train", "dev", "test"}
    assert need[TLP.parse("mtod/l2")] == {"dev", "test"}  # no train split needed
    k1, down = runs["xa.l2.k1-q1.s13"], runs["xa.l2.dev_fraction0p25.s14"]
    assert (k1.params["k"], k1.params["q"], k1.sweep) == (1, 1, {"k": 1, "q": 1})
    assert down.params["dev_fraction"] == 0.25 and not down.report and down.init == "pre.s14"
    assert "sweep" not in k1.params and "xa.l2.s13" not in runs  # a sweep replaces the run
    assert k1.to_json()["sweep"] == {"k": 1, "q": 1}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda e: e["ft_en"].__setitem__("dev_tlps", ["mtod/l3"]), "dev_tlps: mtod/l3 not among"),
        (lambda e: e["xa"].__setitem__("sweep", [{"method": "mtl"}]), "sweep.0: method cannot"),
        (lambda e: e["xa"].__setitem__("sweep", [{"k": 0}]), "sweep.0.k"),
        (lambda e: e["xa"].update(epochs=1, steps=None) or e["xa"].pop("steps"), "give steps"),
        (lambda e: e["ft"].__setitem__("selection", "best"), "selection"),
    ],
)
def test_bad_protocol_keys_name_the_key(mcfg, mutate, message):
    from pipeline.config import validate

    mutate(mcfg["experiments"])
    with pytest.raises(ConfigError, match=message):
        validate(mcfg)
