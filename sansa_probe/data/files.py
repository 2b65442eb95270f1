"""The file readers every dataset module shares: images, image sizes, label maps, size checks.

Binary mask files and COCO segmentations are read by :mod:`sansa_probe.io.masks` (one rule for
every path); a label map here is a published dataset's single-channel PNG of class indices, read
as raw values (a palette PNG by its indices, not its colours). A missing file raises
:class:`~sansa_probe.data.registry.DatasetNotFoundError`, an undecodable one ``ValueError``;
both name the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sansa_probe.data.registry import DatasetNotFoundError
from sansa_probe.io.images import check_image_header, decode_image_file, open_image_raw

__all__ = ["read_rgb", "read_image_size", "read_label_png", "check_same_size"]


def read_rgb(path: str | os.PathLike, *, what: str = "image") -> np.ndarray:
    """The image file at ``path`` as an ``HxWx3`` uint8 RGB array.

    Grayscale, palette, RGBA and CMYK files are converted to RGB, read as a viewer shows them
    (EXIF orientation applied, 16-bit scaled; see :mod:`sansa_probe.io.images`).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} {path} does not exist")
    return decode_image_file(path, name=what)


def read_image_size(path: str | os.PathLike, *, what: str = "image") -> tuple[int, int]:
    """``(H, W)`` of the image file at ``path``, read from its header only."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} {path} does not exist")
    return check_image_header(path, name=what)  # within the pixel limit, or refused naming the file


def read_label_png(path: str | os.PathLike, *, what: str = "label map") -> np.ndarray:
    """A single-channel label map (gray or palette PNG) as an ``HxW`` integer array of raw values."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} {path} does not exist")
    pil = open_image_raw(path, name=what, expected="a PNG mask")  # the pixel limit checked from the header first
    if pil.mode in ("RGBA", "LA", "PA"):
        pil = pil.convert("RGB" if pil.mode == "RGBA" else "L")
    array = np.asarray(pil)
    if array.ndim != 2:
        raise ValueError(f"{what} {path}: expected a single-channel (gray or palette) PNG, got shape {array.shape}")
    return array


def check_same_size(mask_hw: tuple[int, int], image_hw: tuple[int, int], *, mask_what: str, image_what: str) -> None:
    """``ValueError`` naming both files when a mask's ``(H, W)`` differs from its image's."""
    if tuple(mask_hw) != tuple(image_hw):
        raise ValueError(
            f"{mask_what} has size {mask_hw[0]}x{mask_hw[1]} (HxW) but {image_what} is "
            f"{image_hw[0]}x{image_hw[1]}: a mask must have the size of its image"
        )
