"""Procedural videos for class-agnostic pretraining of the miniature SAM2 (its SA-V analogue).

A clip shows 2-5 instances drawn with the procedural benchmark's primitives (shape families,
textures, elastic warps, clutter; :mod:`sansa_probe.data.synthetic`). Within a clip each instance
keeps its own appearance (colours, texture phase, proportions) while it moves, rotates, changes
scale, deforms, changes lighting and passes behind or in front of the others; the next clip draws
new instances with new appearances. Half of the clips hold a hard distractor that shares the
tracked instance's shape or texture (other colours), a quarter one that shares its colours (other
shape): the tracker has to follow *this* instance, by its whole appearance and its motion.

A :class:`ClipRecipe` changes what a stage of pretraining draws (each clip decides by its own
random stream, so the default recipe draws exactly the clips above):

* ``large``: clips with 2-3 larger instances (radius 0.12-0.2 of the side), more stride-16 tokens
  per object; ``twin`` of them hold an exact look-alike of the tracked instance elsewhere (only
  its position tells them apart);
* ``mirror``: frames 1.. flipped left-right and up-down (every object jumps, appearance kept);
* ``shuffle``: frames 1.. show every instance at a new random place (appearance kept);
* ``distinct``: no hard distractors (no other instance shares the tracked one's shape, texture
  or colours), so appearance alone identifies the tracked instance;
* ``vanish``: the tracked instance is gone from frames 1.. (empty masks): a tracker must then
  predict nothing rather than the most similar other object;
* ``recolour``: from frame 1 on every instance wears new colours (its shape, texture, pose and
  motion kept): a tracker must then follow shape and texture, not colour;
* ``redraw``: from frame 1 on the tracked instance is a fresh drawing of its shape and texture
  (new colours, proportions, warp, texture phase and pose, at its place and size) and another
  instance takes on its old colours: only shape and texture still tell which one is tracked.

No class label leaves this module: a clip is frames and the masks of one tracked instance.
Clip ``index`` of stream ``seed`` is a pure function of ``(seed, index, n_frames, image_size, recipe)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sansa_probe.data.synthetic.classes import MAX_CLASSES, class_shape_texture
from sansa_probe.data.synthetic.objects import ObjectSpec as _ObjectSpec
from sansa_probe.data.synthetic.objects import random_object as _random_object
from sansa_probe.data.synthetic.scenes import clutter_background as _background
from sansa_probe.data.synthetic.scenes import compose as _compose
from sansa_probe.data.synthetic.scenes import place as _place
from sansa_probe.data.synthetic.textures import contrasting_colors as _contrasting_colors

__all__ = ["VideoClip", "ClipRecipe", "pretraining_clip", "mirrored"]

_MIN_PIXELS = 0.004  # the tracked instance covers at least this fraction of frame 0


@dataclass(frozen=True)
class VideoClip:
    """``frames``: ``n_frames`` arrays ``HxWx3`` uint8; ``masks``: the tracked instance's visible
    ``HxW`` bool mask in each frame (empty when it is fully occluded)."""

    frames: list[np.ndarray]
    masks: list[np.ndarray]


@dataclass(frozen=True)
class ClipRecipe:
    """Probabilities of the clip variants of the module docstring (all 0: today's clips)."""

    large: float = 0.0
    twin: float = 0.7
    mirror: float = 0.0
    shuffle: float = 0.0
    distinct: float = 0.0
    vanish: float = 0.0
    recolour: float = 0.0
    redraw: float = 0.0

    def __post_init__(self) -> None:
        for name in ("large", "twin", "mirror", "shuffle", "distinct", "vanish", "recolour", "redraw"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {value!r}")

    def draw(self, seed: int, index: int) -> dict[str, bool]:
        """This clip's variants, from its own random stream (independent of the drawing's)."""
        u = np.random.default_rng([seed, index, 15]).random(8)
        large = bool(u[0] < self.large)
        return {"large": large, "twin": large and bool(u[1] < self.twin), "mirror": bool(u[2] < self.mirror),
                "shuffle": bool(u[3] < self.shuffle), "distinct": bool(u[4] < self.distinct), "vanish": bool(u[5] < self.vanish),
                "recolour": bool(u[6] < self.recolour), "redraw": bool(u[7] < self.redraw)}


def mirrored(clip: VideoClip) -> VideoClip:
    """Frames 1.. (and their masks) flipped left-right and up-down; frame 0 unchanged."""
    flip = lambda a: np.ascontiguousarray(a[::-1, ::-1])  # noqa: E731
    return VideoClip(frames=clip.frames[:1] + [flip(f) for f in clip.frames[1:]],
                     masks=clip.masks[:1] + [flip(m) for m in clip.masks[1:]])


def _drawing_ids(rng: np.random.Generator, n_objects: int, *, distinct: bool = False) -> list[int]:
    """Which shape/texture drawing each instance uses (index 0 is the tracked one); hard distractors,
    or with ``distinct`` none: no other instance shares the tracked one's shape or texture."""
    ids = [int(c) for c in rng.integers(0, MAX_CLASSES, n_objects)]
    if distinct:
        shape, texture = class_shape_texture(ids[0])
        unlike = [c for c in range(MAX_CLASSES) if not set(class_shape_texture(c)) & {shape, texture}]
        return ids[:1] + [int(c) for c in rng.choice(unlike, n_objects - 1)]
    if n_objects > 1 and rng.random() < 0.5:
        shape, texture = class_shape_texture(ids[0])
        similar = [c for c in range(MAX_CLASSES) if c != ids[0] and set(class_shape_texture(c)) & {shape, texture}]
        ids[1] = int(rng.choice(similar))
    return ids


def _initial_objects(rng: np.random.Generator, n_objects: int, *, large: bool = False, twin: bool = False,
                     distinct: bool = False) -> list[_ObjectSpec]:
    ids = _drawing_ids(rng, n_objects, distinct=distinct)
    objects: list[_ObjectSpec] = []
    for i, drawing in enumerate(ids):
        if twin and i == 1:  # the tracked instance's exact look-alike, elsewhere
            spec = _place(objects, objects[0], rng)
            if spec is not None:
                objects.append(spec)
                continue
        spec, radius = None, rng.uniform(0.12, 0.2) if large else rng.uniform(0.08, 0.15)
        while spec is None and radius > 0.03:
            spec = _place(objects, _random_object(drawing, rng, radius=radius), rng)
            radius *= 0.85
        if spec is None:
            if i == 0:
                raise RuntimeError("could not place the tracked instance")  # pragma: no cover - radius shrinks to fit
            continue
        objects.append(spec)
    if distinct:
        return objects
    if len(objects) > 2 and rng.random() < 0.25:  # a look-alike: the tracked instance's colours, another shape
        objects[2] = replace(objects[2], colors=objects[0].colors.copy(), brightness=objects[0].brightness)
    return objects


def pretraining_clip(*, seed: int, index: int, n_frames: int = 4, image_size: int = 128, recipe: ClipRecipe | None = None) -> VideoClip:
    """Clip ``index`` of the pretraining stream ``seed`` (see the module docstring).

    Motion per frame: a drift of 2-7 % of the image side along a slowly turning heading
    (bouncing off the borders), a spin of up to 0.25 rad, a scale change of up to +-8 %, a
    drift of the elastic warp's phases and of the brightness and lighting direction.
    ``recipe`` (default: none of its variants) may make the clip large, twinned, distinct,
    mirrored or shuffled.
    """
    for name, value, low, high in (
        ("seed", seed, 0, 2**63 - 1),
        ("index", index, 0, 2**63 - 1),
        ("n_frames", n_frames, 2, 64),
        ("image_size", image_size, 64, 512),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"{name}: expected an int in {low}..{high}, got {value!r}")
    variant = (recipe or ClipRecipe()).draw(seed, index)
    rng = np.random.default_rng([seed, index, 11])
    background = _background(rng, image_size)
    n_objects = int(rng.integers(2, 6))
    if variant["large"]:
        n_objects = int(rng.integers(2, 4))
    objects = _initial_objects(rng, n_objects, large=variant["large"], twin=variant["twin"], distinct=variant["distinct"])
    n = len(objects)
    order = rng.permutation(n)  # paint order: the tracked instance may pass behind others
    speeds = rng.uniform(0.02, 0.07, n)
    headings = rng.uniform(0, 2 * np.pi, n)
    spins = rng.uniform(-0.25, 0.25, n)
    growth = rng.uniform(-0.08, 0.08, n)
    phase_drift = rng.uniform(-0.4, 0.4, (n, 2, objects[0].warp.shape[1]))
    light_drift = rng.uniform(-0.06, 0.06, n)

    frames, masks = [], []
    for t in range(n_frames):
        gone = variant["vanish"] and t > 0
        painted = [objects[i] for i in order if not (gone and i == 0)]
        image, visible = _compose(background, painted, image_size, np.random.default_rng([seed, index, 12, t]))
        frames.append(image)
        masks.append(np.zeros((image_size, image_size), bool) if gone else visible[int(np.flatnonzero(order == 0)[0])])
        objects = [_moved(spec, rng, i, speeds, headings, spins, growth, phase_drift, light_drift) for i, spec in enumerate(objects)]
        if variant["shuffle"]:
            objects = _shuffled(objects, np.random.default_rng([seed, index, 16, t]))
        if variant["recolour"] and t == 0:
            paint = np.random.default_rng([seed, index, 18])
            objects = [replace(spec, colors=_contrasting_colors(paint)) for spec in objects]
        if variant["redraw"] and t == 0:
            objects = _redrawn(objects, np.random.default_rng([seed, index, 19]))
    if masks[0].mean() < _MIN_PIXELS:  # tracked instance hidden at the prompt: bring it to the front
        return _front(seed=seed, index=index, n_frames=n_frames, image_size=image_size, recipe=recipe)
    clip = VideoClip(frames=frames, masks=masks)
    return mirrored(clip) if variant["mirror"] else clip


def _redrawn(objects: list[_ObjectSpec], rng: np.random.Generator) -> list[_ObjectSpec]:
    """The tracked instance (index 0) drawn anew at its place and size; instance 1 takes its old colours."""
    old = objects[0]
    fresh = replace(_random_object(old.class_id, rng, radius=old.radius), center=old.center)
    rest = objects[1:]
    if rest:
        rest[0] = replace(rest[0], colors=old.colors.copy(), brightness=old.brightness)
    return [fresh, *rest]


def _shuffled(objects: list[_ObjectSpec], rng: np.random.Generator) -> list[_ObjectSpec]:
    """Every instance at a new random place (apart from the others when possible), appearance kept."""
    placed: list[_ObjectSpec] = []
    for spec in objects:
        moved = _place(placed, spec, rng) or _place([], spec, rng) or spec
        placed.append(moved)
    return placed


def _moved(spec: _ObjectSpec, rng: np.random.Generator, i: int, speeds, headings, spins, growth, phase_drift, light_drift) -> _ObjectSpec:
    headings[i] += rng.uniform(-0.4, 0.4)
    step = speeds[i] * np.array([math.cos(headings[i]), math.sin(headings[i])])
    radius = float(np.clip(spec.radius * math.exp(growth[i]), 0.05, 0.2))
    moved = replace(spec, radius=radius)
    margin = min(moved.extent(), 0.45)
    center = np.array(spec.center) + step
    for axis in range(2):  # bounce off the borders
        if not margin <= center[axis] <= 1 - margin:
            step[axis] = -step[axis]
            center[axis] = float(np.clip(spec.center[axis] + step[axis], margin, 1 - margin))
    headings[i] = math.atan2(step[1], step[0])
    warp = spec.warp.copy()
    warp[..., 2] += phase_drift[i]
    angle = math.atan2(spec.light[1], spec.light[0]) + 0.3
    strength = math.hypot(*spec.light)
    return replace(
        moved,
        center=(float(center[0]), float(center[1])),
        rotation=spec.rotation + spins[i],
        warp=warp,
        brightness=float(np.clip(spec.brightness + light_drift[i], 0.7, 1.2)),
        light=(strength * math.cos(angle), strength * math.sin(angle)),
    )


def _front(*, seed: int, index: int, n_frames: int, image_size: int, recipe: ClipRecipe | None) -> VideoClip:
    """A replacement clip drawn from a far stream position (still a pure function of ``(seed, index)``)."""
    return pretraining_clip(seed=seed, index=index + 2**40, n_frames=n_frames, image_size=image_size, recipe=recipe)
