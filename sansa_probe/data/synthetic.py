"""The procedural few-shot benchmark: shapes x textures, generated on the fly, nothing on disk.

For machines with no datasets. A class is a **(shape, texture)** pair -- e.g. ``"striped-star"``,
``"dotted-ring"`` -- drawn from 16 shape families and 5 texture families (up to 80 classes,
64 by default). Colour never identifies a class: every instance gets random colours, scale,
aspect, rotation, an elastic warp (a smooth random displacement field, applied to shape and
texture together, like a pattern printed on rubber), a brightness and a lighting gradient.
Images hold 1-3 instances of their class plus 1-3 distractors of other classes (half of them,
when possible, share the shape or the texture of the class: hard negatives), on a cluttered
background (a colour gradient, low-frequency noise, stray lines, arcs and translucent blotches
that belong to no class, then pixel noise).

Class ids are ``0 .. n_classes - 1``. The class ``c`` is the pair
``(SHAPES[(c % 16 + c // 16) % 16], TEXTURES[c // 16])``, so each texture block of 16 classes
covers every shape once and every fold. Folds follow COCO-20i's interleaved rule: class ``c``
is a test class of fold ``c % 4``. With 64 classes a fold's 16 novel classes contain every
shape once and every texture four times, and each novel pair is a new combination of a shape
and a texture seen in training (with other partners).

Splits: ``split="train"`` images contain only the fold's training classes (also as
distractors), so novel classes never leak into training; ``"val"`` and ``"test"`` images (two
disjoint image sets) are drawn for the fold's test classes, with distractors of any class.
Each class has ``images_per_class`` images per split, with ids like ``"test-f1-c05-00003"``
(split, fold, class, index); an image is a pure function of ``(seed, split, fold, class,
index, n_classes)`` and ``image_size`` (the layout is drawn in relative coordinates, so the
same id at another size is the same scene, resampled). A small per-source LRU cache keeps the
last rendered images.

Also here: :func:`synthetic_video` (short clips of smoothly moving instances, for the
spatial-coherence probe) and :func:`contact_sheet` (a labelled grid for a visual check).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.registry import DatasetSpec

__all__ = [
    "SHAPES",
    "TEXTURES",
    "MAX_CLASSES",
    "DEFAULT_CLASSES",
    "SPECS",
    "SyntheticSource",
    "build",
    "class_shape_texture",
    "synthetic_class_name",
    "synthetic_fold_classes",
    "synthetic_video",
    "contact_sheet",
]

SHAPES: tuple[str, ...] = (
    "star", "ring", "cross", "heart", "crescent", "arrow", "triangle", "square",
    "hexagon", "blob", "disk", "gear", "bowtie", "ell", "trefoil", "frame",
)  # fmt: skip
TEXTURES: tuple[str, ...] = ("striped", "checkered", "dotted", "speckled", "shaded")
MAX_CLASSES = len(SHAPES) * len(TEXTURES)
DEFAULT_CLASSES = 64
N_FOLDS = 4
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_OPTIONS = ("image_size", "images_per_class", "seed", "n_classes", "cache_size")


# ----------------------------------------------------------------------------- classes and folds


def _check_n_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or not 2 * N_FOLDS <= n_classes <= MAX_CLASSES:
        raise ValueError(f"n_classes: expected an int in {2 * N_FOLDS}..{MAX_CLASSES}, got {n_classes!r}")
    return n_classes


def _check_class(class_id: Any, n_classes: int) -> int:
    if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) or not 0 <= class_id < n_classes:
        raise ValueError(f"class_id: expected an int in 0..{n_classes - 1} (synthetic class ids), got {class_id!r}")
    return int(class_id)


def class_shape_texture(class_id: int) -> tuple[str, str]:
    """The ``(shape, texture)`` pair of a class id in ``0..MAX_CLASSES - 1``."""
    c = _check_class(class_id, MAX_CLASSES)
    return SHAPES[(c % len(SHAPES) + c // len(SHAPES)) % len(SHAPES)], TEXTURES[c // len(SHAPES)]


def synthetic_class_name(class_id: int) -> str:
    """A readable name such as ``"striped-star"``."""
    shape, texture = class_shape_texture(class_id)
    return f"{texture}-{shape}"


def synthetic_fold_classes(fold: int, split: str = "test", *, n_classes: int = DEFAULT_CLASSES) -> list[int]:
    """Sorted class ids of ``fold``: its test classes (``c % 4 == fold``) or, for ``"train"``, the rest."""
    _check_n_classes(n_classes)
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < N_FOLDS:
        raise ValueError(f"fold: expected an int in 0..{N_FOLDS - 1}, got {fold!r}")
    if split not in _SPLIT_CODES:
        raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
    if split == "train":
        return [c for c in range(n_classes) if c % N_FOLDS != fold]
    return [c for c in range(n_classes) if c % N_FOLDS == fold]


# ----------------------------------------------------------------------------- object model


@dataclass(frozen=True, eq=False)
class _ObjectSpec:
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


def _shape_params(shape: str, rng: np.random.Generator) -> dict[str, Any]:
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


def _inside(shape: str, u: np.ndarray, v: np.ndarray, p: dict[str, Any]) -> np.ndarray:
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


def _texture_params(texture: str, rng: np.random.Generator) -> dict[str, Any]:
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


def _texture_weight(texture: str, u: np.ndarray, v: np.ndarray, p: dict[str, Any]) -> np.ndarray:
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


def _contrasting_colors(rng: np.random.Generator) -> np.ndarray:
    """Two random RGB colours at least 130 apart (``(2, 3)`` float)."""
    first = rng.uniform(0, 255, 3)
    for _ in range(32):
        second = rng.uniform(0, 255, 3)
        if np.linalg.norm(first - second) >= 130:
            return np.stack([first, second])
    return np.stack([first, 255.0 - first])


def _random_object(class_id: int, rng: np.random.Generator, *, radius: float) -> _ObjectSpec:
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
    return _ObjectSpec(
        class_id=class_id,
        shape=shape,
        texture=texture,
        center=(0.5, 0.5),
        radius=radius,
        aspect=float(np.exp(rng.uniform(-0.3, 0.3))),
        rotation=rng.uniform(0, 2 * np.pi),
        warp=warp,
        shape_params=_shape_params(shape, rng),
        texture_params=_texture_params(texture, rng),
        colors=_contrasting_colors(rng),
        brightness=rng.uniform(0.8, 1.12),
        light=(light_strength * math.cos(light_angle), light_strength * math.sin(light_angle)),
    )


def _render_object(spec: _ObjectSpec, size: int) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
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
    mask = _inside(spec.shape, u, v, spec.shape_params)
    weight = _texture_weight(spec.texture, u, v, spec.texture_params)[..., None]
    rgb = spec.colors[0] * (1.0 - weight) + spec.colors[1] * weight
    shade = spec.brightness * (1.0 + spec.light[0] * u + spec.light[1] * v)
    return (y0, x0), mask, rgb * shade[..., None]


# ----------------------------------------------------------------------------- scenes


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


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
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


def _place(
    objects: list[_ObjectSpec], candidate: _ObjectSpec, rng: np.random.Generator, *, attempts: int = 60
) -> _ObjectSpec | None:
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


def _scene(rng: np.random.Generator, *, primary: int, pool: list[int]) -> list[_ObjectSpec]:
    """1-3 instances of ``primary`` and 1-3 distractors from ``pool``, placed, in paint order."""
    n_primary = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    n_distractors = int(rng.integers(1, 4))
    shape, texture = class_shape_texture(primary)
    others = [c for c in pool if c != primary]
    hard = [c for c in others if set(class_shape_texture(c)) & {shape, texture}]
    placed: list[_ObjectSpec] = []
    for i in range(n_primary + n_distractors):
        if i < n_primary:
            class_id = primary
        else:
            class_id = int(rng.choice(hard if hard and rng.random() < 0.5 else others))
        radius = rng.uniform(0.07, 0.13)
        spec = None
        while spec is None and radius > 0.03:
            spec = _place(placed, _random_object(class_id, rng, radius=radius), rng)
            radius *= 0.85
        if spec is not None:
            placed.append(spec)
    order = rng.permutation(len(placed))
    return [placed[i] for i in order]


def _compose(
    background: np.ndarray, objects: list[_ObjectSpec], size: int, noise: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Paint ``objects`` in order on ``background``: the uint8 image and each object's visible mask."""
    image = background.copy()
    masks = []
    for spec in objects:
        (y0, x0), mask, rgb = _render_object(spec, size)
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


