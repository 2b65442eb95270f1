"""Prompt types that annotate a reference image (paper eq. 1, appendix E.3).

Every prompt lives in the pixel coordinates of the image it annotates:

* :class:`Mask`     -- ``HxW`` boolean mask of the object.
* :class:`Points`   -- ``(N, 2)`` clicks as ``(x, y) = (column, row)`` with labels
  ``1`` (positive) / ``0`` (negative), SAM's convention (the prompt encoder adds
  0.5 to reach the pixel centre).
* :class:`Box`      -- ``(x0, y0, x1, y1)`` in continuous pixel coordinates: the box
  of the pixels ``x0 <= col < x1``, ``y0 <= row < y1``.
* :class:`Scribble` -- ``HxW`` boolean mask of free-form strokes drawn on the object.

``validate(height, width, name=...)`` checks a prompt against its image and raises a
``ValueError`` that names the argument and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from sansa_probe.io.masks import as_bool_mask

__all__ = ["Mask", "Points", "Box", "Scribble", "Prompt", "as_prompt", "as_bool_mask"]


def _check_size(mask: np.ndarray, height: int, width: int, name: str) -> None:
    if mask.shape != (height, width):
        raise ValueError(
            f"{name}: mask of size {mask.shape[0]}x{mask.shape[1]} (HxW) does not match "
            f"its image of size {height}x{width}"
        )


@dataclass(frozen=True, eq=False)
class Mask:
    """A dense object mask; ``mask`` is ``HxW`` (bool or 0/1 or 0/255)."""

    mask: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", as_bool_mask(self.mask, name="Mask.mask"))

    def validate(self, height: int, width: int, *, name: str = "mask", allow_empty: bool = False) -> None:
        _check_size(self.mask, height, width, name)
        if not allow_empty and not self.mask.any():
            raise ValueError(f"{name}: the reference mask is empty (no foreground pixel)")


@dataclass(frozen=True, eq=False)
class Points:
    """Clicks: ``coords`` ``(N, 2)`` as (x, y) pixels, ``labels`` ``(N,)``: 1 positive, 0 negative."""

    coords: np.ndarray
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        coords = np.asarray(self.coords, dtype=np.float64)
        if coords.ndim == 1 and coords.size == 2:
            coords = coords[None]
        if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] == 0:
            raise ValueError(f"Points.coords: expected an (N, 2) array of (x, y) with N >= 1, got shape {coords.shape}")
        labels = np.ones(len(coords), dtype=np.int64) if self.labels is None else np.asarray(self.labels)
        if labels.shape != (len(coords),):
            raise ValueError(f"Points.labels: expected shape ({len(coords)},), got {labels.shape}")
        if not np.all(np.isin(labels, (0, 1))):
            raise ValueError(f"Points.labels: expected 1 (positive) or 0 (negative), got {np.unique(labels).tolist()}")
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "labels", labels.astype(np.int64))

    def validate(self, height: int, width: int, *, name: str = "points", require_positive: bool = True) -> None:
        x, y = self.coords[:, 0], self.coords[:, 1]
        outside = (x < 0) | (x >= width) | (y < 0) | (y >= height) | ~np.isfinite(x) | ~np.isfinite(y)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"{name}: point {i} at (x={x[i]:g}, y={y[i]:g}) lies outside the image "
                f"(expected 0 <= x < {width}, 0 <= y < {height})"
            )
        if require_positive and not (self.labels == 1).any():
            raise ValueError(f"{name}: at least one positive point (label 1) is needed to annotate a reference")


@dataclass(frozen=True, eq=False)
class Box:
    """An axis-aligned box ``(x0, y0, x1, y1)`` in pixels, ``x0 < x1`` and ``y0 < y1``."""

    xyxy: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float64).reshape(-1)
        if xyxy.shape != (4,):
            raise ValueError(f"Box.xyxy: expected 4 numbers (x0, y0, x1, y1), got {xyxy.size}")
        object.__setattr__(self, "xyxy", tuple(float(v) for v in xyxy))

    def validate(self, height: int, width: int, *, name: str = "box") -> None:
        x0, y0, x1, y1 = self.xyxy
        if not all(np.isfinite(self.xyxy)):
            raise ValueError(f"{name}: box {self.xyxy} has a non-finite coordinate")
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"{name}: box {self.xyxy} must satisfy x0 < x1 and y0 < y1")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(
                f"{name}: box {self.xyxy} lies outside the image (expected within 0..{width} x 0..{height})"
            )


@dataclass(frozen=True, eq=False)
class Scribble:
    """Free-form strokes drawn on the object, rasterised as an ``HxW`` mask."""

    mask: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", as_bool_mask(self.mask, name="Scribble.mask"))

    def validate(self, height: int, width: int, *, name: str = "scribble") -> None:
        _check_size(self.mask, height, width, name)
        if not self.mask.any():
            raise ValueError(f"{name}: the scribble has no stroke pixel")


Prompt = Union[Mask, Points, Box, Scribble]


def as_prompt(value, *, name: str = "prompt") -> Prompt:
    """A prompt object as is; a bare ``HxW`` boolean or 0/1 (or 0/255) array becomes a :class:`Mask`."""
    if isinstance(value, (Mask, Points, Box, Scribble)):
        return value
    if value is None:
        raise ValueError(f"{name}: missing prompt (expected Mask, Points, Box, Scribble or an HxW mask array)")
    try:
        return Mask(as_bool_mask(value, name=name))
    except ValueError:
        raise
    except Exception as exc:  # pragma: no cover - defensive: exotic objects
        raise ValueError(
            f"{name}: expected Mask, Points, Box, Scribble or an HxW mask array, got {type(value).__name__}"
        ) from exc
