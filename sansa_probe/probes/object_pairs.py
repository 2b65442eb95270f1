"""Object pairs of the part-matching probe (paper fig. 4c): two images of one class, one object in each.

For each class of a source (seeded order), image pairs of that class; in each image the largest
instance of that class (else the largest instance: Pascal-Part classes are ``object+PART`` while
its instances are objects). :func:`grid_parts` brings an object's part masks to the feature grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sansa_probe.data import Instance, SegmentationSource
from sansa_probe.features import masks_to_grid

__all__ = ["ObjectPair", "dataset_pairs", "grid_parts"]


@dataclass
class ObjectPair:
    """Two images of one class and the object chosen in each (``parts`` may be ``None``)."""

    class_id: object
    class_name: str
    image_ids: tuple[str, str]
    images: tuple[np.ndarray, np.ndarray]
    objects: tuple[Instance, Instance]


def _largest(instances: Sequence[Instance], class_id: object) -> Instance | None:
    own = [i for i in instances if i.class_id == class_id] or list(instances)
    own = [i for i in own if np.asarray(i.mask).any()]
    return max(own, key=lambda i: int(np.asarray(i.mask).sum()), default=None)


def dataset_pairs(source: SegmentationSource, *, max_pairs: int = 8, pairs_per_class: int = 1, seed: int = 0) -> list[ObjectPair]:
    """Up to ``max_pairs`` image pairs, ``pairs_per_class`` per class (seeded), each image
    used once per class; duplicates (same two images) are dropped."""
    rng = np.random.default_rng(seed)
    pairs, seen = [], set()
    classes = source.class_ids()
    for class_index in rng.permutation(len(classes)):
        class_id = classes[int(class_index)]
        ids = source.image_ids(class_id)
        order = [ids[int(k)] for k in rng.permutation(len(ids))]
        made = 0
        for a, b in zip(order[0::2], order[1::2]):
            if made >= pairs_per_class or len(pairs) >= max_pairs:
                break
            if frozenset((a, b)) in seen:
                continue
            objects = (_largest(source.load_instances(a), class_id), _largest(source.load_instances(b), class_id))
            if objects[0] is None or objects[1] is None:
                continue
            seen.add(frozenset((a, b)))
            pairs.append(ObjectPair(class_id, source.class_name(class_id), (a, b), (source.load_image(a), source.load_image(b)), objects))
            made += 1
        if len(pairs) >= max_pairs:
            break
    if not pairs:
        raise ValueError(f"{source!r}: no class has two images with an object; nothing to match")
    return pairs


def grid_parts(instance: Instance, object_mask: np.ndarray) -> dict[str, np.ndarray] | None:
    """``{part name: mask}`` of ``instance`` at the resolution of ``object_mask`` (a feature-grid mask of
    the object), restricted to it; ``None`` without part annotations."""
    if not instance.parts:
        return None
    names = sorted(instance.parts)
    grids = masks_to_grid([instance.parts[n] for n in names], object_mask.shape)
    return {n: g & object_mask for n, g in zip(names, grids)}
