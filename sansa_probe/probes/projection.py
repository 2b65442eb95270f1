"""2-D embeddings of object features coloured by class (paper figs. 2, 4a, 8b-c).

PCA (the paper's figures) or UMAP (``umap-learn``, imported only when used). The tidy table
(:meth:`Projection2D.to_frame`) has one row per object: ``x, y, class, image_id,
instance_id``; :func:`sansa_probe.probes.plots.plot_projection` draws it and
:func:`sansa_probe.probes.plots.write_projection_html` writes an interactive plotly page
with the image id and class on hover.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_is_fitted

from sansa_probe.probes._validation import check_features_2d, check_labels, labelled_frame, to_numpy

__all__ = ["Projection2D"]


class Projection2D(BaseEstimator):
    """Project object features [N, C] to 2-D.

    Args:
        method: ``"pca"`` (first two principal components) or ``"umap"``.
        n_neighbors: UMAP neighbourhood size (ignored for PCA).
        min_dist: UMAP minimum distance (ignored for PCA).
        metric: UMAP input metric (ignored for PCA).
        random_state: seed for UMAP (PCA is deterministic).

    Attributes (after :meth:`fit`):
        embedding_: [N, 2] coordinates of the training features.
        labels_: [N] classes; ``image_ids_``, ``instance_ids_``: [N] metadata (or ``None``).
        reducer_: the fitted PCA / UMAP object.
        explained_variance_ratio_: [2] for PCA, ``None`` for UMAP.
    """

    def __init__(
        self,
        *,
        method: Literal["pca", "umap"] = "pca",
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        metric: str = "euclidean",
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.random_state = random_state

    def fit(self, X: Any, y: Any, *, image_ids: Any = None, instance_ids: Any = None) -> Projection2D:
        """Fit on object features ``X`` [N, C] with classes ``y`` [N] and optional per-object
        ``image_ids`` [N] and ``instance_ids`` [N] (kept for the table and the hover text)."""
        if self.method not in ("pca", "umap"):
            raise ValueError(f"method: expected 'pca' or 'umap', got {self.method!r}")
        X = check_features_2d(X, name="X", min_samples=3)
        if X.shape[1] < 2:
            raise ValueError(f"X: expected at least 2 feature channels, got {X.shape[1]}")
        n = X.shape[0]
        y = check_labels(y, n, name="y")
        image_ids = None if image_ids is None else check_labels(image_ids, n, name="image_ids")
        instance_ids = None if instance_ids is None else check_labels(instance_ids, n, name="instance_ids")
        if self.method == "pca":
            reducer = PCA(n_components=2, svd_solver="full")
            embedding = reducer.fit_transform(X)
            self.explained_variance_ratio_ = reducer.explained_variance_ratio_
        else:
            import umap  # deferred: umap-learn imports numba and compiles for seconds; only method='umap' needs it

            reducer = umap.UMAP(
                n_components=2,
                n_neighbors=min(int(self.n_neighbors), n - 1),
                min_dist=self.min_dist,
                metric=self.metric,
                random_state=self.random_state,
            )
            with warnings.catch_warnings():  # "n_jobs value 1 overridden to 1 by setting random_state"
                warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
                embedding = reducer.fit_transform(X)
            self.explained_variance_ratio_ = None
        self.reducer_ = reducer
        self.n_features_in_ = X.shape[1]
        self.embedding_ = np.asarray(embedding, dtype=np.float64)
        self.labels_ = y
        self.image_ids_ = image_ids
        self.instance_ids_ = instance_ids
        return self

    def fit_transform(self, X: Any, y: Any, **metadata: Any) -> np.ndarray:
        return self.fit(X, y, **metadata).embedding_

    def transform(self, X: Any) -> np.ndarray:
        """Embed new features [M, C] into the fitted 2-D space -> [M, 2]."""
        check_is_fitted(self)
        X = check_features_2d(X, name="X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} features (as in fit), got {X.shape[1]}")
        return np.asarray(self.reducer_.transform(X), dtype=np.float64)

    def score(self, X: Any = None, y: Any = None) -> float:
        """Silhouette score (Euclidean, in the 2-D embedding) of the classes: in [-1, 1], higher
        means more compact, better separated class clusters. Without arguments, of the training
        embedding; otherwise of ``transform(X)`` with labels ``y``."""
        check_is_fitted(self)
        if X is None:
            embedding, labels = self.embedding_, self.labels_
        else:
            embedding = self.transform(X)
            labels = check_labels(y, embedding.shape[0], name="y")
        if np.unique(labels).size < 2:
            raise ValueError("y: the silhouette score needs at least 2 classes")
        return float(silhouette_score(embedding, labels))

    def to_frame(self, **labels: Any) -> pd.DataFrame:
        """One row per fitted object: ``x, y, class, image_id, instance_id`` (metadata columns
        are ``None`` where not given), preceded by any ``labels`` (``model="sansa"``, ...)."""
        check_is_fitted(self)
        n = self.embedding_.shape[0]
        frame = pd.DataFrame(
            {
                "x": self.embedding_[:, 0],
                "y": self.embedding_[:, 1],
                "class": to_numpy(self.labels_),
                "image_id": self.image_ids_ if self.image_ids_ is not None else [None] * n,
                "instance_id": self.instance_ids_ if self.instance_ids_ is not None else [None] * n,
            }
        )
        return labelled_frame(frame, labels)
