"""Object masks on the feature grid: coverage, pooling to one vector per object, mask checks.

**Objects** (:meth:`FeatureExtractor.object_features`): an image of any size is resized to the
square model input, so an ``H x W`` mask maps onto the whole ``h x w`` feature grid. Its
*coverage* of each cell is its adaptive average pool onto the grid (:func:`mask_coverage`,
torch's ``mode="area"``): the fraction of the cell's pixels inside the mask (exact when ``h``
divides ``H``; otherwise neighbouring bins share at most one pixel row/column). Pooling:
``"mask_mean"`` (default) is the coverage-weighted mean of the cells, ``sum(w F) / sum(w)``, so a
border cell counts in proportion to its overlap and no object is lost, however small;
``"mask_threshold"`` averages the cells with coverage >= ``threshold`` (falling back to the most
covered cell(s)); ``"mask_max"`` is the channel-wise max over cells with coverage > 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sansa_probe.data.base import Instance

__all__ = ["POOLINGS", "as_object_list", "check_object_mask", "check_pooling", "mask_coverage", "masks_to_grid", "pool_object", "small_objects_message"]

POOLINGS = ("mask_mean", "mask_threshold", "mask_max")


def check_pooling(pooling: str) -> str:
    """``pooling`` if it is one of :data:`POOLINGS`, else ``ValueError``."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
    return pooling


def mask_coverage(mask: Any, grid: tuple[int, int]) -> torch.Tensor:
    """Fraction of each grid cell covered by an ``H x W`` mask -> float32 ``(h, w)`` in ``[0, 1]``.

    The mask spans the whole grid (the image is resized to the square model input); the
    coverage is ``F.adaptive_avg_pool2d`` of the mask onto ``grid`` (torch's ``mode="area"``).
    """
    tensor = torch.as_tensor(np.asarray(mask), dtype=torch.float32) if not isinstance(mask, torch.Tensor) else mask.float()
    if tensor.ndim != 2:
        raise ValueError(f"mask: expected a 2-D HxW mask, got shape {tuple(tensor.shape)}")
    return F.adaptive_avg_pool2d(tensor[None, None].cpu(), tuple(int(g) for g in grid))[0, 0]


def masks_to_grid(masks: Sequence[Any], grid: tuple[int, int], *, threshold: float = 0.5) -> list[np.ndarray]:
    """Bool masks at feature resolution (coverage >= ``threshold``), for the pixel-level probes
    (:class:`~sansa_probe.probes.PCARGB`, :func:`~sansa_probe.probes.match_parts`)."""
    return [(mask_coverage(m, grid) >= float(threshold)).numpy() for m in masks]


def pool_object(features: torch.Tensor, coverage: torch.Tensor, *, pooling: str = "mask_mean", threshold: float = 0.5) -> torch.Tensor:
    """One object vector ``(C,)`` from a feature map ``(C, h, w)`` and its coverage ``(h, w)``
    (see the module docstring for the poolings)."""
    check_pooling(pooling)
    c = features.shape[0]
    flat, weights = features.reshape(c, -1).float(), coverage.reshape(-1).to(features.device, torch.float32)
    if float(weights.sum()) <= 0:
        raise ValueError("mask: is empty; an object needs at least one pixel")
    if pooling == "mask_mean":
        return flat @ weights / weights.sum()
    if pooling == "mask_max":
        return flat[:, weights > 0].max(dim=1).values
    keep = weights >= float(threshold)
    if not bool(keep.any()):
        keep = weights == weights.max()
    return flat[:, keep].mean(dim=1)


def as_object_list(entry: Any, labels: Any, *, index: int) -> list[Instance]:
    """One image's objects as Instances: an Instance, Instances, one HxW mask or several."""
    if isinstance(entry, Instance):
        return [entry]
    if isinstance(entry, (list, tuple)) and entry and all(isinstance(e, Instance) for e in entry):
        return list(entry)
    array = entry if isinstance(entry, (list, tuple)) else np.asarray(entry.detach().cpu() if hasattr(entry, "detach") else entry)
    if isinstance(array, np.ndarray) and array.ndim == 2:
        array, labels = [array], [labels]
    elif isinstance(array, np.ndarray) and array.ndim == 3:
        array = list(array)
    elif not isinstance(array, list) and not isinstance(array, tuple):
        raise ValueError(f"masks[{index}]: expected an Instance, a list of Instances, an HxW mask or a list of masks")
    if labels is None:
        labels = [None] * len(array)
    elif np.ndim(labels) == 0:
        labels = [labels]
    labels = list(labels)
    if len(labels) != len(array):
        raise ValueError(f"labels[{index}]: expected {len(array)} labels (one per mask of image {index}), got {len(labels)}")
    return [Instance(class_id=label, instance_id=k, mask=np.asarray(m)) for k, (m, label) in enumerate(zip(array, labels))]


def check_object_mask(mask: Any, size: tuple[int, int] | None, *, name: str) -> np.ndarray:
    """An object mask as ``HxW`` bool, checked against its image's ``size`` (``None``: any size)."""
    array = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D HxW mask, got shape {tuple(array.shape)}")
    if array.dtype != bool:
        if not np.all(np.isin(np.unique(array), (0, 1))):
            raise ValueError(f"{name}: expected a boolean (or 0/1) mask")
        array = array.astype(bool)
    if size is not None and array.shape != tuple(size):
        raise ValueError(f"{name}: mask of size {array.shape[0]}x{array.shape[1]} does not match its image of size {size[0]}x{size[1]} (HxW)")
    return array


def small_objects_message(coverages: Sequence[float], *, grid: tuple[int, int], what: str) -> list[str]:
    """A warning in words when objects cover less than one feature cell in all (``coverages``:
    each object's summed cell coverage, as the ``coverage`` column of the object tables): their
    vectors are then mostly the features of the cells around them."""
    values = np.asarray(list(coverages), dtype=np.float64)
    small = int(np.sum(values < 1.0))
    if not small:
        return []
    return [f"{what}: {small} of {values.size} objects cover less than one feature cell of the {int(grid[0])}x{int(grid[1])} grid "
            f"(smallest {values.min():.2f} cells); their vectors are mostly their surroundings' features"]
