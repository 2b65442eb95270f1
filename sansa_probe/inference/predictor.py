"""SansaPredictor: set k references once, then segment any number of targets.

    predictor = SansaPredictor(model)
    predictor.set_references(["ref1.jpg", "ref2.jpg"], [mask1, Points([[120, 80]])])
    prediction = predictor.predict("target.jpg")       # .mask, .logits, .score
    predictions = predictor.predict_batch(target_paths)

The reference memory is computed once per adapter state (SANSA and frozen SAM2 each get
their own cached memory, computed on first use) and reused for every target. The predictor is
the user-facing shell of the one inference path, :class:`~sansa_probe.inference.FewShotInference`
(``predictor.path``), which evaluate, annotate and the feature hooks call too.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from sansa_probe.inference import FewShotInference, Protocol, References, get_protocol, prepare_references
from sansa_probe.io.images import ImageInput, load_rgb
from sansa_probe.model.sansa import SansaModel

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


def _single_image(targets: object) -> str | None:
    """What ``targets`` is when it is one image rather than a collection of them, else ``None``."""
    if isinstance(targets, (str, bytes, os.PathLike)):
        return f"a single path ({os.fspath(targets)!r})" if not isinstance(targets, bytes) else "bytes"
    if isinstance(targets, Image.Image):
        return "a single PIL image"
    shape = getattr(targets, "shape", None)
    if shape is not None and len(shape) != 4:
        return f"a single array of shape {tuple(shape)} (a batch of arrays is BxHxWx3)"
    return None


class SansaPredictor:
    """Few-shot segmentation with cached reference memory.

    Args:
        model: a :class:`SansaModel`; its current adapter state (``model.adapters_enabled``) is used
            at every call.
        threshold: logit threshold of ``Prediction.mask`` (0 = probability 0.5).
        batch_size: targets per encoder forward in :meth:`predict_batch`.
        autocast: run in bfloat16 autocast on CUDA devices (default: as the model's ``precision``
            option, float32 unless it was built with ``precision="bfloat16"``).
        protocol: how images and prompts enter the model: ``"release"`` (default; the public
            release's: a 640 px square, then the model size), ``"hsnet"`` (straight to the model
            size), or a :class:`~sansa_probe.inference.Protocol`. Predictions are always at each
            target's own size.
    """

    def __init__(self, model: SansaModel, *, threshold: float = 0.0, batch_size: int = 8, autocast: bool | None = None,
                 protocol: Protocol | str = "release") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not math.isfinite(float(threshold)):
            raise ValueError(f"threshold must be a finite logit (0 = probability 0.5), got {threshold}")
        self.model = model
        self.batch_size = int(batch_size)
        self.autocast = autocast
        if isinstance(protocol, str):
            protocol = get_protocol(protocol, image_size=model.image_size, output="image")
        self.path = FewShotInference(model, protocol=protocol, threshold=threshold, autocast=autocast)
        self._references: References | None = None

    @property
    def threshold(self) -> float:
        return self.path.threshold

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
        ``Scribble``, or a bare ``HxW`` boolean / 0-1 / 0-255 array (a mask). ``negative_images`` are
        training-free semantic negatives (paper appendix F): images written to memory with an
        empty mask.
        """
        arrays = [load_rgb(image, name=f"images[{i}]") for i, image in enumerate(images)]
        negatives = [load_rgb(image, name=f"negative_images[{j}]") for j, image in enumerate(negative_images)]
        self._references = prepare_references(self.path.protocol, arrays, prompts, negative_images=negatives)
        self._reference_memory()  # encode now, for the current adapter state

    @property
    def num_references(self) -> int:
        return 0 if self._references is None else len(self._references.prompts)

    def _reference_memory(self):
        if self._references is None:
            raise RuntimeError("no references: call set_references(images, prompts) first")
        return self.path.memory(self._references)

    # ------------------------------------------------------------------ targets
    def predict(self, target: ImageInput, *, negative_points: np.ndarray | Sequence[Sequence[float]] | None = None) -> Prediction:
        """Segment one target (any size). ``negative_points``: (N, 2) (x, y) clicks on the target
        that must not belong to the mask (geometric negatives, paper appendix F)."""
        return self._predict_arrays([load_rgb(target, name="target")], negative_points=negative_points)[0]

    def predict_batch(self, targets: Iterable[ImageInput]) -> list[Prediction]:
        """Segment many targets (a list of paths, PIL images or ``HxWx3`` arrays, or one
        ``BxHxWx3`` array) with the cached reference memory, ``batch_size`` per encoder forward.
        One image (a path, a PIL image, an ``HxWx3`` array) is a ``TypeError``: use :meth:`predict`."""
        single = _single_image(targets)
        if single is not None:
            raise TypeError(f"predict_batch takes a list of images, got {single}; use predict(image) for one image "
                            "or predict_batch([image, ...]) for several")
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
        self._reference_memory()  # the error names set_references before anything else
        sizes = [array.shape[:2] for array in arrays]
        predictions = self.path.predict(self._references, self.path.protocol.images(arrays), sizes, negative_points=negative_points)
        return [
            Prediction(mask=p.mask.cpu().numpy(), logits=p.logits.cpu().numpy().astype(np.float32), score=p.score)
            for p in predictions
        ]
