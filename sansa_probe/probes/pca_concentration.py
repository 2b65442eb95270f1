"""How concentrated is class information in the leading principal components? (paper fig. 8a, app. B.1)

Protocol of appendix B.1, step by step:

1. PCA is fitted on the training features; the number of retained components runs over a
   grid from 2 up to the number of components holding ``variance`` (99%) of the variance
   (450 for the paper's SAM2/SANSA object features).
2. For each grid point ``k``, class centroids are computed on the training features in the
   ``k``-dimensional PCA space.
3. Test features are assigned to the nearest centroid (Euclidean distance).
4. Assignment accuracy is computed against the ground-truth labels and normalised by the
   accuracy obtained in the full feature space (no reduction).

About "class centroids ... computed using k-means clustering" (step 2): with class labels
available, the class centroid is the k-means solution with one cluster per class (the class
mean, ``centroids="mean"``, our default). ``centroids="kmeans"`` instead runs unsupervised
k-means with one cluster per class on all training features and names each cluster by a
one-to-one (Hungarian) matching of clusters to classes that maximises the number of training
points of the matched class -- the usual "clustering accuracy" reading. The paper does not say
which it ran; the first matches its figure caption ("we compute class centroids on COCO-20^i
training embeddings").

Accuracy (step 4, "the assignment accuracy per class"): ``average="macro"`` (default) is the
mean over test classes of the per-class accuracy; ``average="micro"`` is the fraction of test
samples assigned correctly.

Summary number (:meth:`PCAConcentration.score`): area under the normalised curve over the
component grid, divided by the grid's span, i.e. the mean relative accuracy along the grid
(trapezoidal rule); 1.0 means full-dimension accuracy from 2 components on. It can slightly
exceed 1 where reduced spaces beat the full one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

from sansa_probe.probes._validation import check_features_2d, check_labels, labelled_frame

__all__ = ["PCAConcentration"]


def _nearest(Z: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) for each row of ``Z`` [N, k]; centroids [K, k]."""
    d2 = (Z**2).sum(1, keepdims=True) - 2.0 * Z @ centroids.T + (centroids**2).sum(1)[None, :]
    return np.argmin(d2, axis=1)


