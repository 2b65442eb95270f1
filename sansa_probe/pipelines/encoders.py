"""The probes' headline numbers for several encoders in one table: where does SANSA land between SAM2 and DINOv2?

    results = {"pca": pca.compute(encoders, splits), "linear_probe": linear_probe.compute(encoders, splits)}
    encoder_summary(results)                 # tidy: probe, metric, setting, model, layer, value (+ identity)
    encoder_summary(results, wide=True)      # one row per probe and metric, one column per encoder

Each probe contributes the numbers of its own summary table (:data:`SUMMARY_METRICS`); the
commands' CSVs give the same tables (:func:`sansa_probe.pipelines.read_tables`), so a folder of
probe runs is summarised as the pipelines' results are.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = ["SUMMARY_METRICS", "encoder_summary"]

# probe -> (table, [(metric, what it says)]): the numbers the paper reads off each probe
SUMMARY_METRICS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "pca": ("summary", [("auc_relative_accuracy", "fig. 8: area under the relative-accuracy curve (higher: semantics in fewer components)"),
                        ("full_accuracy", "fig. 8: nearest-centroid accuracy, full dimension")]),
    "linear_probe": ("summary", [("miou_percent", "fig. 9: linear-probe mIoU (%)")]),
    "projection": ("scores", [("silhouette_2d", "fig. 4a: silhouette of the classes in 2-D")]),
    "pca_rgb": ("scores", [("variance_captured_3pc", "figs. 2, 4b: variance in the 3 colour components")]),
    "part_matching": ("summary", [("mean_matched_cosine", "fig. 4c: cosine of matched part clusters")]),
    "spatial_coherence": ("summary", [("smoothness", "table 12: smoothness of matches (px, lower is smoother)")]),
}

COLUMNS = ["probe", "metric", "setting", "model", "layer", "value", "description", "identity"]


def encoder_summary(results: Mapping[str, Mapping[str, pd.DataFrame]], *, wide: bool = False) -> pd.DataFrame:
    """The headline numbers of each probe in ``results`` (``{probe: the tables its pipeline
    computed}``, probes named as in :data:`SUMMARY_METRICS`), one row per probe, metric, setting
    and encoder (``model``), with the encoder's layer and, where the tables have one, identity.
    ``wide``: one row per probe, metric and setting, one column per encoder (in order)."""
    unknown = [name for name in results if name not in SUMMARY_METRICS]
    if unknown:
        raise ValueError(f"results: {unknown} are not probes with a summary ({', '.join(SUMMARY_METRICS)})")
    rows = []
    for probe, tables in results.items():
        table_name, metrics = SUMMARY_METRICS[probe]
        table = tables[table_name]
        for metric, description in metrics:
            part = table[table["metric"] == metric]
            value = "mean" if probe == "spatial_coherence" else "value"  # table 12's summary: mean over pairs per setting
            for row in part.to_dict("records"):
                rows.append({"probe": probe, "metric": metric, "setting": row.get("setting", ""), "model": row["model"], "layer": row["layer"],
                             "value": float(row[value]), "description": description, "identity": row.get("identity", "")})
    summary = pd.DataFrame(rows, columns=COLUMNS)
    if not wide:
        return summary
    order = list(dict.fromkeys(summary["model"]))
    table = summary.pivot_table(index=["probe", "metric", "setting"], columns="model", values="value", sort=False)
    return table[order].reset_index().rename_axis(columns=None)
