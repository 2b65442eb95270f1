"""The feature extractor: hook-based extraction plus dataset walking, cached on disk per model state.

:class:`FeatureExtractor` adds to :class:`~sansa_probe.features.hooks.HookExtractor` (layer names,
``hooks``, ``extract``, ``dense_features``, ``object_features``) the dataset helpers
``dataset_object_features`` / ``dataset_dense_features``: they run on the model as an encoder
source with the adapters switched as asked (:meth:`HookExtractor.source
<sansa_probe.features.hooks.HookExtractor.source>`), whose
:class:`~sansa_probe.features.source_extractor.SourceExtractor` selects a split's images, walks
them in chunks under one progress bar and keeps the result in a
:class:`~sansa_probe.features.cache.FeatureCache` keyed by the model state
(:meth:`FeatureExtractor.model_state`): the same code for SAM2, SANSA and every other encoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from sansa_probe.data.base import ClassId, SegmentationSource
from sansa_probe.features.hooks import HookExtractor
from sansa_probe.inference.protocol import Protocol
from sansa_probe.model.sansa import SansaModel

__all__ = ["MODELS", "FeatureExtractor"]

MODELS = {"sam2": False, "sansa": True}  # table name -> adapters on


class FeatureExtractor(HookExtractor):
    """Hook-based feature extraction from one :class:`~sansa_probe.model.SansaModel`, with dataset
    helpers cached on disk.

    Frozen SAM2 and SANSA are the same model object: ``adapters=False`` / ``True`` switches the
    adapters for one call (``None``: as the model is currently switched).

    Args:
        model: the model (its device is used for every forward).
        batch_size: images per forward in the batched helpers.
        progress: show tqdm progress bars (on stderr) in the batched helpers.
        cache_dir: folder of the on-disk feature cache of the dataset helpers (``None``: no cache).
        protocol: how images enter the model (default the release's, as every command).
    """

    def __init__(self, model: SansaModel, *, batch_size: int = 8, progress: bool = False, cache_dir: str | os.PathLike | None = None,
                 protocol: Protocol | None = None) -> None:
        super().__init__(model, batch_size=batch_size, progress=progress, protocol=protocol)
        self.cache_dir = cache_dir

    def model_state(self, adapters: bool) -> dict[str, Any]:
        """Content hash of what the features depend on: SAM2's tensors and config, plus the adapters
        (tensors and recipe) when ``adapters`` is on (see :class:`~sansa_probe.features.cache.ModelStateHasher`)."""
        return self._state(adapters)

    # ------------------------------------------------------------------ datasets
    def dataset_object_features(
        self,
        source: SegmentationSource,
        *,
        layer: str | None = None,
        adapters: bool = True,
        classes: Sequence[ClassId] | None = None,
        images_per_class: int | None = None,
        max_images: int | None = None,
        seed: int = 0,
        pooling: str = "mask_mean",
        threshold: float = 0.5,
        min_area: int = 0,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Object features of a dataset split, walked with ``source.load_instances`` (cached).

        Args:
            source: one fold and split (``sansa_probe.data.get_dataset(...)``).
            classes: keep only instances of these classes (default: the source's classes).
            images_per_class, max_images, seed: which images (see :func:`select_images`).
            Others: see :meth:`object_features`.

        Returns:
            ``(table, X)`` as :meth:`object_features`, ``image_id`` the dataset's ids, with a
            ``class_name`` column.
        """
        layer = self._image_layer(layer, use="dataset features")
        return self.source(adapters).dataset_object_features(source, layer=layer, classes=classes, images_per_class=images_per_class,
                                                             max_images=max_images, seed=seed, pooling=pooling, threshold=threshold,
                                                             min_area=min_area)

    def dataset_dense_features(
        self,
        source: SegmentationSource,
        *,
        layer: str | None = None,
        adapters: bool = True,
        classes: Sequence[ClassId] | None = None,
        images_per_class: int | None = None,
        max_images: int | None = None,
        seed: int = 0,
        size: int | tuple[int, int] | None = None,
        dtype: torch.dtype = torch.float16,
    ) -> tuple[list[str], torch.Tensor]:
        """Dense features of a dataset split (cached): ``(image ids, (N, C, h, w) CPU tensor)``,
        float16 by default to halve memory and disk. Arguments as :meth:`dataset_object_features`
        and :meth:`dense_features`."""
        layer = self._image_layer(layer, use="dataset features")
        return self.source(adapters).dataset_dense_features(source, layer=layer, classes=classes, images_per_class=images_per_class,
                                                            max_images=max_images, seed=seed, size=size, dtype=dtype)
