"""The one few-shot inference path: references -> cached memory -> targets -> logits -> masks.

Every command that predicts with SANSA goes through :class:`FewShotInference`
(``SansaPredictor``, ``evaluate``, ``annotate``, the feature hooks' few-shot forward, training's
evaluation), so that they predict the same thing::

    path = FewShotInference(model, threshold=0.0)            # protocol: ReleaseProtocol by default
    refs = prepare_references(path.protocol, images, prompts, negative_images=negatives)
    prediction = path.predict(refs, path.protocol.images([target]), [target.shape[:2]])[0]
    prediction.logits, prediction.mask, prediction.score

The steps are public for callers that split them (annotate encodes a target batch once and
segments it for many classes): :meth:`~FewShotInference.memory` (computed once per reference set
and adapter state, then reused), :meth:`~FewShotInference.encode`,
:meth:`~FewShotInference.segment`, :meth:`~FewShotInference.logits`,
:meth:`~FewShotInference.mask`. All model work calls :class:`~sansa_probe.model.SansaModel`'s
own methods (``reference_memory``, ``encode_images``, ``segment``) under ``torch.no_grad`` and
the precision of :func:`~sansa_probe.utils.precision.inference_autocast`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch

from sansa_probe.inference.protocol import Protocol, ReleaseProtocol
from sansa_probe.model.memory import MemoryEntry
from sansa_probe.model.prompting import PromptInputs
from sansa_probe.model.sansa import FrameFeatures, SansaModel, SegmentationOutput
from sansa_probe.prompts.types import Mask, Points, as_prompt
from sansa_probe.utils.precision import inference_autocast, inference_precision

__all__ = ["References", "TargetPrediction", "FewShotInference", "prepare_references", "check_threshold"]


def check_threshold(value: float, *, name: str = "threshold") -> float:
    """``value`` as a float; ``ValueError`` unless it is a finite number (a logit threshold)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a finite number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number


def _weights_version(model: SansaModel) -> int:
    """Changes whenever a parameter of ``model`` is modified in place (torch's tensor version counters)."""
    return sum(p._version for p in model.parameters())


