"""A segmentation run at a glance: the references with their prompts above the targets with their
predicted masks outlined (``preview.png`` of ``python -m sansa_probe.segment``).

:func:`plot_segmentation` is a function of the images, prompts and masks alone (no model), drawn
on a new :class:`~matplotlib.figure.Figure` (no pyplot state) or on given Axes::

    axes = plot_segmentation(references, prompts, targets, masks, target_names=names)
    add_footnote(axes[0, 0].figure, identity_footnote(identity))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from sansa_probe.io.masks import MASK_TINTS, contrasting_tint
from sansa_probe.prompts.types import Box, Mask, Points, Scribble

__all__ = ["plot_segmentation", "PROMPT_COLOUR", "MASK_COLOUR"]

PROMPT_COLOUR = "#ff7f0e"  # the reference's prompt
MASK_COLOUR = "#1e90ff"  # the predicted mask (as the overlays), unless the object is blue-ish: then another of MASK_TINTS
_TINT_NAMES = dict(zip(MASK_TINTS, ("blue", "yellow", "magenta", "green")))


def _outline(ax: Any, mask: np.ndarray, colour: str, *, fill: float = 0.0) -> None:
    mask = np.asarray(mask, dtype=bool)
    if fill and mask.any():
        rgba = np.zeros(mask.shape + (4,))
        rgba[mask] = (*_rgb(colour), fill)
        ax.imshow(rgba, interpolation="nearest")
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.2)


def _rgb(colour: str) -> tuple[float, float, float]:
    return to_rgb(colour)


def _draw_prompt(ax: Any, prompt: Any) -> str:
    """Draw ``prompt`` on ``ax``; returns its kind in words."""
    if isinstance(prompt, (Mask, Scribble)):
        _outline(ax, prompt.mask, PROMPT_COLOUR, fill=0.25)
        return "mask" if isinstance(prompt, Mask) else "scribble"
    if isinstance(prompt, Points):
        coords = np.asarray(prompt.coords, dtype=float).reshape(-1, 2)
        labels = np.ones(len(coords), dtype=int) if prompt.labels is None else np.asarray(prompt.labels).reshape(-1)
        positive = labels == 1
        if positive.any():
            ax.scatter(coords[positive, 0], coords[positive, 1], s=40, marker="o", color=PROMPT_COLOUR, edgecolors="white", linewidths=0.8)
        if (~positive).any():  # negative clicks
            ax.scatter(coords[~positive, 0], coords[~positive, 1], s=40, marker="x", color=PROMPT_COLOUR, linewidths=1.5)
        return "points"
    if isinstance(prompt, Box):
        x0, y0, x1, y1 = prompt.xyxy
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=PROMPT_COLOUR, linewidth=1.5))
        return "box"
    raise TypeError(f"prompt: expected a Mask, Points, Box or Scribble, got {type(prompt).__name__}")


def plot_segmentation(
    references: Sequence[np.ndarray],
    prompts: Sequence[Any],
    targets: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    target_names: Sequence[str] | None = None,
    max_targets: int = 4,
    axes: Any = None,
) -> np.ndarray:
    """Top row: each reference (``HxWx3``) with its prompt in orange; bottom row: the first
    ``max_targets`` targets with their predicted masks (``HxW`` bool) outlined in blue (or, on a
    blue-ish object, in the tint :func:`~sansa_probe.io.masks.contrasting_tint` picks, as the
    overlays) and the covered share of the image in %. A legend names the outlines, inside the
    figure whatever its width. Returns the Axes ``[2, cols]``."""
    if len(references) != len(prompts):
        raise ValueError(f"prompts: expected one per reference ({len(references)}), got {len(prompts)}")
    if len(targets) != len(masks):
        raise ValueError(f"masks: expected one per target ({len(targets)}), got {len(masks)}")
    if not references:
        raise ValueError("references: at least one reference is needed")
    shown = min(len(targets), max_targets)
    cols = max(len(references), shown, 1)
    if axes is None:
        figure = Figure(figsize=(max(2.6 * cols, 4.0), 5.6), layout="constrained")  # 4 inches hold the legend
        grid = np.asarray(figure.subplots(2, cols, squeeze=False), dtype=object)
    else:
        grid = np.asarray(axes, dtype=object).reshape(2, -1)
        if grid.shape[1] < cols:
            raise ValueError(f"axes: expected at least 2 x {cols} Axes, got {grid.shape}")
    for ax in grid.reshape(-1):
        ax.set_axis_off()
    for k, (image, prompt) in enumerate(zip(references, prompts)):
        ax = grid[0, k]
        ax.imshow(np.asarray(image))
        kind = _draw_prompt(ax, prompt)
        ax.set_title(f"reference {k + 1} ({kind})", fontsize="small")
    names = list(target_names) if target_names is not None else [f"target {i + 1}" for i in range(len(targets))]
    used: list[tuple[int, int, int]] = []
    for i in range(shown):
        ax = grid[1, i]
        mask = np.asarray(masks[i], dtype=bool)
        tint = contrasting_tint(np.asarray(targets[i]), mask)
        used += [tint] if tint not in used else []
        ax.imshow(np.asarray(targets[i]))
        _outline(ax, mask, "#%02x%02x%02x" % tint, fill=0.3)
        ax.set_title(f"{names[i]}: mask {100.0 * mask.mean():.1f}% of image", fontsize="small")
    handles = [Line2D([], [], color=PROMPT_COLOUR, linewidth=2, label="reference prompt")]
    for tint in used or [MASK_TINTS[0]]:
        label = "predicted mask" if len(used) <= 1 else f"predicted mask ({_TINT_NAMES.get(tint, 'other')})"
        handles.append(Line2D([], [], color="#%02x%02x%02x" % tint, linewidth=2, label=label))
    figure = grid[0, 0].figure
    constrained = type(figure.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
    figure.legend(handles=handles, loc="outside upper center" if constrained else "upper center", ncols=min(len(handles), 3),
                  fontsize="small", frameon=False)
    return grid
