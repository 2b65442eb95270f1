"""Reading and validating images, and turning them into SAM2 input tensors.

Images may be given as file paths, PIL images or ``HxWx3`` uint8 arrays, of any size.

Files are read as every image viewer shows them:

* the EXIF orientation tag is applied (a photo taken sideways comes out upright, and a mask
  drawn on the photo as displayed lands on the right pixels);
* 16-bit images are scaled (``v * 255 / 65535``, so 8-bit content stored in 16 bits comes back
  exactly), never clipped; float images in ``[0, 1]`` are scaled by 255, other float ranges are
  stretched linearly from their minimum and maximum to ``0..255``; non-finite values are refused;
* an image with more pixels than the limit (:func:`max_image_pixels`, 100 Mpx unless set by
  :func:`set_max_image_pixels` / every command's ``--max-image-pixels``) is refused with a clear
  error from its header, before it is decoded: a file of a few hundred bytes may claim
  12000 x 12000 pixels, which a decoder would allocate in full. Every reader of image and mask
  files (:func:`open_image`, :func:`open_image_raw`, :func:`check_image_header`) checks it.

SAM2's own frame loader resizes every frame to a square ``image_size`` with PIL's default
(bicubic) filter and normalises with ImageNet statistics; :func:`to_model_input` does the same.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageInput", "IMAGE_SUFFIXES", "DEFAULT_MAX_IMAGE_PIXELS", "ImageTooLargeError", "max_image_pixels", "set_max_image_pixels",
           "image_pixel_limit", "check_image_size", "open_image", "open_image_raw", "check_image_header", "pil_to_rgb", "decode_image_file", "load_rgb", "to_model_input", "pil_to_normalised", "batch_to_model_input", "list_images", "collect_images"]

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_rgb(image: ImageInput, *, name: str = "image") -> np.ndarray:
    """Return the image as an ``HxWx3`` uint8 RGB array; ``ValueError`` names what is wrong.

    Files and PIL images are read as a viewer shows them (module docstring); an array must
    already be ``HxWx3`` uint8.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: image file {path} does not exist")
        return decode_image_file(path, name=name)
    if isinstance(image, Image.Image):
        return pil_to_rgb(ImageOps.exif_transpose(image), name=name)
    if hasattr(image, "detach"):  # a torch tensor: accept HxWx3 uint8 only, as for arrays
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"{name}: expected an RGB image of shape HxWx3, got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"{name}: expected a uint8 RGB array (values 0..255), got dtype {array.dtype}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name}: empty image of shape {array.shape}")
    return array


DEFAULT_MAX_IMAGE_PIXELS = 100_000_000  # 100 Mpx: a 10000 x 10000 photograph; far above any dataset image
_LIMIT = {"pixels": DEFAULT_MAX_IMAGE_PIXELS}  # process-wide (forked DataLoader workers inherit it)


class ImageTooLargeError(ValueError):
    """An image file's header claims more pixels than :func:`max_image_pixels`; it was not decoded."""


def max_image_pixels() -> int:
    """The most pixels an image file may have to be decoded (default :data:`DEFAULT_MAX_IMAGE_PIXELS`)."""
    return _LIMIT["pixels"]


def set_max_image_pixels(pixels: int) -> int:
    """Set the pixel limit of every image reader (``--max-image-pixels``); returns the previous one."""
    pixels = int(pixels)
    if pixels < 1:
        raise ValueError(f"--max-image-pixels {pixels}: expected a positive number of pixels")
    previous, _LIMIT["pixels"] = _LIMIT["pixels"], pixels
    return previous


@contextlib.contextmanager
def image_pixel_limit(pixels: int) -> Iterator[int]:
    """The pixel limit set to ``pixels`` for the block (a command's run), then restored."""
    previous = set_max_image_pixels(pixels)
    try:
        yield pixels
    finally:
        _LIMIT["pixels"] = previous


def check_image_size(size: tuple[int, int], path: str | os.PathLike, *, name: str) -> None:
    """Refuse a ``(W, H)`` read from ``path``'s header above :func:`max_image_pixels`, naming the file."""
    width, height = (int(v) for v in size)
    limit = max_image_pixels()
    if width * height > limit:
        raise ImageTooLargeError(
            f"{name}: {path} is {width} x {height} pixels by its header ({width * height / 1e6:.0f} Mpx), above the limit of "
            f"{limit} pixels; it was not decoded (raise the limit with --max-image-pixels if the image is genuine)"
        )


@contextlib.contextmanager
def _decoding_errors(path: Path, *, name: str, expected: str = "a readable JPEG/PNG image") -> Iterator[None]:
    """PIL's failures on ``path`` as one ``ValueError`` naming the file and what was expected. The
    size limit is ours (:func:`check_image_size`): PIL's own bomb check and warning stand aside for
    the block (restored after)."""
    pil_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        yield
    except ImageTooLargeError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{name}: {path} cannot be decoded as an image ({exc}); expected {expected}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pil_limit


