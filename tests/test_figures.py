"""Figures read as the paper's: legends, one unit (%) for mIoU, error bars from the tables' spreads,
outlines and a reference panel on segmentation previews. Each is a function of small tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sansa_probe.prompts.types import Box, Mask, Points


def test_segmentation_preview_has_a_reference_panel_outlines_and_a_legend():
    from sansa_probe.preview import plot_segmentation

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
