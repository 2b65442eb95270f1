"""Features of any encoder source: hooks on its module paths, pooled per object at its own resolution, cached.

    fx = SourceExtractor(TimmSource("vit_small_patch14_dinov2.lvd142m"), cache_dir="cache/")
    fx.available_layers()                       # ['patch_embed', 'blocks.0', ..., 'norm']
    fx.extract(images, ["blocks.11", "norm"])   # {name: (B, C, h, w)}, patch tokens on their grid
    table, X = fx.object_features(images, masks)            # one row / vector per object instance
    table, X = fx.dataset_object_features(source, layer="norm")   # a dataset split, cached

:class:`SourceExtractor` is the image-stage feature extractor for one
:class:`~sansa_probe.features.sources.EncoderSource`: the same calls as
:class:`~sansa_probe.features.FeatureExtractor` (``extract``, ``dense_features``,
``object_features``, ``dataset_object_features``, ``dataset_dense_features``) without the
``adapters`` switch, which a SAM2 / SANSA source fixes. Objects are pooled on each encoder's
own feature grid with the same rule (:mod:`sansa_probe.features.pooling`: the mask's coverage of
every cell, ``mask_mean`` by default); objects covering less than one cell in all are warned
about (:class:`SmallObjectWarning`). The cache key is the source's content hash
(:meth:`EncoderSource.state <sansa_probe.features.sources.EncoderSource.state>`) and the layer,
with the same file layout and config as the SAM2 extractor's.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sansa_probe.data.base import ClassId, SegmentationSource
from sansa_probe.features.cache import CACHE_FORMAT, CACHE_VERSION, FeatureCache
from sansa_probe.features.datasets import check_classes, select_images, source_config
from sansa_probe.features.layers import LayerInfo, ReturnNodes
from sansa_probe.features.pooling import as_object_list, check_object_mask, check_pooling, mask_coverage, pool_object, small_objects_message
from sansa_probe.features.sources.base import EncoderSource
from sansa_probe.io.images import ImageInput, load_rgb

__all__ = ["OBJECT_COLUMNS", "SmallObjectWarning", "SourceExtractor"]

OBJECT_COLUMNS = ["image_index", "image_id", "instance_id", "class_id", "area", "coverage"]


class SmallObjectWarning(UserWarning):
    """Objects cover less than one cell of an encoder's feature grid."""


