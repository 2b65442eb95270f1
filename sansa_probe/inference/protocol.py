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
its successors score). Another protocol (for instance the public SANSA release's: a
per-dataset square first) subclasses :class:`Protocol` and registers in :data:`PROTOCOLS`.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np
import torch

from sansa_probe.images import batch_to_model_input, to_model_input
from sansa_probe.model.prompting import PromptInputs, points_to_inputs, prompt_to_inputs
from sansa_probe.prompts.types import Prompt
from sansa_probe.utils.precision import upsample_logits

__all__ = ["Protocol", "HsnetProtocol", "PROTOCOLS", "get_protocol"]


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


PROTOCOLS: dict[str, type[Protocol]] = {HsnetProtocol.name: HsnetProtocol}


def get_protocol(name: str, *, image_size: int, **options) -> Protocol:
    """The protocol called ``name`` (one of :data:`PROTOCOLS`) for model input size ``image_size``."""
    if name not in PROTOCOLS:
        raise ValueError(f"protocol {name!r}: expected one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name](image_size=image_size, **options)
