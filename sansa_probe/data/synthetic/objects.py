"""One object instance: its random appearance (:func:`random_object`) and its rasterisation
(:func:`render_object`), in coordinates relative to the image side."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sansa_probe.data.synthetic.classes import class_shape_texture
from sansa_probe.data.synthetic.shapes import inside_shape, shape_params
from sansa_probe.data.synthetic.textures import contrasting_colors, texture_params, texture_weight

__all__ = ["ObjectSpec", "random_object", "render_object"]


@dataclass(frozen=True, eq=False)
class ObjectSpec:
    """One instance in relative image coordinates (the image side is 1).

    ``warp``: ``(2, J, 4)`` rows ``(omega_u, omega_v, phase, amplitude)`` of the sinusoids that
    displace ``u`` (row 0) and ``v`` (row 1); ``colors``: ``(2, 3)`` float RGB of the texture.
    """

    class_id: int
    shape: str
    texture: str
    center: tuple[float, float]  # (x, y)
    radius: float
    aspect: float
    rotation: float
    warp: np.ndarray
    shape_params: dict[str, Any]
    texture_params: dict[str, Any]
    colors: np.ndarray
    brightness: float
    light: tuple[float, float]  # lighting gradient (along u, along v) in canonical units

    def extent(self) -> float:
        """Half-size of a box that contains the object, relative to the image side."""
        stretch = max(math.sqrt(self.aspect), 1.0 / math.sqrt(self.aspect))
        return self.radius * stretch * (1.0 + math.sqrt(2.0) * float(np.abs(self.warp[..., 3]).sum(axis=1).max()))


def random_object(class_id: int, rng: np.random.Generator, *, radius: float) -> ObjectSpec:
    """An instance of ``class_id`` with random appearance, centred at (0.5, 0.5) until placed."""
    shape, texture = class_shape_texture(class_id)
    n_waves = 3
    directions = rng.uniform(0, 2 * np.pi, (2, n_waves))
    freqs = 2 * np.pi * rng.uniform(0.3, 0.8, (2, n_waves))
    amplitude = rng.uniform(0.03, 0.11)
    amplitudes = amplitude * rng.dirichlet(np.ones(n_waves), size=2)
    phases = rng.uniform(0, 2 * np.pi, (2, n_waves))
    warp = np.stack([freqs * np.cos(directions), freqs * np.sin(directions), phases, amplitudes], axis=-1)
    light_angle = rng.uniform(0, 2 * np.pi)
    light_strength = rng.uniform(0.0, 0.18)
    return ObjectSpec(
        class_id=class_id,
        shape=shape,
        texture=texture,
        center=(0.5, 0.5),
        radius=radius,
        aspect=float(np.exp(rng.uniform(-0.3, 0.3))),
        rotation=rng.uniform(0, 2 * np.pi),
        warp=warp,
        shape_params=shape_params(shape, rng),
        texture_params=texture_params(texture, rng),
        colors=contrasting_colors(rng),
        brightness=rng.uniform(0.8, 1.12),
        light=(light_strength * math.cos(light_angle), light_strength * math.sin(light_angle)),
    )


def render_object(spec: ObjectSpec, size: int) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Rasterise one object: ``((y0, x0), mask hxw bool, rgb hxwx3 float)`` of its window."""
    radius = spec.radius * size
    half = spec.extent() * size + 2
    cx, cy = spec.center[0] * size, spec.center[1] * size
    x0, x1 = max(0, int(cx - half)), min(size, int(math.ceil(cx + half)) + 1)
    y0, y1 = max(0, int(cy - half)), min(size, int(math.ceil(cy + half)) + 1)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    dx, dy = (xs - cx) / radius, (ys - cy) / radius
    c, s = math.cos(spec.rotation), math.sin(spec.rotation)
    k = math.sqrt(spec.aspect)
    u1, v1 = (c * dx + s * dy) / k, (-s * dx + c * dy) * k
    disp = [sum(w[3] * np.sin(w[0] * u1 + w[1] * v1 + w[2]) for w in spec.warp[axis]) for axis in range(2)]
    u, v = u1 + disp[0], v1 + disp[1]
    mask = inside_shape(spec.shape, u, v, spec.shape_params)
    weight = texture_weight(spec.texture, u, v, spec.texture_params)[..., None]
    rgb = spec.colors[0] * (1.0 - weight) + spec.colors[1] * weight
    shade = spec.brightness * (1.0 + spec.light[0] * u + spec.light[1] * v)
    return (y0, x0), mask, rgb * shade[..., None]