class SourceExtractor:
    """Image-stage features of one encoder source (see the module docstring).

    Args:
        source: the encoder.
        batch_size: images per forward in the batched helpers.
        progress: tqdm progress bars (on stderr) in the batched helpers.
        cache_dir: folder of the on-disk feature cache of the dataset helpers (``None``: no cache).
        notes: where the small-object messages go (e.g. a command's list of warnings in words);
            ``None``: Python warnings (:class:`SmallObjectWarning`).
    """

    def __init__(self, source: EncoderSource, *, batch_size: int = 8, progress: bool = False, cache_dir: str | os.PathLike | None = None,
                 notes: Callable[[str], None] | None = None) -> None:
        if not isinstance(source, EncoderSource):
            raise ValueError(f"source: expected an EncoderSource, got {type(source).__name__}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
        self.source = source
        self.batch_size = int(batch_size)
        self.progress = progress
        self.cache = FeatureCache(cache_dir) if cache_dir is not None else None
        self.notes = notes
        self._infos = {info.name: info for info in source.layers()}

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def device(self) -> torch.device:
        return self.source.device

    def identity(self) -> dict[str, Any]:
        return self.source.identity()

    def model_state(self) -> dict[str, Any]:
        """The source's content hash (:meth:`EncoderSource.state`): the cache key."""
        return self.source.state()

    # ------------------------------------------------------------------ names
    def available_layers(self) -> list[str]:
        """Hook names in module order."""
        return list(self._infos)

    def layer_info(self, name: str) -> LayerInfo:
        """The :class:`LayerInfo` of a hook name; ``ValueError`` with close matches when unknown."""
        if name not in self._infos:
            close = difflib.get_close_matches(str(name), list(self._infos), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"layer {name!r} is not a hookable layer of {self.name}{hint} (available_layers() lists all {len(self._infos)})")
        return self._infos[name]

    def describe_layers(self) -> pd.DataFrame:
        """One row per layer: ``encoder, name, module, description``."""
        return pd.DataFrame([{"encoder": self.name, "name": i.name, "module": i.module, "description": i.description} for i in self._infos.values()])

    def default_layer(self) -> str:
        return self.source.default_layer()

    def _layer(self, layer: str | None) -> str:
        layer = layer or self.default_layer()
        self.layer_info(layer)
        return layer

    def _resolve(self, return_nodes: ReturnNodes) -> dict[str, str]:
        """``return_nodes`` -> ``{layer name: output key}`` (ordered), validated."""
        if return_nodes is None:
            mapping = {self.default_layer(): self.default_layer()}
        elif isinstance(return_nodes, str):
            mapping = {return_nodes: return_nodes}
        elif isinstance(return_nodes, Mapping):
            mapping = {str(k): str(v) for k, v in return_nodes.items()}
        elif callable(return_nodes):
            mapping = {n: n for n in self._infos if return_nodes(n)}
            if not mapping:
                raise ValueError(f"return_nodes: the predicate selected no layer of {self.name}")
        elif isinstance(return_nodes, Sequence):
            mapping = {str(n): str(n) for n in return_nodes}
        else:
            raise ValueError(f"return_nodes: expected a name, a list, a dict name -> key or a predicate, got {type(return_nodes).__name__}")
        if not mapping:
            raise ValueError("return_nodes: no layer requested")
        if len(set(mapping.values())) != len(mapping):
            raise ValueError(f"return_nodes: output keys must be unique, got {list(mapping.values())}")
        for name in mapping:
            self.layer_info(name)
        return mapping

    # ------------------------------------------------------------------ hooks
    @contextlib.contextmanager
    def _recording(self, mapping: Mapping[str, str], x: torch.Tensor) -> Iterator[dict[str, torch.Tensor]]:
        """Forward hooks writing each requested layer's map ``(B, C, h, w)`` for the input ``x``
        into the yielded dict; removed on exit, also on error."""
        outputs: dict[str, torch.Tensor] = {}
        modules = dict(self.source.module.named_modules())
        by_module: dict[str, list[str]] = {}
        for name in mapping:
            by_module.setdefault(self._infos[name].module, []).append(name)

        def hook_for(names: list[str]) -> Callable[..., None]:
            def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
                for name in names:
                    # a copy: a later in-place op of the model must not change what was recorded
                    outputs[mapping[name]] = self.source.to_map(self._infos[name], output, x).detach().clone()
            return hook

        handles = []
        try:
            for path, names in by_module.items():
                handles.append(modules[path].register_forward_hook(hook_for(names)))
            yield outputs
        finally:
            for handle in handles:
                handle.remove()

    # ------------------------------------------------------------------ extraction
    def model_input(self, images: Any, *, name: str = "images") -> torch.Tensor:
        """Images (paths / PIL / ``HxWx3`` uint8, any sizes) -> the source's input ``(B, 3, h, w)``;
        a tensor passes as it is (already preprocessed)."""
        if isinstance(images, torch.Tensor):
            if images.ndim != 4 or images.shape[1] != 3:
                raise ValueError(f"{name}: expected a preprocessed (B, 3, h, w) tensor or a list of images, got {tuple(images.shape)}")
            return images.float()
        if isinstance(images, np.ndarray) and images.ndim == 3:
            raise ValueError(f"{name}: expected a list of images (got one HxWx3 array: wrap it in a list)")
        arrays = [load_rgb(image, name=f"{name}[{i}]") for i, image in enumerate(images)]
        if not arrays:
            raise ValueError(f"{name}: expected at least one image")
        return self.source.images(arrays)

    @torch.no_grad()
    def extract(self, images: Any, return_nodes: ReturnNodes = None) -> dict[str, torch.Tensor]:
        """Everything asked for, from one forward of ``images``: ``{key: (B, C, h, w)}`` on the
        source's device, detached, in request order (``return_nodes`` as
        :meth:`FeatureExtractor.extract <sansa_probe.features.FeatureExtractor.extract>`)."""
        mapping = self._resolve(return_nodes)
        x = self.model_input(images).to(self.device)
        with self.source.active(), self._recording(mapping, x) as outputs:
            self.source.forward(x)
        missing = [key for key in mapping.values() if key not in outputs]
        if missing:
            raise RuntimeError(f"{self.name}: layers {missing} did not run in the forward")
        return {key: outputs[key] for key in mapping.values()}

    def _batches(self, n: int, desc: str) -> Iterator[slice]:
        starts = range(0, n, self.batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", file=sys.stderr, disable=not self.progress, leave=False):
            yield slice(start, min(start + self.batch_size, n))

    def dense_features(self, images: Sequence[ImageInput], *, layer: str | None = None, size: int | tuple[int, int] | None = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Per-cell features of every image, batched: ``(N, C, h, w)`` on the CPU; ``size``
        bilinearly resizes the maps (``align_corners=False``), ``None`` keeps the layer's own grid."""
        layer = self._layer(layer)
        images = list(images)
        chunks = []
        for part in self._batches(len(images), desc=f"dense {self.name} {layer}"):
            out = self.extract(images[part], layer)[layer]
            if size is not None:
                out = F.interpolate(out.float(), size=(size, size) if isinstance(size, int) else tuple(size), mode="bilinear", align_corners=False)
            chunks.append(out.to("cpu", dtype))
        if not chunks:
            raise ValueError("images: expected at least one image")
        return torch.cat(chunks)

    def object_features(self, images: Sequence[ImageInput], masks: Sequence[Any], *, labels: Sequence[Any] | None = None,
                        image_ids: Sequence[Any] | None = None, layer: str | None = None, pooling: str = "mask_mean",
                        threshold: float = 0.5, min_area: int = 0, class_names: Callable[[ClassId], str] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """One feature vector per object instance, pooled on this encoder's own grid (arguments
        and result as :meth:`FeatureExtractor.object_features <sansa_probe.features.FeatureExtractor.object_features>`);
        a :class:`SmallObjectWarning` when objects cover less than one feature cell."""
        table, X, grid = self._object_features(images, masks, labels=labels, image_ids=image_ids, layer=layer, pooling=pooling,
                                               threshold=threshold, min_area=min_area, class_names=class_names)
        self._warn_small(table, grid, layer=self._layer(layer))
        return table, X

    def _object_features(self, images: Sequence[ImageInput], masks: Sequence[Any], *, labels: Sequence[Any] | None, image_ids: Sequence[Any] | None,
                         layer: str | None, pooling: str, threshold: float, min_area: int,
                         class_names: Callable[[ClassId], str] | None) -> tuple[pd.DataFrame, np.ndarray, tuple[int, int] | None]:
        check_pooling(pooling)
        layer = self._layer(layer)
        images, masks = list(images), list(masks)
        if len(masks) != len(images):
            raise ValueError(f"masks: expected one entry per image ({len(images)}), got {len(masks)}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"labels: expected one entry per image ({len(images)}), got {len(labels)}")
        if image_ids is not None and len(image_ids) != len(images):
            raise ValueError(f"image_ids: expected {len(images)} ids, got {len(image_ids)}")
        arrays = [load_rgb(image, name=f"images[{i}]") for i, image in enumerate(images)]
        objects = []
        for i, entry in enumerate(masks):
            instances = as_object_list(entry, None if labels is None else labels[i], index=i)
            checked = [(inst, check_object_mask(inst.mask, arrays[i].shape[:2], name=f"masks[{i}][{k}]")) for k, inst in enumerate(instances)]
            objects.append([(inst, m) for inst, m in checked if m.any() and int(m.sum()) >= int(min_area)])
        rows, vectors, grid = [], [], None
        for part in self._batches(len(arrays), desc=f"objects {self.name} {layer}"):
            if not any(objects[i] for i in range(part.start, part.stop)):
                continue
            fmap = self.extract(arrays[part], layer)[layer]
            grid = tuple(int(g) for g in fmap.shape[-2:])
            for offset, i in enumerate(range(part.start, part.stop)):
                for inst, mask in objects[i]:
                    coverage = mask_coverage(mask, grid)
                    vectors.append(pool_object(fmap[offset], coverage, pooling=pooling, threshold=threshold).cpu())
                    row = {"image_index": i, "image_id": image_ids[i] if image_ids is not None else i, "instance_id": inst.instance_id,
                           "class_id": inst.class_id, "area": int(mask.sum()), "coverage": float(coverage.sum())}
                    if class_names is not None:
                        row["class_name"] = class_names(inst.class_id)
                    rows.append(row)
        table = pd.DataFrame(rows, columns=OBJECT_COLUMNS + (["class_name"] if class_names else []))
        X = torch.stack(vectors).numpy().astype(np.float32) if vectors else np.zeros((0, 0), np.float32)
        return table, X, grid

    def _warn_small(self, table: pd.DataFrame, grid: tuple[int, int] | None, *, layer: str) -> None:
        if grid is None or not len(table):
            return
        for message in small_objects_message(table["coverage"], grid=grid, what=f"{self.name} {layer}"):
            if self.notes is not None:
                self.notes(message)
            else:
                warnings.warn(message, SmallObjectWarning, stacklevel=3)

    # ------------------------------------------------------------------ datasets
    def dataset_object_features(self, source: SegmentationSource, *, layer: str | None = None, classes: Sequence[ClassId] | None = None,
                                images_per_class: int | None = None, max_images: int | None = None, seed: int = 0,
                                pooling: str = "mask_mean", threshold: float = 0.5, min_area: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
        """Object features of a dataset split (cached): as :meth:`FeatureExtractor.dataset_object_features
        <sansa_probe.features.FeatureExtractor.dataset_object_features>`, on this encoder."""
        layer = self._layer(layer)
        check_pooling(pooling)
        classes, ids, config = self._select(source, classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        config.update(pooling=pooling, threshold=float(threshold), min_area=int(min_area))
        wanted = set(classes)

        def chunk_features(part: list[str]) -> tuple[pd.DataFrame, np.ndarray, tuple[int, int] | None]:
            images = [source.load_image(i) for i in part]
            objects = [[inst for inst in source.load_instances(i) if inst.class_id in wanted] for i in part]
            return self._object_features(images, objects, labels=None, image_ids=part, layer=layer, pooling=pooling, threshold=threshold,
                                         min_area=min_area, class_names=source.class_name)

        def compute() -> dict[str, Any]:
            tables, vectors, grid = [], [], None
            for start, (table, X, chunk_grid) in self._walk(source, ids, layer=layer, features=chunk_features):
                grid = chunk_grid or grid
                if len(table):
                    table["image_index"] += start
                    tables.append(table)
                    vectors.append(X)
            table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=OBJECT_COLUMNS + ["class_name"])
            X = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
            return {"table": table.to_dict(orient="list"), "features": torch.from_numpy(X), "grid": list(grid or ())}

        payload = self._cached("objects", source, layer, config, compute)
        table = pd.DataFrame(payload["table"])
        if table.empty:
            raise ValueError(f"{source!r}: no object of classes {list(classes)[:5]}... in the {len(ids)} images selected")
        self._warn_small(table, tuple(payload.get("grid") or ()) or None, layer=layer)
        return table, payload["features"].numpy()

    def dataset_dense_features(self, source: SegmentationSource, *, layer: str | None = None, classes: Sequence[ClassId] | None = None,
                               images_per_class: int | None = None, max_images: int | None = None, seed: int = 0,
                               size: int | tuple[int, int] | None = None, dtype: torch.dtype = torch.float16) -> tuple[list[str], torch.Tensor]:
        """Dense features of a dataset split (cached): ``(image ids, (N, C, h, w) CPU tensor)``,
        float16 by default."""
        layer = self._layer(layer)
        _, ids, config = self._select(source, classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        config.update(size=size if size is None or isinstance(size, int) else list(size), dtype=str(dtype))

        def chunk_features(part: list[str]) -> torch.Tensor:
            return self.dense_features([source.load_image(i) for i in part], layer=layer, size=size, dtype=dtype)

        def compute() -> dict[str, Any]:
            chunks = self._walk(source, ids, layer=layer, features=chunk_features)
            return {"image_ids": list(ids), "features": torch.cat([X for _, X in chunks])}

        payload = self._cached("dense", source, layer, config, compute)
        return list(payload["image_ids"]), payload["features"]

    @staticmethod
    def _select(source: SegmentationSource, classes: Sequence[ClassId] | None, *, images_per_class: int | None,
                max_images: int | None, seed: int) -> tuple[list[ClassId], list[str], dict[str, Any]]:
        """The classes and image ids to walk, and the part of the cache config they fix."""
        classes = check_classes(source, classes)
        ids = select_images(source, classes=classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        digest = hashlib.sha1("\n".join(str(i) for i in ids).encode()).hexdigest()
        return classes, ids, {"image_ids_sha": digest, "n_images": len(ids), "classes": [str(c) for c in classes]}

    def _walk(self, source: SegmentationSource, ids: Sequence[str], *, layer: str, features: Callable[[list[str]], Any]) -> list[tuple[int, Any]]:
        """``features(chunk)`` for consecutive chunks of ``8 * batch_size`` image ids under one
        per-image progress bar -> ``[(index of the chunk's first image, result)]``."""
        chunk = max(self.batch_size * 8, 1)
        results = []
        bar = tqdm(total=len(ids), desc=f"{source.name}/{source.split} {layer} {self.name}", unit="img", file=sys.stderr, disable=not self.progress)
        previous, self.progress = self.progress, False  # inner batch bars off under the per-image bar
        try:
            with bar:
                for start in range(0, len(ids), chunk):
                    part = list(ids[start:start + chunk])
                    results.append((start, features(part)))
                    bar.update(len(part))
        finally:
            self.progress = previous
        return results

    def cache_key(self, kind: str, source: SegmentationSource, layer: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """The full config a cached feature set is stored and matched under."""
        return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "kind": kind, "layer": layer, "model_state": self.model_state(),
                "dataset": source.name, "fold": getattr(source, "fold", None), "split": source.split, "source": source_config(source), **config}

    def _cached(self, kind: str, source: SegmentationSource, layer: str, config: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if self.cache is None:
            return compute()
        full = self.cache_key(kind, source, layer, config)
        path = self.cache.path(kind=kind, dataset=source.name, fold=getattr(source, "fold", None), split=source.split, layer=layer,
                               state=full["model_state"]["id"])
        payload = self.cache.load(path, full)
        if payload is None:
            payload = compute()
            self.cache.save(path, payload, full)
        return payload