# ----------------------------------------------------------------------------- the source


class SyntheticSource(SegmentationSource):
    """One split of one fold of the procedural benchmark (see the module docstring).

    Args:
        fold: 0..3; class ``c`` is a test class of fold ``c % 4``.
        split: ``"train"`` (the fold's training classes only), ``"val"`` or ``"test"``.
        image_size: side of the square images, 64..512.
        images_per_class: images per class in this split (ids ``<split>-f<fold>-c<class>-<index>``).
        seed: the benchmark's seed; every image is a pure function of it and its id.
        n_classes: number of classes, 8..80 (default 64).
        cache_size: how many rendered images to keep (LRU); 0 disables the cache.
    """

    name = "synthetic"

    def __init__(
        self,
        *,
        fold: int = 0,
        split: str = "test",
        image_size: int = 256,
        images_per_class: int = 50,
        seed: int = 0,
        n_classes: int = DEFAULT_CLASSES,
        cache_size: int = 32,
    ) -> None:
        self._classes = synthetic_fold_classes(fold, split, n_classes=n_classes)
        for name, value, low, high in (
            ("image_size", image_size, 64, 512),
            ("images_per_class", images_per_class, 1, 99_999),
            ("seed", seed, 0, 2**63 - 1),
            ("cache_size", cache_size, 0, 100_000),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name}: expected an int in {low}..{high}, got {value!r}")
        self.fold = fold
        self.split = split
        self.image_size = image_size
        self.images_per_class = images_per_class
        self.seed = seed
        self.n_classes = n_classes
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[np.ndarray, list[Instance]]] = OrderedDict()

    # -- class set
    def class_ids(self) -> list[ClassId]:
        return list(self._classes)

    def class_name(self, class_id: ClassId) -> str:
        return synthetic_class_name(_check_class(class_id, self.n_classes))

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        """``images_per_class`` ids per class, sorted; with ``class_id``, the images drawn for it.

        An image drawn for one class may also show another class as a distractor; it is listed
        under the class it was drawn for only (so every class has exactly ``images_per_class``).
        """
        if class_id is None:
            classes = self._classes
        else:
            c = _check_class(class_id, self.n_classes)
            classes = [c] if c in self._classes else []
        return [self._image_id(c, k) for c in classes for k in range(self.images_per_class)]

    def _image_id(self, class_id: int, index: int) -> str:
        return f"{self.split}-f{self.fold}-c{class_id:02d}-{index:05d}"

    def _parse(self, image_id: str) -> tuple[int, int]:
        parts = image_id.split("-") if isinstance(image_id, str) else []
        try:
            split, fold, class_id, index = parts[0], int(parts[1][1:]), int(parts[2][1:]), int(parts[3])
            valid = (
                len(parts) == 4 and parts[1][0] == "f" and parts[2][0] == "c"
                and split == self.split and fold == self.fold and class_id in self._classes
                and 0 <= index < self.images_per_class and image_id == self._image_id(class_id, index)
            )  # fmt: skip
        except (IndexError, ValueError):
            valid = False
        if not valid:
            raise ValueError(
                f"image_id: {image_id!r} is not an image of {self!r}; expected an id from image_ids(), "
                f"such as {self._image_id(self._classes[0], 0)!r}"
            )
        return class_id, index

    # -- rendering
    def _render(self, image_id: str) -> tuple[np.ndarray, list[Instance]]:
        if image_id in self._cache:
            self._cache.move_to_end(image_id)
            return self._cache[image_id]
        class_id, index = self._parse(image_id)
        key = [self.seed, _SPLIT_CODES[self.split], self.fold, self.n_classes, class_id, index]
        layout = np.random.default_rng(key + [0])
        # train images: distractors from the fold's training classes only; val/test: any class
        pool = self._classes if self.split == "train" else list(range(self.n_classes))
        background = _background(layout, self.image_size)
        objects = _scene(layout, primary=class_id, pool=pool)
        image, masks = _compose(background, objects, self.image_size, np.random.default_rng(key + [1]))
        instances = [
            Instance(class_id=spec.class_id, instance_id=i, mask=mask)
            for i, (spec, mask) in enumerate(zip(objects, masks))
            if mask.any()
        ]
        image.setflags(write=False)
        for instance in instances:
            instance.mask.setflags(write=False)
        if self.cache_size:
            self._cache[image_id] = (image, instances)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image, instances

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8 RGB, ``H = W = image_size``."""
        return self._render(image_id)[0].copy()

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool: the union of the visible instances of ``class_id`` (any of the ``n_classes``)."""
        c = _check_class(class_id, self.n_classes)
        mask = np.zeros((self.image_size, self.image_size), dtype=bool)
        for instance in self._render(image_id)[1]:
            if instance.class_id == c:
                mask |= instance.mask
        return mask

    def load_instances(self, image_id: str, *, all_classes: bool = False) -> list[Instance]:
        """Visible per-instance ``HxW`` bool masks in paint order.

        By default only instances of this source's classes (the contract of
        :class:`SegmentationSource`); ``all_classes=True`` adds the distractors of other classes.
        """
        return [
            Instance(class_id=i.class_id, instance_id=i.instance_id, mask=i.mask.copy())
            for i in self._render(image_id)[1]
            if all_classes or i.class_id in self._classes
        ]


