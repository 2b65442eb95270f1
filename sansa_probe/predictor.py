"""SansaPredictor: set k references once, then segment any number of targets.

    predictor = SansaPredictor(model)
    predictor.set_references(["ref1.jpg", "ref2.jpg"], [mask1, Points([[120, 80]])])
    prediction = predictor.predict("target.jpg")       # .mask, .logits, .score
    predictions = predictor.predict_batch(target_paths)

The reference memory is computed once per adapter state (SANSA and frozen SAM2 each get
their own cached memory, computed on first use) and reused for every target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from sansa_probe.images import ImageInput, batch_to_model_input, load_rgb
from sansa_probe.model.memory import MemoryEntry
from sansa_probe.model.prompting import PromptInputs, points_to_inputs, prompt_to_inputs
from sansa_probe.model.sansa import SansaModel
from sansa_probe.prompts.types import Mask, Points, as_prompt
from sansa_probe.utils.precision import inference_autocast, upsample_logits

__all__ = ["Prediction", "SansaPredictor"]


@dataclass
class Prediction:
    """A target's prediction at the target's own size.

    ``mask`` bool ``HxW`` (``logits > threshold``), ``logits`` float32 ``HxW``, ``score`` the
    predicted IoU of SAM2's chosen mask.
    """

    mask: np.ndarray
    logits: np.ndarray
    score: float


class SansaPredictor:
    """Few-shot segmentation with cached reference memory.

    Args:
        model: a :class:`SansaModel`; its current adapter state (``model.adapters_enabled``) is used
            at every call.
        threshold: logit threshold of ``Prediction.mask`` (0 = probability 0.5).
        batch_size: targets per encoder forward in :meth:`predict_batch`.
        autocast: run in bfloat16 autocast on CUDA devices.
    """

    def __init__(self, model: SansaModel, *, threshold: float = 0.0, batch_size: int = 8, autocast: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.threshold = float(threshold)
        self.batch_size = int(batch_size)
        self.autocast = autocast
        self._reference_tensors: torch.Tensor | None = None
        self._reference_prompts: list[PromptInputs] = []
        self._memory: dict[bool, list[MemoryEntry]] = {}

    # ------------------------------------------------------------------ references
    def set_references(
        self,
        images: Sequence[ImageInput],
        prompts: Sequence[object],
        *,
        negative_images: Sequence[ImageInput] = (),
    ) -> None:
        """Set the k annotated references (k >= 1) and encode their memory.

        ``prompts[i]`` annotates ``images[i]``: a :class:`~sansa_probe.prompts.Mask`, ``Points``, ``Box``,
        ``Scribble``, or a bare ``HxW`` boolean / 0-1 array (a mask). ``negative_images`` are
        training-free semantic negatives (paper appendix F): images written to memory with an
        empty mask.
        """
        images, prompts = list(images), list(prompts)
        if len(images) == 0:
            raise ValueError("images: zero references; at least one annotated reference image is needed")
        if len(prompts) != len(images):
            raise ValueError(f"prompts: {len(prompts)} prompts for {len(images)} reference images (one prompt per image)")
        arrays, inputs = [], []
        size = self.model.image_size
        for i, (image, prompt) in enumerate(zip(images, prompts)):
            array = load_rgb(image, name=f"images[{i}]")
            prompt = as_prompt(prompt, name=f"prompts[{i}]")
            prompt.validate(*array.shape[:2], name=f"prompts[{i}]")
            arrays.append(array)
            inputs.append(prompt_to_inputs(prompt, height=array.shape[0], width=array.shape[1], image_size=size))
        for j, image in enumerate(negative_images):
            array = load_rgb(image, name=f"negative_images[{j}]")
            arrays.append(array)
            inputs.append(prompt_to_inputs(Mask(np.zeros(array.shape[:2], bool)), height=array.shape[0], width=array.shape[1], image_size=size))
        self._reference_tensors = batch_to_model_input(arrays, size)
        self._reference_prompts = inputs
        self._memory = {}
        self._reference_memory()  # encode now, for the current adapter state

    @property
    def num_references(self) -> int:
        return len(self._reference_prompts)

    def _context(self):
        return inference_autocast(self.model.device, self.autocast)

    def _reference_memory(self) -> list[MemoryEntry]:
        if self._reference_tensors is None:
            raise RuntimeError("no references: call set_references(images, prompts) first")
        state = self.model.adapters_enabled
        if state not in self._memory:
            with torch.no_grad(), self._context():
                memory = self.model.reference_memory(self._reference_tensors.to(self.model.device), self._reference_prompts)
            self._memory[state] = [entry.detach() for entry in memory]
        return self._memory[state]

    # ------------------------------------------------------------------ targets
    def predict(self, target: ImageInput, *, negative_points: np.ndarray | Sequence[Sequence[float]] | None = None) -> Prediction:
        """Segment one target (any size). ``negative_points``: (N, 2) (x, y) clicks on the target
        that must not belong to the mask (geometric negatives, paper appendix F)."""
        return self._predict_arrays([load_rgb(target, name="target")], negative_points=negative_points)[0]

    def predict_batch(self, targets: Iterable[ImageInput]) -> list[Prediction]:
        """Segment many targets with the cached reference memory, ``batch_size`` per encoder forward."""
        results: list[Prediction] = []
        chunk: list[np.ndarray] = []
        for i, target in enumerate(targets):
            chunk.append(load_rgb(target, name=f"targets[{i}]"))
            if len(chunk) == self.batch_size:
                results.extend(self._predict_arrays(chunk))
                chunk = []
        if chunk:
            results.extend(self._predict_arrays(chunk))
        return results

    def _predict_arrays(self, arrays: list[np.ndarray], *, negative_points=None) -> list[Prediction]:
        memory = self._reference_memory()
        size = self.model.image_size
        point_inputs = None
        if negative_points is not None:
            coords = np.asarray(negative_points, dtype=np.float64).reshape(-1, 2)
            clicks = Points(coords, np.zeros(len(coords), dtype=np.int64))
            clicks.validate(*arrays[0].shape[:2], name="negative_points", require_positive=False)
            point_inputs = points_to_inputs(clicks.coords, clicks.labels, height=arrays[0].shape[0], width=arrays[0].shape[1], image_size=size)
        with torch.no_grad(), self._context():
            batch = batch_to_model_input(arrays, size).to(self.model.device)
            output = self.model.segment(self.model.encode_images(batch), memory, point_inputs=point_inputs)
        return [self._to_prediction(output.low_res_logits[i : i + 1], float(output.iou[i]), array.shape[:2]) for i, array in enumerate(arrays)]

    def _to_prediction(self, low_res: torch.Tensor, score: float, size: tuple[int, int]) -> Prediction:
        # as sam2's video predictor: low-resolution logits straight to the original size
        logits = upsample_logits(low_res, size)[0, 0]
        logits = logits.cpu().numpy().astype(np.float32)
        return Prediction(mask=logits > self.threshold, logits=logits, score=score)
