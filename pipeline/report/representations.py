"""Source vs target representations of a trained model (Xia et al. 2021 §4.5, Figures 1 and 3).

Pure numerics and files, no model code (the vectors come from `pipeline.models.represent`):

* `hausdorff_cosine(S, T)`: the Hausdorff distance between the two sets under the cosine
  distance d(s, t) = 1 − cos(s, t) (Eq. 6),
  max(max_s min_t d(s, t), max_t min_s d(s, t)), computed in row chunks, so two sets of 5k
  vectors never hold more than a chunk × |T| block of distances.
* `pca2(S, T)`: the first two principal components of the union (scikit-learn's full SVD:
  deterministic; svd_flip fixes the signs).
* `write_csv` (pc1, pc2, lang, role = source | target: the DVC scatter plot's data) and
  `write_png` (matplotlib's Agg canvas: no display and no pyplot state).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.io import atomic_write_bytes, atomic_write_text

#: rows of S per block of the distance computation (a block is CHUNK × |T| float64 values)
CHUNK = 1024
ROLES = ("source", "target")
CSV_FIELDS = ("pc1", "pc2", "lang", "role")


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise PipelineError(f"hausdorff: {name} must be a non-empty [n, d] array, got {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise PipelineError(f"hausdorff: {name} has a zero vector (its cosine is undefined)")
    return x / norms


def hausdorff_cosine(S: np.ndarray, T: np.ndarray, chunk: int = CHUNK) -> float:
    """max(max_s min_t d(s, t), max_t min_s d(s, t)) with d(s, t) = 1 − cos(s, t)."""
    s, t = _unit_rows(S, "S"), _unit_rows(T, "T")
    if s.shape[1] != t.shape[1]:
        raise PipelineError(f"hausdorff: S has dimension {s.shape[1]}, T {t.shape[1]}")
    s_to_t = -np.inf  # max over s of min over t of d, i.e. 1 − min over s of max over t of cos
    t_best = np.full(len(t), -np.inf)  # per t: the largest cosine to any s so far
    for i in range(0, len(s), chunk):
        cos = s[i : i + chunk] @ t.T
        s_to_t = max(s_to_t, float(1.0 - cos.max(axis=1).min()))
        np.maximum(t_best, cos.max(axis=0), out=t_best)
    t_to_s = float(1.0 - t_best.min())
    return float(np.clip(max(s_to_t, t_to_s), 0.0, 2.0))


def pca2(S: np.ndarray, T: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(coords [|S| + |T|, 2]: S's rows first, explained variance ratio [2]) of a PCA fitted on
    the union of both sets."""
    from sklearn.decomposition import PCA

    x = np.concatenate([np.asarray(S, dtype=np.float64), np.asarray(T, dtype=np.float64)])
    if x.ndim != 2 or len(x) < 2 or x.shape[1] < 2:
        raise PipelineError(f"pca: needs at least 2 points of dimension >= 2, got {x.shape}")
    pca = PCA(n_components=2, svd_solver="full", random_state=seed)
    coords = pca.fit_transform(x)
    return coords, pca.explained_variance_ratio_.copy()


def point_labels(n_source: int, n_target: int, langs: Sequence[str]) -> list[tuple[str, str]]:
    """(lang, role) of every row of `pca2`'s coords."""
    return [(langs[0], ROLES[0])] * n_source + [(langs[1], ROLES[1])] * n_target


def write_csv(path: str | Path, coords: np.ndarray, n_source: int, langs: Sequence[str]) -> None:
    """`pc1, pc2, lang, role` per point; the first `n_source` rows are the source's; `langs` is
    (source language, target language)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    labels = point_labels(n_source, len(coords) - n_source, langs)
    for (x, y), (lang, role) in zip(coords.tolist(), labels, strict=True):
        w.writerow([f"{x:.6g}", f"{y:.6g}", lang, role])
    atomic_write_text(path, buf.getvalue())


def plot_title(run: str, task: str, source: str, target: str, distance: float) -> str:
    return f"{run} · {task}: {source} vs {target}\nHausdorff (1 − cos) = {distance:.3f}"


def write_png(
    path: str | Path,
    coords: np.ndarray,
    title: str,
    n_source: int | None = None,
    langs: Sequence[str] = ROLES,
    explained: Sequence[float] | None = None,
) -> None:
    """Scatter of the source points (the first `n_source` rows; default: half) against the
    target's, with a legend (`langs`: source and target names) and `title`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    coords = np.asarray(coords, dtype=np.float64)
    n = len(coords) // 2 if n_source is None else n_source
    fig = Figure(figsize=(5.5, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for part, lang, role, marker in (
        (coords[:n], langs[0], ROLES[0], "o"),
        (coords[n:], langs[1], ROLES[1], "^"),
    ):
        ax.scatter(
            part[:, 0],
            part[:, 1],
            s=8,
            alpha=0.6,
            marker=marker,
            label=f"{role}: {lang} ({len(part)})",
        )
    ev = list(explained) if explained is not None else None
    ax.set_xlabel("PC1" + (f" ({ev[0]:.1%})" if ev else ""))
    ax.set_ylabel("PC2" + (f" ({ev[1]:.1%})" if ev else ""))
    ax.set_title(title, fontsize=9)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
