"""Pseudo-task clustering for Sequential Reptile's zero-shot protocol (pipeline/data/clusters.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline.data.clusters import (
    assignments_json,
    canonical_labels,
    cluster_embeddings,
    embed_examples,
    example_text,
)
from pipeline.errors import ConfigError, PipelineError


def blobs(n_per: int = 25, d: int = 8, seed: int = 0, spread: float = 20.0):
    """4 well-separated Gaussian blobs in d dims, rows shuffled; returns (x, true labels)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, d)) * spread
    truth = np.repeat(np.arange(4), n_per)
    x = centers[truth] + rng.normal(size=(len(truth), d))
    order = rng.permutation(len(truth))
    return x[order].astype(np.float32), truth[order]


def test_recovers_blobs_and_is_deterministic():
    x, truth = blobs()
    a = cluster_embeddings(x, n_clusters=4, seed=3)
    b = cluster_embeddings(x, n_clusters=4, seed=3)
    assert adjusted_rand_score(truth, a.labels) == 1.0
    assert np.array_equal(a.labels, b.labels) and a.labels.dtype == np.int64
    assert a.bic == b.bic and a.log_likelihood == b.log_likelihood
    assert a.sizes == [25, 25, 25, 25]
    assert a.options["pca_components"] == 50 and a.options["pca_components_used"] == 8
    assert a.options["covariance_type"] == "full" and a.options["n_clusters"] == 4
    assert np.isfinite(a.bic) and a.converged


def test_labels_canonical_by_first_occurrence():
    x, _ = blobs()
    res = cluster_embeddings(x, n_clusters=4, seed=0)
    firsts = [int(np.argmax(res.labels == c)) for c in range(4)]
    assert firsts == sorted(firsts) and res.labels[0] == 0
    # Different seeds may order GMM components differently; the canonical labels do not.
    for seed in (1, 2, 7):
        assert np.array_equal(cluster_embeddings(x, 4, seed=seed).labels, res.labels)
    assert canonical_labels(np.array([2, 2, 0, 3, 0])).tolist() == [0, 0, 1, 2, 1]


def test_pca_to_variance_subspace_equals_clustering_that_subspace():
    rng = np.random.default_rng(1)
    low, truth = blobs(d=2, seed=1, spread=15.0)
    basis, _ = np.linalg.qr(rng.normal(size=(12, 2)))  # orthonormal 12x2
    high = low.astype(np.float64) @ basis.T + 5.0  # all variance in a 2-D subspace
    direct = cluster_embeddings(low, 4, seed=0, pca_components=None)
    reduced = cluster_embeddings(high, 4, seed=0, pca_components=2)
    assert np.array_equal(direct.labels, reduced.labels)
    assert adjusted_rand_score(truth, reduced.labels) == 1.0
    assert reduced.explained_variance == pytest.approx(1.0)
    assert reduced.options["pca_components_used"] == 2


@pytest.mark.parametrize("k", [0, -1, 11, 2.5])
def test_bad_n_clusters_is_one_line_config_error(k):
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ConfigError, match=r"^n_clusters: expected") as err:
        cluster_embeddings(x, n_clusters=k)
    assert "\n" not in str(err.value)


def test_other_bad_options():
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ConfigError, match=r"^covariance_type: expected one of full"):
        cluster_embeddings(x, 2, covariance_type="banana")
    with pytest.raises(ConfigError, match=r"^pca_components: expected"):
        cluster_embeddings(x, 2, pca_components=0)


def test_empty_cluster_is_config_error():
    x = np.zeros((6, 2))
    x[3:] = 1.0  # only two distinct points: a third component gets nothing
    with pytest.raises(ConfigError, match=r"^n_clusters: expected 3 non-empty clusters"):
        cluster_embeddings(x, 3, seed=0, pca_components=None)


def test_example_text():
    qa = {"id": "q1", "lang": "en", "context": "Bo won .", "question": "who won ?"}
    qa["answers"] = {"text": ["Bo"], "answer_start": [0]}
    pair = {
        "id": "p1",
        "lang": "en",
        "text_a": "a cat",
        "text_b": "an animal",
        "label": "entailment",
    }
    assert example_text("qa", qa) == "who won ? Bo won ."
    assert example_text("pair", pair) == "a cat an animal"
    with pytest.raises(PipelineError, match="'tagging'"):
        example_text("tagging", {"tokens": ["x"]})


def test_assignments_json():
    res = cluster_embeddings(blobs(n_per=5)[0], 4, seed=0)
    ids = [f"en-{i}" for i in range(20)]
    out = assignments_json(ids, res.labels, res.summary())
    assert out["assignments"]["en-0"] == 0 and len(out["assignments"]) == 20
    assert out["summary"]["sizes"] == [5, 5, 5, 5]
    json.dumps(out)  # plain Python types only
    with pytest.raises(PipelineError, match="not unique"):
        assignments_json(["a", "a"], [0, 1], {})
    with pytest.raises(PipelineError, match="2 ids but 1 labels"):
        assignments_json(["a", "b"], [0], {})


def test_embed_examples_tiny_encoder(tiny_world):
    enc = tiny_world["encoder"]
    short = "alpha beta"
    longer = "gamma delta omega sigma kappa zeta theta iota alpha beta gamma"
    alone = embed_examples(enc, [short])
    batch = embed_examples(enc, [short, longer, short], batch_size=3)
    assert batch.shape == (3, 16) and batch.dtype == np.float32
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-5)
    np.testing.assert_allclose(batch[0], batch[2], atol=1e-5)
    assert np.array_equal(batch, embed_examples(enc, [short, longer, short], batch_size=3))
    assert not np.allclose(batch[0], batch[1])
    assert embed_examples(enc, []).shape == (0, 16)
