"""The 5 texture families: a mixing weight between an instance's two colours at canonical points."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sansa_probe.data.synthetic.classes import TEXTURES

__all__ = ["texture_params", "texture_weight", "contrasting_colors"]


def texture_params(texture: str, rng: np.random.Generator) -> dict[str, Any]:
    angle = rng.uniform(0, np.pi)
    if texture == "striped":
        return {"angle": angle, "period": rng.uniform(0.3, 0.45), "phase": rng.uniform(0, 1)}
    if texture == "checkered":
        return {"angle": angle, "cell": rng.uniform(0.24, 0.36), "offset": rng.uniform(0, 1, 2)}
    if texture == "dotted":
        return {
            "angle": angle,
            "period": rng.uniform(0.32, 0.45),
            "dot": rng.uniform(0.26, 0.34),
            "offset": rng.uniform(0, 1, 2),
        }
    if texture == "speckled":
        directions = rng.uniform(0, 2 * np.pi, 7)
        freqs = 2 * np.pi * rng.uniform(1.6, 2.8, 7)
        phases = rng.uniform(0, 2 * np.pi, 7)
        return {"waves": np.stack([freqs * np.cos(directions), freqs * np.sin(directions), phases], axis=1)}
    return {"angle": rng.uniform(0, 2 * np.pi)}  # shaded


def texture_weight(texture: str, u: np.ndarray, v: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """Mixing weight in ``[0, 1]`` between the two texture colours at canonical points ``(u, v)``."""
    if texture == "speckled":
        waves = p["waves"]
        total = sum(np.sin(w[0] * u + w[1] * v + w[2]) for w in waves)
        return (total > 0).astype(np.float64)
    c, s = math.cos(p["angle"]), math.sin(p["angle"])
    a, b = c * u + s * v, -s * u + c * v
    if texture == "striped":
        return (np.mod(a / p["period"] + p["phase"], 1.0) < 0.5).astype(np.float64)
    if texture == "checkered":
        i = np.floor(a / p["cell"] + p["offset"][0]) + np.floor(b / p["cell"] + p["offset"][1])
        return np.mod(i, 2).astype(np.float64)
    if texture == "dotted":
        fa = np.mod(a / p["period"] + p["offset"][0], 1.0) - 0.5
        fb = np.mod(b / p["period"] + p["offset"][1], 1.0) - 0.5
        return (np.hypot(fa, fb) <= p["dot"]).astype(np.float64)
    if texture == "shaded":
        return np.clip(0.5 + 0.6 * a, 0.0, 1.0)
    raise ValueError(f"texture: expected one of {', '.join(TEXTURES)}, got {texture!r}")  # pragma: no cover


def contrasting_colors(rng: np.random.Generator) -> np.ndarray:
    """Two random RGB colours at least 130 apart (``(2, 3)`` float)."""
    first = rng.uniform(0, 255, 3)
    for _ in range(32):
        second = rng.uniform(0, 255, 3)
        if np.linalg.norm(first - second) >= 130:
            return np.stack([first, second])
    return np.stack([first, 255.0 - first])