def open_image_raw(path: str | os.PathLike, *, name: str, expected: str = "a readable JPEG/PNG image") -> Image.Image:
    """Decode an image file into memory as stored (no EXIF orientation: label maps), once its
    header's size is within :func:`max_image_pixels`. ``ValueError`` names ``path``."""
    path = Path(path)
    with _decoding_errors(path, name=name, expected=expected), Image.open(path) as pil:
        check_image_size(pil.size, path, name=name)
        pil.load()
        return pil


def open_image(path: str | os.PathLike, *, name: str) -> Image.Image:
    """Decode an image file into memory with its EXIF orientation applied, once its header's size
    is within :func:`max_image_pixels`.

    ``ValueError`` names ``path`` when the file is not a readable image or is too large.
    """
    path = Path(path)
    with _decoding_errors(path, name=name), Image.open(path) as pil:
        check_image_size(pil.size, path, name=name)
        pil.load()
        return ImageOps.exif_transpose(pil)


def check_image_header(path: str | os.PathLike, *, name: str) -> tuple[int, int]:
    """``(H, W)`` stored in the file's header (no decoding): a cheap check that ``path`` is an
    image within :func:`max_image_pixels`, made before any work. ``ValueError`` names the file."""
    path = Path(path)
    with _decoding_errors(path, name=name), Image.open(path) as pil:
        check_image_size(pil.size, path, name=name)
        width, height = pil.size
    return int(height), int(width)


def decode_image_file(path: Path, *, name: str) -> np.ndarray:
    """Decode an existing image file as ``HxWx3`` uint8 RGB, as a viewer shows it (module docstring).

    Grayscale, palette, RGBA and CMYK files are converted to RGB.
    """
    return pil_to_rgb(open_image(path, name=name), name=f"{name}: {path}")


_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def pil_to_rgb(pil: Image.Image, *, name: str = "image") -> np.ndarray:
    """A PIL image as ``HxWx3`` uint8 RGB; 16-bit and float images scaled, not clipped."""
    if pil.mode in _SIXTEEN_BIT or pil.mode in ("I", "F"):
        values = np.asarray(pil).astype(np.float64)
        if pil.mode == "F":
            if not np.isfinite(values).all():
                raise ValueError(f"{name}: float image with non-finite (NaN or infinite) pixels")
            low, high = float(values.min()), float(values.max())
            if low < 0.0 or high > 1.0:  # not in [0, 1]: stretch its own range
                values = (values - low) / (high - low) if high > low else np.zeros_like(values)
            scaled = values * 255.0
        else:
            if pil.mode == "I" and (values.min() < 0 or values.max() > 65535):
                raise ValueError(
                    f"{name}: 32-bit integer image with values {values.min():.0f}..{values.max():.0f}; "
                    "expected 8-bit, 16-bit (0..65535) or float pixels"
                )
            scaled = values * (255.0 / 65535.0)
        gray = np.rint(scaled).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(pil.convert("RGB"))


def to_model_input(image: np.ndarray, image_size: int) -> torch.Tensor:
    """``HxWx3`` uint8 -> ``(3, S, S)`` float32, resized like sam2's loader and ImageNet-normalised."""
    pil = Image.fromarray(image)
    if pil.size != (image_size, image_size):
        pil = pil.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return pil_to_normalised(pil)


def pil_to_normalised(pil: Image.Image) -> torch.Tensor:
    """An RGB PIL image -> ``(3, H, W)`` float32 in [0, 1], ImageNet-normalised."""
    tensor = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return (tensor - mean) / std


def batch_to_model_input(images: Sequence[np.ndarray], image_size: int) -> torch.Tensor:
    """A list of ``HxWx3`` uint8 arrays -> ``(B, 3, S, S)``."""
    return torch.stack([to_model_input(image, image_size) for image in images])


def list_images(folder: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by suffix), sorted for a deterministic order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def collect_images(items: Sequence[str | os.PathLike] = (), *, lists: Sequence[str | os.PathLike] = (), option: str = "--targets",
                   list_option: str = "--target-list") -> list[Path]:  # fmt: skip
    """The images a command is pointed at, by the one rule of segment and annotate.

    ``items``: files as given (in order) and folders, each expanded recursively to its images
    (:data:`IMAGE_SUFFIXES`, sorted). ``lists``: text files naming one image per line (relative to
    the list's folder; ``#`` starts a comment); their entries are kept even when missing, for the
    caller to skip and report like an unreadable image. A given path that does not exist, a given
    folder holding no image, or no image at all is an error naming ``option`` (or ``list_option``).
    """
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise FileNotFoundError(f"{option}: folder {path} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise FileNotFoundError(f"{option}: {path} does not exist (expected an image file or a folder)")
    for listing in map(Path, lists):
        if not listing.is_file():
            raise FileNotFoundError(f"{list_option}: file {listing} does not exist")
        base = listing.resolve().parent
        for line in listing.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                entry = Path(line).expanduser()
                paths.append(entry if entry.is_absolute() else base / entry)
    if not paths:
        where = ", ".join([*(f"{option} {i}" for i in items), *(f"{list_option} {i}" for i in lists)]) or f"no {option} or {list_option}"
        raise ValueError(f"no target images found ({where}); folders are searched for {', '.join(IMAGE_SUFFIXES)}")
    return paths

