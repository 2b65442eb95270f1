"""The 16 shape families: membership of canonical points in a shape inside the unit disk.

A shape is drawn in canonical coordinates ``(u, v)`` (the unit disk, before the instance's
rotation, aspect and elastic warp); :func:`shape_params` draws one instance's proportions,
:func:`inside_shape` says which points belong to it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sansa_probe.data.synthetic.classes import SHAPES

__all__ = ["shape_params", "inside_shape"]


def _polygon_inside(u: np.ndarray, v: np.ndarray, angles: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Inside a polygon that is star-shaped around the origin, vertices sorted by angle."""
    rho = np.hypot(u, v)
    theta = np.mod(np.arctan2(v, u) - angles[0], 2 * np.pi)
    rel = np.mod(angles - angles[0], 2 * np.pi)
    k = np.searchsorted(rel, theta, side="right") - 1
    k2 = (k + 1) % len(angles)
    px, py = radii * np.cos(angles), radii * np.sin(angles)
    ax, ay, bx, by = px[k], py[k], px[k2], py[k2]
    dx, dy = np.cos(theta + angles[0]), np.sin(theta + angles[0])
    denom = dx * (by - ay) - dy * (bx - ax)
    boundary = (ax * by - ay * bx) / np.where(np.abs(denom) < 1e-12, 1e-12, denom)
    return rho <= boundary


def _regular(n: int, offset: float = -np.pi / 2) -> tuple[np.ndarray, np.ndarray]:
    return offset + 2 * np.pi * np.arange(n) / n, np.ones(n)


def shape_params(shape: str, rng: np.random.Generator) -> dict[str, Any]:
    """Per-instance variation of a shape family (proportions, never the family's identity)."""
    if shape == "star":
        return {"points": 5, "inner": rng.uniform(0.38, 0.5)}
    if shape == "ring":
        return {"inner": rng.uniform(0.5, 0.65)}
    if shape == "cross":
        return {"half_width": rng.uniform(0.24, 0.33)}
    if shape == "crescent":
        return {"offset": rng.uniform(0.35, 0.5), "bite": rng.uniform(0.75, 0.9)}
    if shape == "arrow":
        return {"shaft": rng.uniform(0.16, 0.24), "head": rng.uniform(0.55, 0.68)}
    if shape == "blob":
        return {"harmonics": np.stack([rng.uniform(0.06, 0.13, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1)}
    if shape == "gear":
        return {"teeth": int(rng.integers(8, 11)), "valley": rng.uniform(0.7, 0.8)}
    if shape == "bowtie":
        return {"slope": rng.uniform(0.6, 0.85)}
    if shape == "ell":
        return {"arm": rng.uniform(0.28, 0.38)}
    if shape == "trefoil":
        return {"lobe": rng.uniform(0.4, 0.47)}
    if shape == "frame":
        return {"inner": rng.uniform(0.5, 0.65)}
    return {}


def inside_shape(shape: str, u: np.ndarray, v: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """Membership of canonical points ``(u, v)`` (arrays of one shape) in a shape within the unit disk."""
    rho = np.hypot(u, v)
    if shape == "star":
        n = p["points"]
        angles = -np.pi / 2 + np.pi * np.arange(2 * n) / n
        return _polygon_inside(u, v, angles, np.where(np.arange(2 * n) % 2 == 0, 1.0, p["inner"]))
    if shape == "ring":
        return (rho <= 1.0) & (rho >= p["inner"])
    if shape == "cross":
        w, arm = p["half_width"], 0.92
        return ((np.abs(u) <= w) & (np.abs(v) <= arm)) | ((np.abs(v) <= w) & (np.abs(u) <= arm))
    if shape == "heart":
        x, y = 1.25 * u, 0.12 - 1.25 * v
        return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0
    if shape == "crescent":
        return (rho <= 1.0) & (np.hypot(u - p["offset"], v) > p["bite"])
    if shape == "arrow":
        shaft = (u >= -0.95) & (u <= 0.2) & (np.abs(v) <= p["shaft"])
        head = (u >= 0.05) & (u <= 1.0) & (np.abs(v) <= p["head"] * (1.0 - u) / 0.95)
        return shaft | head
    if shape in ("triangle", "square", "hexagon"):
        return _polygon_inside(u, v, *_regular({"triangle": 3, "square": 4, "hexagon": 6}[shape]))
    if shape == "blob":
        theta = np.arctan2(v, u)
        h = p["harmonics"]
        radius = 0.8 + sum(h[i, 0] * np.cos((i + 2) * theta + h[i, 1]) for i in range(len(h)))
        return rho <= radius / (0.8 + h[:, 0].sum())
    if shape == "disk":
        return rho <= 1.0
    if shape == "gear":
        n, step = p["teeth"], 2 * np.pi / p["teeth"]
        fractions = np.array([0.05, 0.2, 0.45, 0.6])
        angles = (np.arange(n)[:, None] * step + fractions[None] * step).ravel()
        radii = np.tile([p["valley"], 1.0, 1.0, p["valley"]], n)
        return _polygon_inside(u, v, angles, radii)
    if shape == "bowtie":
        length = 1.0 / math.sqrt(1.0 + p["slope"] ** 2)
        return (np.abs(u) <= length) & (np.abs(v) <= p["slope"] * np.abs(u))
    if shape == "ell":
        a, w = 0.7, 2 * 0.7 * p["arm"]
        box = (np.abs(u) <= a) & (np.abs(v) <= a)
        return box & ((u <= -a + w) | (v >= a - w))
    if shape == "trefoil":
        r = p["lobe"]
        centers = [(0.53 * math.cos(t), 0.53 * math.sin(t)) for t in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6)]
        lobes = [np.hypot(u - cu, v - cv) <= r for cu, cv in centers]
        return lobes[0] | lobes[1] | lobes[2] | (rho <= r)
    if shape == "frame":
        m = np.maximum(np.abs(u), np.abs(v))
        return (m <= 0.7) & (m >= 0.7 * p["inner"])
    raise ValueError(f"shape: expected one of {', '.join(SHAPES)}, got {shape!r}")  # pragma: no cover
