"""Part-level consistency across an image pair (paper fig. 4c, following Zhang et al. 2023).

For each of two objects, K-means clusters its dense features (the pixels inside its mask);
the two sets of centroids are matched one-to-one by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) on the cosine cost ``1 - cos(c_a, c_b)``.
A measurement of one pair (:func:`match_parts` returns tidy tables), not an estimator: nothing
is fitted for later use. Matched clusters get one shared colour in the figure
(:func:`sansa_probe.probes.plots.plot_part_matching`).

Scores:

* ``mean_matched_cosine``: mean cosine similarity of the matched
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
from sklearn.cluster import KMeans

from sansa_probe.probes._validation import check_dense_features, check_masks, check_parts

__all__ = ["match_parts"]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _majority_part(cluster_pixels: np.ndarray, parts: dict[str, np.ndarray]) -> str | None:
    """Most frequent part among the (flat) pixel indices of one cluster; ``None`` if no pixel has a part."""
    counts = {name: int(mask.reshape(-1)[cluster_pixels].sum()) for name, mask in parts.items()}
    best = max(counts, key=lambda k: (counts[k], k), default=None)
    return best if best is not None and counts[best] > 0 else None


def match_parts(
    X_a: Any,
    X_b: Any,
    *,
    mask_a: Any,
    mask_b: Any,
    parts_a: Mapping[str, Any] | None = None,
    parts_b: Mapping[str, Any] | None = None,
    n_clusters: int = 5,
    normalize: bool = True,
    n_init: int = 10,
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster each object's pixels with K-means and match the clusters across the pair.

    A measurement of one pair, not an estimator: nothing is learnt for later use.

    Args:
        X_a, X_b: dense features [C, h, w] of the two images (``h, w`` may differ).
        mask_a, mask_b: object masks [h, w] at feature resolution.
        parts_a, parts_b: optional ``{part name: [h, w] mask}`` per object (both or neither).
        n_clusters: clusters (parts) per object.
        normalize: L2-normalise pixel features before K-means (cosine geometry, consistent with
            the cosine matching cost).
        n_init, random_state: K-means restarts and seed.

    Returns:
        ``(scores, pixels)``. ``scores``: one ``matched_cosine`` row per matched pair of clusters
        (``cluster`` = shared id, ``part_a``/``part_b`` = majority part names or ``None``), then
        ``mean_matched_cosine`` and ``part_agreement`` (``NaN`` without parts) rows with no
        ``cluster``. ``pixels``: one row per cell of both feature maps, ``image`` (0 = A, 1 = B),
        ``row, col, cluster`` (shared id after matching, ``-1`` outside the mask) -- the input of
        :func:`sansa_probe.probes.plots.plot_part_matching`.
    """
    k = int(n_clusters)
    if k < 1:
        raise ValueError(f"n_clusters: expected a positive int, got {n_clusters}")
    (fa, ma, pa), (fb, mb, pb) = _checked_pair(X_a, X_b, mask_a, mask_b, parts_a, parts_b)
    clustered = [_cluster(feat, mask, k, name=name, normalize=normalize, n_init=n_init, random_state=random_state)
                 for name, feat, mask in (("mask_a", fa, ma), ("mask_b", fb, mb))]  # fmt: skip
    (map_a, centroids_a), (map_b, centroids_b) = clustered
    similarity, map_b = _match(centroids_a, centroids_b, map_b)

    names: list[list[str | None]] = [[None] * k, [None] * k]
    agreement = float("nan")
    if pa is not None:
        names = [[_majority_part(np.flatnonzero(m.reshape(-1) == i), parts) for i in range(k)] for m, parts in ((map_a, pa), (map_b, pb))]
        both = [(a, b) for a, b in zip(*names) if a is not None and b is not None]
        agreement = float(np.mean([a == b for a, b in both])) if both else float("nan")

    score_rows = [(i, names[0][i], names[1][i], "matched_cosine", float(similarity[i])) for i in range(k)]
    score_rows.append((pd.NA, None, None, "mean_matched_cosine", float(similarity.mean())))
    score_rows.append((pd.NA, None, None, "part_agreement", agreement))
    scores = pd.DataFrame(score_rows, columns=["cluster", "part_a", "part_b", "metric", "value"])
    scores["cluster"] = scores["cluster"].astype("Int64")
    pixels = []
    for i, m in enumerate((map_a, map_b)):
        r, c = np.divmod(np.arange(m.size), m.shape[1])
        pixels.append(pd.DataFrame({"image": i, "row": r, "col": c, "cluster": m.ravel()}))
    return scores, pd.concat(pixels, ignore_index=True)


def _checked_pair(X_a: Any, X_b: Any, mask_a: Any, mask_b: Any, parts_a: Any, parts_b: Any) -> tuple[tuple, tuple]:
    """``((features [C, h, w], mask [h, w], parts or None), ...)`` of A and B, validated together."""
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
    return (fa, ma, pa), (fb, mb, pb)


def _cluster(feat: np.ndarray, mask: np.ndarray, k: int, *, name: str, normalize: bool, n_init: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """K-means of the pixels inside ``mask``: ``(labels [h, w] with -1 outside, centroids [k, C])``."""
    idx = np.flatnonzero(mask.reshape(-1))
    if idx.size < k:
        raise ValueError(f"{name}: has {idx.size} pixels, fewer than n_clusters={k}")
    pix = feat.reshape(feat.shape[0], -1).T[idx].astype(np.float64)
    if normalize:
        pix = _unit(pix)
    km = KMeans(n_clusters=k, n_init=int(n_init), random_state=random_state).fit(pix)
    labels = np.full(mask.size, -1, dtype=np.int64)
    labels[idx] = km.labels_
    return labels.reshape(mask.shape), km.cluster_centers_


def _match(centroids_a: np.ndarray, centroids_b: np.ndarray, map_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching on ``1 - cos``: ``(cosine of each matched pair [k], B's map renamed to A's ids)``."""
    k = len(centroids_a)
    cos = _unit(centroids_a) @ _unit(centroids_b).T  # [K, K]
    rows, cols = linear_sum_assignment(1.0 - cos)
    order_b = np.empty(k, dtype=np.int64)
    order_b[rows] = cols  # cluster i of A <-> cluster order_b[i] of B
    rename_b = np.empty(k, dtype=np.int64)
    rename_b[order_b] = np.arange(k)
    renamed = np.where(map_b >= 0, rename_b[np.maximum(map_b, 0)], -1)  # B's clusters take their match's id
    return cos[np.arange(k), order_b], renamed
