"""Source vs target representations (Xia et al. 2021 §4.5): Hausdorff distance, PCA, files,
extraction from a model, the `represent` step and its report table."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from pipeline import steps
from pipeline.cli import build_parser
from pipeline.errors import ConfigError, PipelineError
from pipeline.features import load_split_data
from pipeline.models import represent as rep
from pipeline.records import TLP
from pipeline.report import representation_tables, representations
from pipeline.report.representations import hausdorff_cosine, pca2, write_csv, write_png
from pipeline.tasks.common import word_coverage
from tests.meta_helpers import SETTINGS, make_run, trainer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PAIRED_TLPS = ["ner/l0", "ner/l1", "nli/l0", "nli/l1"]


def brute_force(S: np.ndarray, T: np.ndarray) -> float:
    d = cdist(S, T, "cosine")
    return max(d.min(axis=1).max(), d.min(axis=0).max())


# -- Hausdorff distance and PCA ---------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1024, 7, 1])
def test_hausdorff_matches_brute_force_cdist(chunk):
    rng = np.random.default_rng(0)
    S, T = rng.normal(size=(53, 8)), rng.normal(size=(41, 8)) + 0.5
    assert hausdorff_cosine(S, T, chunk=chunk) == pytest.approx(brute_force(S, T), abs=1e-12)


def test_hausdorff_by_hand():
    # S→T: (1,0)→(1,0) is 0, (0,1)→(1,1) is 1 − 1/√2; T→S: (1,1) is 1 − 1/√2 from both
    S, T = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])
    assert hausdorff_cosine(S, T) == pytest.approx(1 - 1 / math.sqrt(2))
    # one direction only: (0,1) is orthogonal to the single target point
    assert hausdorff_cosine(S, np.array([[3.0, 0.0]])) == pytest.approx(1.0)


def test_hausdorff_is_symmetric_and_zero_on_identical_sets():
    rng = np.random.default_rng(1)
    S, T = rng.normal(size=(20, 5)), rng.normal(size=(30, 5))
    assert hausdorff_cosine(S, T) == hausdorff_cosine(T, S)
    assert hausdorff_cosine(S, S) == pytest.approx(0.0, abs=1e-12)
    assert hausdorff_cosine(S, 2.5 * S[::-1]) == pytest.approx(0.0, abs=1e-12)  # scale-free


def test_hausdorff_refuses_zero_vectors_and_mismatched_sets():
    with pytest.raises(PipelineError, match="zero vector"):
        hausdorff_cosine(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(PipelineError, match="dimension"):
        hausdorff_cosine(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(PipelineError, match="non-empty"):
        hausdorff_cosine(np.ones((0, 3)), np.ones((2, 3)))


def test_pca2_shapes_and_determinism():
    rng = np.random.default_rng(2)
    S, T = rng.normal(size=(15, 6)), rng.normal(size=(9, 6))
    coords, evr = pca2(S, T)
    assert coords.shape == (24, 2) and evr.shape == (2,)
    assert evr[0] >= evr[1] > 0 and evr.sum() <= 1 + 1e-12
    again, evr2 = pca2(S, T)
    assert np.array_equal(coords, again) and np.array_equal(evr, evr2)


def test_csv_and_png(tmp_path):
    rng = np.random.default_rng(3)
    coords, evr = pca2(rng.normal(size=(12, 4)), rng.normal(size=(8, 4)))
    write_csv(tmp_path / "p.csv", coords, 12, ("en", "qu"))
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert list(rows[0]) == ["pc1", "pc2", "lang", "role"] and len(rows) == 20
    assert {(r["lang"], r["role"]) for r in rows[:12]} == {("en", "source")}
    assert {(r["lang"], r["role"]) for r in rows[12:]} == {("qu", "target")}
    assert float(rows[0]["pc1"]) == pytest.approx(coords[0, 0], rel=1e-5)
    title = representations.plot_title("jt.s1", "ner", "ner/en", "ner/qu", 0.5)
    write_png(tmp_path / "p.png", coords, title, 12, ("en", "qu"), evr)
    data = (tmp_path / "p.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000


# -- extraction from a model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_and_data(tiny_world, tmp_path_factory):
    t = trainer(
        tiny_world, make_run("mtl", ["ner/l0", "nli/l0", "qa/l0"]), tmp_path_factory.mktemp("c")
    )

    def load(tlp: str):
        return load_split_data(
            TLP.parse(tlp),
            "dev",
            [tiny_world["prepared"]],
            t.tokenizer,
            t.model.labels,
            SETTINGS,
            train=False,
            cache_dir=tiny_world["root"] / "features",
        )

    return t.model, load


def test_token_level_gives_one_vector_per_word(model_and_data):
    model, load = model_and_data
    data = load("ner/l0")
    cov = word_coverage(data.records, data.features)
    assert cov["truncated"] == 0 and cov["no_subtoken"] == 0
    model.train()
    full = rep.representations(model, data, max_points=None)
    assert model.training  # left as it was
    assert full.shape == (cov["words"], model.encoder.config.hidden_size)
    assert full.dtype == np.float32
    # the first word of the first example is its first sub-token, position 1 (after [CLS])
    model.eval()
    with torch.no_grad():
        h = model.encoder(**{k: data.tensors[k][:1] for k in ("input_ids", "attention_mask")})
    assert np.allclose(full[0], h.last_hidden_state[0, 1].numpy(), atol=1e-5)
    assert not model.training
    capped = rep.representations(model, data, max_points=10)
    assert capped.shape[0] == 10
    pts, all_pts = rep.points(data, 10), rep.points(data, None)
    rows = [int(np.flatnonzero((all_pts == p).all(axis=1))[0]) for p in pts]
    assert np.allclose(capped, full[rows], atol=1e-5)  # a subset of the same vectors
    assert np.array_equal(rep.points(data, 10), pts)  # seeded


def test_sentence_level_gives_the_first_token_per_example(model_and_data):
    model, load = model_and_data
    data = load("nli/l0")
    model.eval()
    vecs = rep.representations(model, data, batch_size=3)
    assert not model.training
    assert vecs.shape == (len(data.records), model.encoder.config.hidden_size)
    with torch.no_grad():
        h = model.encoder(
            **{k: data.tensors[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        )
    assert np.allclose(vecs, h.last_hidden_state[:, 0].numpy(), atol=1e-5)
    assert rep.representations(model, data, max_points=3).shape[0] == 3


def test_qa_is_refused_in_one_line(model_and_data):
    model, load = model_and_data
    with pytest.raises(PipelineError, match="qa/l0: task type qa") as e:
        rep.representations(model, load("qa/l0"))
    assert "\n" not in str(e.value)
    with pytest.raises(PipelineError, match="mtod/en"):
        rep.level("mtod/en")
    assert rep.level("sa/en") == "sentence" and rep.level("pos/en") == "token"


# -- the step and the report table ------------------------------------------------------------


def test_represent_step_end_to_end(tiny_world, tmp_path, monkeypatch):
    run = make_run("jt", PAIRED_TLPS, targets=["l1"], steps=2)
    trainer(tiny_world, run, tmp_path / "ckpt").fit(tmp_path / "run")
    args = ([tiny_world["prepared"]], SETTINGS)
    kw = {"cache_dir": tiny_world["root"] / "features", "device": torch.device("cpu")}
    out = tmp_path / "results" / "representations" / run.id
    summary = steps.represent_run(run, tmp_path / "run", *args, out, **kw)
    assert sorted(p.name for p in out.iterdir()) == [
        "ner.csv",
        "ner.png",
        "nli.csv",
        "nli.png",
        "summary.json",
    ]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert list(summary) == ["ner", "nli"]
    keys = {"source", "target", "hausdorff_cosine", "n_source", "n_target", "explained_variance"}
    for task, s in summary.items():
        assert set(s) == keys
        assert (s["source"], s["target"]) == (f"{task}/l0", f"{task}/l1")
        assert 0 <= s["hausdorff_cosine"] <= 2 and len(s["explained_variance"]) == 2
        rows = list(csv.DictReader((out / f"{task}.csv").open()))
        assert len(rows) == s["n_source"] + s["n_target"]
        assert (out / f"{task}.png").read_bytes()[:8] == PNG_MAGIC
    assert summary["nli"]["n_source"] == 8  # one per dev example

    # the report's table over seeds: the same run as two seeds of one row
    runs = {r.id: r for r in (run, dataclasses.replace(run, id="jt-test.s2", seed=2))}
    second = tmp_path / "results" / "representations" / "jt-test.s2"
    second.mkdir()
    moved = {**summary, "ner": {**summary["ner"], "hausdorff_cosine": 0.5}}
    (second / "summary.json").write_text(json.dumps(moved))
    (second / "ner.csv").write_text((out / "ner.csv").read_text())
    assert representation_tables.write_tables(runs, [second, out], tmp_path / "results")
    md = (tmp_path / "results" / "tables" / "representations.md").read_text()
    h = [summary["ner"]["hausdorff_cosine"], 0.5]
    ner_row = f"| jt | ner | l0 | l1 | {np.mean(h):.3f} ± {np.std(h, ddof=1):.3f} | 2 |"
    assert ner_row in md
    assert f"| jt | nli | l0 | l1 | {summary['nli']['hausdorff_cosine']:.3f} ± 0.000 | 2 |" in md
    table = list(csv.DictReader((tmp_path / "results" / "tables" / "representations.csv").open()))
    assert [(r["task"], r["seeds"]) for r in table] == [("ner", "2"), ("nli", "2")]
    assert table[0]["runs"] == "jt-test jt-test.s2"
    plots = sorted(p.name for p in (tmp_path / "results" / "plots" / "representations").iterdir())
    assert plots == ["jt-test.ner.csv", "jt-test.nli.csv", "jt-test.s2.ner.csv"]
    assert not representation_tables.write_representation_tables({}, [], tmp_path / "none")
    assert not (tmp_path / "none").exists()

    # a failure on the second task leaves nothing behind, and an earlier output as it was
    calls = {"n": 0}
    real = representations.write_png

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(representations, "write_png", failing)
    fresh = tmp_path / "fresh" / run.id
    with pytest.raises(RuntimeError):
        steps.represent_run(run, tmp_path / "run", *args, fresh, **kw)
    assert not fresh.exists() and list(fresh.parent.iterdir()) == []
    before = (out / "summary.json").read_text()
    calls["n"] = 0
    with pytest.raises(RuntimeError):
        steps.represent_run(run, tmp_path / "run", *args, out, **kw)
    assert (out / "summary.json").read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == [run.id, "jt-test.s2"]

    with pytest.raises(ConfigError, match="method mtl"):
        steps.represent_run(make_run("mtl", PAIRED_TLPS), tmp_path / "run", *args, fresh, **kw)
    with pytest.raises(PipelineError, match="no saved model"):
        steps.represent_run(run, tmp_path / "nothing", *args, fresh, **kw)
    assert not fresh.exists()


def test_cli_parses_represent_and_report_without_representations():
    a = build_parser().parse_args(["represent", "--run", "jt.s1", "--model", "m", "--out", "o"])
    assert (a.run, a.model, a.out, a.max_points) == ("jt.s1", "m", "o", None)
    a = build_parser().parse_args(
        ["report", "--scores", "s", "--runs", "r", "--representations", "--out", "results"]
    )
    assert a.representations == [] and a.out == "results"
