"""Short clips of objects moving smoothly over a static background (the spatial-coherence probe)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from sansa_probe.data.base import Instance
from sansa_probe.data.synthetic.classes import DEFAULT_CLASSES, check_ints, check_n_classes
from sansa_probe.data.synthetic.objects import ObjectSpec, random_object
from sansa_probe.data.synthetic.scenes import clutter_background, compose, place

__all__ = ["synthetic_video"]


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
    check_ints(n_frames=(n_frames, 1, 10_000), image_size=(image_size, 64, 512), seed=(seed, 0, 2**63 - 1), n_objects=(n_objects, 1, 8))
    check_n_classes(n_classes)
    rng = np.random.default_rng([seed, 7])
    background = clutter_background(rng, image_size)
    classes = rng.choice(n_classes, size=n_objects, replace=n_objects > n_classes)
    objects: list[ObjectSpec] = []
    for class_id in classes:
        spec, radius = None, rng.uniform(0.08, 0.12)
        while spec is None:
            spec = place(objects, random_object(int(class_id), rng, radius=radius), rng)
            radius *= 0.85
        objects.append(spec)
    speeds = rng.uniform(0.01, 0.025, n_objects)
    headings = rng.uniform(0, 2 * np.pi, n_objects)
    spins = rng.uniform(-0.06, 0.06, n_objects)
    phase_drift = rng.uniform(-0.15, 0.15, (n_objects, 2, objects[0].warp.shape[1]))

    frames: list[np.ndarray] = []
    instances: list[list[Instance]] = []
    for t in range(n_frames):
        image, masks = compose(background, objects, image_size, np.random.default_rng([seed, 7, t]))
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
