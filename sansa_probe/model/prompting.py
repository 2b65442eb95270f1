"""Turn a reference prompt (image pixel coordinates) into sam2's inputs at the model size.

* a mask becomes ``mask_inputs`` ``(1, 1, S, S)``, resized as sam2's video predictor does
  (bilinear with antialias, then ``>= 0.5``);
* points become ``point_inputs`` ``{"point_coords": (1, N, 2), "point_labels": (1, N)}``
  scaled from ``(W, H)`` to ``(S, S)``;
* a box becomes its two corners with sam2's labels 2 and 3;
* a scribble becomes one positive click on every stroke pixel, its (x, y) pixel index scaled to
  ``S x S`` (as the public SANSA release does); the model's ``scribble="thinned"`` option keeps at
  most :data:`DEFAULT_MAX_SCRIBBLE_POINTS` evenly spaced ones (:func:`thin_points`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sansa_probe.prompts.types import Box, Mask, Points, Prompt, Scribble

__all__ = ["PromptInputs", "prompt_to_inputs", "points_to_inputs", "thin_points", "DEFAULT_MAX_SCRIBBLE_POINTS"]

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


def thin_points(point_inputs: dict[str, torch.Tensor], max_points: int) -> dict[str, torch.Tensor]:
    """At most ``max_points`` evenly spaced clicks of ``point_inputs`` (``(B, N, 2)`` / ``(B, N)``), in order."""
    count = point_inputs["point_coords"].shape[1]
    if count <= max_points:
        return point_inputs
    keep = torch.from_numpy(np.linspace(0, count - 1, max_points).round().astype(np.int64)).to(point_inputs["point_coords"].device)
    return {"point_coords": point_inputs["point_coords"][:, keep], "point_labels": point_inputs["point_labels"][:, keep]}


def prompt_to_inputs(
    prompt: Prompt,
    *,
    height: int,
    width: int,
    image_size: int,
    max_scribble_points: int | None = None,
) -> PromptInputs:
    """Convert a validated prompt of an ``height x width`` image into sam2 inputs at ``image_size``.

    ``max_scribble_points``: thin a scribble here already (default: every stroke pixel; the model
    thins it when built with ``scribble="thinned"``).
    """
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
        rows, cols = np.nonzero(prompt.mask)  # row-major, as the release's torch.nonzero
        coords = np.stack([cols, rows], axis=1)
        inputs = points_to_inputs(coords, np.ones(len(coords), dtype=np.int64), height=height, width=width, image_size=image_size)
        if max_scribble_points is not None:
            inputs = thin_points(inputs, max_scribble_points)
        return PromptInputs(kind="scribble", point_inputs=inputs)
    raise ValueError(f"unsupported prompt type {type(prompt).__name__}; expected Mask, Points, Box or Scribble")
