"""Appendix G, table 12: how smooth are feature matches as continuity breaks?

For each setting of a :class:`~sansa_probe.probes.frame_pairs.PairSet` (``video``, ``flipped``,
``independent``), the nearest-neighbour feature matches of every pair give a displacement
field scored by its mean first-order gradient (:func:`~sansa_probe.probes.pair_smoothness`,
sd-dino's definition; lower is smoother, in image pixels whatever the feature grid), for each
encoder (frozen SAM2 and SANSA, the same model with adapters off / on; any other encoder beside them).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.features import as_encoders, encoder_layers
from sansa_probe.features.encoders import Encoder, Encoders, Layers
from sansa_probe.probes import encoder_colours, pair_smoothness, plot_spatial_coherence
from sansa_probe.probes.frame_pairs import SETTINGS, PairSet

__all__ = ["TABLES", "compute", "figures"]

TABLES = ("spatial_coherence", "summary", "table12")


def compute(
    extractor: Encoders,
    pair_set: PairSet,
    *,
    models: Mapping[str, Encoder] | None = None,
    layer: Layers = None,
    restrict_to_target_mask: bool = False,
    outside: str = "zero",
) -> dict[str, pd.DataFrame]:
    """``spatial_coherence`` (one row per pair, setting and encoder), ``summary`` and ``table12``
    (encoders and layers as :func:`sansa_probe.pipelines.pca.compute`)."""
    encoders = as_encoders(extractor, models)
    layers = encoder_layers(encoders, layer)
    used = sorted({i for pairs in pair_set.pairs.values() for pair in pairs for i in pair})
    if not used:
        raise ValueError("no image pair to score (a video needs at least stride + 1 frames)")
    rows = []
    for name, fx in encoders.items():
        layer = layers[name]
        X = fx.dense_features([pair_set.images[i] for i in used], layer=layer)
        feats = {i: X[k] for k, i in enumerate(used)}
        for setting, pairs in pair_set.pairs.items():
            if not pairs:
                continue
            frame = pair_smoothness([feats[s] for s, _ in pairs], [feats[t] for _, t in pairs],
                                    source_masks=[pair_set.masks[s] for s, _ in pairs], target_masks=[pair_set.masks[t] for _, t in pairs],
                                    restrict_to_target_mask=restrict_to_target_mask, outside=outside, device=fx.device)
            frame.insert(0, "model", name)
            frame.insert(1, "layer", layer)
            frame.insert(2, "setting", setting)
            frame.insert(4, "source", [pair_set.ids[s] for s, _ in pairs])
            frame.insert(5, "target", [pair_set.ids[t] for _, t in pairs])
            rows.append(frame)
    results = pd.concat(rows, ignore_index=True)
    summary = (results.groupby(["setting", "model", "layer"], sort=False)["value"].agg(["mean", "std", "count"]).reset_index()
               .rename(columns={"count": "n_pairs"}))
    summary.insert(3, "metric", "smoothness")
    table = summary.pivot(index="setting", columns="model", values="mean").reindex([s for s in SETTINGS if s in set(summary["setting"])])
    table.columns.name = None
    table = table.reset_index()
    table.insert(1, "appearance_continuity", [SETTINGS[s][0] for s in table["setting"]])
    table.insert(2, "spatial_continuity", [SETTINGS[s][1] for s in table["setting"]])
    return {"spatial_coherence": results, "summary": summary, "table12": table}


def figures(tables: Mapping[str, pd.DataFrame], images: Mapping[str, object] | None = None) -> dict[str, Figure]:
    """Mean smoothness per setting (bars per encoder, in its colour); lower is better."""
    table = tables["spatial_coherence"]
    figure = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = plot_spatial_coherence(table, ax=figure.add_subplot(), colors=encoder_colours(list(dict.fromkeys(table["model"]))))
    ax.set_title("spatial coherence (table 12)")
    return {"spatial_coherence": figure}
