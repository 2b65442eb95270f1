"""The feature extractor: hook-based extraction plus dataset walking, cached on disk per model state.

:class:`FeatureExtractor` adds to :class:`~sansa_probe.features.hooks.HookExtractor` (layer names,
``hooks``, ``extract``, ``dense_features``, ``object_features``) the dataset helpers
``dataset_object_features`` / ``dataset_dense_features``: they select a split's images
(:func:`~sansa_probe.features.datasets.select_images`), walk them in chunks under one progress bar,
and keep the result in a :class:`~sansa_probe.features.cache.FeatureCache` keyed by the model
state (:meth:`FeatureExtractor.model_state`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from sansa_probe.data.base import ClassId, SegmentationSource
from sansa_probe.features.cache import CACHE_FORMAT, CACHE_VERSION, FeatureCache, ModelStateHasher
from sansa_probe.features.datasets import check_classes, select_images, source_config
from sansa_probe.features.hooks import HookExtractor
from sansa_probe.features.pooling import check_pooling
from sansa_probe.inference.protocol import Protocol
from sansa_probe.model.sansa import SansaModel

__all__ = ["MODELS", "FeatureExtractor"]

MODELS = {"sam2": False, "sansa": True}  # table name -> adapters on

T = TypeVar("T")


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
    """

    def __init__(self, model: SansaModel, *, batch_size: int = 8, progress: bool = False, cache_dir: str | os.PathLike | None = None,
                 protocol: Protocol | None = None) -> None:
        super().__init__(model, batch_size=batch_size, progress=progress, protocol=protocol)
        self.cache = FeatureCache(cache_dir) if cache_dir is not None else None
        self._state = ModelStateHasher(model)

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
        check_pooling(pooling)
        classes, ids, config = self._select(source, classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        config.update(pooling=pooling, threshold=float(threshold), min_area=int(min_area))
        wanted = set(classes)

        def chunk_features(part: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
            images = [source.load_image(i) for i in part]
            objects = [[inst for inst in source.load_instances(i) if inst.class_id in wanted] for i in part]
            return self.object_features(images, objects, image_ids=part, layer=layer, pooling=pooling, threshold=threshold,
                                        adapters=adapters, min_area=min_area, class_names=source.class_name)

        def compute() -> dict[str, Any]:
            tables, vectors = [], []
            for start, (table, X) in self._walk(source, ids, layer=layer, adapters=adapters, features=chunk_features):
                if len(table):
                    table["image_index"] += start
                    tables.append(table)
                    vectors.append(X)
            table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["image_index", "image_id", "instance_id", "class_id", "area", "coverage", "class_name"])
            X = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
            return {"table": table.to_dict(orient="list"), "features": torch.from_numpy(X)}

        payload = self._cached("objects", source, layer, adapters, config, compute)
        table = pd.DataFrame(payload["table"])
        if table.empty:
            raise ValueError(f"{source!r}: no object of classes {list(classes)[:5]}... in the {len(ids)} images selected")
        return table, payload["features"].numpy()

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
        _, ids, config = self._select(source, classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        config.update(size=size if size is None or isinstance(size, int) else list(size), dtype=str(dtype))

        def chunk_features(part: list[str]) -> torch.Tensor:
            return self.dense_features([source.load_image(i) for i in part], layer=layer, adapters=adapters, size=size, dtype=dtype)

        def compute() -> dict[str, Any]:
            chunks = self._walk(source, ids, layer=layer, adapters=adapters, features=chunk_features)
            return {"image_ids": list(ids), "features": torch.cat([X for _, X in chunks])}

        payload = self._cached("dense", source, layer, adapters, config, compute)
        return list(payload["image_ids"]), payload["features"]

    # ------------------------------------------------------------------ walking and caching
    @staticmethod
    def _select(source: SegmentationSource, classes: Sequence[ClassId] | None, *, images_per_class: int | None,
                max_images: int | None, seed: int) -> tuple[list[ClassId], list[str], dict[str, Any]]:
        """The classes and image ids to walk, and the part of the cache config they fix."""
        classes = check_classes(source, classes)
        ids = select_images(source, classes=classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        return classes, ids, {"image_ids_sha": _sha(ids), "n_images": len(ids), "classes": [str(c) for c in classes]}

    def _walk(self, source: SegmentationSource, ids: Sequence[str], *, layer: str, adapters: bool,
              features: Callable[[list[str]], T]) -> list[tuple[int, T]]:
        """``features(chunk)`` for consecutive chunks of ``8 * batch_size`` image ids, under one
        per-image progress bar (the inner batch bars off) -> ``[(index of the chunk's first image, result)]``."""
        chunk = max(self.batch_size * 8, 1)
        results = []
        bar = tqdm(total=len(ids), desc=f"{source.name}/{source.split} {layer} {'sansa' if adapters else 'sam2'}",
                   unit="img", file=sys.stderr, disable=not self.progress)
        with bar, _quiet_progress(self):
            for start in range(0, len(ids), chunk):
                part = list(ids[start:start + chunk])
                results.append((start, features(part)))
                bar.update(len(part))
        return results

    def _cached(self, kind: str, source: SegmentationSource, layer: str, adapters: bool, config: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        state = self.model_state(adapters)
        full = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "kind": kind, "layer": layer, "model_state": state,
                "dataset": source.name, "fold": getattr(source, "fold", None), "split": source.split, "source": source_config(source), **config}
        if self.cache is None:
            return compute()
        path = self.cache.path(kind=kind, dataset=source.name, fold=getattr(source, "fold", None), split=source.split, layer=layer, state=state["id"])
        payload = self.cache.load(path, full)
        if payload is None:
            payload = compute()
            self.cache.save(path, payload, full)
        return payload


@contextlib.contextmanager
def _quiet_progress(extractor: HookExtractor) -> Iterator[None]:
    """Inner batch bars off while an outer per-image bar runs."""
    previous, extractor.progress = extractor.progress, False
    try:
        yield
    finally:
        extractor.progress = previous


def _sha(items: Sequence[Any]) -> str:
    return hashlib.sha1("\n".join(str(i) for i in items).encode()).hexdigest()
