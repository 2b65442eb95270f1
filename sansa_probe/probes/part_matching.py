"""Part-level consistency across an image pair (paper fig. 4c, following Zhang et al. 2023).

For each of two objects, K-means clusters its dense features (the pixels inside its mask);
the two sets of centroids are matched one-to-one by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) on the cosine cost ``1 - cos(c_a, c_b)``.
Matched clusters get one shared colour in the figure
(:func:`sansa_probe.probes.plots.plot_part_matching`).

Scores:

* ``mean_matched_cosine`` (:meth:`PartMatching.score`): mean cosine similarity of the matched
  centroid pairs (in ``[-1, 1]``, higher is more consistent);
* ``part_agreement`` (where part annotations are given, ``{part name: mask}`` per object):
  each cluster is named by the majority part among its pixels that carry a part label
  (pixels outside every part are not counted; a cluster with none has no name); the
  agreement is the fraction of matched pairs, among those where both clusters have a name,
  whose names are equal. ``NaN`` without parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted

from sansa_probe.probes._validation import check_dense_features, check_masks, check_parts, labelled_frame

__all__ = ["PartMatching"]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _majority_part(cluster_pixels: np.ndarray, parts: dict[str, np.ndarray]) -> str | None:
    """Most frequent part among the (flat) pixel indices of one cluster; ``None`` if no pixel has a part."""
    counts = {name: int(mask.reshape(-1)[cluster_pixels].sum()) for name, mask in parts.items()}
    best = max(counts, key=lambda k: (counts[k], k), default=None)
    return best if best is not None and counts[best] > 0 else None


class PartMatching(BaseEstimator):
    """K-means parts per object, Hungarian matching across the pair.

    Args:
        n_clusters: clusters (parts) per object.
        normalize: L2-normalise pixel features before K-means (cosine geometry, consistent with
            the cosine matching cost).
        n_init: K-means restarts.
        random_state: K-means seed.

    Attributes (after :meth:`fit`):
        labels_: two [h, w] int maps, cluster id per pixel, ``-1`` outside the mask; the
            clusters of the second object are renumbered so that cluster ``k`` of both objects
            are matched (``matching_`` keeps the original K-means ids).
        centroids_: [2, K, C] centroids, rows aligned by the matching.
        matching_: [K, 2] int, pairs (cluster of A, original cluster of B).
        similarity_: [K] cosine similarity of matched centroid pairs.
        part_names_: two lists of K majority part names (``None`` entries), or ``None``.
        part_agreement_: float or ``NaN``.
    """

    def __init__(self, *, n_clusters: int = 5, normalize: bool = True, n_init: int = 10, random_state: int = 0) -> None:
        self.n_clusters = n_clusters
        self.normalize = normalize
        self.n_init = n_init
        self.random_state = random_state

    def fit(
        self,
        X_a: Any,
        X_b: Any,
        *,
        mask_a: Any,
        mask_b: Any,
        parts_a: Mapping[str, Any] | None = None,
        parts_b: Mapping[str, Any] | None = None,
    ) -> PartMatching:
        """Cluster and match one pair.

        Args:
            X_a, X_b: dense features [C, h, w] of the two images (``h, w`` may differ).
            mask_a, mask_b: object masks [h, w] at feature resolution.
            parts_a, parts_b: optional ``{part name: [h, w] mask}`` per object.
        """
        k = int(self.n_clusters)
        if k < 1:
            raise ValueError(f"n_clusters: expected a positive int, got {self.n_clusters}")
        fa = check_dense_features([X_a], name="X_a")[0]
        fb = check_dense_features([X_b], name="X_b")[0]
        if fa.shape[0] != fb.shape[0]:
            raise ValueError(f"X_b: has {fb.shape[0]} channels, X_a has {fa.shape[0]}")
        ma = check_masks([mask_a], [fa.shape[1:]], name="mask_a")[0]
        mb = check_masks([mask_b], [fb.shape[1:]], name="mask_b")[0]
        pa = check_parts(parts_a, fa.shape[1:], name="parts_a")
        pb = check_parts(parts_b, fb.shape[1:], name="parts_b")
        if (pa is None) != (pb is None):
            raise ValueError("parts_a/parts_b: give part annotations for both objects or for neither")

        labels, centroids, pixel_index = [], [], []
        for name, feat, mask in (("mask_a", fa, ma), ("mask_b", fb, mb)):
            idx = np.flatnonzero(mask.reshape(-1))
            if idx.size < k:
                raise ValueError(f"{name}: has {idx.size} pixels, fewer than n_clusters={k}")
            pix = feat.reshape(feat.shape[0], -1).T[idx].astype(np.float64)
            if self.normalize:
                pix = _unit(pix)
            km = KMeans(n_clusters=k, n_init=int(self.n_init), random_state=self.random_state).fit(pix)
            lab = np.full(mask.size, -1, dtype=np.int64)
            lab[idx] = km.labels_
            labels.append(lab.reshape(mask.shape))
            centroids.append(km.cluster_centers_)
            pixel_index.append(idx)

        cos = _unit(centroids[0]) @ _unit(centroids[1]).T  # [K, K]
        rows, cols = linear_sum_assignment(1.0 - cos)
        order_b = np.empty(k, dtype=np.int64)
        order_b[rows] = cols  # cluster i of A <-> cluster order_b[i] of B
        rename_b = np.empty(k, dtype=np.int64)
        rename_b[order_b] = np.arange(k)
        lab_b = labels[1].copy()
        lab_b[lab_b >= 0] = rename_b[lab_b[lab_b >= 0]]

        self.labels_ = [labels[0], lab_b]
        self.centroids_ = np.stack([centroids[0], centroids[1][order_b]])
        self.matching_ = np.stack([np.arange(k), order_b], axis=1)
        self.similarity_ = cos[np.arange(k), order_b]
        self.n_features_in_ = fa.shape[0]

        if pa is None:
            self.part_names_ = None
            self.part_agreement_ = float("nan")
        else:
            names = []
            for lab, parts in ((self.labels_[0], pa), (self.labels_[1], pb)):
                flat = lab.reshape(-1)
                names.append([_majority_part(np.flatnonzero(flat == i), parts) for i in range(k)])
            both = [(a, b) for a, b in zip(*names) if a is not None and b is not None]
            self.part_names_ = names
            self.part_agreement_ = float(np.mean([a == b for a, b in both])) if both else float("nan")
        return self

    def score(self) -> float:
        """Mean cosine similarity of the matched centroid pairs of the fitted pair."""
        check_is_fitted(self)
        return float(self.similarity_.mean())

    def to_frame(self, **labels: Any) -> pd.DataFrame:
        """Tidy table: one ``matched_cosine`` row per matched pair (``cluster`` = shared id,
        ``part_a``/``part_b`` = majority part names or ``None``), then ``mean_matched_cosine``
        and ``part_agreement`` rows (``cluster`` missing). Preceded by any ``labels``."""
        check_is_fitted(self)
        k = self.similarity_.size
        names = self.part_names_ or [[None] * k, [None] * k]
        rows = [(i, names[0][i], names[1][i], "matched_cosine", float(self.similarity_[i])) for i in range(k)]
        rows.append((pd.NA, None, None, "mean_matched_cosine", self.score()))
        rows.append((pd.NA, None, None, "part_agreement", self.part_agreement_))
        frame = pd.DataFrame(rows, columns=["cluster", "part_a", "part_b", "metric", "value"])
        frame["cluster"] = frame["cluster"].astype("Int64")
        return labelled_frame(frame, labels)

    def pixel_frame(self, **labels: Any) -> pd.DataFrame:
        """One row per pixel of both feature maps: ``image`` (0 = A, 1 = B), ``row, col,
        cluster`` (shared id after matching, ``-1`` outside the mask) -- the input of
        :func:`sansa_probe.probes.plots.plot_part_matching`."""
        check_is_fitted(self)
        parts = []
        for i, lab in enumerate(self.labels_):
            h, w = lab.shape
            r, c = np.divmod(np.arange(h * w), w)
            parts.append(pd.DataFrame({"image": i, "row": r, "col": c, "cluster": lab.ravel()}))
        return labelled_frame(pd.concat(parts, ignore_index=True), labels)