def build(root: Any = None, fold: int = 0, split: str = "test", **options: Any) -> SyntheticSource:
    """The registry's constructor; ``root`` is ignored (nothing on disk).

    Options: ``image_size`` (256), ``images_per_class`` (50), ``seed`` (0), ``n_classes`` (64),
    ``cache_size`` (32).
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(
            f"options: unknown option(s) {', '.join(unknown)} for dataset 'synthetic'; expected {', '.join(_OPTIONS)}"
        )
    return SyntheticSource(fold=fold, split=split, **options)


def _spec_fold_classes(fold: int, split: str, root: Any = None, *, n_classes: int = DEFAULT_CLASSES) -> list[ClassId]:
    return list(synthetic_fold_classes(fold, split, n_classes=n_classes))


SPECS = [
    DatasetSpec(
        name="synthetic",
        folds=N_FOLDS,
        fold_classes=_spec_fold_classes,
        build=build,
        default_episodes=1000,
        layout="(generated on the fly; nothing on disk)",
        folder="synthetic",
        needs_root=False,
        episode_policy="random_class",
        extra={"n_classes": DEFAULT_CLASSES, "max_classes": MAX_CLASSES},
    )
]


# ----------------------------------------------------------------------------- video and visual check


def synthetic_video(
    *, n_frames: int = 8, image_size: int = 256, seed: int = 0, n_objects: int = 3, n_classes: int = DEFAULT_CLASSES
) -> tuple[list[np.ndarray], list[list[Instance]]]:
    """A short clip of instances moving smoothly over a static cluttered background.

    Each object drifts with a slowly turning velocity (at most ~2.5% of the image side per
    frame), bounces off the borders, spins slowly and deforms slowly (its warp phases drift).
    Objects keep their paint order, so they may occlude each other.

    Returns:
        ``frames``: ``n_frames`` arrays ``HxWx3`` uint8; ``instances``: per frame, one
        :class:`Instance` per object (``instance_id`` = object index, stable across frames,
        ``mask`` the visible ``HxW`` bool mask, possibly empty when fully occluded).
    """
    for name, value, low, high in (
        ("n_frames", n_frames, 1, 10_000),
        ("image_size", image_size, 64, 512),
        ("seed", seed, 0, 2**63 - 1),
        ("n_objects", n_objects, 1, 8),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name}: expected an int in {low}..{high}, got {value!r}")
    _check_n_classes(n_classes)
    rng = np.random.default_rng([seed, 7])
    background = _background(rng, image_size)
    classes = rng.choice(n_classes, size=n_objects, replace=n_objects > n_classes)
    objects: list[_ObjectSpec] = []
    for class_id in classes:
        spec, radius = None, rng.uniform(0.08, 0.12)
        while spec is None:
            spec = _place(objects, _random_object(int(class_id), rng, radius=radius), rng)
            radius *= 0.85
        objects.append(spec)
    speeds = rng.uniform(0.01, 0.025, n_objects)
    headings = rng.uniform(0, 2 * np.pi, n_objects)
    spins = rng.uniform(-0.06, 0.06, n_objects)
    phase_drift = rng.uniform(-0.15, 0.15, (n_objects, 2, objects[0].warp.shape[1]))

    frames: list[np.ndarray] = []
    instances: list[list[Instance]] = []
    for t in range(n_frames):
        image, masks = _compose(background, objects, image_size, np.random.default_rng([seed, 7, t]))
        frames.append(image)
        instances.append(
            [Instance(class_id=o.class_id, instance_id=i, mask=m) for i, (o, m) in enumerate(zip(objects, masks))]
        )
        moved = []
        for i, spec in enumerate(objects):
            headings[i] += rng.uniform(-0.2, 0.2)
            step = speeds[i] * np.array([math.cos(headings[i]), math.sin(headings[i])])
            center = np.array(spec.center) + step
            margin = spec.extent()
            for axis in range(2):  # bounce off the borders
                if not margin <= center[axis] <= 1 - margin:
                    step[axis] = -step[axis]
                    center[axis] = spec.center[axis] + step[axis]
            headings[i] = math.atan2(step[1], step[0])
            warp = spec.warp.copy()
            warp[..., 2] += phase_drift[i]
            center_xy = (float(center[0]), float(center[1]))
            moved.append(replace(spec, center=center_xy, rotation=spec.rotation + spins[i], warp=warp))
        objects = moved
    return frames, instances


def contact_sheet(source: SegmentationSource, n: int = 16, *, columns: int | None = None) -> np.ndarray:
    """A labelled grid of ``n`` images, one per class (cycling), class mask outlined in magenta.

    Tile ``i`` shows the ``i // len(classes)``-th image of class ``classes[i % len(classes)]``
    with its class name. Returns an ``HxWx3`` uint8 array (``H = rows * tile``).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    classes = source.class_ids()
    if not classes:
        raise ValueError(f"source: {source!r} has no class to show")
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    tiles = []
    for i in range(n):
        class_id = classes[i % len(classes)]
        ids = source.image_ids(class_id)
        image_id = ids[(i // len(classes)) % len(ids)]
        image = source.load_image(image_id).copy()
        mask = source.load_mask(image_id, class_id)
        image[mask & ~ndimage.binary_erosion(mask, iterations=2)] = (255, 0, 255)
        tile = Image.fromarray(image)
        draw = ImageDraw.Draw(tile)
        label = f"{class_id}: {source.class_name(class_id)}"
        draw.rectangle((0, 0, 7 * len(label) + 4, 13), fill=(0, 0, 0))
        draw.text((2, 1), label, fill=(255, 255, 255))
        tiles.append(np.asarray(tile))
    height, width = tiles[0].shape[:2]
    sheet = np.full((rows * (height + 2), columns * (width + 2), 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * (height + 2) : r * (height + 2) + height, c * (width + 2) : c * (width + 2) + width] = tile
    return sheet
