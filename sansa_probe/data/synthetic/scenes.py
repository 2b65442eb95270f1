"""Scenes: a cluttered background, objects placed apart from each other, painted in order.

:func:`clutter_background` (gradient, low-frequency noise, stray lines, arcs, translucent
blotches that belong to no class), :func:`place` (a free spot inside the image),
:func:`random_scene` (benchmark v1: 1-3 instances of a class and 1-3 distractors, half of them
hard negatives sharing its shape or texture), :func:`crowded_scene` (benchmark v2: 1-2 instances
among 3-5 distractors, every object painted in a pair of a small shared palette, so that colour
says nothing about class and often points to a distractor), :func:`compose` (paint, occlude, add
pixel noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw

from sansa_probe.data.synthetic.classes import class_shape_texture
from sansa_probe.data.synthetic.objects import ObjectSpec, random_object, render_object
from sansa_probe.data.synthetic.textures import contrasting_colors

PALETTE_SIZE = 6
PALETTE: tuple[np.ndarray, ...] = tuple(contrasting_colors(np.random.default_rng([20261206, k])) for k in range(PALETTE_SIZE))
"""The colour pairs of benchmark v2 (fixed: a pure function of this module)."""

__all__ = ["clutter_background", "place", "random_scene", "crowded_scene", "PALETTE", "compose"]


def _smooth_upsampling(n: int, size: int) -> np.ndarray:
    """``(size, n)`` weights that interpolate ``n`` samples to ``size`` pixels (smoothstep blend)."""
    x = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    left = np.minimum(np.floor(x).astype(int), n - 2)
    f = x - left
    f = f * f * (3 - 2 * f)
    weights = np.zeros((size, n))
    weights[np.arange(size), left] = 1 - f
    weights[np.arange(size), left + 1] = f
    return weights


def clutter_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size x size x 3`` float clutter: muted gradient, low-frequency noise, lines, arcs, blotches."""
    grey = rng.uniform(60, 200)
    colors = 0.5 * rng.uniform(0, 255, (2, 3)) + 0.5 * grey
    grid = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        t = np.clip(0.5 + (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle), 0, 1)
    else:
        center = rng.uniform(0.2, 0.8, 2)
        t = np.clip(np.hypot(xx - center[0], yy - center[1]) / 0.8, 0, 1)
    image = colors[0] * (1 - t[..., None]) + colors[1] * t[..., None]
    coarse = rng.uniform(-28, 28, (5, 5, 3))
    weights = _smooth_upsampling(5, size)
    image += np.einsum("ya,abc,xb->yxc", weights, coarse, weights, optimize=True)

    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).convert("RGBA")
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(int(rng.integers(4, 11))):
        color = tuple(int(x) for x in rng.uniform(0, 255, 3)) + (int(rng.uniform(70, 170)),)
        kind = rng.integers(3)
        width = max(1, int(round(rng.uniform(0.004, 0.014) * size)))
        if kind == 0:  # a stray polyline
            points = rng.uniform(0, 1, (int(rng.integers(2, 5)), 2)) * size
            draw.line([tuple(p) for p in points], fill=color, width=width)
        elif kind == 1:  # an arc
            c, r = rng.uniform(0, 1, 2) * size, rng.uniform(0.05, 0.25) * size
            start = rng.uniform(0, 360)
            end = start + rng.uniform(40, 200)
            draw.arc((c[0] - r, c[1] - r, c[0] + r, c[1] + r), start, end, fill=color, width=width)
        else:  # a translucent irregular blotch
            c, r = rng.uniform(0, 1, 2) * size, rng.uniform(0.03, 0.1) * size
            n = int(rng.integers(5, 9))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = r * rng.uniform(0.4, 1.0, n)
            draw.polygon([(c[0] + a * math.cos(t), c[1] + a * math.sin(t)) for t, a in zip(angles, radii)], fill=color)
    canvas = Image.alpha_composite(canvas, overlay).convert("RGB")
    return np.asarray(canvas, dtype=np.float64)