@dataclass(eq=False)
class References:
    """k annotated references and n semantic negatives, ready for the model.

    ``frames`` ``(k + n, 3, S, S)`` model input (references first); ``prompts`` k + n sam2 prompt
    inputs (a negative's is an empty mask). The memory computed from them is cached here, per
    model, adapter state, weights (any in-place change of a parameter, such as loading adapters
    or an optimizer step, starts a new entry) and precision; :meth:`clear_memory` forgets it.
    """

    frames: torch.Tensor
    prompts: list[PromptInputs]
    num_negatives: int = 0
    _memory: dict[tuple[int, bool, int, str], list[MemoryEntry]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[1] != 3:
            raise ValueError(f"references: expected a (k, 3, S, S) tensor, got {tuple(self.frames.shape)}")
        if len(self.prompts) != self.frames.shape[0]:
            raise ValueError(f"references: {self.frames.shape[0]} frames but {len(self.prompts)} prompts")
        if len(self.prompts) - self.num_negatives < 1:
            raise ValueError("references: zero references; at least one annotated reference image is needed")

    @property
    def num_shots(self) -> int:
        return len(self.prompts) - self.num_negatives

    def clear_memory(self) -> None:
        self._memory.clear()


def prepare_references(
    protocol: Protocol,
    images: Sequence[np.ndarray],
    prompts: Sequence[object],
    *,
    negative_images: Sequence[np.ndarray] = (),
    allow_empty_masks: bool = False,
    images_name: str = "images",
    prompts_name: str = "prompts",
) -> References:
    """Validate and convert k references (``HxWx3`` uint8 arrays, any sizes) and their prompts.

    ``prompts[i]`` annotates ``images[i]`` in its pixels: ``Mask``, ``Points``, ``Box``,
    ``Scribble``, a bare ``HxW`` mask array, or sam2-ready ``PromptInputs`` (taken as they are).
    ``negative_images`` get an empty mask (paper
    appendix F). ``allow_empty_masks``: accept a mask prompt without foreground (benchmarks feed
    the reference mask as it is). Errors name ``images_name[i]`` / ``prompts_name[i]``.
    """
    images, prompts = list(images), list(prompts)
    if not images:
        raise ValueError(f"{images_name}: zero references; at least one annotated reference image is needed")
    if len(prompts) != len(images):
        raise ValueError(f"{prompts_name}: {len(prompts)} prompts for {len(images)} reference images (one prompt per image)")
    inputs = []
    for i, (image, prompt) in enumerate(zip(images, prompts)):
        if isinstance(prompt, PromptInputs):  # already sam2-ready
            inputs.append(prompt)
            continue
        prompt = as_prompt(prompt, name=f"{prompts_name}[{i}]")
        if isinstance(prompt, Mask):
            prompt.validate(*image.shape[:2], name=f"{prompts_name}[{i}]", allow_empty=allow_empty_masks)
        else:
            prompt.validate(*image.shape[:2], name=f"{prompts_name}[{i}]")
        inputs.append(protocol.prompt(prompt, size=image.shape[:2]))
    negative_images = list(negative_images)
    inputs += [protocol.prompt(Mask(np.zeros(image.shape[:2], bool)), size=image.shape[:2]) for image in negative_images]
    return References(frames=protocol.images([*images, *negative_images]), prompts=inputs, num_negatives=len(negative_images))


@dataclass
class TargetPrediction:
    """One target's prediction at the protocol's output size.

    ``logits`` float32 ``(H', W')`` tensor on the model's device, ``mask`` bool ``(H', W')``
    (``logits > threshold``), ``score`` the predicted IoU of SAM2's chosen mask.
    """

    logits: torch.Tensor
    mask: torch.Tensor
    score: float


class FewShotInference:
    """Few-shot segmentation with a :class:`SansaModel` as its adapters are switched at each call.

    Args:
        model: the model (on its device).
        protocol: preprocessing and output resolution (default :class:`ReleaseProtocol`, the
            public release's 640 px square, with predictions at each image's own size).
        threshold: logit threshold of the masks (0 = probability 0.5); must be finite.
        autocast: the precision switch of :func:`~sansa_probe.utils.precision.inference_autocast`
            (default ``None``: the model's ``precision`` option, float32 as the release runs unless
            the model was built with ``precision="bfloat16"``).
    """

    def __init__(self, model: SansaModel, *, protocol: Protocol | None = None, threshold: float = 0.0, autocast: bool | None = None) -> None:
        self.model = model
        self.protocol = ReleaseProtocol(image_size=model.image_size, output="image") if protocol is None else protocol
        if self.protocol.image_size != model.image_size:
            raise ValueError(f"protocol: built for image size {self.protocol.image_size}, the model takes {model.image_size}")
        self.threshold = check_threshold(threshold)
        self._autocast = autocast

    @property
    def autocast(self) -> bool:
        """Whether inference runs in bfloat16 autocast (on CUDA): as set, else the model's option now."""
        return bool(self.model.autocast if self._autocast is None else self._autocast)

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """``torch.no_grad`` and this path's precision."""
        with torch.no_grad(), inference_autocast(self.model.device, self.autocast):
            yield

    # ------------------------------------------------------------------ steps
    def memory(self, references: References) -> list[MemoryEntry]:
        """The reference memory (k + n entries), computed on first use per model and adapter state."""
        key = (id(self.model), self.model.adapters_enabled, _weights_version(self.model), inference_precision(self.model.device, self.autocast))
        if key not in references._memory:
            device = self.model.device
            with self.context():
                prompts = [p.to(device) for p in references.prompts]
                memory = self.model.reference_memory(references.frames.to(device), prompts)
            references._memory[key] = [entry.detach() for entry in memory]
        return references._memory[key]

    def encode(self, frames: torch.Tensor) -> FrameFeatures:
        """Image encoder on ``(B, 3, S, S)`` target frames."""
        with self.context():
            return self.model.encode_images(frames.to(self.model.device))

    def segment(self, feats: FrameFeatures, memory: Sequence[MemoryEntry], *, clicks: dict[str, torch.Tensor] | None = None) -> SegmentationOutput:
        """Memory attention and mask decoder for encoded targets; ``clicks``: sam2 ``point_inputs`` on them."""
        with self.context():
            return self.model.segment(feats, memory, point_inputs=clicks)

    def logits(self, low_res_logits: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
        """``(B, 1, h, w)`` low-resolution logits of B targets of ``sizes`` -> B float32 ``(H', W')`` maps."""
        if len(sizes) != low_res_logits.shape[0]:
            raise ValueError(f"sizes: {len(sizes)} sizes for {low_res_logits.shape[0]} targets")
        return [self.protocol.logits(low_res_logits[i : i + 1], size=size)[0, 0] for i, size in enumerate(sizes)]

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """Binarise logits: ``logits > threshold``."""
        return logits > self.threshold

    # ------------------------------------------------------------------ all steps
    def predict(
        self,
        references: References,
        frames: torch.Tensor,
        sizes: Sequence[tuple[int, int]],
        *,
        negative_points: np.ndarray | Sequence[Sequence[float]] | None = None,
    ) -> list[TargetPrediction]:
        """Segment B targets ``frames`` ``(B, 3, S, S)`` whose images have ``sizes``.

        ``negative_points``: (N, 2) (x, y) clicks in the output pixels of the targets that must
        not belong to the mask (geometric negatives, paper appendix F; same clicks for every target).
        """
        clicks = None if negative_points is None else self.negative_clicks(negative_points, sizes[0])
        return self.predict_encoded(self.memory(references), self.encode(frames), sizes, clicks=clicks)

    def predict_encoded(
        self, memory: Sequence[MemoryEntry], feats: FrameFeatures, sizes: Sequence[tuple[int, int]], *, clicks: dict[str, torch.Tensor] | None = None
    ) -> list[TargetPrediction]:
        """:meth:`predict` for targets already encoded (a target encoded once, segmented again with clicks)."""
        output = self.segment(feats, memory, clicks=clicks)
        logits = self.logits(output.low_res_logits, sizes)
        return [TargetPrediction(logits=x, mask=self.mask(x), score=float(output.iou[i])) for i, x in enumerate(logits)]

    def negative_clicks(self, points: np.ndarray | Sequence[Sequence[float]], size: tuple[int, int], *, name: str = "negative_points") -> dict[str, torch.Tensor]:
        """Validated negative clicks (x, y) in output pixels of a target of ``size`` -> sam2 ``point_inputs``."""
        coords = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        clicks = Points(coords, np.zeros(len(coords), dtype=np.int64))
        clicks.validate(*self.protocol.output_size(size), name=name, require_positive=False)
        return self.protocol.clicks(clicks.coords, clicks.labels, size=size)
