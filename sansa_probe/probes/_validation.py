"""Input validation shared by the probes: arrays or tensors in, checked numpy arrays out.

Every error is a ``ValueError`` whose message starts with the argument's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "to_numpy",
    "check_features_2d",
    "check_labels",
    "check_dense_features",
    "check_masks",
    "check_parts",
    "labelled_frame",
]


def to_numpy(value: Any) -> np.ndarray:
    """A numpy view of a numpy array, torch tensor (any device) or nested sequence."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_features_2d(X: Any, *, name: str = "X", min_samples: int = 1) -> np.ndarray:
    """``X`` as a finite float64 ``[N, C]`` array."""
    array = to_numpy(X)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D [N, C] feature array, got shape {tuple(array.shape)}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name}: expected numeric features, got dtype {array.dtype}")
    if array.shape[0] < min_samples:
        raise ValueError(f"{name}: expected at least {min_samples} samples, got {array.shape[0]}")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: features contain NaN or infinite values")
    return array


def check_labels(y: Any, n_samples: int, *, name: str = "y") -> np.ndarray:
    """``y`` as a 1-D array of length ``n_samples`` (any hashable label type)."""
    labels = to_numpy(y)
    if labels.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {tuple(labels.shape)}")
    if labels.shape[0] != n_samples:
        raise ValueError(f"{name}: expected {n_samples} labels (one per row of X), got {labels.shape[0]}")
    return labels


def check_dense_features(X: Any, *, name: str = "X") -> list[np.ndarray]:
    """Dense features ``[N, C, h, w]`` (array or tensor) or a list of ``[C, h, w]`` as a list of
    float32 ``[C, h, w]`` arrays sharing ``C`` (``h, w`` may differ between images)."""
    if isinstance(X, (list, tuple)):
        items = [to_numpy(x) for x in X]
        for i, item in enumerate(items):
            if item.ndim != 3:
                raise ValueError(f"{name}[{i}]: expected a 3-D [C, h, w] feature map, got shape {tuple(item.shape)}")
    else:
        array = to_numpy(X)
        if array.ndim == 3:
            raise ValueError(f"{name}: expected [N, C, h, w] or a list of [C, h, w]; got one 3-D map of shape "
                             f"{tuple(array.shape)} (wrap it in a list)")
        if array.ndim != 4:
            raise ValueError(f"{name}: expected [N, C, h, w] or a list of [C, h, w], got shape {tuple(array.shape)}")
        items = list(array)
    if not items:
        raise ValueError(f"{name}: expected at least one feature map, got none")
    channels = items[0].shape[0]
    out = []
    for i, item in enumerate(items):
        if item.shape[0] != channels:
            raise ValueError(f"{name}[{i}]: has {item.shape[0]} channels, {name}[0] has {channels}")
        item = item.astype(np.float32, copy=False)
        if not np.all(np.isfinite(item)):
            raise ValueError(f"{name}[{i}]: features contain NaN or infinite values")
        out.append(item)
    return out


def _as_bool_map(value: Any, *, name: str) -> np.ndarray:
    array = to_numpy(value)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D HxW mask, got shape {tuple(array.shape)}")
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.number) and np.all(np.isin(np.unique(array), (0, 1))):
        return array.astype(bool)
    raise ValueError(f"{name}: expected a boolean (or 0/1) mask, got dtype {array.dtype} with other values")


def check_masks(masks: Any, shapes: Sequence[tuple[int, int]], *, name: str = "masks") -> list[np.ndarray]:
    """``masks`` (``[N, h, w]`` or a list of ``[h, w]``) as bool arrays of the given ``(h, w)`` shapes."""
    if isinstance(masks, (list, tuple)):
        items = list(masks)
    else:
        array = to_numpy(masks)
        if array.ndim != 3:
            raise ValueError(f"{name}: expected [N, h, w] or a list of [h, w] masks, got shape {tuple(array.shape)}")
        items = list(array)
    if len(items) != len(shapes):
        raise ValueError(f"{name}: expected {len(shapes)} masks (one per feature map), got {len(items)}")
    out = []
    for i, (item, shape) in enumerate(zip(items, shapes)):
        mask = _as_bool_map(item, name=f"{name}[{i}]")
        if mask.shape != tuple(shape):
            raise ValueError(f"{name}[{i}]: mask shape {mask.shape} does not match its feature map's (h, w) = {tuple(shape)}")
        out.append(mask)
    return out


def check_parts(parts: Mapping[str, Any] | None, shape: tuple[int, int], *, name: str) -> dict[str, np.ndarray] | None:
    """Optional ``{part name: HxW mask}`` with every mask of ``shape``."""
    if parts is None:
        return None
    if not isinstance(parts, Mapping):
        raise ValueError(f"{name}: expected a dict part name -> HxW mask, got {type(parts).__name__}")
    out = {}
    for part, mask in parts.items():
        m = _as_bool_map(mask, name=f"{name}[{part!r}]")
        if m.shape != tuple(shape):
            raise ValueError(f"{name}[{part!r}]: mask shape {m.shape} does not match the feature map's (h, w) = {tuple(shape)}")
        out[str(part)] = m
    return out


def labelled_frame(frame: Any, labels: Mapping[str, Any]) -> Any:
    """Prepend constant columns (``model="sam2"``, ``layer=...``) to a tidy frame."""
    for i, (key, value) in enumerate(labels.items()):
        if key in frame.columns:
            raise ValueError(f"labels: {key!r} is already a column of this table")
        frame.insert(i, key, value)
    return frame