def place(
    objects: list[ObjectSpec], candidate: ObjectSpec, rng: np.random.Generator, *, attempts: int = 60
) -> ObjectSpec | None:
    """``candidate`` moved to a random centre that keeps it inside the image and apart from ``objects``."""
    for _ in range(attempts):
        margin = candidate.extent()
        if margin >= 0.5:
            return None
        center = rng.uniform(margin, 1 - margin, 2)
        placed = replace(candidate, center=(float(center[0]), float(center[1])))
        if all(
            math.dist(placed.center, other.center) >= 0.8 * (placed.extent() + other.extent()) for other in objects
        ):
            return placed
    return None


def random_scene(rng: np.random.Generator, *, primary: int, pool: list[int]) -> list[ObjectSpec]:
    """1-3 instances of ``primary`` and 1-3 distractors from ``pool``, placed, in paint order."""
    n_primary = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    n_distractors = int(rng.integers(1, 4))
    return _fill_scene(rng, primary, pool, n_primary, n_distractors, max_radius=0.13)


def crowded_scene(rng: np.random.Generator, *, primary: int, pool: list[int]) -> list[ObjectSpec]:
    """Benchmark v2: 1-2 instances of ``primary`` (70 % / 30 %) among 3-5 distractors from ``pool``
    (half of them, when possible, hard negatives sharing its shape or texture), radius 0.07-0.11
    of the side, each painted in a random pair of :data:`PALETTE` (either order), placed, in
    paint order. "Every object" then scores low, and so does following colour."""
    n_primary = int(rng.choice([1, 2], p=[0.7, 0.3]))
    n_distractors = int(rng.integers(3, 6))
    return _fill_scene(rng, primary, pool, n_primary, n_distractors, max_radius=0.11, paint=_palette_pair)


def _palette_pair(spec: ObjectSpec, rng: np.random.Generator) -> ObjectSpec:
    pair = PALETTE[int(rng.integers(PALETTE_SIZE))]
    return replace(spec, colors=(pair if rng.random() < 0.5 else pair[::-1]).copy())


def _fill_scene(
    rng: np.random.Generator,
    primary: int,
    pool: list[int],
    n_primary: int,
    n_distractors: int,
    *,
    max_radius: float,
    paint: Callable[[ObjectSpec, np.random.Generator], ObjectSpec] | None = None,
) -> list[ObjectSpec]:
    """``n_primary`` instances of ``primary`` then ``n_distractors`` of ``pool`` (half of them, when
    possible, hard negatives sharing its shape or texture), radius drawn in [0.07, max_radius) and
    shrunk until the object fits, ``paint`` applied to each candidate; returned in a random paint
    order. The draws happen in one fixed order, so a seed gives the same scene every time."""
    shape, texture = class_shape_texture(primary)
    others = [c for c in pool if c != primary]
    hard = [c for c in others if set(class_shape_texture(c)) & {shape, texture}]
    placed: list[ObjectSpec] = []
    for i in range(n_primary + n_distractors):
        class_id = primary if i < n_primary else int(rng.choice(hard if hard and rng.random() < 0.5 else others))
        radius = rng.uniform(0.07, max_radius)
        spec = None
        while spec is None and radius > 0.03:
            candidate = random_object(class_id, rng, radius=radius)
            spec = place(placed, paint(candidate, rng) if paint else candidate, rng)
            radius *= 0.85
        if spec is not None:
            placed.append(spec)
    order = rng.permutation(len(placed))
    return [placed[i] for i in order]


def compose(
    background: np.ndarray, objects: list[ObjectSpec], size: int, noise: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Paint ``objects`` in order on ``background``: the uint8 image and each object's visible mask."""
    image = background.copy()
    masks = []
    for spec in objects:
        (y0, x0), mask, rgb = render_object(spec, size)
        h, w = mask.shape
        window = image[y0 : y0 + h, x0 : x0 + w]
        window[mask] = rgb[mask]
        full = np.zeros((size, size), dtype=bool)
        full[y0 : y0 + h, x0 : x0 + w] = mask
        for earlier in masks:
            earlier &= ~full
        masks.append(full)
    image += noise.normal(0.0, noise.uniform(2.0, 6.0), image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), masks
