"""Mask helpers shared by the commands: validation (:func:`as_bool_mask`), COCO RLE (pycocotools),
boxes, overlays, PNG writing."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from sansa_probe.io.atomic import atomic_write_bytes

__all__ = ["as_bool_mask", "encode_rle", "decode_rle", "mask_bbox", "overlay", "save_png", "load_binary_png"]


def as_bool_mask(value, *, name: str) -> np.ndarray:
    """The one mask rule of the package: a boolean / 0-1 / 0-255 array (or tensor, or PIL image)
    as an ``HxW`` bool array.

    Prompts, metrics and mask files all accept exactly these: booleans, numbers whose values are
    all in ``{0, 1}``, or numbers whose values are all in ``{0, 255}`` (255 = foreground, as in
    PNG masks); an ``HxWx1`` array is taken as ``HxW``. Anything else raises a ``ValueError``
    naming ``name``.
    """
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


def encode_rle(mask: np.ndarray) -> dict:
    """``HxW`` bool -> COCO compressed RLE ``{"size": [H, W], "counts": str}`` (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    counts = rle["counts"]
    return mask_utils.decode({"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}).astype(bool)


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO box ``[x, y, width, height]`` of the mask's pixels (zeros for an empty mask)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols.min()), float(rows.min()), float(cols.max() - cols.min() + 1), float(rows.max() - rows.min() + 1)]


def overlay(image: np.ndarray, mask: np.ndarray, *, color: tuple[int, int, int] = (30, 144, 255), alpha: float = 0.5) -> np.ndarray:
    """The image with the mask blended in ``color`` and its outline drawn (``HxWx3`` uint8)."""
    out = image.astype(np.float32).copy()
    tint = np.asarray(color, dtype=np.float32)
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


def load_binary_png(path: str | os.PathLike, *, name: str) -> np.ndarray:
    """A mask file as ``HxW`` bool, read as a viewer shows it (EXIF orientation applied).

    Two-valued files only: 0/1 or 0/255 grey (or RGB), 0/65535 16-bit, and palette files.
    A palette file is read through its colours, not its indices: of the (at most two) colours
    it uses, the darker is background and the brighter the object, as for grey masks. So a
    VOC-style palette (index 0 black background, index 1 a colour) and a palette whose index 0
    is a white object over black index 1 both read as they look; a one-colour file is all
    background if that colour is black, else all object.
    """
    from sansa_probe.io.images import open_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: mask file {path} does not exist")
    pil = open_image(path, name=name)
    where = f"{name} ({path})"
    if pil.mode in ("P", "PA"):
        return _palette_mask(pil, name=where)
    if pil.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(pil)
        if np.isin(np.unique(array), (0, 65535)).all():
            return array == 65535
        return as_bool_mask(array, name=where)
    array = np.asarray(pil if pil.mode in ("1", "L") else pil.convert("L"))
    return as_bool_mask(array, name=where)


def _palette_mask(pil: Image.Image, *, name: str) -> np.ndarray:
    indices = np.asarray(pil.convert("P") if pil.mode == "PA" else pil)
    used = np.unique(indices)
    rgb = np.asarray(pil.convert("RGB"))
    colours = {int(i): tuple(int(v) for v in rgb[indices == i][0]) for i in used}
    if len(used) > 2:
        shown = ", ".join(f"{i}: {c}" for i, c in list(colours.items())[:6])
        raise ValueError(f"{name}: expected a binary mask, found a palette image using {len(used)} colours ({shown})")
    luminance = {i: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] for i, c in colours.items()}
    if len(used) == 1:
        only = int(used[0])
        return np.full(indices.shape, luminance[only] > 0)
    dark, bright = sorted(luminance, key=luminance.get)
    if luminance[dark] == luminance[bright]:
        raise ValueError(
            f"{name}: palette mask whose two colours {colours[dark]} and {colours[bright]} are equally bright; "
            "expected a darker background and a brighter object"
        )
    return indices == bright
