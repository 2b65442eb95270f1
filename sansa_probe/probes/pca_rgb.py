"""Dense features as colours: 3 principal components fitted jointly across images -> RGB (figs. 2, 4b).

One PCA is fitted on the pixels of all images together (optionally only those inside object
masks), and one normalisation (per channel, over the same pixels) maps the 3 projections to
``[0, 1]``. Both are then applied pixel by pixel, so a feature vector gets the same colour in
every image: colours are comparable across images, which is what the figure relies on.

A PCA basis is arbitrary in sign (and, for close variances, in order), so two fits (frozen SAM2
and SANSA) could paint the same structure in swapped or inverted colours, easy to read as an
effect. Each component's sign is fixed (its largest loading positive); ``align_to`` (another
fitted :class:`PCARGB` on features of the same width) orders and signs the components as the
reference's closest ones instead, so that one colour means the closest direction in both rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from scipy.optimize import linear_sum_assignment
from sklearn.utils.validation import check_is_fitted

from sansa_probe.probes._validation import check_dense_features, check_masks, labelled_frame

__all__ = ["PCARGB"]


def _pixels(features: list[np.ndarray], masks: list[np.ndarray] | None) -> np.ndarray:
    """Stack pixels of [C, h, w] maps into [P, C], keeping only mask pixels when given."""
    rows = []
    for i, f in enumerate(features):
        flat = f.reshape(f.shape[0], -1).T
        rows.append(flat if masks is None else flat[masks[i].reshape(-1)])
    return np.concatenate(rows, axis=0)


class PCARGB(BaseEstimator):
    """Joint 3-component PCA of dense features mapped to RGB.

    Args:
        fit_on_masks: when masks are passed to :meth:`fit`, fit PCA and the normalisation on
            pixels inside the masks only (otherwise on all pixels).
        mask_output: when masks are passed to :meth:`transform`, paint pixels outside them
            with ``background``.
        quantile: robust normalisation: channel ``c`` maps its ``quantile`` and
            ``1 - quantile`` values (over the fit pixels) to 0 and 1, then clips. ``0`` is
            min-max.
        background: grey level in ``[0, 1]`` for masked-out pixels.
        align_to: a fitted :class:`PCARGB` (features of the same width) whose components this
            fit's are matched to (order by Hungarian matching of ``|cos|``, then sign), so that
            both paint one direction in one colour; ``None``: each component's largest loading positive.

    Attributes (after :meth:`fit`):
        pca_: the fitted 3-component :class:`sklearn.decomposition.PCA` (components ordered and signed as above).
        alignment_: [3] cosine of each component with the reference's it was matched to (``NaN`` without ``align_to``).
        low_, high_: [3] per-channel values mapped to 0 and 1.
        n_features_in_: ``C``.
    """

    def __init__(self, *, fit_on_masks: bool = True, mask_output: bool = True, quantile: float = 0.0, background: float = 0.0,
                 align_to: PCARGB | None = None) -> None:
        self.fit_on_masks = fit_on_masks
        self.mask_output = mask_output
        self.quantile = quantile
        self.background = background
        self.align_to = align_to

    def _check_params(self) -> None:
        if not 0.0 <= float(self.quantile) < 0.5:
            raise ValueError(f"quantile: expected a value in [0, 0.5), got {self.quantile}")
        if not 0.0 <= float(self.background) <= 1.0:
            raise ValueError(f"background: expected a grey level in [0, 1], got {self.background}")

    def _inputs(self, X: Any, masks: Any) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        features = check_dense_features(X, name="X")
        checked = None if masks is None else check_masks(masks, [f.shape[1:] for f in features], name="masks")
        return features, checked

    def fit(self, X: Any, masks: Any = None) -> PCARGB:
        """Fit on dense features ``X`` ([N, C, h, w] or a list of [C, h, w]) with optional
        object ``masks`` ([N, h, w] or a list of [h, w], at feature resolution)."""
        self._check_params()
        features, masks_ = self._inputs(X, masks)
        pixels = _pixels(features, masks_ if self.fit_on_masks else None)
        if pixels.shape[0] < 3:
            raise ValueError(f"masks: expected at least 3 pixels to fit on, got {pixels.shape[0]}")
        if pixels.shape[1] < 3:
            raise ValueError(f"X: expected at least 3 feature channels, got {pixels.shape[1]}")
        pca = PCA(n_components=3, svd_solver="full").fit(pixels)
        self.alignment_ = self._orient(pca)
        Z = pca.transform(pixels)
        q = float(self.quantile)
        low, high = np.quantile(Z, q, axis=0), np.quantile(Z, 1.0 - q, axis=0)
        self.pca_ = pca
        self.low_ = low
        self.high_ = np.where(high > low, high, low + 1.0)  # a constant channel maps to 0
        self.n_features_in_ = pixels.shape[1]
        return self

    def _orient(self, pca: PCA) -> np.ndarray:
        """Order and sign ``pca``'s components in place (see the class docstring); returns the cosines."""
        components = pca.components_
        if self.align_to is None:
            signs = np.sign(components[np.arange(3), np.abs(components).argmax(axis=1)])
            pca.components_ = components * np.where(signs == 0, 1.0, signs)[:, None]
            return np.full(3, np.nan)
        check_is_fitted(self.align_to)
        reference = self.align_to.pca_.components_
        if reference.shape[1] != components.shape[1]:
            raise ValueError(f"align_to: fitted on {reference.shape[1]} channels, these features have {components.shape[1]}")
        cosine = components @ reference.T / np.outer(np.linalg.norm(components, axis=1), np.linalg.norm(reference, axis=1))
        mine, theirs = linear_sum_assignment(-np.abs(cosine))
        order = mine[np.argsort(theirs)]  # for the reference's component j, ours
        matched = cosine[order, np.arange(3)]
        signs = np.where(matched < 0, -1.0, 1.0)
        pca.components_ = components[order] * signs[:, None]
        pca.explained_variance_ = pca.explained_variance_[order]
        pca.explained_variance_ratio_ = pca.explained_variance_ratio_[order]
        pca.singular_values_ = pca.singular_values_[order]
        return np.abs(matched)

    def transform(self, X: Any, masks: Any = None) -> list[np.ndarray]:
        """RGB maps: a list of float [h, w, 3] arrays in ``[0, 1]``, one per image."""
        check_is_fitted(self)
        features, masks_ = self._inputs(X, masks)
        if features[0].shape[0] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} channels (as in fit), got {features[0].shape[0]}")
        out = []
        for i, f in enumerate(features):
            c, h, w = f.shape
            Z = self.pca_.transform(f.reshape(c, -1).T)
            rgb = np.clip((Z - self.low_) / (self.high_ - self.low_), 0.0, 1.0).reshape(h, w, 3)
            if masks_ is not None and self.mask_output:
                rgb[~masks_[i]] = float(self.background)
            out.append(rgb)
        return out

    def fit_transform(self, X: Any, masks: Any = None) -> list[np.ndarray]:
        return self.fit(X, masks).transform(X, masks)

    def score(self, X: Any, masks: Any = None) -> float:
        """Fraction of the variance of ``X``'s pixels (inside ``masks`` if given) captured by the 3
        fitted components (1 - reconstruction error / total variance about the fitted mean)."""
        check_is_fitted(self)
        features, masks_ = self._inputs(X, masks)
        pixels = _pixels(features, masks_).astype(np.float64)
        centred = pixels - self.pca_.mean_
        recon = centred @ self.pca_.components_.T @ self.pca_.components_
        total = float((centred**2).sum())
        return float(1.0 - ((centred - recon) ** 2).sum() / total) if total > 0 else float("nan")

    def to_frame(self, X: Any, masks: Any = None, **labels: Any) -> pd.DataFrame:
        """One row per pixel: ``image, row, col, r, g, b, in_mask`` (``in_mask`` is True
        everywhere without masks), preceded by any ``labels``."""
        maps = self.transform(X, masks)
        features, masks_ = self._inputs(X, masks)
        parts = []
        for i, rgb in enumerate(maps):
            h, w, _ = rgb.shape
            rows, cols = np.divmod(np.arange(h * w), w)
            parts.append(pd.DataFrame({
                "image": i, "row": rows, "col": cols,
                "r": rgb[..., 0].ravel(), "g": rgb[..., 1].ravel(), "b": rgb[..., 2].ravel(),
                "in_mask": masks_[i].ravel() if masks_ is not None else np.ones(h * w, dtype=bool),
            }))
        return labelled_frame(pd.concat(parts, ignore_index=True), labels)