class PCAConcentration(BaseEstimator):
    """Nearest-class-centroid accuracy as a function of the number of principal components.

    Args:
        n_components: explicit grid of component counts (ints >= 1); ``None`` builds the grid
            ``2, 3, ..., K`` where ``K`` holds ``variance`` of the training variance.
        variance: fraction of variance that fixes the top of the automatic grid (0.99).
        n_grid: with the automatic grid, keep at most this many points, evenly spaced from 2
            to ``K`` (``None``: every integer).
        centroids: ``"mean"`` (class means) or ``"kmeans"`` (see the module docstring).
        average: ``"macro"`` (mean per-class accuracy) or ``"micro"`` (overall accuracy).
        random_state: seed of k-means (``centroids="kmeans"`` only).

    Attributes (after :meth:`fit`):
        classes_: sorted class labels [n_classes].
        pca_: the fitted :class:`sklearn.decomposition.PCA` (all components).
        explained_variance_ratio_: per-component variance ratio [n_pcs].
        n_components_variance_: ``K``, components needed for ``variance``.
        grid_: component counts evaluated [n_grid].
        n_features_in_: ``C``.
    """

    def __init__(
        self,
        *,
        n_components: Sequence[int] | None = None,
        variance: float = 0.99,
        n_grid: int | None = None,
        centroids: Literal["mean", "kmeans"] = "mean",
        average: Literal["macro", "micro"] = "macro",
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.variance = variance
        self.n_grid = n_grid
        self.centroids = centroids
        self.average = average
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        if not 0.0 < float(self.variance) <= 1.0:
            raise ValueError(f"variance: expected a fraction in (0, 1], got {self.variance}")
        if self.centroids not in ("mean", "kmeans"):
            raise ValueError(f"centroids: expected 'mean' or 'kmeans', got {self.centroids!r}")
        if self.average not in ("macro", "micro"):
            raise ValueError(f"average: expected 'macro' or 'micro', got {self.average!r}")
        if self.n_grid is not None and int(self.n_grid) < 1:
            raise ValueError(f"n_grid: expected a positive int or None, got {self.n_grid}")

    def fit(self, X: Any, y: Any) -> PCAConcentration:
        """Fit PCA and the class centroids on training features.

        Args:
            X: training features [N, C] (numpy or torch).
            y: class labels [N].
        """
        self._check_params()
        X = check_features_2d(X, name="X", min_samples=2)
        y = check_labels(y, X.shape[0], name="y")
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y: expected at least 2 classes, got {classes.size}")
        n_pcs = min(X.shape)
        pca = PCA(n_components=n_pcs, svd_solver="full").fit(X)
        ratio = pca.explained_variance_ratio_
        cumulative = np.cumsum(ratio) / ratio.sum()  # ratio sums to 1 unless n_pcs < rank
        k_var = int(min(np.searchsorted(cumulative, float(self.variance) - 1e-12) + 1, n_pcs))

        if self.n_components is None:
            top = max(k_var, min(2, n_pcs))
            grid = np.arange(min(2, n_pcs), top + 1)
            if self.n_grid is not None and grid.size > int(self.n_grid):
                grid = np.unique(np.round(np.linspace(grid[0], grid[-1], int(self.n_grid))).astype(int))
        else:
            grid = np.unique(np.asarray(list(self.n_components), dtype=int))
            if grid.size == 0 or grid.min() < 1 or grid.max() > n_pcs:
                raise ValueError(f"n_components: expected ints in [1, {n_pcs}] (the number of principal "
                                 f"components of X), got {list(self.n_components)}")

        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.pca_ = pca
        self.explained_variance_ratio_ = ratio
        self.n_components_variance_ = k_var
        self.grid_ = grid
        Z = pca.transform(X)
        if self.centroids == "mean":
            means = np.stack([X[y_index == c].mean(0) for c in range(classes.size)])
            self.full_centroids_ = means
            # The PCA map is affine, so the class mean in k dims is the first k coordinates of
            # the projected class mean.
            projected = pca.transform(means)
            self.centroids_ = {int(k): projected[:, :k] for k in grid}
        else:
            self.full_centroids_ = self._kmeans_centroids(X, y_index, classes.size)
            self.centroids_ = {int(k): self._kmeans_centroids(Z[:, :k], y_index, classes.size) for k in grid}
        return self

    def _kmeans_centroids(self, Z: np.ndarray, y_index: np.ndarray, n_classes: int) -> np.ndarray:
        """k-means with one cluster per class; row ``c`` of the result is the cluster matched to class ``c``."""
        km = KMeans(n_clusters=n_classes, n_init=4, random_state=self.random_state).fit(Z)
        contingency = np.zeros((n_classes, n_classes))
        np.add.at(contingency, (km.labels_, y_index), 1)
        rows, cols = linear_sum_assignment(-contingency)
        out = np.empty_like(km.cluster_centers_)
        out[cols] = km.cluster_centers_[rows]
        return out

    # ------------------------------------------------------------------ inference
    def predict(self, X: Any, *, n_components: int | None = None) -> np.ndarray:
        """Nearest-centroid class of each row of ``X`` [N, C] using the first ``n_components``
        principal components (a grid point), or the full feature space with ``None``."""
        check_is_fitted(self)
        X = check_features_2d(X, name="X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} features (as in fit), got {X.shape[1]}")
        if n_components is None:
            return self.classes_[_nearest(X, self.full_centroids_)]
        if int(n_components) not in self.centroids_:
            raise ValueError(f"n_components: {n_components} is not on the fitted grid {self.grid_.tolist()}")
        k = int(n_components)
        return self.classes_[_nearest(self.pca_.transform(X)[:, :k], self.centroids_[k])]

    def _accuracy(self, pred: np.ndarray, y: np.ndarray) -> float:
        correct = pred == y
        if self.average == "micro":
            return float(correct.mean())
        return float(np.mean([correct[y == c].mean() for c in np.unique(y)]))

    def _curve(self, X: Any, y: Any) -> tuple[np.ndarray, float]:
        check_is_fitted(self)
        X = check_features_2d(X, name="X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} features (as in fit), got {X.shape[1]}")
        y = check_labels(y, X.shape[0], name="y")
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y: labels {unseen.tolist()[:5]} were not among the training classes")
        full = self._accuracy(self.classes_[_nearest(X, self.full_centroids_)], y)
        Z = self.pca_.transform(X)
        acc = np.array([self._accuracy(self.classes_[_nearest(Z[:, :k], self.centroids_[int(k)])], y) for k in self.grid_])
        return acc, full

    def accuracy_curve(self, X: Any, y: Any, **labels: Any) -> pd.DataFrame:
        """Tidy table of the curve on test features ``X`` [N, C] with labels ``y`` [N].

        Columns: ``n_components, metric, value`` (plus any ``labels`` given, e.g.
        ``model="sam2", layer="..."``, as leading constant columns). Metrics per grid point:
        ``accuracy``, ``relative_accuracy`` (accuracy / full-dimension accuracy) and
        ``explained_variance`` (cumulative training variance ratio); one ``full_accuracy`` row
        at ``n_components = C``.
        """
        acc, full = self._curve(X, y)
        cumulative = np.cumsum(self.explained_variance_ratio_)
        rel = acc / full if full > 0 else np.full_like(acc, np.nan)
        rows = []
        for k, a, r in zip(self.grid_, acc, rel):
            rows += [(int(k), "accuracy", a), (int(k), "relative_accuracy", r),
                     (int(k), "explained_variance", float(cumulative[k - 1]))]
        rows.append((int(self.n_features_in_), "full_accuracy", full))
        frame = pd.DataFrame(rows, columns=["n_components", "metric", "value"])
        return labelled_frame(frame, labels)

    def score(self, X: Any, y: Any) -> float:
        """Area under the relative-accuracy curve over the grid, normalised by the grid span."""
        acc, full = self._curve(X, y)
        if full <= 0:
            return float("nan")
        rel = acc / full
        grid = self.grid_.astype(float)
        if grid.size == 1:
            return float(rel[0])
        area = float(np.sum((rel[1:] + rel[:-1]) * np.diff(grid)) / 2.0)
        return area / float(grid[-1] - grid[0])
