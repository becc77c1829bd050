"""Catastrophic forgetting (Lee et al. 2022 §4.2, Figure 5): deterministic masking, the MLM
loss and the l2 distance by hand, the held-out synthetic text, the CLI steps on a tiny project,
the report table from hand-made results, and the config's checks."""

from __future__ import annotations

import copy
import json
import math
import shutil
import statistics

import pytest
import torch
import yaml
from transformers import BertConfig, BertForMaskedLM, BertModel

from pipeline.cli import build_parser, main
from pipeline.config import load_params, validate
from pipeline.data.synthetic import generate
from pipeline.errors import ConfigError, DataError, PipelineError
from pipeline.experiments import forgetting as fg
from pipeline.models.encoder import build_config, train_tokenizer
from pipeline.models.multitask import MultiTaskModel
from pipeline.report.forgetting_tables import summarize, write_forgetting_tables
from tests.conftest import REPO

ARCH = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 64,
    "dropout": 0.1,
}
#: the benchmark of these tests: 5 languages (l0, l1, l3 train in params.yaml's tlps), tiny
BENCH = {"languages": 5, "tasks": ["nli"], "scale": 0.05, "eval_size": 5, "verbose": False}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic raw data with held-out text, a tokenizer trained on its pretraining text, and a
    randomly initialized BertForMaskedLM saved as the pretrained encoder."""
    from pipeline.corpus import text_corpus

    root = tmp_path_factory.mktemp("forgetting")
    raw = root / "raw"
    generate(raw, seed=3, text_sentences=80, heldout_sentences=30, **BENCH)
    tok = train_tokenizer(list(text_corpus([raw])), 200, 1, root / "tokenizer")
    torch.manual_seed(0)
    mlm = BertForMaskedLM(build_config(tok, ARCH))
    mlm.save_pretrained(str(root / "encoder"))
    tok.save_pretrained(str(root / "encoder"))
    return {"root": root, "raw": raw, "encoder": root / "encoder", "tok": tok}


def tiny_mlm(vocab: int, seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=vocab,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    return BertForMaskedLM(cfg).eval()


def sentences(world, lang="l0", n=30):
    return fg.read_sentences(world["raw"] / "heldout_text" / f"{lang}.txt", n)


# -- masking ------------------------------------------------------------------------------------


def test_masking_is_deterministic_and_follows_berts_rule(world):
    tok, sents = world["tok"], sentences(world)
    a = fg.mask_sentences(tok, sents, 0.15, 32, seed=[0, 1])
    assert a == fg.mask_sentences(tok, sents, 0.15, 32, seed=[0, 1])  # same seed: same masks
    assert a != fg.mask_sentences(tok, sents, 0.15, 32, seed=[1, 1])
    clean = tok(sents, truncation=True, max_length=32)["input_ids"]
    special = set(tok.all_special_ids)
    for ids, labels, orig in zip(a.input_ids, a.labels, clean):
        assert len(ids) == len(labels) == len(orig) <= 32
        maskable = [t for t in orig if t not in special]
        picked = [i for i, x in enumerate(labels) if x != fg.IGNORE]
        assert len(picked) == max(1, round(len(maskable) * 0.15))  # BERT's fixed count
        for x, o, lab in zip(ids, orig, labels):
            if lab == fg.IGNORE:
                assert x == o  # untouched
            else:
                assert lab == o and o not in special
                assert x == tok.mask_token_id or x not in special
    # the 80/10/10 split, over many picks (p = 0.5 on every sentence of every language)
    many = [s for lang in ("l0", "l1", "l2", "l3", "l4") for s in sentences(world, lang)]
    m = fg.mask_sentences(tok, many * 10, 0.5, 32, seed=5)
    kinds = {"mask": 0, "same": 0, "random": 0}
    for ids, labels in zip(m.input_ids, m.labels):
        for x, lab in zip(ids, labels):
            if lab != fg.IGNORE:
                kinds["mask" if x == tok.mask_token_id else "same" if x == lab else "random"] += 1
    total = sum(kinds.values())
    assert total > 3000
    assert abs(kinds["mask"] / total - 0.8) < 0.03
    assert abs(kinds["same"] / total - 0.1) < 0.03  # (a random token may equal the original)
    assert abs(kinds["random"] / total - 0.1) < 0.03


def test_every_language_is_masked_alike_for_every_model(world):
    """The masks depend on the tokenizer, the text and the seed only, and a language's masks
    not on which other languages are scored."""
    tok = world["tok"]
    texts = {lang: sentences(world, lang) for lang in ("l0", "l2")}
    s = {"mlm_probability": 0.15, "max_length": 32, "seed": 0}
    both = fg.mask_languages(tok, texts, s)
    assert both == fg.mask_languages(tok, texts, s)
    assert fg.mask_languages(tok, {"l2": texts["l2"]}, s)["l2"] == both["l2"]
    assert both["l0"] != fg.mask_languages(tok, texts, {**s, "seed": 1})["l0"]
    # an encoder with fewer positions than `max_length` gets inputs it can embed
    short = fg.mask_languages(tok, texts, {**s, "max_length": 128}, max_positions=8)
    assert max(len(ids) for m in short.values() for ids in m.input_ids) == 8
    assert short == fg.mask_languages(tok, texts, {**s, "max_length": 8})


# -- MLM loss -----------------------------------------------------------------------------------


def test_mlm_loss_equals_a_hand_computed_cross_entropy(world):
    tok = world["tok"]
    model = tiny_mlm(len(tok))
    m = fg.mask_sentences(tok, sentences(world, "l1"), 0.3, 32, seed=2)
    nll, count = 0.0, 0
    with torch.no_grad():
        for ids, labels in zip(m.input_ids, m.labels):  # one sentence at a time, no padding
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            logp = torch.log_softmax(logits.double(), dim=-1)
            for pos, lab in enumerate(labels):
                if lab != fg.IGNORE:
                    nll -= float(logp[pos, lab])
                    count += 1
    for bs in (1, 4, 32):  # batched, padded, sorted by length: the same number
        got = fg.mlm_loss(model, m, batch_size=bs, device="cpu", pad_id=tok.pad_token_id)
        assert got["tokens"] == count == m.n_masked
        assert got["loss"] == pytest.approx(nll / count, abs=1e-5)


def test_an_untouched_encoder_gives_exactly_the_pretrained_loss_and_l2_zero(world):
    tok = world["tok"]
    mlm = tiny_mlm(len(tok))
    m = fg.mask_sentences(tok, sentences(world), 0.15, 32, seed=0)
    before = fg.mlm_loss(mlm, m, 8, "cpu", tok.pad_token_id)
    head = copy.deepcopy(mlm.cls.state_dict())
    encoder = BertModel(mlm.config, add_pooling_layer=True)  # as a fine-tuned run saves it
    encoder.load_state_dict(mlm.bert.state_dict(), strict=False)
    assert fg.l2_distance(encoder, mlm.bert)["l2"] == 0.0
    assert fg.set_encoder(mlm, encoder) == ["pooler.dense.bias", "pooler.dense.weight"]
    assert fg.mlm_loss(mlm, m, 8, "cpu", tok.pad_token_id) == before
    # a trained encoder replaces the encoder; the head's own weights stay the pretrained ones
    trained = copy.deepcopy(encoder)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.05)
    fg.set_encoder(mlm, trained)
    assert fg.mlm_loss(mlm, m, 8, "cpu", tok.pad_token_id)["loss"] != before["loss"]
    after = mlm.cls.state_dict()
    for k, v in head.items():
        if "decoder.weight" in k:  # tied to the word embeddings (BERT): the encoder's own
            assert torch.equal(after[k], trained.embeddings.word_embeddings.weight)
        else:
            assert torch.equal(after[k], v), k


def test_a_different_architecture_is_refused(world):
    vocab = len(world["tok"])
    mlm = tiny_mlm(vocab)
    with pytest.raises(PipelineError, match="not the same architecture"):
        fg.set_encoder(mlm, BertModel(BertConfig(vocab_size=vocab, num_hidden_layers=0)))
    deeper = BertModel(
        BertConfig(
            vocab_size=vocab,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        ),
        add_pooling_layer=False,
    )
    res = fg.l2_distance(deeper, mlm.bert)  # the shared parameters only
    assert res["left_out"] and all(k.startswith("encoder.layer.1.") for k in res["left_out"])


# -- l2 distance --------------------------------------------------------------------------------


def test_l2_distance_equals_a_hand_computation():
    ref = tiny_mlm(50).bert
    with torch.no_grad():  # exact values, so that the differences are exact in float32
        ref.embeddings.word_embeddings.weight[3] = 0.0
        ref.encoder.layer[0].output.dense.bias[:2] = 0.0
    enc = copy.deepcopy(ref)
    assert fg.l2_distance(enc, ref) == {
        "l2": 0.0,
        "parameters": sum(p.numel() for p in ref.parameters()),
        "tensors": len(list(ref.parameters())),
        "left_out": [],
    }
    with torch.no_grad():
        enc.embeddings.word_embeddings.weight[3] = 0.5  # 16 entries moved by 0.5
        enc.encoder.layer[0].output.dense.bias[:2] = torch.tensor([3.0, -4.0])
    assert fg.l2_distance(enc, ref)["l2"] == pytest.approx(math.sqrt(16 * 0.25 + 9 + 16), 1e-12)
    # summed in float64: tiny differences are not lost
    a = torch.nn.Linear(1, 1, bias=False)
    b = copy.deepcopy(a)
    with torch.no_grad():
        a.weight.fill_(1.0)
        b.weight.fill_(1.0 + 2**-20)
    assert fg.l2_distance(a, b)["l2"] == 2**-20


# -- held-out text ------------------------------------------------------------------------------


def _files(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_heldout_text_is_its_own_stream_disjoint_from_the_pretraining_text(world, tmp_path):
    raw = world["raw"]
    m = json.loads((raw / "synthetic.json").read_text())
    langs = m["languages"]
    assert m["heldout_text"]["files"] == {lg: f"heldout_text/{lg}.txt" for lg in langs}
    for lang in langs:
        held = sentences(world, lang, 10**6)
        assert len(held) == 30
        pretraining = {
            "".join(t.split())
            for t in (raw / "text" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        }
        assert not {"".join(t.split()) for t in held} & pretraining
    # deterministic, and every other file the same bytes with or without the held-out text
    generate(tmp_path / "again", seed=3, text_sentences=80, heldout_sentences=30, **BENCH)
    assert _files(tmp_path / "again") == _files(raw)
    generate(tmp_path / "none", seed=3, text_sentences=80, heldout_sentences=0, **BENCH)
    without = _files(tmp_path / "none")
    assert not (tmp_path / "none" / "heldout_text").exists()
    same = {k: v for k, v in _files(raw).items() if not k.startswith("heldout_text/")}
    assert same.keys() == without.keys()
    assert {k: v for k, v in same.items() if k != "synthetic.json"} == {
        k: v for k, v in without.items() if k != "synthetic.json"
    }


def test_read_sentences_keeps_the_first_non_empty_lines_in_order(tmp_path):
    f = tmp_path / "xx.txt"
    f.write_text("\n a one \n\nb two\n\n\nc three\nd four\n", encoding="utf-8")
    assert fg.read_sentences(f, 3) == ["a one", "b two", "c three"]
    assert fg.read_sentences(f, 99) == ["a one", "b two", "c three", "d four"]
    with pytest.raises(DataError, match=r"yy\.txt: no held-out text for language 'yy'"):
        fg.read_sentences(tmp_path / "yy.txt", 3)
    assert fg.heldout_files(tmp_path) == {"xx": f}
    assert fg.language_split(["l1", "l0", "l1"], ["l0", "l1", "l2"]) == (["l0", "l1"], ["l2"])


# -- the steps ----------------------------------------------------------------------------------


def _preset(tmp_path, world, text=None, **forgetting):
    p = tmp_path / "preset.yaml"
    doc = {
        "encoder": {"name": str(world["encoder"])},
        "forgetting": {
            "text": str(text or world["raw"] / "heldout_text"),
            "batch_size": 8,
            "max_length": 32,
            **forgetting,
        },
        "experiments": {"mtl": {"forgetting": True}},
    }
    p.write_text(yaml.safe_dump(doc))
    return ["--params", str(REPO / "params.yaml"), "--params", str(p)]


def _run_dir(tmp_path, world, name, perturb=None):
    """A saved run as `train` writes it (models/runs/<run>/model), its encoder the pretrained
    one, with `perturb(encoder)` applied."""
    model = MultiTaskModel.build(world["encoder"], {"nli": {"label": ["a", "b", "c"]}}, 0.1)
    if perturb:
        with torch.no_grad():
            perturb(model.encoder)
    model.save_pretrained(tmp_path / name / "model", world["tok"])
    return tmp_path / name


def test_the_cli_steps_write_the_per_run_json(world, tmp_path, capsys):
    params = _preset(tmp_path, world)
    pre = tmp_path / "pretrained.json"
    assert main(["forgetting-pretrained", *params, "--out", str(pre)]) == 0
    before = json.loads(pre.read_text())
    assert before["languages"] == ["l0", "l1", "l2", "l3", "l4"]
    assert before["sentences"] == dict.fromkeys(before["languages"], 30)

    mlm, _ = fg.load_mlm(world["encoder"])
    w0 = mlm.bert.embeddings.word_embeddings.weight[5].detach().double()

    def perturb(enc):
        enc.embeddings.word_embeddings.weight[5] = 0.25

    trained = _run_dir(tmp_path, world, "mtl.s13", perturb)
    untouched = _run_dir(tmp_path, world, "mtl.s14")
    for run, d in (("mtl.s13", trained), ("mtl.s14", untouched)):
        args = ["--run", run, "--model", str(d), "--pretrained", str(pre)]
        assert main(["forgetting", *params, *args, "--out", str(tmp_path / f"{run}.json")]) == 0
    res = json.loads((tmp_path / "mtl.s13.json").read_text())
    for key in ("run", "experiment", "method", "seed", "seen", "unseen", "mlm_loss"):
        assert key in res
    for key in ("mlm_loss_pretrained", "mean_seen", "mean_unseen", "l2"):
        assert key in res
    assert (res["run"], res["experiment"], res["method"], res["seed"]) == (
        "mtl.s13",
        "mtl",
        "mtl",
        13,
    )
    assert res["seen"] == ["l0", "l1", "l3"] and res["unseen"] == ["l2", "l4"]  # params.yaml tlps
    assert res["mlm_loss_pretrained"] == before["mlm_loss"]
    assert res["masked_tokens"] == before["masked_tokens"]  # the same masked inputs
    assert res["mean_seen"] == pytest.approx(
        statistics.fmean(res["mlm_loss"][k] for k in res["seen"])
    )
    assert res["mean_unseen"] == pytest.approx(
        statistics.fmean(res["mlm_loss"][k] for k in ("l2", "l4"))
    )
    assert res["l2"] == pytest.approx(float(torch.sqrt(((0.25 - w0) ** 2).sum())), rel=1e-12)
    assert res["mlm_loss"] != before["mlm_loss"]
    same = json.loads((tmp_path / "mtl.s14.json").read_text())
    assert same["l2"] == 0.0 and same["mlm_loss"] == before["mlm_loss"]  # exactly

    # pretrained.json of other settings is refused, naming what to rerun
    stale = _preset(tmp_path, world, seed=1)
    args = ["--run", "mtl.s13", "--model", str(trained), "--pretrained", str(pre)]
    assert main(["forgetting", *stale, *args, "--out", str(tmp_path / "x.json")]) == 2
    assert "forgetting-pretrained" in capsys.readouterr().err
    # a seen language without its file: one line naming the path
    text = tmp_path / "text"
    shutil.copytree(world["raw"] / "heldout_text", text)
    (text / "l3.txt").unlink()
    missing = _preset(tmp_path, world, text=text)
    assert main(["forgetting", *missing, *args, "--out", str(tmp_path / "y.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {text / 'l3.txt'}: no held-out text of mtl.s13's training language l3"
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


def test_the_parser_passes_the_report_its_forgetting_files():
    ns = build_parser().parse_args(
        [
            "report",
            "--scores",
            "a.json",
            "--runs",
            "r",
            "--forgetting",
            "f1.json",
            "f2.json",
            "--out",
            "results",
        ]
    )
    assert ns.forgetting == ["f1.json", "f2.json"] and ns.representations == []
    ns = build_parser().parse_args(["forgetting", "--run", "x.s1", "--model", "m", "--out", "o"])
    assert ns.pretrained == "results/forgetting/pretrained.json"


# -- the report ---------------------------------------------------------------------------------

PRE = {"l0": 2.0, "l1": 3.0, "l2": 4.0}


def _entry(run, row, seed, loss, l2, seen=("l0", "l1"), unseen=("l2",)):
    return {
        "run": run,
        "experiment": row,
        "row": row,
        "method": row,
        "seed": seed,
        "seen": list(seen),
        "unseen": list(unseen),
        "mlm_loss": loss,
        "mlm_loss_pretrained": dict(PRE),
        "mean_seen": statistics.fmean(loss[k] for k in seen),
        "mean_unseen": statistics.fmean(loss[k] for k in unseen) if unseen else None,
        "mean_seen_pretrained": statistics.fmean(PRE[k] for k in seen),
        "mean_unseen_pretrained": statistics.fmean(PRE[k] for k in unseen) if unseen else None,
        "l2": l2,
        "sentences": dict.fromkeys(PRE, 200),
        "settings": {"mlm_probability": 0.15},
    }


def test_the_report_table_is_mean_and_sd_over_seeds(tmp_path):
    entries = [
        _entry("mtl.s1", "mtl", 1, {"l0": 3.0, "l1": 4.0, "l2": 5.0}, 10.0),
        _entry("mtl.s2", "mtl", 2, {"l0": 4.0, "l1": 5.0, "l2": 7.0}, 14.0),
        _entry("seq.s1", "seq", 1, {"l0": 2.5, "l1": 3.5, "l2": 4.5}, 2.0),
        _entry("seq.s2", "seq", 2, {"l0": 2.5, "l1": 3.5, "l2": 4.0}, 4.0),
        # two runs of one seed in one row (STL: one per TLP, same languages): averaged first
        _entry("stl.a.s1", "stl", 1, {"l0": 3.0, "l1": 3.0, "l2": 6.0}, 1.0),
        _entry("stl.b.s1", "stl", 1, {"l0": 5.0, "l1": 5.0, "l2": 8.0}, 3.0),
    ]
    files = []
    for e in entries:
        files.append(tmp_path / f"{e['run']}.json")
        files[-1].write_text(json.dumps(e))
    assert write_forgetting_tables(files, tmp_path / "out")
    rows = {r["label"]: r for r in summarize(entries)}
    assert list(rows) == ["pretrained", "mtl", "seq", "stl"]
    # mtl: mean seen per seed 3.5 and 4.5; unseen 5 and 7; l2 10 and 14
    assert rows["mtl"]["mean_seen"] == (4.0, statistics.stdev([3.5, 4.5]), 2)
    assert rows["mtl"]["mean_unseen"] == (6.0, statistics.stdev([5.0, 7.0]), 2)
    assert rows["mtl"]["l2"] == (12.0, statistics.stdev([10.0, 14.0]), 2)
    assert rows["seq"]["mean_unseen"][:2] == (4.25, statistics.stdev([4.5, 4.0]))
    assert rows["stl"]["mean_seen"][:1] == (4.0,) and rows["stl"]["l2"][:1] == (2.0,)
    assert math.isnan(rows["stl"]["l2"][1]) and rows["stl"]["seeds"] == 1
    assert rows["pretrained"]["mean_seen"][0] == 2.5 and rows["pretrained"]["mean_unseen"][0] == 4.0

    md = (tmp_path / "out" / "tables" / "forgetting.md").read_text()
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert lines[1] == "| pretrained | l0 l1 | l2 | 2.500 | 4.000 | 0 | – |"
    sd = statistics.stdev
    assert lines[2] == (
        f"| mtl | l0 l1 | l2 | 4.000 ± {sd([3.5, 4.5]):.3f} | 6.000 ± {sd([5.0, 7.0]):.3f} | "
        f"12 ± {sd([10.0, 14.0]):.4g} | 2 |"
    )
    assert lines[4] == "| stl | l0 l1 | l2 | 4.000 | 7.000 | 2 | 1 |"
    assert "| mtl | *3.500 ± 0.707* | *4.500 ± 0.707* | 6.000 ± 1.414 |" in md  # per language
    plots = tmp_path / "out" / "plots" / "forgetting"
    assert (plots / "l2.csv").read_text().splitlines() == [
        "experiment,value,sd,seeds",
        "pretrained,0.0,,1",
        f"mtl,12.0,{sd([10.0, 14.0])},2",
        f"seq,3.0,{sd([2.0, 4.0])},2",
        "stl,2.0,,1",
    ]
    for name in ("mlm_seen", "mlm_unseen", "l2"):
        assert (plots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_run = (tmp_path / "out" / "tables" / "forgetting.csv").read_text().splitlines()
    assert len(per_run) == 1 + len(entries)
    assert not write_forgetting_tables([], tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_rows_with_other_languages_get_their_own_pretrained_row():
    entries = [
        _entry(
            "stl.nli.l0.s1", "stl", 1, {"l0": 3.0, "l1": 5.0, "l2": 6.0}, 1.0, ("l0",), ("l1", "l2")
        ),
        _entry(
            "stl.nli.l1.s1", "stl", 1, {"l0": 4.0, "l1": 3.0, "l2": 6.0}, 2.0, ("l1",), ("l0", "l2")
        ),
    ]
    labels = [r["label"] for r in summarize(entries)]
    assert labels == [
        "pretrained (seen: l0)",
        "pretrained (seen: l1)",
        "stl (seen: l0)",
        "stl (seen: l1)",
    ]
    bad = copy.deepcopy(entries)
    bad[1]["seen"], bad[1]["unseen"] = ["l0"], ["l1", "l2"]
    bad[1]["mlm_loss_pretrained"]["l0"] = 9.0
    with pytest.raises(PipelineError, match="different pretrained losses"):
        summarize(bad)


# -- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, needle",
    [
        ({"sentences": 0}, "forgetting.sentences: expected integer >= 1"),
        ({"mlm_probability": 1.5}, "forgetting.mlm_probability: expected number"),
        ({"max_length": 2}, "forgetting.max_length: expected integer >= 3"),
        ({"batch_size": "8"}, "forgetting.batch_size: expected integer"),
        ({"seed": -1}, "forgetting.seed: expected integer >= 0"),
        ({"text": ""}, "forgetting.text: expected string"),
        ({"sentence": 5}, "forgetting.sentence: unknown key (did you mean 'sentences'?"),
    ],
)
def test_a_bad_forgetting_key_is_named(section, needle):
    cfg = load_params([REPO / "params.yaml"])
    cfg["forgetting"] = {**cfg["forgetting"], **section}
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert needle in str(e.value)


def test_the_experiment_flag_is_a_boolean():
    cfg = load_params([REPO / "params.yaml"])
    cfg["experiments"]["mtl"]["forgetting"] = "yes"
    with pytest.raises(ConfigError, match="experiments.mtl.forgetting: expected boolean"):
        validate(cfg)


def test_saved_models_of_a_run_one_per_task_or_per_fine_tuned_tlp(tmp_path):
    from pipeline.steps import saved_models

    def model(d):
        d.mkdir(parents=True)
        (d / "multitask.json").write_text("{}")

    model(tmp_path / "a" / "model")
    model(tmp_path / "b" / "model.qa")
    model(tmp_path / "b" / "model.nli")
    model(tmp_path / "c" / "nli.l0" / "model")
    model(tmp_path / "c" / "qa.l1" / "model")
    assert list(saved_models(tmp_path / "a")) == ["model"]
    assert list(saved_models(tmp_path / "b")) == ["model.nli", "model.qa"]
    assert list(saved_models(tmp_path / "c")) == ["nli.l0/model", "qa.l1/model"]
    with pytest.raises(DataError, match="no saved model"):
        saved_models(tmp_path / "d")


def test_a_checkpoint_without_an_mlm_head_is_refused(world, tmp_path):
    mlm, tok = fg.load_mlm(world["encoder"])  # the pretrained encoder: the head is there
    assert not mlm.training and len(tok) == mlm.config.vocab_size
    BertModel(mlm.config).save_pretrained(str(tmp_path / "plain"))  # an encoder, no MLM head
    with pytest.raises(PipelineError, match="no pretrained MLM head"):
        fg.load_mlm(tmp_path / "plain")
