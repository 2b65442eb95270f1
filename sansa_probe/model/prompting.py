"""Turn a reference prompt (image pixel coordinates) into sam2's inputs at the model size.

* a mask becomes ``mask_inputs`` ``(1, 1, S, S)``, resized as sam2's video predictor does
  (bilinear with antialias, then ``>= 0.5``);
* points become ``point_inputs`` ``{"point_coords": (1, N, 2), "point_labels": (1, N)}``
  scaled from ``(W, H)`` to ``(S, S)``;
* a box becomes its two corners with sam2's labels 2 and 3;
* a scribble becomes positive clicks on its stroke pixels (as the public SANSA release
  does), taken on the ``S x S`` grid and thinned to at most ``max_scribble_points``
  evenly spaced pixels so that long strokes stay tractable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sansa_probe.prompts.types import Box, Mask, Points, Prompt, Scribble

__all__ = ["PromptInputs", "prompt_to_inputs", "points_to_inputs", "DEFAULT_MAX_SCRIBBLE_POINTS"]

DEFAULT_MAX_SCRIBBLE_POINTS = 1024


@dataclass
class PromptInputs:
    """sam2-ready prompt of one frame: exactly one of ``mask_inputs`` / ``point_inputs`` is set."""

    kind: str
    mask_inputs: torch.Tensor | None = None
    point_inputs: dict[str, torch.Tensor] | None = None

    def to(self, device: torch.device | str) -> "PromptInputs":
        mask = None if self.mask_inputs is None else self.mask_inputs.to(device)
        points = None if self.point_inputs is None else {k: v.to(device) for k, v in self.point_inputs.items()}
        return PromptInputs(kind=self.kind, mask_inputs=mask, point_inputs=points)


def _mask_inputs(mask: np.ndarray, image_size: int) -> torch.Tensor:
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]  # (1, 1, H, W)
    if tensor.shape[-2:] != (image_size, image_size):
        tensor = F.interpolate(tensor, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
        tensor = (tensor >= 0.5).float()
    return tensor


def points_to_inputs(coords: np.ndarray, labels: np.ndarray, *, height: int, width: int, image_size: int) -> dict[str, torch.Tensor]:
    """(N, 2) pixel (x, y) + (N,) labels of an ``height x width`` image -> sam2 ``point_inputs`` at ``image_size``."""
    scale = np.array([image_size / width, image_size / height], dtype=np.float64)
    scaled = torch.from_numpy((np.asarray(coords, dtype=np.float64) * scale).astype(np.float32))[None]
    return {"point_coords": scaled, "point_labels": torch.from_numpy(np.asarray(labels, dtype=np.int32))[None]}


def _scribble_points(mask: np.ndarray, image_size: int, max_points: int | None) -> tuple[np.ndarray, np.ndarray]:
    grid = F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None], size=(image_size, image_size), mode="nearest")[0, 0]
    rows, cols = np.nonzero(grid.numpy() > 0.5)
    if rows.size == 0:  # a stroke thinner than one model pixel: keep its original pixels
        rows, cols = np.nonzero(mask)
        rows = (rows + 0.5) * image_size / mask.shape[0]
        cols = (cols + 0.5) * image_size / mask.shape[1]
    if max_points is not None and rows.size > max_points:
        keep = np.linspace(0, rows.size - 1, max_points).round().astype(np.int64)
        rows, cols = rows[keep], cols[keep]
    coords = np.stack([cols, rows], axis=1).astype(np.float64)
    return coords, np.ones(len(coords), dtype=np.int64)


def prompt_to_inputs(
    prompt: Prompt,
    *,
    height: int,
    width: int,
    image_size: int,
    max_scribble_points: int | None = DEFAULT_MAX_SCRIBBLE_POINTS,
) -> PromptInputs:
    """Convert a validated prompt of an ``height x width`` image into sam2 inputs at ``image_size``."""
    if isinstance(prompt, Mask):
        return PromptInputs(kind="mask", mask_inputs=_mask_inputs(prompt.mask, image_size))
    if isinstance(prompt, Points):
        return PromptInputs(
            kind="point",
            point_inputs=points_to_inputs(prompt.coords, prompt.labels, height=height, width=width, image_size=image_size),
        )
    if isinstance(prompt, Box):
        x0, y0, x1, y1 = prompt.xyxy
        corners = np.array([[x0, y0], [x1, y1]], dtype=np.float64)
        return PromptInputs(
            kind="box",
            point_inputs=points_to_inputs(corners, np.array([2, 3]), height=height, width=width, image_size=image_size),
        )
    if isinstance(prompt, Scribble):
        coords, labels = _scribble_points(prompt.mask, image_size, max_scribble_points)
        inputs = {
            "point_coords": torch.from_numpy(coords.astype(np.float32))[None],
            "point_labels": torch.from_numpy(labels.astype(np.int32))[None],
        }
        return PromptInputs(kind="scribble", point_inputs=inputs)
    raise ValueError(f"unsupported prompt type {type(prompt).__name__}; expected Mask, Points, Box or Scribble")
