"""Fig. 4c: part-level clusters matched across image pairs.

Each object's dense features (inside its mask at feature resolution, coverage >= 0.5) are
clustered with K-means and the clusters matched across the pair by the Hungarian algorithm
(:func:`~sansa_probe.probes.match_parts`), for each encoder (frozen SAM2 and SANSA, the same
model with adapters off / on; any other encoder beside them, on its own feature grid). Where
instances carry part masks (``pascal_part``, ``paco_part``), each cluster is named by its
majority part and ``part_agreement`` is the fraction of matched pairs whose names agree;
elsewhere it is NaN. A pair whose object covers fewer feature cells than ``n_clusters`` is
skipped (counted in the summary, listed with the reason in the ``skipped`` table; :func:`check`
says how many and why). Pairs: :func:`sansa_probe.probes.object_pairs.dataset_pairs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.features import as_encoders, encoder_layers, masks_to_grid
from sansa_probe.features.encoders import Encoder, Encoders, Layers
from sansa_probe.probes import match_parts, plot_part_matching
from sansa_probe.probes.object_pairs import ObjectPair, grid_parts
from sansa_probe.reporting.sanity import check_skipped

__all__ = ["TABLES", "check", "compute", "figures"]

TABLES = ("part_matching", "pixels", "summary")
SKIPPED_COLUMNS = ["model", "layer", "pair", "class_id", "class_name", "image_a", "image_b", "cells_a", "cells_b", "grid", "n_clusters", "reason"]
FIGURE_OPTIONS = {"max_rows": "figure_pairs"}  # figures() keyword -> config.json key of the command


def _prefixed(frame: pd.DataFrame, **labels: Any) -> pd.DataFrame:
    """``frame`` with constant ``labels`` columns first."""
    return pd.concat([pd.DataFrame(labels, index=frame.index), frame], axis=1)


def compute(
    extractor: Encoders,
    pairs: Sequence[ObjectPair],
    *,
    models: Mapping[str, Encoder] | None = None,
    layer: Layers = None,
    feature_size: int | None = None,
    n_clusters: int = 5,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """``part_matching`` (matched clusters and scores per pair), ``pixels`` and ``summary`` tables
    (encoders and layers as :func:`sansa_probe.pipelines.pca.compute`)."""
    encoders = as_encoders(extractor, models)
    layers = encoder_layers(encoders, layer)
    images = [image for pair in pairs for image in pair.images]
    results, pixels, summary, left_out = [], [], [], []
    for name, fx in encoders.items():
        layer = layers[name]
        X = fx.dense_features(images, layer=layer, size=feature_size)
        grid = tuple(X.shape[-2:])
        skipped = 0
        for p, pair in enumerate(pairs):
            masks = masks_to_grid([o.mask for o in pair.objects], grid)
            cells = [int(m.sum()) for m in masks]
            if min(cells) < n_clusters:
                skipped += 1
                left_out.append({"model": name, "layer": layer, "pair": p, "class_id": str(pair.class_id), "class_name": pair.class_name,
                                 "image_a": pair.image_ids[0], "image_b": pair.image_ids[1], "cells_a": cells[0], "cells_b": cells[1],
                                 "grid": f"{grid[0]}x{grid[1]}", "n_clusters": n_clusters,
                                 "reason": f"an object covers {min(cells)} feature cells, fewer than the {n_clusters} clusters"})
                continue
            parts = [grid_parts(o, m) for o, m in zip(pair.objects, masks)]
            if parts[0] is None or parts[1] is None:
                parts = [None, None]
            scores, cells = match_parts(X[2 * p], X[2 * p + 1], mask_a=masks[0], mask_b=masks[1], parts_a=parts[0], parts_b=parts[1],
                                        n_clusters=n_clusters, random_state=seed)
            results.append(_prefixed(scores, model=name, layer=layer, pair=p, class_id=str(pair.class_id), class_name=pair.class_name,
                                     image_a=pair.image_ids[0], image_b=pair.image_ids[1]))
            pixels.append(_prefixed(cells, model=name, pair=p))
        scored = pd.concat([r for r in results if r["model"].iloc[0] == name], ignore_index=True) if results else pd.DataFrame()
        for metric in ("mean_matched_cosine", "part_agreement"):
            values = scored.loc[scored["metric"] == metric, "value"] if len(scored) else pd.Series(dtype=float)
            summary.append({"model": name, "layer": layer, "metric": metric, "value": float(values.mean()) if values.notna().any() else float("nan")})
        summary += [{"model": name, "layer": layer, "metric": "n_pairs", "value": float(len(pairs) - skipped)},
                    {"model": name, "layer": layer, "metric": "n_skipped", "value": float(skipped)}]
    if not results:
        raise ValueError(f"every pair's object covers fewer than {n_clusters} feature cells; raise --feature-size or lower --clusters")
    return {"part_matching": pd.concat(results, ignore_index=True), "pixels": pd.concat(pixels, ignore_index=True), "summary": pd.DataFrame(summary),
            "skipped": pd.DataFrame(left_out, columns=SKIPPED_COLUMNS)}


def check(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Sanity warnings: for each model, how many pairs were skipped and why (from ``summary``
    and ``skipped``)."""
    summary, skipped = tables["summary"], tables.get("skipped")
    messages = []
    for name, part in summary.groupby("model", sort=False):
        values = part.set_index("metric")["value"]
        n_skipped, n_scored = int(values.get("n_skipped", 0)), int(values.get("n_pairs", 0))
        mine = skipped[skipped["model"] == name] if skipped is not None and len(skipped) else None
        reason = ""
        if mine is not None and len(mine):
            smallest = int(mine[["cells_a", "cells_b"]].to_numpy().min())
            reason = (f"an object covers fewer feature cells ({smallest} at least) than the {int(mine['n_clusters'].iloc[0])} "
                      f"clusters on the {mine['grid'].iloc[0]} grid; raise --feature-size or lower --clusters")
        messages += check_skipped(n_skipped, n_skipped + n_scored, what=f"part matching ({name}), image pairs", reason=reason)
    return messages


def figures(tables: Mapping[str, pd.DataFrame], images: Mapping[str, np.ndarray] | None = None, *, max_rows: int = 4) -> dict[str, Figure]:
    """One row per pair (at most ``max_rows``): for each model, the matched clusters of both
    objects in shared colours, over the images when ``images`` (``{image_id: HxWx3}``) are given."""
    pixels, scores = tables["pixels"], tables["part_matching"]
    pairs = scores.drop_duplicates("pair").set_index("pair")
    names = list(dict.fromkeys(pixels["model"]))
    shown = sorted(set(pixels["pair"]))[:max_rows]
    figure = Figure(figsize=(2.4 * 2 * len(names), 2.4 * len(shown)), layout="constrained")
    grid = np.asarray(figure.subplots(len(shown), 2 * len(names), squeeze=False), dtype=object)
    for r, p in enumerate(shown):
        pair = pairs.loc[p]
        pictures = [images[str(pair["image_a"])], images[str(pair["image_b"])]] if images is not None else None
        for k, name in enumerate(names):
            part = pixels[(pixels["model"] == name) & (pixels["pair"] == p)]
            axes = grid[r, 2 * k : 2 * k + 2]
            if part.empty:
                for ax in axes:
                    ax.set_axis_off()
                continue
            plot_part_matching(part, images=pictures, axes=axes)
            axes[0].set_title(f"{name}: {pair['class_name']}", loc="left", fontsize="small")
    return {"part_matching": figure}
