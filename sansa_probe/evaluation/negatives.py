"""Negative prompts for few-shot segmentation (paper appendix F, table 11).

Two kinds, both training-free:

* **geometric negatives** -- negative clicks on the *target*, as a user correcting a
  prediction would place them. :func:`next_negative_click` simulates that user: it takes the
  current prediction and the ground truth, finds the largest false-positive region and clicks
  its most interior pixel (the maximum of the Euclidean distance transform, the image border
  counting as region boundary), the standard click simulation of interactive segmentation.
* **semantic negatives** -- images of *other* classes written to memory with an empty mask
  (conditioning entries beside the references). :func:`choose_semantic_negatives` picks them
  deterministically per episode.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
from scipy import ndimage

__all__ = ["NEGATIVE_STREAM", "false_positive_regions", "next_negative_click", "choose_semantic_negatives"]

NEGATIVE_STREAM = 0x5E6A
"""Third entry of the seed sequence ``(seed, episode, NEGATIVE_STREAM)`` of semantic negatives
(reference prompts use ``(seed, episode, shot)``, so the two streams never share a seed)."""

_EIGHT = np.ones((3, 3), dtype=bool)


def _bool(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected an HxW mask, got shape {array.shape}")
    return array.astype(bool, copy=False)


def false_positive_regions(pred: np.ndarray, target: np.ndarray, ignore: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """8-connected components of ``pred & ~target`` (ignore pixels removed).

    Args:
        pred, target: ``HxW`` bool prediction and ground truth.
        ignore: optional ``HxW`` bool pixels that are neither right nor wrong.

    Returns:
        ``(labels, n)``: ``HxW`` int labels (0 = no false positive) and the number of regions.
    """
    pred, target = _bool(pred, "pred"), _bool(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred: shape {pred.shape} does not match target shape {target.shape}")
    wrong = pred & ~target
    if ignore is not None:
        ignore = _bool(ignore, "ignore")
        if ignore.shape != target.shape:
            raise ValueError(f"ignore: shape {ignore.shape} does not match target shape {target.shape}")
        wrong &= ~ignore
    labels, n = ndimage.label(wrong, structure=_EIGHT)
    return labels, int(n)


def next_negative_click(pred: np.ndarray, target: np.ndarray, ignore: np.ndarray | None = None) -> tuple[float, float] | None:
    """Where a simulated user puts the next negative click, or None when nothing is wrongly segmented.

    The click goes on the largest false-positive region (ties: the first in raster order), at
    its pixel farthest from the region's boundary (``scipy.ndimage.distance_transform_edt`` of
    the region padded with background, so the image border is a boundary too; ties: first in
    raster order).

    Args:
        pred: ``HxW`` bool current prediction at the target's size.
        target: ``HxW`` bool ground truth.
        ignore: optional ``HxW`` bool pixels excluded from evaluation (never clicked).

    Returns:
        ``(x, y) = (column, row)`` in target pixels, or None.
    """
    labels, n = false_positive_regions(pred, target, ignore)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    region = labels == int(np.argmax(sizes)) + 1
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(col), float(row)


def choose_semantic_negatives(
    *,
    count: int,
    class_id: Hashable,
    classes: Sequence[Hashable],
    images_of: Callable[[Hashable], Sequence[str]],
    exclude: Sequence[str],
    contains_class: Callable[[str], bool] | None = None,
    seed: int,
    episode: int,
    photo_of: Callable[[str], str] | None = None,
    max_tries: int = 10,
) -> list[str]:
    """Image ids of other classes to write to memory with an empty mask (semantic negatives).

    Each pick draws a class uniformly among ``classes`` other than ``class_id`` (with
    replacement), then an image of it uniformly, from ``numpy.random.default_rng((seed,
    episode, NEGATIVE_STREAM))`` only, so the choice depends on the episode and not on the
    process that evaluates it. An image is rejected when it is already used, comes from the
    photo of an id in ``exclude`` (the target and the references), or ``contains_class(id)`` says
    it shows the episode's class after all (a distractor); at most ``max_tries * count`` draws.

    Args:
        count: how many negatives (>= 0).
        class_id: the episode's class.
        classes: the classes of the fold.
        images_of: class -> its image ids (sorted, for determinism).
        exclude: ids never to pick (their photos neither).
        contains_class: optional check that an image shows no pixel of ``class_id``.
        seed, episode: the evaluation seed and the episode index.
        photo_of: image id -> the photo it is cropped from (part benchmarks); default identity.
        max_tries: draws per requested negative before giving up.

    Returns:
        Up to ``count`` distinct image ids (fewer only when the fold has too few suitable images).
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"semantic negatives: expected an int >= 0, got {count!r}")
    if count == 0:
        return []
    others = [c for c in classes if c != class_id and len(images_of(c)) > 0]
    if not others:
        raise ValueError(
            f"semantic negatives: the fold has no class other than {class_id!r} with images; "
            "negatives need at least two classes"
        )
    photo = photo_of or (lambda image_id: image_id)
    banned = {photo(i) for i in exclude}
    rng = np.random.default_rng([int(seed), int(episode), NEGATIVE_STREAM])
    chosen: list[str] = []
    for _ in range(max_tries * int(count)):
        other = others[int(rng.integers(len(others)))]
        images = images_of(other)
        candidate = images[int(rng.integers(len(images)))]
        if candidate in chosen or photo(candidate) in banned:
            continue
        if contains_class is not None and contains_class(candidate):
            continue
        chosen.append(candidate)
        if len(chosen) == count:
            break
    return chosen
