"""Figures read as the paper's: legends, one unit (%) for mIoU, error bars from the tables' spreads,
outlines and a reference panel on segmentation previews. Each is a function of small tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sansa_probe.prompts.types import Box, Mask, Points


def test_segmentation_preview_has_a_reference_panel_outlines_and_a_legend():
    from sansa_probe.reporting.preview import plot_segmentation

    image = np.zeros((40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:30, 20:40] = True
    prompts = [Mask(mask), Points(np.array([[5.0, 5.0], [50.0, 30.0]]), np.array([1, 0])), Box((2.0, 3.0, 30.0, 20.0))]
    axes = plot_segmentation([image] * 3, prompts, [image, image], [mask, ~mask], target_names=["a.jpg", "b.jpg"])
    assert axes.shape == (2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["reference 1 (mask)", "reference 2 (points)", "reference 3 (box)"]
    assert axes[1, 0].get_title() == "a.jpg: mask 16.7% of image" and axes[1, 1].get_title() == "b.jpg: mask 83.3% of image"
    assert axes[1, 0].collections  # the mask's outline (a contour)
    assert len(axes[0, 2].patches) == 1  # the box
    legend = axes[0, 0].figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["reference prompt", "predicted mask"]
    with pytest.raises(ValueError, match="one per reference"):
        plot_segmentation([image], [], [image], [mask])


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, "no legend"
    return [t.get_text() for t in legend.get_texts()]


def test_linear_probe_bars_are_percent_with_a_legend_of_models():
    from sansa_probe.probes import plot_linear_probe

    table = pd.DataFrame({"model": ["sam2", "sansa"], "layer": "image_encoder.neck[2]", "metric": "miou", "value": [0.0565, 0.1234]})
    ax = plot_linear_probe(table)
    assert "%" in ax.get_ylabel() and _legend_texts(ax) == ["sam2", "sansa"]
    assert [round(p.get_height(), 2) for p in ax.patches] == [5.65, 12.34]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["image_encoder.neck[2]"]


def test_spatial_coherence_bars_carry_the_spread_of_the_pairs():
    from sansa_probe.probes import plot_spatial_coherence

    values = {("video", "sam2"): [1.0, 3.0], ("video", "sansa"): [2.0, 2.0], ("flipped", "sam2"): [5.0, 9.0], ("flipped", "sansa"): [4.0, 4.0]}
    table = pd.DataFrame([{"model": m, "setting": s, "metric": "smoothness", "value": v} for (s, m), vs in values.items() for v in vs])
    ax = plot_spatial_coherence(table)
    from matplotlib.container import BarContainer

    bars = {c.get_label(): c for c in ax.containers if isinstance(c, BarContainer)}
    assert set(bars) == {"sam2", "sansa"}
    sam2 = bars["sam2"].errorbar.lines[2][0].get_segments()  # one vertical segment per bar: mean -+ 1 s.d.
    np.testing.assert_allclose([(seg[0][1], seg[1][1]) for seg in sam2], [(2 - np.sqrt(2), 2 + np.sqrt(2)), (7 - np.sqrt(8), 7 + np.sqrt(8))])
    assert _legend_texts(ax) == ["sam2", "sansa"] and "s.d." in ax.get_legend().get_title().get_text()
    single = plot_spatial_coherence(table.groupby(["model", "setting"], as_index=False).first())  # one row per bar: no error bar
    assert all(c.errorbar is None for c in single.containers if isinstance(c, BarContainer))


def test_pca_concentration_legend_names_models_and_the_full_dimension_line():
    from sansa_probe.probes import plot_pca_concentration

    rows = [{"model": m, "n_components": k, "metric": "relative_accuracy", "value": v} for m in ("sam2", "sansa") for k, v in ((1, 0.5), (4, 1.0))]
    ax = plot_pca_concentration(pd.DataFrame(rows))
    assert _legend_texts(ax) == ["sam2", "sansa", "full dimension"]


def test_probe_figures_carry_their_legends_through_the_pipelines():
    from sansa_probe.pipelines import linear_probe, spatial_coherence

    probe = pd.DataFrame({"model": ["sam2", "sansa"], "layer": "l", "class_id": None, "class_name": None, "metric": "miou", "value": [0.1, 0.2]})
    ax = linear_probe.figures({"linear_probe": probe})["linear_probe"].axes[0]
    assert _legend_texts(ax) == ["sam2", "sansa"] and "%" in ax.get_ylabel()
    coherence = pd.DataFrame({"model": ["sam2", "sansa"] * 2, "setting": ["video"] * 4, "metric": "smoothness", "value": [1.0, 2.0, 3.0, 4.0]})
    ax = spatial_coherence.figures({"spatial_coherence": coherence})["spatial_coherence"].axes[0]
    assert _legend_texts(ax) == ["sam2", "sansa"]


def test_comparison_figure_reads_in_percent_points():
    import matplotlib

    matplotlib.use("Agg")
    from sansa_probe.evaluation.comparison import plot_comparison

    table = pd.DataFrame([{"scope": "overall", "class_id": "", "class_name": "", "difference": 0.58, "ci_low": 0.1, "ci_high": 1.0},
                          {"scope": "class", "class_id": 1, "class_name": "dog", "difference": -0.2, "ci_low": -0.9, "ci_high": 0.4}])
    ax = plot_comparison(table)  # a table without counts or absolute values: names only
    assert "% points" in ax.get_xlabel() and [t.get_text() for t in ax.get_yticklabels()] == ["overall mIoU", "dog"]
    assert _legend_texts(ax) == ["overall mIoU", "per class"]
    unnamed = table.assign(class_id=[float("nan"), 28.0], class_name=["", float("nan")])  # as read back from a CSV
    assert [t.get_text() for t in plot_comparison(unnamed).get_yticklabels()] == ["overall mIoU", "class 28"]
