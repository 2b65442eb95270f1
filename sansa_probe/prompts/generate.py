"""Seeded reference prompts generated from a ground-truth mask (paper appendix E.3).

Following the protocol of VRP-SAM / SEEM that the paper adopts:

* **points**   -- 1 to 20 foreground pixels sampled uniformly without replacement
  (training: the count is drawn in ``1..20``; test: all 20, i.e. ``min(20, area)``).
* **box**      -- the tight box of the largest connected component of the mask
  (8-connectivity), in the :class:`~sansa_probe.prompts.types.Box` convention
  ``x0 = min col, y0 = min row, x1 = max col + 1, y1 = max row + 1``.
* **scribble** -- 1 to 20 free-form strokes in the style of the free-form mask algorithm
  of Yu et al. ("Free-Form Image Inpainting with Gated Convolution", ICCV 2019) as used
  for scribble prompts by SEEM and VRP-SAM: each stroke starts on a random foreground
  pixel and is a random walk whose head has a speed and a heading, both perturbed by a
  bounded random acceleration at every vertex; the polyline is rasterised with a random
  brush width (round joints) and the union of strokes is clipped to the object mask.
  Training draws the stroke count in ``1..20``; test time uses a fixed 20 strokes
  (``min(20, area)``), the same convention as points, so evaluation is reproducible from
  the seed alone.
* **mask**     -- the mask itself.

Every generator takes ``seed`` (an int, or a sequence of ints such as
``(seed, episode, shot)``) and draws only from ``numpy.random.default_rng(seed)``: the
same seed gives the same prompt, and no global random state is touched. Prompts never
leave the object: points lie on foreground pixels, scribble pixels are a subset of the
mask and the box is tight on a connected component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from sansa_probe.prompts.types import Box, Mask, Points, Prompt, Scribble, as_bool_mask

__all__ = [
    "PROMPT_TYPES",
    "MAX_PROMPT_COUNT",
    "StrokePreset",
    "STROKE_PRESETS",
    "sample_points",
    "box_from_mask",
    "sample_scribble",
    "make_prompt",
]

PROMPT_TYPES: tuple[str, ...] = ("mask", "point", "box", "scribble")

MAX_PROMPT_COUNT = 20
"""Upper bound of the number of points / strokes (appendix E.3: "between 1 and 20")."""

Seed = Union[int, Sequence[int]]


@dataclass(frozen=True)
class StrokePreset:
    """Parameters of one family of free-form strokes, in pixels of a ``reference_size`` image.

    ``vertices``: inclusive bounds of the number of polyline vertices after the start;
    ``max_speed``: the largest head step between vertices; ``acceleration``: the largest
    change of (speed, heading in radians) per vertex; ``brush_width``: bounds of the stroke
    width. Lengths are scaled by ``max(H, W) / reference_size`` for the mask at hand.
    """

    name: str
    vertices: tuple[int, int]
    max_speed: float
    acceleration: tuple[float, float]
    brush_width: tuple[float, float]
    reference_size: int = 512


# Two stroke families, picked with equal probability, as in the SEEM scribble sampler that
# VRP-SAM uses: longer curves with wider brushes, and shorter thin ones.
STROKE_PRESETS: tuple[StrokePreset, ...] = (
    StrokePreset(name="curve", vertices=(10, 29), max_speed=20.0, acceleration=(15.0, 0.5), brush_width=(3.0, 10.0)),
    StrokePreset(name="curve_small", vertices=(6, 21), max_speed=12.0, acceleration=(8.0, 0.5), brush_width=(2.5, 5.0)),
)


def _rng(seed: Seed) -> np.random.Generator:
    """A fresh generator from ``seed`` (an int >= 0 or a sequence of ints >= 0)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        values = [seed]
    elif isinstance(seed, (list, tuple)):
        values = list(seed)
    else:
        values = []
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in values):
        raise ValueError(f"seed: expected an int >= 0 or a non-empty sequence of ints >= 0, got {seed!r}")
    return np.random.default_rng([int(v) for v in values])


def _object_mask(mask, *, name: str = "mask") -> np.ndarray:
    """``mask`` as an ``HxW`` bool array with at least one foreground pixel."""
    array = as_bool_mask(mask, name=name)
    if not array.any():
        raise ValueError(f"{name}: the mask is empty (no foreground pixel); a prompt needs an object")
    return array


def _count(value: int | None, *, name: str, rng: np.random.Generator, train: bool) -> int:
    """The requested count: ``value`` if given, else uniform in 1..20 (train) or 20 (test)."""
    if value is None:
        return int(rng.integers(1, MAX_PROMPT_COUNT + 1)) if train else MAX_PROMPT_COUNT
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1 (or None for the protocol's count), got {value!r}")
    return int(value)


def sample_points(mask, *, seed: Seed, n: int | None = None, train: bool = False) -> Points:
    """Positive clicks on distinct foreground pixels, sampled uniformly without replacement.

    Args:
        mask: ``HxW`` object mask (bool, 0/1 or 0/255), at least one foreground pixel.
        seed: int or sequence of ints; the same seed gives the same points.
        n: number of points; ``None`` follows the protocol: uniform in ``1..20`` when
            ``train`` else 20. Capped at the object's area.
        train: training mode (random count) or test mode (fixed count).

    Returns:
        :class:`Points` with ``coords`` ``(N, 2)`` as ``(x, y) = (col, row)`` and labels all 1.
    """
    array = _object_mask(mask)
    rng = _rng(seed)
    count = _count(n, name="n", rng=rng, train=train)
    rows, cols = np.nonzero(array)
    chosen = rng.choice(rows.size, size=min(count, rows.size), replace=False)
    coords = np.stack([cols[chosen], rows[chosen]], axis=1).astype(np.float64)
    return Points(coords=coords, labels=np.ones(len(coords), dtype=np.int64))


def box_from_mask(mask) -> Box:
    """The tight box of the largest 8-connected component of ``mask``.

    Ties between equally large components go to the first one in raster order.

    Args:
        mask: ``HxW`` object mask (bool, 0/1 or 0/255), at least one foreground pixel.

    Returns:
        :class:`Box` ``(x0, y0, x1, y1)`` with ``x0 = min col``, ``y0 = min row``,
        ``x1 = max col + 1``, ``y1 = max row + 1`` of that component.
    """
    array = _object_mask(mask)
    labels, n_components = ndimage.label(array, structure=np.ones((3, 3), dtype=bool))
    if n_components > 1:
        sizes = np.bincount(labels.ravel())[1:]
        array = labels == int(np.argmax(sizes)) + 1
    rows = np.flatnonzero(array.any(axis=1))
    cols = np.flatnonzero(array.any(axis=0))
    return Box(xyxy=(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)))


