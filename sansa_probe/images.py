"""Reading and validating images, and turning them into SAM2 input tensors.

Images may be given as file paths, PIL images or ``HxWx3`` uint8 arrays, of any size.
SAM2's own frame loader resizes every frame to a square ``image_size`` with PIL's default
(bicubic) filter and normalises with ImageNet statistics; :func:`to_model_input` does the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageInput", "IMAGE_SUFFIXES", "decode_image_file", "load_rgb", "to_model_input", "batch_to_model_input", "list_images"]

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_rgb(image: ImageInput, *, name: str = "image") -> np.ndarray:
    """Return the image as an ``HxWx3`` uint8 RGB array; ``ValueError`` names what is wrong.

    Grayscale, palette and RGBA files are converted to RGB (the usual behaviour of image
    tools); an array must already be ``HxWx3`` uint8.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: image file {path} does not exist")
        return decode_image_file(path, name=name)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
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


def decode_image_file(path: Path, *, name: str) -> np.ndarray:
    """Decode an existing image file as ``HxWx3`` uint8 RGB (grayscale, palette, RGBA, CMYK converted).

    EXIF orientation is not applied: annotations are drawn on the stored pixels.
    """
    try:
        with Image.open(path) as pil:
            pil.load()
            return np.asarray(pil.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{name}: {path} cannot be decoded as an image ({exc}); expected a readable JPEG/PNG image") from None


def to_model_input(image: np.ndarray, image_size: int) -> torch.Tensor:
    """``HxWx3`` uint8 -> ``(3, S, S)`` float32, resized like sam2's loader and ImageNet-normalised."""
    pil = Image.fromarray(image)
    if pil.size != (image_size, image_size):
        pil = pil.resize((image_size, image_size), Image.Resampling.BICUBIC)
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
