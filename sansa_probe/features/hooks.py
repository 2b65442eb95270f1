"""Hook-based extraction: any hookable layer of one model, recorded during one forward.

:class:`HookExtractor` is the image-level half of :class:`~sansa_probe.features.FeatureExtractor`
(which adds dataset walking and the on-disk cache): layer names, ``hooks()``, ``extract()``, and
the batched ``dense_features()`` / ``object_features()``.

**Stages.** Image-stage layers need an image forward only. Few-shot layers run in the
few-shot forward: pass ``references`` and ``reference_prompts`` to :meth:`FeatureExtractor.extract`;
the references are encoded into memory with recording paused, then the images (targets) run
through the image encoder, memory attention and the mask decoder, and, if a memory-encoder layer
is asked for, their predictions are encoded as pseudo-references (paper eq. 7). Only the
targets' pass is recorded.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sansa_probe.data.base import ClassId
from sansa_probe.features.cache import ModelStateHasher
from sansa_probe.features.layers import FEW_SHOT_STAGE, IMAGE_STAGE, LayerInfo, ReturnNodes, default_layer, layer_infos, to_map
from sansa_probe.features.source_extractor import SourceExtractor
from sansa_probe.features.sources.sansa_source import SansaSource
from sansa_probe.inference import FewShotInference, Protocol, References, prepare_references
from sansa_probe.io.images import ImageInput, load_rgb
from sansa_probe.model.prompting import PromptInputs
from sansa_probe.model.sansa import SansaModel

__all__ = ["HookExtractor"]


class _Recorder:
    """Forward hooks writing channels-first outputs into ``outputs``; ``active`` pauses them."""

    def __init__(self, infos: Mapping[str, LayerInfo], keys: Mapping[str, str]) -> None:
        self.infos, self.keys = infos, keys
        self.outputs: dict[str, torch.Tensor] = {}
        self.active = True

    def hook_for(self, names: list[str]) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not self.active:
                return
            for name in names:
                # a copy: a later in-place op of the model must not change what was recorded
                self.outputs[self.keys[name]] = to_map(self.infos[name], output).detach().clone()

        return hook

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        previous, self.active = self.active, False
        try:
            yield
        finally:
            self.active = previous


class HookExtractor:
    """The image-level half of :class:`~sansa_probe.features.FeatureExtractor`: layer names, hooks,
    ``extract`` and the batched ``dense_features`` / ``object_features`` (arguments as there, less
    ``cache_dir``)."""

    def __init__(self, model: SansaModel, *, batch_size: int = 8, progress: bool = False, protocol: Protocol | None = None) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        self.progress = progress
        self._infos = {info.name: info for info in layer_infos(model.sam)}
        # the few-shot forward is the one inference path, in float32 (features are not autocast)
        # (protocol: how images enter the model; default the release's, as every command)
        self._path = FewShotInference(model, autocast=False, protocol=protocol)
        self._state = ModelStateHasher(model)  # content hashes of both adapter states, shared by the sources it makes
        self.cache_dir: str | os.PathLike | None = None

    @property
    def protocol(self) -> Protocol:
        """How images enter the model."""
        return self._path.protocol

    def source(self, adapters: bool, *, name: str | None = None, notes: Callable[[str], None] | None = None) -> SourceExtractor:
        """This model with its adapters fixed on (SANSA) or off (frozen SAM2) as an encoder source,
        for the image-stage features (the same forward as :meth:`extract`, the same cache): a
        :class:`~sansa_probe.features.source_extractor.SourceExtractor` named ``name`` (default
        ``"sansa"`` / ``"sam2"``), to run beside other encoders."""
        source = SansaSource(self.model, adapters=bool(adapters), protocol=self.protocol, name=name, hasher=self._state)
        return SourceExtractor(source, batch_size=self.batch_size, progress=self.progress, cache_dir=self.cache_dir, notes=notes)

    def _switch(self, adapters: bool | None) -> bool:
        """``adapters``, or the model's current switch for ``None``."""
        return self.model.adapters_enabled if adapters is None else bool(adapters)

    # ------------------------------------------------------------------ names
    def available_layers(self, stage: str | None = None) -> list[str]:
        """Hook names in module order; ``stage="image"`` / ``"few_shot"`` keeps one stage."""
        if stage not in (None, IMAGE_STAGE, FEW_SHOT_STAGE):
            raise ValueError(f"stage: expected None, 'image' or 'few_shot', got {stage!r}")
        return [name for name, info in self._infos.items() if stage is None or info.stage == stage]

    def layer_info(self, name: str) -> LayerInfo:
        """The :class:`LayerInfo` of a hook name; ``ValueError`` with close matches when unknown."""
        if name not in self._infos:
            close = difflib.get_close_matches(str(name), list(self._infos), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"layer {name!r} is not a hookable layer of this model{hint} "
                f"(FeatureExtractor.available_layers() lists all {len(self._infos)})"
            )
        return self._infos[name]

    def describe_layers(self) -> pd.DataFrame:
        """One row per layer: ``name, module, stage, description``."""
        return pd.DataFrame([{"name": i.name, "module": i.module, "stage": i.stage, "description": i.description} for i in self._infos.values()])

    def default_layer(self) -> str:
        return default_layer(self.model)

    def _image_layer(self, layer: str | None, *, use: str) -> str:
        """``layer`` (default :meth:`default_layer`), which must be an image-stage layer."""
        layer = layer or self.default_layer()
        if self.layer_info(layer).stage != IMAGE_STAGE:
            raise ValueError(f"layer {layer!r}: {use} use image-stage layers (available_layers('image'))")
        return layer

    def _resolve(self, return_nodes: ReturnNodes, *, few_shot: bool) -> dict[str, str]:
        """``return_nodes`` -> ``{layer name: output key}`` (ordered), validated."""
        if return_nodes is None:
            mapping = {self.default_layer(): self.default_layer()}
        elif isinstance(return_nodes, str):
            mapping = {return_nodes: return_nodes}
        elif isinstance(return_nodes, Mapping):
            mapping = {str(k): str(v) for k, v in return_nodes.items()}
        elif callable(return_nodes):
            stage = None if few_shot else IMAGE_STAGE
            mapping = {n: n for n in self.available_layers(stage) if return_nodes(n)}
            if not mapping:
                raise ValueError("return_nodes: the predicate selected no layer" + ("" if few_shot else " among the image-stage layers (pass references for few-shot layers)"))
        elif isinstance(return_nodes, Sequence):
            mapping = {str(n): str(n) for n in return_nodes}
        else:
            raise ValueError(f"return_nodes: expected a name, a list, a dict name -> key or a predicate, got {type(return_nodes).__name__}")
        if not mapping:
            raise ValueError("return_nodes: no layer requested")
        if len(set(mapping.values())) != len(mapping):
            raise ValueError(f"return_nodes: output keys must be unique, got {list(mapping.values())}")
        for name in mapping:
            info = self.layer_info(name)
            if info.stage == FEW_SHOT_STAGE and not few_shot:
                raise ValueError(
                    f"layer {name!r} runs in the few-shot forward (memory attention, memory encoder, mask decoder): "
                    "pass references= and reference_prompts= to extract it"
                )
        return mapping

    # ------------------------------------------------------------------ hooks
    @contextlib.contextmanager
    def _recording(self, mapping: Mapping[str, str]) -> Iterator[_Recorder]:
        recorder = _Recorder(self._infos, mapping)
        by_module: dict[str, list[str]] = {}
        for name in mapping:
            by_module.setdefault(self._infos[name].module, []).append(name)
        modules = dict(self.model.sam.named_modules())
        handles = []
        try:
            for path, names in by_module.items():
                handles.append(modules[path].register_forward_hook(recorder.hook_for(names)))
            yield recorder
        finally:
            for handle in handles:
                handle.remove()

    @contextlib.contextmanager
    def hooks(self, return_nodes: ReturnNodes = None) -> Iterator[dict[str, torch.Tensor]]:
        """Record the requested layers during any forward you run inside the block.

        Yields the dict that fills up (``{key: (B, C, H, W)}``, last call wins); hooks are
        removed on exit, also on error::

            with fx.hooks(["image_encoder.trunk.blocks.11"]) as cache:
                model.encode_images(x)
        """
        with self._recording(self._resolve(return_nodes, few_shot=True)) as recorder:
            yield recorder.outputs

    # ------------------------------------------------------------------ inputs
    def _model_input(self, images: Any, *, name: str) -> tuple[torch.Tensor, list[tuple[int, int]] | None]:
        """Images (paths / PIL / HxWx3 uint8, or a normalised ``(B, 3, S, S)`` tensor) -> model input and sizes."""
        size = self.model.image_size
        if isinstance(images, torch.Tensor):
            if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
                raise ValueError(f"{name}: expected a normalised (B, 3, {size}, {size}) tensor or a list of images, got {tuple(images.shape)}")
            return images.float(), None
        if isinstance(images, np.ndarray) and images.ndim == 3:
            raise ValueError(f"{name}: expected a list of images (got one HxWx3 array: wrap it in a list)")
        arrays = [load_rgb(image, name=f"{name}[{i}]") for i, image in enumerate(images)]
        if not arrays:
            raise ValueError(f"{name}: expected at least one image")
        return self._path.protocol.images(arrays), [a.shape[:2] for a in arrays]

    def references(self, references: Any, prompts: Sequence[Any] | None) -> References:
        """k reference images (as ``images`` of :meth:`extract`) and their prompts, ready for the model.

        Pass the result as ``references=`` (and no ``reference_prompts``) to reuse its memory across calls.
        """
        if isinstance(references, References):
            if prompts is not None:
                raise ValueError("reference_prompts: prepared References carry their prompts; give none")
            return references
        if prompts is None:
            raise ValueError("reference_prompts: required with references= (one prompt per reference)")
        prompts = list(prompts)
        if isinstance(references, torch.Tensor):
            tensor, _ = self._model_input(references, name="references")
            if len(prompts) != tensor.shape[0]:
                raise ValueError(f"reference_prompts: {len(prompts)} prompts for {tensor.shape[0]} references (one per reference)")
            for i, prompt in enumerate(prompts):
                if not isinstance(prompt, PromptInputs):
                    raise ValueError(f"reference_prompts[{i}]: with a reference tensor, give sam2-ready PromptInputs")
            return References(frames=tensor, prompts=prompts)
        if isinstance(references, np.ndarray) and references.ndim == 3:
            raise ValueError("references: expected a list of images (got one HxWx3 array: wrap it in a list)")
        arrays = [load_rgb(image, name=f"references[{i}]") for i, image in enumerate(references)]
        return prepare_references(self._path.protocol, arrays, prompts, images_name="references", prompts_name="reference_prompts")

    # ------------------------------------------------------------------ extraction
    @torch.no_grad()
    def extract(
        self,
        images: Any,
        return_nodes: ReturnNodes = None,
        *,
        adapters: bool | None = None,
        references: Any = None,
        reference_prompts: Sequence[Any] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Everything asked for, from one forward of ``images``.

        Args:
            images: a list of images (paths, PIL, ``HxWx3`` uint8 of any size) or a normalised
                ``(B, 3, S, S)`` tensor (as ``HsnetProtocol.images`` makes it).
            return_nodes: a layer name, a list of names, a dict name -> output key, or a
                predicate on names (over the image-stage layers, or all layers when references are
                given); ``None``: :func:`default_layer`.
            adapters: ``True`` SANSA, ``False`` frozen SAM2, ``None`` the model's current state.
            references: k reference images (as ``images``) for few-shot layers, or
                :class:`~sansa_probe.inference.References` from :meth:`references` (their memory is
                then computed once and reused by later calls).
            reference_prompts: one prompt per reference (``Mask``/``Points``/``Box``/``Scribble``,
                an ``HxW`` bool mask, or sam2-ready ``PromptInputs``).

        Returns:
            ``{key: tensor (B, C, H, W)}`` on the model's device, detached, in request order.
        """
        few_shot = references is not None
        mapping = self._resolve(return_nodes, few_shot=few_shot)
        x, _ = self._model_input(images, name="images")
        device = self.model.device
        needs_memory_encoder = any(self._infos[n].module.startswith("memory_encoder") for n in mapping)
        state = self.model.adapters_enabled if adapters is None else bool(adapters)
        with self.model.adapters(state), self._recording(mapping) as recorder:
            if not few_shot:
                self.model.encode_images(x.to(device))
            else:
                prepared = self.references(references, reference_prompts)
                with recorder.paused():
                    memory = self._path.memory(prepared)
                feats = self._path.encode(x)
                output = self._path.segment(feats, memory)
                if needs_memory_encoder:
                    self.model.write_memory(feats, output, frame=1, conditioning=False)
        missing = [key for key in mapping.values() if key not in recorder.outputs]
        if missing:  # pragma: no cover - every listed layer runs in these forwards
            raise RuntimeError(f"layers {missing} did not run in this forward")
        return {key: recorder.outputs[key] for key in mapping.values()}

    def _batches(self, n: int, desc: str) -> Iterator[slice]:
        starts = range(0, n, self.batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", file=sys.stderr, disable=not self.progress, leave=False):
            yield slice(start, min(start + self.batch_size, n))

    def dense_features(
        self,
        images: Sequence[ImageInput],
        *,
        layer: str | None = None,
        adapters: bool | None = None,
        size: int | tuple[int, int] | None = None,
        dtype: torch.dtype = torch.float32,
        references: Any = None,
        reference_prompts: Sequence[Any] | None = None,
    ) -> torch.Tensor:
        """Per-pixel features of every image, batched: ``(N, C, h, w)`` on the CPU.

        ``size`` bilinearly resizes the maps (``align_corners=False``) to ``(h, w)``; ``None`` keeps
        the layer's own grid. ``dtype`` of the result (``torch.float16`` halves the memory).
        """
        layer = layer or self.default_layer()
        images = list(images)
        if references is not None:  # prepared once: the reference memory is computed once for every batch
            references, reference_prompts = self.references(references, reference_prompts), None
        chunks = []
        for part in self._batches(len(images), desc=f"dense {layer}"):
            out = self.extract(images[part], layer, adapters=adapters, references=references, reference_prompts=reference_prompts)[layer]
            if size is not None:
                out = F.interpolate(out.float(), size=(size, size) if isinstance(size, int) else tuple(size), mode="bilinear", align_corners=False)
            chunks.append(out.to("cpu", dtype))
        if not chunks:
            raise ValueError("images: expected at least one image")
        return torch.cat(chunks)

    def object_features(
        self,
        images: Sequence[ImageInput],
        masks: Sequence[Any],
        *,
        labels: Sequence[Any] | None = None,
        image_ids: Sequence[Any] | None = None,
        layer: str | None = None,
        pooling: str = "mask_mean",
        threshold: float = 0.5,
        adapters: bool | None = None,
        min_area: int = 0,
        class_names: Callable[[ClassId], str] | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """One feature vector per object instance.

        Args:
            images: N images (paths, PIL or ``HxWx3`` uint8; any sizes).
            masks: one entry per image: an :class:`~sansa_probe.data.Instance`, a list of them,
                an ``HxW`` bool mask, a ``(K, H, W)`` stack or a list of masks (each the image's size).
            labels: for raw masks, the class of each (a scalar or list per image).
            image_ids: N ids for the table (default ``0..N-1``).
            layer: hook name (default :func:`default_layer`); an image-stage layer.
            pooling, threshold: see :mod:`sansa_probe.features.pooling`.
            adapters: ``True`` / ``False`` / ``None`` (current state).
            min_area: skip objects with fewer mask pixels (image resolution).
            class_names: optional ``class_id -> name`` for a ``class_name`` column.

        Returns:
            ``(table, X)``: ``table`` has one row per object, columns ``image_index, image_id,
            instance_id, class_id, area, coverage`` (+ ``class_name``); ``coverage`` is the mask
            area in feature cells (sum of the cell coverages). ``X`` float32 ``(N_objects, C)``.
        """
        layer = self._image_layer(layer, use="object features")
        return self.source(self._switch(adapters)).object_features(images, masks, labels=labels, image_ids=image_ids, layer=layer, pooling=pooling,
                                                                   threshold=threshold, min_area=min_area, class_names=class_names)
