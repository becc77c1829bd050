"""Pseudo-tasks for Sequential Reptile's zero-shot protocol (Lee et al. 2022, §4.3).

With English-only training data there is one task, so the paper makes four by clustering:
"we cluster concatenation of questions and paragraphs from SQuAD or sentences from MNLI into
four groups. Following Aharoni & Goldberg (2020), we encode the paragraphs or sentences into
hidden representations with pretrained multilingual BERT. Then, we reduce the dimension of
hidden representations with PCA and run Gaussian mixture model to partition them into disjoint
four clusters" (§4.3, Implementation Detail), and samples the tasks uniformly (p_t = 1/4).

What the paper fixes: the encoder (pretrained mBERT, before any fine-tuning), the text (QA:
question + paragraph; NLI: the sentences), PCA then a GMM, four clusters. What it leaves open,
and the defaults taken here: the pooling (mean of last hidden states over real tokens, as
`pipeline.models.embed.mean_pooled` does), how the two texts are joined (one space), the
truncation length, the number of PCA components (50, capped at min(n, d)), the GMM covariance
type ("full", scikit-learn's default), initialisation and restarts (k-means init, n_init 1),
and the seed. Each is an option of `cluster_embeddings` and is recorded in the summary.

Pure functions with one job each, so that a later Snakemake rule can write the assignments once
as a tracked artifact: `example_text` (record -> text), `embed_examples` (texts -> vectors),
`cluster_embeddings` (vectors -> `ClusterResult`), `assignments_json` (ids + labels -> dict).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import ConfigError, PipelineError
from pipeline.models.embed import mean_pooled

#: GaussianMixture's covariance types; anything else is a config error, not a sklearn traceback.
COVARIANCE_TYPES: tuple[str, ...] = ("full", "tied", "diag", "spherical")


def example_text(task_type: str, record: Mapping[str, Any]) -> str:
    """The text one training example is embedded as, by task type (`pipeline.records`).

    QA ("qa"): question then context, the paper's "concatenation of questions and paragraphs".
    Sentence pairs ("pair", e.g. NLI): text_a (premise) then text_b (hypothesis), "sentences from
    MNLI". The answer is left out (unlike X-METRA-ADA's `qa_text`): the paper clusters inputs
    only. Joined by one space, since the encoder sees one sequence per example.
    """
    if task_type == "qa":
        parts = (record["question"], record["context"])
    elif task_type == "pair":
        parts = (record["text_a"], record["text_b"])
    else:
        raise PipelineError(
            f"cannot cluster task type {task_type!r}: expected 'qa' or 'pair' (Lee et al. §4.3 "
            "clusters SQuAD and MNLI only)"
        )
    return " ".join(str(p).strip() for p in parts if str(p).strip())


#: [len(texts), hidden] float32 sentence embeddings under the pretrained encoder: the mean of the
#: last hidden states over real tokens, batched, eval mode, no gradients — the pooling the
#: X-METRA QA supports already use (`models/embed.mean_pooled`, one definition). Its
#: `max_length` (128) truncates: a SQuAD paragraph is often longer, and the paper does not say.
embed_examples = mean_pooled


@dataclass(frozen=True)
class ClusterResult:
    """Cluster ids of each example plus what is needed to judge and reproduce the clustering.

    `labels[i]` is the cluster of example i, canonicalised by first occurrence: example 0 is in
    cluster 0, the first example outside cluster 0 is in cluster 1, and so on. GMM component
    order is arbitrary (it follows the k-means init), so without this the same partition could
    come back with permuted ids; with it, equal partitions give equal label arrays bit for bit.
    `sizes[c]` is the number of examples in cluster c. `bic` and `log_likelihood` (the mean
    per-example log-likelihood, scikit-learn's `score`) are of the fitted GMM on the PCA-reduced
    data; `options` holds every option that determined the result.
    """

    labels: np.ndarray
    sizes: list[int]
    options: dict[str, Any]
    bic: float
    log_likelihood: float
    converged: bool
    explained_variance: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: sizes, options, fit statistics (no per-example data)."""
        return {
            "n_examples": int(len(self.labels)),
            "sizes": list(self.sizes),
            "options": dict(self.options),
            "bic": self.bic,
            "log_likelihood": self.log_likelihood,
            "converged": self.converged,
            "explained_variance": self.explained_variance,
            **self.extra,
        }


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters 0, 1, ... in order of first occurrence (see `ClusterResult`).

    First occurrence rather than size because sizes can tie, and ties would need a second rule.
    """
    labels = np.asarray(labels)
    mapping: dict[int, int] = {}
    for lab in labels.tolist():
        if lab not in mapping:
            mapping[lab] = len(mapping)
    return np.array([mapping[lab] for lab in labels.tolist()], dtype=np.int64)


def _check_options(
    n: int, n_clusters: int, pca_components: int | None, covariance_type: str, n_init: int
) -> None:
    """One-line ConfigErrors naming the key, before sklearn would raise something less clear."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise ConfigError(f"n_clusters: expected an integer >= 1, got {n_clusters!r}")
    if n_clusters < 1 or n_clusters > n:
        raise ConfigError(
            f"n_clusters: expected an integer in [1, {n}] (at most the number of examples), "
            f"got {n_clusters}"
        )
    if pca_components is not None and (
        isinstance(pca_components, bool)
        or not isinstance(pca_components, (int, np.integer))
        or pca_components < 1
    ):
        raise ConfigError(
            f"pca_components: expected an integer >= 1 or null (no PCA), got {pca_components!r}"
        )
    if covariance_type not in COVARIANCE_TYPES:
        raise ConfigError(
            f"covariance_type: expected one of {', '.join(COVARIANCE_TYPES)}, "
            f"got {covariance_type!r}"
        )
    if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 1:
        raise ConfigError(f"n_init: expected an integer >= 1, got {n_init!r}")


def cluster_embeddings(
    emb: np.ndarray,
    n_clusters: int = 4,
    seed: int = 0,
    pca_components: int | None = 50,
    covariance_type: str = "full",
    n_init: int = 1,
) -> ClusterResult:
    """Partition the rows of `emb` with PCA then a Gaussian mixture, deterministically from `seed`.

    `n_clusters` 4 is the paper's; `pca_components` (default 50, capped at min(n, d); None skips
    PCA) and `covariance_type` ("full") are open in the paper. PCA uses the exact LAPACK SVD
    (`svd_solver="full"`), not the randomized solver, so the projection does not depend on a
    random state; the GMM gets `random_state=seed`. The data are cast to float64 first, so that
    float32 inputs and the covariance estimates do not lose precision. Each example gets its
    most probable component (`predict`), so the clusters are disjoint; a component that gets no
    example is an error (the paper wants `n_clusters` non-empty tasks), as is
    `n_clusters` > number of examples.
    """
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise PipelineError(f"embeddings: expected a non-empty 2-D array, got shape {x.shape}")
    n, d = x.shape
    _check_options(n, n_clusters, pca_components, covariance_type, n_init)
    explained = None
    used = None
    if pca_components is not None:
        used = int(min(pca_components, n, d))
        pca = PCA(n_components=used, svd_solver="full")
        x = pca.fit_transform(x)
        explained = float(pca.explained_variance_ratio_.sum())
    gmm = GaussianMixture(
        n_components=int(n_clusters),
        covariance_type=covariance_type,
        n_init=int(n_init),
        random_state=int(seed),
    )
    raw = gmm.fit(x).predict(x)
    labels = canonical_labels(raw)
    sizes = np.bincount(labels, minlength=int(n_clusters)).tolist()
    if len(np.unique(labels)) < n_clusters:
        raise ConfigError(
            f"n_clusters: expected {n_clusters} non-empty clusters, but the Gaussian mixture left "
            f"{n_clusters - len(np.unique(labels))} empty (sizes {sizes}); use fewer clusters"
        )
    options = {
        "n_clusters": int(n_clusters),
        "seed": int(seed),
        "pca_components": pca_components,
        "pca_components_used": used,
        "pca_svd_solver": "full" if used is not None else None,
        "covariance_type": covariance_type,
        "n_init": int(n_init),
        "init_params": gmm.init_params,
        "embedding_dim": int(d),
    }
    return ClusterResult(
        labels=labels,
        sizes=[int(s) for s in sizes],
        options=options,
        bic=float(gmm.bic(x)),
        log_likelihood=float(gmm.score(x)),
        converged=bool(gmm.converged_),
        explained_variance=explained,
        extra={"n_iter": int(gmm.n_iter_)},
    )


def assignments_json(
    ids: Sequence[str], labels: Sequence[int] | np.ndarray, summary: Mapping[str, Any]
) -> dict[str, Any]:
    """{"summary": ..., "assignments": {example id: cluster id}}: ready for `json.dump`.

    Keyed by example id so that a later step can rebuild each pseudo-task from the prepared
    records without relying on their order; ids must therefore be unique.
    """
    labels = np.asarray(labels).tolist()
    if len(ids) != len(labels):
        raise PipelineError(f"assignments: {len(ids)} ids but {len(labels)} labels")
    assignments = {str(i): int(lab) for i, lab in zip(ids, labels, strict=True)}
    if len(assignments) != len(ids):
        raise PipelineError("assignments: example ids are not unique")
    return {"summary": dict(summary), "assignments": assignments}
