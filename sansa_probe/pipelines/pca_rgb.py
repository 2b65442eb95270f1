"""Figs. 2, 4b: dense features as colours, 3 principal components -> RGB.

One PCA is fitted jointly on the pixels of all images (inside the object masks), per encoder
(frozen SAM2 and SANSA, the same model with adapters off / on; any other encoder, on its own
grid), so one colour means one feature direction in every image
(:class:`~sansa_probe.probes.PCARGB`). Masks are brought to the feature grid by coverage >= 0.5
(:func:`sansa_probe.features.masks_to_grid`). Images of a split with their objects as masks:
:func:`sansa_probe.features.dataset_images`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.features import as_encoders, encoder_layers, masks_to_grid
from sansa_probe.features.encoders import Encoder, Encoders, Layers
from sansa_probe.probes import PCARGB, plot_pca_rgb

__all__ = ["TABLES", "compute", "figures"]

TABLES = ("pca_rgb", "scores")


def compute(
    extractor: Encoders,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray] | None,
    *,
    models: Mapping[str, Encoder] | None = None,
    image_ids: Sequence[str] | None = None,
    layer: Layers = None,
    feature_size: int | None = None,
    quantile: float = 0.01,
) -> dict[str, pd.DataFrame]:
    """``pca_rgb`` (one row per feature cell, image and encoder) and ``scores`` tables (encoders and
    layers as :func:`sansa_probe.pipelines.pca.compute`)."""
    encoders = as_encoders(extractor, models)
    layers = encoder_layers(encoders, layer)
    ids = list(image_ids) if image_ids is not None else [str(i) for i in range(len(images))]
    frames, scores = [], []
    for name, fx in encoders.items():
        layer = layers[name]
        X = fx.dense_features(images, layer=layer, size=feature_size)
        grid = masks_to_grid(masks, tuple(X.shape[-2:])) if masks is not None else None
        if grid is not None and not any(m.any() for m in grid):
            raise ValueError(f"masks: no mask covers half of a feature cell of {name}; pass larger objects, --feature-size, or no masks")
        estimator = PCARGB(fit_on_masks=grid is not None, quantile=quantile).fit(X, grid)
        frame = estimator.to_frame(X, grid, model=name, layer=layer)
        frame.insert(3, "image_id", [ids[i] for i in frame["image"]])
        frames.append(frame)
        scores.append({"model": name, "layer": layer, "metric": "variance_captured_3pc", "value": estimator.score(X, grid)})
    return {"pca_rgb": pd.concat(frames, ignore_index=True), "scores": pd.DataFrame(scores)}


def figures(tables: Mapping[str, pd.DataFrame], images: Mapping[str, np.ndarray] | None = None) -> dict[str, Figure]:
    """One row of colour maps per model, under a row of the images themselves when ``images``
    (``{image_id: HxWx3}``, every image of the table) are given."""
    table = tables["pca_rgb"]
    names = list(dict.fromkeys(table["model"]))
    order = table.drop_duplicates("image").sort_values("image")["image_id"].astype(str).tolist()
    shown = [images[i] for i in order] if images is not None else None
    top = 1 if shown is not None else 0
    figure = Figure(figsize=(2.6 * len(order), 2.6 * (top + len(names))), layout="constrained")
    grid = np.asarray(figure.subplots(top + len(names), len(order), squeeze=False), dtype=object)
    for k, name in enumerate(names):
        part = table[table["model"] == name]
        if k == 0 and shown is not None:
            plot_pca_rgb(part, images=shown, axes=grid[0:2])
        else:
            plot_pca_rgb(part, axes=grid[top + k : top + k + 1])
        grid[top + k, 0].set_title(name, loc="left", fontsize="medium")
    return {"pca_rgb": figure}
