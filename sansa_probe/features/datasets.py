"""Which images and labels a probe sees: image selection, source configs, label maps, train/test splits.

Everything here reads a :class:`~sansa_probe.data.SegmentationSource` and runs no model: the
seeded image samples (:func:`select_images`, :func:`dataset_images` with their object masks), the source's options as a cache key
(:func:`source_config`), semantic label maps for the linear probe (:func:`semantic_label_maps`)
and the split a probe trains on vs the one it is evaluated on (:func:`probe_splits`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sansa_probe.data import fold_classes, get_dataset, get_spec
from sansa_probe.data.base import ClassId, SegmentationSource

__all__ = ["ProbeSplits", "check_classes", "dataset_images", "probe_splits", "select_images", "semantic_label_maps", "source_config"]


def check_classes(source: SegmentationSource, classes: Sequence[ClassId] | None) -> list[ClassId]:
    """``classes`` (default: all of the source's), each checked to be a class of ``source``."""
    available = source.class_ids()
    if classes is None:
        classes = available
    known = set(available)
    missing = [c for c in classes if c not in known]
    if missing:
        raise ValueError(f"classes: {missing[:5]} are not classes of {source!r}")
    if not classes:
        raise ValueError(f"{source!r}: has no class with images (is this split empty for this fold?)")
    return list(classes)


def select_images(
    source: SegmentationSource,
    *,
    classes: Sequence[ClassId] | None = None,
    images_per_class: int | None = None,
    max_images: int | None = None,
    seed: int = 0,
) -> list[str]:
    """Sorted image ids of ``source`` holding ``classes``: all of them, or a seeded sample of
    ``images_per_class`` per class (union), then at most ``max_images`` (seeded sample)."""
    classes = check_classes(source, classes)
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for c in classes:
        ids = source.image_ids(c)
        if images_per_class is not None and len(ids) > int(images_per_class):
            ids = [ids[k] for k in sorted(rng.choice(len(ids), int(images_per_class), replace=False))]
        chosen.update(ids)
    ids = sorted(chosen)
    if max_images is not None and len(ids) > int(max_images):
        ids = [ids[k] for k in sorted(rng.choice(len(ids), int(max_images), replace=False))]
    if not ids:
        raise ValueError(f"{source!r}: no image holds the classes asked for; this split has no images for this fold")
    return ids


def source_config(source: SegmentationSource) -> dict[str, Any]:
    """The public scalar attributes of a source (fold, split, seed, image size, root, ...): part
    of the cache config, so a source built with other options is never mistaken for this one."""
    out: dict[str, Any] = {"type": type(source).__name__}
    for key, value in sorted(vars(source).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[key] = value
        elif isinstance(value, os.PathLike):
            out[key] = os.fspath(value)
    return out


def semantic_label_maps(
    source: SegmentationSource, image_ids: Sequence[str], classes: Sequence[ClassId], *, size: int, ignore_index: int = 255
) -> np.ndarray:
    """Semantic label maps ``(N, size, size)`` uint8 for a linear probe: 0 background, ``k`` for
    ``classes[k-1]`` (instances of other classes are background), ``ignore_index`` where the
    source's ``load_ignore`` says so; resized to the square ``size`` by nearest neighbour (as
    the image is resized to the square model input)."""
    if len(classes) >= ignore_index:
        raise ValueError(f"classes: at most {ignore_index - 1} classes fit in uint8 label maps with ignore_index {ignore_index}")
    index = {c: k + 1 for k, c in enumerate(classes)}
    out = np.zeros((len(image_ids), size, size), dtype=np.uint8)
    for n, image_id in enumerate(image_ids):
        instances = source.load_instances(image_id)
        if not instances:
            continue
        label = np.zeros(instances[0].mask.shape, dtype=np.uint8)
        for inst in instances:
            if inst.class_id in index:
                label[np.asarray(inst.mask, bool)] = index[inst.class_id]
        ignore = source.load_ignore(image_id)
        if ignore is not None:
            label[np.asarray(ignore, bool)] = ignore_index
        tensor = torch.from_numpy(label)[None, None].float()
        out[n] = F.interpolate(tensor, size=(size, size), mode="nearest")[0, 0].numpy().astype(np.uint8)
    return out



@dataclass
class ProbeSplits:
    """Where a probe trains and where it is evaluated.

    ``test``: the fold's evaluation split (its novel classes, unseen by a strict SANSA of that
    fold); ``train``: a training split holding the same ``classes`` (``train_fold``'s), restricted
    to them by the caller; ``same_images``: both splits list the same images (``folder``-style
    datasets, where train = val = test).
    """

    train: SegmentationSource
    test: SegmentationSource
    classes: list[ClassId]
    train_fold: int
    same_images: bool


def probe_splits(dataset: str, fold: int, *, root: str | os.PathLike | None = None, eval_split: str = "val",
                 train_fold: int | None = None, **options: Any) -> ProbeSplits:
    """The probe's training and evaluation sources for ``dataset``'s ``fold``.

    The paper trains its probes (fig. 8 centroids, fig. 9 linear layer) on training *images* of
    fold 0's classes and evaluates on the val images of the same classes. In the few-shot
    benchmarks a fold's ``train`` split holds only its *training* classes, so the training images
    of the fold's evaluation classes come from a fold whose training split contains them
    (``train_fold``; default: the first of ``fold, fold + 1, ...`` that does, e.g. fold 1 for
    COCO-20i fold 0). A benchmark where no training split holds them (FSS-1000: disjoint
    train/val/test classes) raises ``ValueError``.
    """
    spec = get_spec(dataset)
    classes = fold_classes(dataset, fold, eval_split, root=root)
    candidates = [train_fold] if train_fold is not None else [(fold + k) % spec.folds for k in range(spec.folds)]
    chosen = None
    for g in candidates:
        if set(classes) <= set(fold_classes(dataset, g, "train", root=root)):
            chosen = g
            break
    if chosen is None:
        which = f"fold {train_fold}'s training split does" if train_fold is not None else "no fold's training split (folds 0.." + f"{spec.folds - 1}) does"
        raise ValueError(
            f"dataset {dataset!r}: {which} not hold the {len(classes)} classes of fold {fold}'s {eval_split!r} split; "
            "this probe needs training images of the evaluated classes (use a benchmark with per-fold class splits such as "
            "coco20i, pascal5i, lvis92i or synthetic)"
        )
    test = get_dataset(dataset, fold=fold, split=eval_split, root=root, **options)
    train = get_dataset(dataset, fold=chosen, split="train", root=root, **options)
    test_classes = test.class_ids()
    missing = [c for c in test_classes if c not in set(train.class_ids())]
    if missing:
        raise ValueError(f"dataset {dataset!r}: fold {chosen}'s training split has no image of classes {missing[:5]} of fold {fold}'s {eval_split!r} split")
    same = train.image_ids() == test.image_ids()
    if same:
        warnings.warn(f"dataset {dataset!r}: its train and {eval_split} splits are the same images; the probe is evaluated on its training images", stacklevel=2)
    return ProbeSplits(train=train, test=test, classes=list(test_classes), train_fold=chosen, same_images=same)


def dataset_images(source: SegmentationSource, *, n_images: int, seed: int = 0) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """``n_images`` images of a split (seeded, one per class first) with the union of their
    objects (``load_instances``) as mask: ``(ids, images HxWx3, masks HxW)``."""
    ids = select_images(source, images_per_class=1, max_images=n_images, seed=seed)
    images, masks = [], []
    for image_id in ids:
        image = source.load_image(image_id)
        mask = np.zeros(image.shape[:2], dtype=bool)
        for instance in source.load_instances(image_id):
            mask |= np.asarray(instance.mask, dtype=bool)
        images.append(image)
        masks.append(mask)
    return ids, images, masks
