"""Classes and folds of the procedural benchmark: a class is a (shape, texture) pair.

Class ``c`` is ``(SHAPES[(c % 16 + c // 16) % 16], TEXTURES[c // 16])``, so each texture block of
16 classes covers every shape once and every fold; class ``c`` is a test class of fold ``c % 4``
(COCO-20i's interleaved rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "SHAPES", "TEXTURES", "MAX_CLASSES", "DEFAULT_CLASSES", "N_FOLDS", "SPLIT_CODES",
    "check_ints", "check_n_classes", "check_class", "class_shape_texture", "synthetic_class_name", "synthetic_fold_classes",
]  # fmt: skip

SHAPES: tuple[str, ...] = (
    "star", "ring", "cross", "heart", "crescent", "arrow", "triangle", "square",
    "hexagon", "blob", "disk", "gear", "bowtie", "ell", "trefoil", "frame",
)  # fmt: skip
TEXTURES: tuple[str, ...] = ("striped", "checkered", "dotted", "speckled", "shaded")
MAX_CLASSES = len(SHAPES) * len(TEXTURES)
DEFAULT_CLASSES = 64
N_FOLDS = 4
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def check_ints(**ranges: tuple[Any, int, int]) -> None:
    """``name=(value, low, high)``: each value an int in ``low..high``, else a ``ValueError`` naming it."""
    for name, (value, low, high) in ranges.items():
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name}: expected an int in {low}..{high}, got {value!r}")


def check_n_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or not 2 * N_FOLDS <= n_classes <= MAX_CLASSES:
        raise ValueError(f"n_classes: expected an int in {2 * N_FOLDS}..{MAX_CLASSES}, got {n_classes!r}")
    return n_classes


def check_class(class_id: Any, n_classes: int) -> int:
    if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) or not 0 <= class_id < n_classes:
        raise ValueError(f"class_id: expected an int in 0..{n_classes - 1} (synthetic class ids), got {class_id!r}")
    return int(class_id)


def class_shape_texture(class_id: int) -> tuple[str, str]:
    """The ``(shape, texture)`` pair of a class id in ``0..MAX_CLASSES - 1``."""
    c = check_class(class_id, MAX_CLASSES)
    return SHAPES[(c % len(SHAPES) + c // len(SHAPES)) % len(SHAPES)], TEXTURES[c // len(SHAPES)]


def synthetic_class_name(class_id: int) -> str:
    """A readable name such as ``"striped-star"``."""
    shape, texture = class_shape_texture(class_id)
    return f"{texture}-{shape}"


def synthetic_fold_classes(fold: int, split: str = "test", *, n_classes: int = DEFAULT_CLASSES) -> list[int]:
    """Sorted class ids of ``fold``: its test classes (``c % 4 == fold``) or, for ``"train"``, the rest."""
    check_n_classes(n_classes)
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < N_FOLDS:
        raise ValueError(f"fold: expected an int in 0..{N_FOLDS - 1}, got {fold!r}")
    if split not in SPLIT_CODES:
        raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
    if split == "train":
        return [c for c in range(n_classes) if c % N_FOLDS != fold]
    return [c for c in range(n_classes) if c % N_FOLDS == fold]
