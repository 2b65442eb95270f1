"""Frozen SAM2 and SANSA as two encoder sources over ONE :class:`~sansa_probe.model.SansaModel`.

    sam2 = SansaSource(model, adapters=False)     # name "sam2": adapters switched off for its forwards
    sansa = SansaSource(model, adapters=True)     # name "sansa": the same object, adapters on

Each forward is exactly the feature extractor's image-stage forward: the images enter through
the protocol (default the release's, as every command), then ``model.encode_images`` runs
with the adapters switched for the source; layers, their tensors and the default layer are
those of :mod:`sansa_probe.features.layers` (image-stage layers only: few-shot layers need
references, see :class:`~sansa_probe.features.FeatureExtractor`). The cache key is the model's
content hash for that adapter state (:class:`~sansa_probe.features.cache.ModelStateHasher`,
shareable between the two sources of one model).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from sansa_probe.features.cache import ModelStateHasher
from sansa_probe.features.layers import IMAGE_STAGE, LayerInfo, default_layer, layer_infos, to_map
from sansa_probe.features.sources.base import EncoderSource
from sansa_probe.reporting.identity import model_identity
from sansa_probe.inference.protocol import Protocol, ReleaseProtocol
from sansa_probe.model.sansa import SansaModel

__all__ = ["SansaSource", "SANSA_SOURCES"]

SANSA_SOURCES = {"sam2": False, "sansa": True}  # source name -> adapters on


class SansaSource(EncoderSource):
    """Frozen SAM2 (``adapters=False``) or SANSA (``adapters=True``) of one model as an encoder source.

    Args:
        model: the model (shared by both sources).
        adapters: the adapter switch during this source's forwards.
        protocol: how images enter the model (default ``ReleaseProtocol(image_size=model.image_size, output="image")``).
        name: default ``"sansa"`` / ``"sam2"``.
        hasher: a :class:`ModelStateHasher` of ``model`` to share with the other source (hashes each tensor once).
    """

    def __init__(self, model: SansaModel, *, adapters: bool, protocol: Protocol | None = None, name: str | None = None,
                 hasher: ModelStateHasher | None = None) -> None:
        self.model = model
        self.module = model.sam
        self.adapters_on = bool(adapters)
        self.name = name or ("sansa" if self.adapters_on else "sam2")
        self.protocol = ReleaseProtocol(image_size=model.image_size, output="image") if protocol is None else protocol
        if self.protocol.image_size != model.image_size:
            raise ValueError(f"protocol: built for image size {self.protocol.image_size}, the model takes {model.image_size}")
        self.random = not (getattr(model, "provenance", None) or {}).get("sam2_checkpoint")  # random SAM2 weights
        self._hasher = hasher if hasher is not None else ModelStateHasher(model)
        if self._hasher.model is not model:
            raise ValueError("hasher: a ModelStateHasher of another model")
        self._layers = [info for info in layer_infos(model.sam) if info.stage == IMAGE_STAGE]

    def layers(self) -> list[LayerInfo]:
        return list(self._layers)

    def default_layer(self) -> str:
        return default_layer(self.model)

    def images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return self.protocol.images(images)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        with self.model.adapters(self.adapters_on):
            yield

    def forward(self, x: torch.Tensor) -> None:
        self.model.encode_images(x)

    def to_map(self, info: LayerInfo, output: Any, x: torch.Tensor) -> torch.Tensor:
        return to_map(info, output)

    @property
    def device(self) -> torch.device:
        return torch.device(self.model.device)

    def state(self) -> dict[str, Any]:
        return self._hasher(self.adapters_on)

    def identity(self) -> dict[str, Any]:
        return model_identity(self.model, adapters_enabled=self.adapters_on)
