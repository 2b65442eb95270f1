"""How images and prompts enter the model, and at which resolution predictions are scored.

A :class:`Protocol` is the one pluggable object between pixels and the model:

* ``images(arrays)``: ``HxWx3`` uint8 images -> ``(B, 3, S, S)`` normalised model input;
* ``prompt(prompt, size=(H, W))``: a reference prompt in its image's pixels -> sam2 inputs at ``S``;
* ``clicks(coords, labels, size=(H, W))``: clicks given in *output* pixels of an image of size
  ``(H, W)`` -> sam2 ``point_inputs`` at ``S``;
* ``output_size((H, W))``: where an image's prediction lives and is scored;
* ``logits(low_res, size=(H, W))``: low-resolution logits ``(B, 1, S/4, S/4)`` -> float32
  ``(B, 1, *output_size)``;
* ``ground_truth(mask)``: an ``HxW`` ground-truth (or ignore) mask -> the output size.

:class:`HsnetProtocol` is the behaviour of every command today: sam2's loader resizing (PIL
bicubic to ``S x S``), predictions resized bilinearly from the low-resolution logits straight
to the image's own size and scored there, against the untouched ground truth (as HSNet and
its successors score).

:class:`ReleaseProtocol` is the public SANSA release's (its evaluation script; the paper's
tables come from it): an image goes to a per-dataset square (each dataset's
``DatasetSpec.release_square``; 640 for COCO-20i, LVIS-92i, PACO-Part, ADE20K and other images,
518 for FSS-1000 and Pascal-Part) with
PIL bilinear, then to ``S`` with torch bilinear (antialiased); a reference mask goes nearest to
the square, bilinear (antialiased) to ``S``, then ``> 0``; predictions are upsampled from the
low-resolution logits to the square and scored against the ground truth nearest-resized to it
(``output="square"``). For users' own images (predictor, ``segment``, ``annotate``),
``output="image"`` keeps the release's input path but returns predictions at each image's own
size. A protocol subclasses :class:`Protocol` and registers in :data:`PROTOCOLS`.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sansa_probe.data.registry import DEFAULT_RELEASE_SQUARE, get_spec
from sansa_probe.io.images import batch_to_model_input, pil_to_normalised, to_model_input
from sansa_probe.model.prompting import PromptInputs, points_to_inputs, prompt_to_inputs
from sansa_probe.prompts.types import Mask, Prompt
from sansa_probe.utils.precision import upsample_logits

__all__ = ["Protocol", "HsnetProtocol", "ReleaseProtocol", "PROTOCOLS", "get_protocol", "release_square"]


class Protocol:
    """Base class: a protocol is built for one model input size ``image_size`` (``S``).

    Subclasses override what differs; instances are small and picklable (DataLoader workers
    call :meth:`image` and :meth:`prompt`).
    """

    name: ClassVar[str] = ""

    def __init__(self, *, image_size: int) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size: expected a positive int, got {image_size!r}")
        self.image_size = image_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(image_size={self.image_size})"

    def image(self, image: np.ndarray) -> torch.Tensor:
        """``HxWx3`` uint8 -> ``(3, S, S)`` float32 model input."""
        raise NotImplementedError

    def images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``B`` images -> ``(B, 3, S, S)``."""
        return torch.stack([self.image(image) for image in images])

    def prompt(self, prompt: Prompt, *, size: tuple[int, int]) -> PromptInputs:
        """A prompt of an image of ``size = (H, W)`` -> sam2 inputs at ``S``."""
        raise NotImplementedError

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The ``(H', W')`` at which an image of ``size`` gets its prediction and its score."""
        raise NotImplementedError

    def clicks(self, coords: np.ndarray, labels: np.ndarray, *, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """``(N, 2)`` (x, y) clicks in output pixels of an image of ``size`` -> sam2 ``point_inputs``."""
        height, width = self.output_size(size)
        return points_to_inputs(coords, labels, height=height, width=width, image_size=self.image_size)

    def logits(self, low_res_logits: torch.Tensor, *, size: tuple[int, int]) -> torch.Tensor:
        """``(B, 1, h, w)`` low-resolution logits of images of ``size`` -> ``(B, 1, H', W')`` float32."""
        raise NotImplementedError

    def ground_truth(self, mask: np.ndarray | None) -> np.ndarray | None:
        """An ``HxW`` bool ground-truth or ignore mask (or None) at the output size."""
        raise NotImplementedError


class HsnetProtocol(Protocol):
    """sam2's loader resizing in, the image's own size out (see the module docstring)."""

    name = "hsnet"

    def image(self, image: np.ndarray) -> torch.Tensor:
        return to_model_input(image, self.image_size)

    def images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return batch_to_model_input(images, self.image_size)

    def prompt(self, prompt: Prompt, *, size: tuple[int, int]) -> PromptInputs:
        return prompt_to_inputs(prompt, height=int(size[0]), width=int(size[1]), image_size=self.image_size)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return int(size[0]), int(size[1])

    def logits(self, low_res_logits: torch.Tensor, *, size: tuple[int, int]) -> torch.Tensor:
        # as sam2's video predictor: low-resolution logits straight to the original size
        return upsample_logits(low_res_logits, self.output_size(size))

    def ground_truth(self, mask: np.ndarray | None) -> np.ndarray | None:
        return mask


class ReleaseProtocol(Protocol):
    """The public SANSA release's preprocessing and scoring (see the module docstring).

    Args:
        image_size: the model input size ``S``.
        square: the side of the square every image is first resized to (``None``: the image's
            own size, no first resize); :func:`release_square` gives a dataset's.
        output: ``"square"`` (predictions and ground truth at the square: the release's scoring)
            or ``"image"`` (predictions at each image's own size: for users' images).
    """

    name = "release"

    def __init__(self, *, image_size: int, square: int | None = DEFAULT_RELEASE_SQUARE, output: str = "square") -> None:
        super().__init__(image_size=image_size)
        if square is not None and (isinstance(square, bool) or not isinstance(square, int) or square < 1):
            raise ValueError(f"square: expected a positive int or None, got {square!r}")
        if output not in ("square", "image"):
            raise ValueError(f"output: expected 'square' or 'image', got {output!r}")
        self.square, self.output = square, output

    def __repr__(self) -> str:
        return f"ReleaseProtocol(image_size={self.image_size}, square={self.square}, output={self.output!r})"

    def _square(self, size: tuple[int, int]) -> tuple[int, int]:
        return (int(size[0]), int(size[1])) if self.square is None else (self.square, self.square)

    def image(self, image: np.ndarray) -> torch.Tensor:
        pil = Image.fromarray(image)
        height, width = self._square(image.shape[:2])
        if pil.size != (width, height):
            pil = pil.resize((width, height), Image.Resampling.BILINEAR)
        tensor = pil_to_normalised(pil)  # (3, h, w)
        if tuple(tensor.shape[-2:]) != (self.image_size, self.image_size):
            tensor = F.interpolate(tensor[None], size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True)[0]
        return tensor

    def prompt(self, prompt: Prompt, *, size: tuple[int, int]) -> PromptInputs:
        if not isinstance(prompt, Mask):  # clicks, boxes, strokes: coordinates scale linearly through the square
            return prompt_to_inputs(prompt, height=int(size[0]), width=int(size[1]), image_size=self.image_size)
        mask = torch.from_numpy(_nearest(prompt.mask, self._square(size)).astype(np.float32))[None, None]  # (1, 1, h, w)
        if tuple(mask.shape[-2:]) != (self.image_size, self.image_size):
            mask = F.interpolate(mask, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True)
        return PromptInputs(kind="mask", mask_inputs=(mask > 0).float())

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return (int(size[0]), int(size[1])) if self.output == "image" else self._square(size)

    def logits(self, low_res_logits: torch.Tensor, *, size: tuple[int, int]) -> torch.Tensor:
        return upsample_logits(low_res_logits, self.output_size(size))

    def ground_truth(self, mask: np.ndarray | None) -> np.ndarray | None:
        if mask is None or self.output == "image":
            return mask
        return _nearest(mask, self._square(mask.shape[:2]))


def _nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An ``HxW`` mask nearest-resized (PIL) to ``size = (h, w)``, dtype kept."""
    if tuple(mask.shape[:2]) == tuple(size):
        return mask
    resized = Image.fromarray(np.asarray(mask).astype(np.uint8)).resize((size[1], size[0]), Image.Resampling.NEAREST)
    return np.asarray(resized).astype(mask.dtype)


PROTOCOLS: dict[str, type[Protocol]] = {ReleaseProtocol.name: ReleaseProtocol, HsnetProtocol.name: HsnetProtocol}


def release_square(dataset: str | None) -> int | None:
    """The release's square side for a registered dataset name (its ``DatasetSpec.release_square``;
    ``None`` or a name not registered: the release's square for other images, 640)."""
    if dataset is None:
        return DEFAULT_RELEASE_SQUARE
    try:
        spec = get_spec(dataset)
    except ValueError:  # not a registered dataset: the release's square for other images
        return DEFAULT_RELEASE_SQUARE
    return spec.release_square


def get_protocol(name: str, *, image_size: int, dataset: str | None = None, output: str = "square") -> Protocol:
    """The protocol called ``name`` (one of :data:`PROTOCOLS`) for model input size ``image_size``.

    ``dataset`` (a registered name) picks the release's square; ``output`` is the release's
    ``"square"`` (benchmarks) or ``"image"`` (users' images). The ``hsnet`` protocol ignores both.
    """
    if name not in PROTOCOLS:
        raise ValueError(f"protocol {name!r}: expected one of {', '.join(PROTOCOLS)}")
    if name == ReleaseProtocol.name:
        return ReleaseProtocol(image_size=image_size, square=release_square(dataset), output=output)
    return PROTOCOLS[name](image_size=image_size)