def _stroke_vertices(start: np.ndarray, preset: StrokePreset, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A random-walk polyline from ``start`` ``(x, y)``: ``(V + 1, 2)`` vertices in pixels.

    The head keeps a speed and a heading; at every vertex both receive a uniform random
    acceleration within ``preset.acceleration``, the speed is clipped to ``[0, max_speed]``.
    """
    low, high = preset.vertices
    n_vertices = int(rng.integers(low, high + 1))
    max_speed = preset.max_speed * scale
    d_speed, d_angle = preset.acceleration[0] * scale, preset.acceleration[1]
    speed = rng.uniform(0.0, max_speed)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    points = np.empty((n_vertices + 1, 2), dtype=np.float64)
    points[0] = start
    for i in range(1, n_vertices + 1):
        speed = float(np.clip(speed + rng.uniform(-d_speed, d_speed), 0.0, max_speed))
        angle += rng.uniform(-d_angle, d_angle)
        points[i] = points[i - 1] + speed * np.array([np.cos(angle), np.sin(angle)])
    return points


def _draw_polyline(canvas: ImageDraw.ImageDraw, points: np.ndarray, width: int) -> None:
    """Rasterise a polyline with round joints (a disk at every vertex) onto an ``L`` canvas."""
    xy = [(float(x), float(y)) for x, y in points]
    if len(xy) > 1:
        canvas.line(xy, fill=255, width=width)
    radius = width / 2.0
    if radius >= 1.0:
        for x, y in xy:
            canvas.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)


def sample_scribble(mask, *, seed: Seed, n_strokes: int | None = None, train: bool = False) -> Scribble:
    """Free-form strokes started on the object and clipped to it.

    Each stroke starts on a distinct foreground pixel (uniform, without replacement), walks
    with a randomly accelerated head (see :data:`STROKE_PRESETS`, one family per call,
    picked with equal probability), is rasterised with a random brush width, and the union
    of strokes is intersected with ``mask``; the start pixels are always kept, so the
    scribble is never empty.

    Args:
        mask: ``HxW`` object mask (bool, 0/1 or 0/255), at least one foreground pixel.
        seed: int or sequence of ints; the same seed gives the same scribble.
        n_strokes: number of strokes; ``None`` follows the protocol: uniform in ``1..20``
            when ``train`` else 20 (test time). Capped at the object's area.
        train: training mode (random count) or test mode (fixed count).

    Returns:
        :class:`Scribble` whose ``HxW`` bool mask is a non-empty subset of ``mask``.
    """
    array = _object_mask(mask)
    rng = _rng(seed)
    count = _count(n_strokes, name="n_strokes", rng=rng, train=train)
    preset = STROKE_PRESETS[int(rng.integers(len(STROKE_PRESETS)))]
    height, width = array.shape
    scale = max(height, width) / preset.reference_size
    rows, cols = np.nonzero(array)
    chosen = rng.choice(rows.size, size=min(count, rows.size), replace=False)

    image = Image.new("L", (width, height), 0)
    canvas = ImageDraw.Draw(image)
    for index in chosen:
        start = np.array([cols[index], rows[index]], dtype=np.float64)
        vertices = _stroke_vertices(start, preset, scale, rng)
        brush = max(1, int(round(rng.uniform(*preset.brush_width) * scale)))
        _draw_polyline(canvas, vertices, brush)
    strokes = np.asarray(image) > 0
    strokes[rows[chosen], cols[chosen]] = True
    return Scribble(mask=strokes & array)


def make_prompt(kind: str, mask, *, seed: Seed, train: bool = False) -> Prompt:
    """The ``kind`` prompt of an object, one of :data:`PROMPT_TYPES`.

    Args:
        kind: ``"mask"``, ``"point"``, ``"box"`` or ``"scribble"``.
        mask: ``HxW`` ground-truth object mask, at least one foreground pixel.
        seed: int or sequence of ints (used by ``"point"`` and ``"scribble"``; validated
            for every kind so that call sites stay uniform).
        train: training mode (random counts in 1..20) or test mode (fixed counts).

    Returns:
        :class:`Mask`, :class:`Points`, :class:`Box` or :class:`Scribble`.
    """
    if kind not in PROMPT_TYPES:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, PROMPT_TYPES))}, got {kind!r}")
    if kind == "point":
        return sample_points(mask, seed=seed, train=train)
    if kind == "scribble":
        return sample_scribble(mask, seed=seed, train=train)
    _rng(seed)  # validate seed for every kind
    if kind == "box":
        return box_from_mask(mask)
    return Mask(mask=_object_mask(mask))
