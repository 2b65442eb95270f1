"""Masks in arrays, in image files and in COCO json: one rule, one file reader, one RLE codec.

**A mask array** (:func:`as_bool_mask`: prompts, metrics) is booleans, or numbers all in
``{0, 1}``, or numbers all in ``{0, 255}`` (255 = foreground); anything else is a ``ValueError``
naming the argument.

**A mask file** (:func:`load_binary_png`: the ``folder`` dataset, segment's ``--reference-mask``,
annotate's references, the notebooks' prompts, the probes' frame masks) is read as a viewer
shows it (EXIF orientation applied, transparency ignored), then by what it holds:

* a grey file (1-, 8-, 16- or 32-bit) holds numbers: the array rule above, and ``0/65535`` in a
  16-bit file;
* a colour file (palette, RGB, RGBA, CMYK) holds colours: at most two, the darker (by luminance
  ``0.299 R + 0.587 G + 0.114 B``) is background and the brighter the object, whatever their
  palette indices or channels; a one-colour file is all background if black, else all object.
  Three colours or more, or two equally bright ones, are a ``ValueError`` naming the file.

So one picture reads as the same mask saved as 0/255 or 0/1 grey, as a palette (VOC-style black
index 0 under a coloured index 1, or a white object at index 0 over black) or as RGB. (Published
datasets with their own mask formats keep their readers: label maps by index, FSS-1000's
grey ``>= 128``; see :mod:`sansa_probe.data`.)

**COCO RLE** (:func:`encode_rle`, :func:`decode_rle`, :func:`rle_area`, :func:`rle_bbox`,
:func:`decode_segmentation`): pycocotools' codec. The Fortran-ordered ``uint8`` array it encodes,
the ``bytes`` counts it decodes and the JSON-ready ``str`` counts we write are converted here only.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from sansa_probe.io.images import open_image
from sansa_probe.io.atomic import atomic_write_bytes

__all__ = [
    "MASK_TINTS",
    "as_bool_mask",
    "contrasting_tint",
    "load_binary_png",
    "encode_rle",
    "decode_rle",
    "rle_area",
    "rle_bbox",
    "decode_segmentation",
    "mask_bbox",
    "overlay",
    "save_png",
]

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_GREY_MODES = ("1", "L", "LA", "F", *_SIXTEEN_BIT_MODES)


def as_bool_mask(value, *, name: str) -> np.ndarray:
    """The array rule (module docstring): a boolean / 0-1 / 0-255 array (or tensor, or PIL
    image) as an ``HxW`` bool array; an ``HxWx1`` array is taken as ``HxW``."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D HxW mask, got an array of shape {array.shape}")
    if array.dtype == bool:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name}: expected a boolean or numeric mask, got dtype {array.dtype}")
    values = np.unique(array)
    if np.all(np.isin(values, (0, 1))):
        return array.astype(bool)
    if np.all(np.isin(values, (0, 255))):
        return array == 255
    shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
    raise ValueError(
        f"{name}: expected a binary mask (values in {{0, 1}} or {{0, 255}} or booleans), "
        f"found values {{{shown}}}"
    )


# --------------------------------------------------------------------------- mask files


