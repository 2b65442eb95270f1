"""Figs. 4a, 8b-c: 2-D PCA / UMAP of object features coloured by class.

Object features of one split for each encoder (frozen SAM2 and SANSA: the same model, adapters
off / on; any other encoder beside them, pooled on its own grid), each projected to 2-D on its
own (:class:`~sansa_probe.probes.Projection2D`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.data import SegmentationSource
from sansa_probe.features import as_encoders, encoder_layers
from sansa_probe.features.encoders import Encoder, Encoders, Layers
from sansa_probe.probes import Projection2D, plot_projection, write_projection_html

__all__ = ["TABLES", "compute", "figures", "write_html"]

TABLES = ("projection", "scores")


def compute(
    extractor: Encoders,
    source: SegmentationSource,
    *,
    models: Mapping[str, Encoder] | None = None,
    layer: Layers = None,
    method: str = "pca",
    images_per_class: int | None = 50,
    max_images: int | None = None,
    seed: int = 0,
    pooling: str = "mask_mean",
    n_neighbors: int = 15,
    min_dist: float = 0.1,
) -> dict[str, pd.DataFrame]:
    """``projection`` (one row per object and encoder) and ``scores`` tables (encoders and layers as
    :func:`sansa_probe.pipelines.pca.compute`)."""
    encoders = as_encoders(extractor, models)
    layers = encoder_layers(encoders, layer)
    frames, scores = [], []
    for name, fx in encoders.items():
        layer = layers[name]
        table, X = fx.dataset_object_features(source, layer=layer, images_per_class=images_per_class, max_images=max_images, seed=seed,
                                              pooling=pooling)
        estimator = Projection2D(method=method, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed)
        estimator.fit(X, table["class_name"].to_numpy(), image_ids=table["image_id"].to_numpy(), instance_ids=table["instance_id"].to_numpy())
        frames.append(estimator.to_frame(model=name, layer=layer, method=method).assign(class_id=table["class_id"].to_numpy()))
        scores += [{"model": name, "layer": layer, "method": method, "metric": "silhouette_2d", "value": estimator.score()},
                   {"model": name, "layer": layer, "method": method, "metric": "n_objects", "value": float(len(table))}]
    return {"projection": pd.concat(frames, ignore_index=True), "scores": pd.DataFrame(scores)}


def figures(tables: Mapping[str, pd.DataFrame], images: Mapping[str, object] | None = None) -> dict[str, Figure]:
    """One scatter panel per model, coloured by class."""
    projection = tables["projection"]
    names = list(dict.fromkeys(projection["model"]))
    figure = Figure(figsize=(4.5 * len(names), 4.0), layout="constrained")
    for ax, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names):
        part = projection[projection["model"] == name]
        plot_projection(part, ax=ax)
        ax.set_title(f"{name} ({part['method'].iloc[0]})")
    return {"projection": figure}


def write_html(tables: Mapping[str, pd.DataFrame], out: str | Path) -> list[Path]:
    """``projection_<encoder>.html`` per encoder (interactive, hover: image id, class, instance); in
    the file name, characters other than letters, digits, ``.``, ``_`` and ``-`` become ``-``
    (``timm:vit_small_patch14_dinov2.lvd142m`` -> ``projection_timm-vit_small_patch14_dinov2.lvd142m.html``)."""
    projection = tables["projection"]
    return [write_projection_html(part, Path(out) / f"projection_{re.sub(r'[^A-Za-z0-9._-]+', '-', str(name))}.html",
                                  title=f"{name}: {part['layer'].iloc[0]}")
            for name, part in projection.groupby("model", sort=False)]