def load_binary_png(path: str | os.PathLike, *, name: str) -> np.ndarray:
    """A mask file (PNG or any image format) as ``HxW`` bool, by the file rule of the module docstring.

    ``FileNotFoundError`` for a missing file, ``ValueError`` for an undecodable or non-binary
    one; both name ``name`` and the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: mask file {path} does not exist")
    pil = open_image(path, name=name)
    where = f"{name} ({path})"
    if pil.mode not in _GREY_MODES:
        return _colour_mask(pil, name=where)
    if pil.mode in _SIXTEEN_BIT_MODES:
        array = np.asarray(pil)
        if np.isin(np.unique(array), (0, 65535)).all():
            return array == 65535
        return as_bool_mask(array, name=where)
    return as_bool_mask(np.asarray(pil.convert("L") if pil.mode == "LA" else pil), name=where)


def _colour_mask(pil: Image.Image, *, name: str) -> np.ndarray:
    """A palette or colour file: the brighter of its (at most two) colours is the object."""
    kind = "palette" if pil.mode in ("P", "PA") else "colour"
    rgb = np.asarray(pil.convert("RGB")).astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # (H, W): one int per colour
    used = np.unique(packed)
    colours = {int(p): (int(p) >> 16, (int(p) >> 8) & 255, int(p) & 255) for p in used}
    if used.size > 2:
        shown = ", ".join(str(c) for c in list(colours.values())[:6])
        raise ValueError(f"{name}: expected a binary mask, found a {kind} image using {used.size} colours ({shown})")
    luminance = {p: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] for p, c in colours.items()}
    if used.size == 1:
        return np.full(packed.shape, luminance[int(used[0])] > 0)
    dark, bright = sorted(luminance, key=luminance.get)
    if luminance[dark] == luminance[bright]:
        raise ValueError(
            f"{name}: {kind} mask whose two colours {colours[dark]} and {colours[bright]} are equally bright; "
            "expected a darker background and a brighter object"
        )
    return packed == bright


# --------------------------------------------------------------------------- COCO RLE


def _coco_rle(rle: Mapping[str, Any]) -> dict[str, Any]:
    """pycocotools' form of one RLE: compressed ``bytes`` counts (uncompressed list counts are compressed)."""
    size = [int(v) for v in rle["size"]]
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        return mask_utils.frPyObjects({"size": size, "counts": counts}, *size)
    return {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def _decode(rle: Mapping[str, Any]) -> np.ndarray:
    with warnings.catch_warnings():  # pycocotools' numpy-2 copy warning
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """``HxW`` mask (bool or 0/1) -> COCO compressed RLE ``{"size": [H, W], "counts": str}`` (JSON-ready).

    A Fortran-ordered ``uint8`` mask (e.g. the transpose of a C-ordered ``(W, H)`` array) is
    encoded without a copy."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """One COCO RLE (counts as ``str``, ``bytes`` or an uncompressed list) -> ``HxW`` bool."""
    return _decode(_coco_rle(rle))


def rle_area(rle: Mapping[str, Any]) -> int:
    """Foreground pixels of one RLE, counted on the RLE (no decoding)."""
    return int(mask_utils.area(_coco_rle(rle)))


def rle_bbox(rle: Mapping[str, Any]) -> list[float]:
    """COCO box ``[x, y, width, height]`` of one RLE (zeros when empty), computed on the RLE."""
    return [float(v) for v in mask_utils.toBbox(_coco_rle(rle))]


def decode_segmentation(segm: Any, *, height: int, width: int, where: str) -> np.ndarray:
    """A COCO-style segmentation as an ``HxW`` bool mask.

    Accepts polygons (a list of ``[x0, y0, x1, y1, ...]`` lists), an RLE dict (compressed
    ``counts`` as str/bytes, or uncompressed as a list of ints), a list of RLE dicts (their
    union), or an ``HxW`` array. An RLE whose ``size`` differs from ``(height, width)``
    raises ``ValueError`` naming ``where``.
    """
    if isinstance(segm, np.ndarray):
        if segm.shape != (height, width):
            raise ValueError(f"{where}: mask array of shape {segm.shape}, expected the image size {(height, width)}")
        return segm.astype(bool)
    if isinstance(segm, Mapping):
        segm = [segm]
    if not isinstance(segm, (list, tuple)):
        raise ValueError(f"{where}: segmentation of type {type(segm).__name__}; expected polygons, an RLE dict or an array")
    if len(segm) == 0:
        return np.zeros((height, width), dtype=bool)
    if all(isinstance(s, Mapping) for s in segm):
        for rle in segm:
            if "size" not in rle or "counts" not in rle:
                raise ValueError(f"{where}: RLE without 'size' and 'counts'")
            size = [int(v) for v in rle["size"]]
            if size != [height, width]:
                raise ValueError(
                    f"{where}: mask of size {size[0]}x{size[1]} (HxW) but the image is {height}x{width}: "
                    "a mask must have the size of its image"
                )
        rles = [_coco_rle(rle) for rle in segm]
        return _decode(mask_utils.merge(rles) if len(rles) > 1 else rles[0])
    polygons = [np.asarray(p, dtype=np.float64).ravel().tolist() for p in segm]
    polygons = [p for p in polygons if len(p) >= 6]
    if not polygons:
        return np.zeros((height, width), dtype=bool)
    return _decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)))


# --------------------------------------------------------------------------- boxes, overlays, writing


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO box ``[x, y, width, height]`` of the mask's pixels (zeros for an empty mask)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols.min()), float(rows.min()), float(cols.max() - cols.min() + 1), float(rows.max() - rows.min() + 1)]


MASK_TINTS: tuple[tuple[int, int, int], ...] = ((30, 144, 255), (255, 215, 0), (255, 0, 255), (0, 230, 0))  # blue, else yellow, magenta, green


def contrasting_tint(image: np.ndarray, mask: np.ndarray, *, tints: tuple[tuple[int, int, int], ...] = MASK_TINTS,
                     distance: float = 150.0) -> tuple[int, int, int]:
    """The tint a mask is drawn in over ``image``: the first of ``tints`` (blue) whose RGB distance
    to the median colour under the mask is at least ``distance``, else the farthest one, so that a
    blue object is not tinted blue. An empty mask gets the first tint."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return tints[0]
    median = np.median(np.asarray(image)[mask].reshape(-1, 3).astype(np.float64), axis=0)
    gaps = [float(np.linalg.norm(np.asarray(t, dtype=np.float64) - median)) for t in tints]
    for tint, gap in zip(tints, gaps):
        if gap >= distance:
            return tint
    return tints[int(np.argmax(gaps))]


def overlay(image: np.ndarray, mask: np.ndarray, *, color: tuple[int, int, int] | None = None, alpha: float = 0.5) -> np.ndarray:
    """The image with the mask blended in ``color`` and its outline drawn (``HxWx3`` uint8);
    ``color`` ``None``: :func:`contrasting_tint` (blue unless the object is blue-ish)."""
    mask = np.asarray(mask, dtype=bool)
    tint = np.asarray(contrasting_tint(image, mask) if color is None else color, dtype=np.float32)
    out = image.astype(np.float32).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * tint
    edge = mask & ~_erode(mask)
    out[edge] = tint
    return out.clip(0, 255).astype(np.uint8)


def _erode(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1, constant_values=False)
    return padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def save_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a bool mask (as 0/255) or an RGB uint8 array as PNG, atomically."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
