"""Features of SAM2 / SANSA by forward hooks on real module paths, pooled per object, cached on disk.

    fx = FeatureExtractor(model)
    fx.available_layers()                 # ['image_encoder.trunk.patch_embed', 'image_encoder.trunk.blocks.0', ...]
    out = fx.extract(images, ["image_encoder.trunk.blocks.11", "image_encoder.neck[2]"], adapters=False)
    out["image_encoder.neck[2]"].shape    # (B, 256, S/16, S/16)
    table, X = fx.object_features(images, masks)            # one row / vector per object instance

Layer names (the hook names) are the module paths of ``model.sam`` (sam2's ``SAM2Base``), chosen
by module class, never by name suffix:

==========================================  =======  ===============================================
name                                        stage    tensor returned (always channels-first)
==========================================  =======  ===============================================
``image_encoder.trunk.patch_embed``         image    patch embedding ``(B, C0, S/4, S/4)``
``image_encoder.trunk.blocks.<i>``          image    Hiera block output (incl. its adapter) ``(B, C_i, H_i, W_i)``
``image_encoder.neck[<l>]``                 image    FPN level ``l`` of the neck, sam2's ``backbone_fpn[l]``
                                                     before ``conv_s0/s1``: ``(B, 256, S/2^(l+2), ...)``;
                                                     ``l = 0`` is stride 4. Level ``3`` (stride 32) is
                                                     computed, then dropped by sam2 (``scalp=1``).
``memory_attention``                        few-shot target features conditioned on memory ``(B, 256, S/16, S/16)``
``memory_attention.layers.<i>``             few-shot output of memory-attention layer ``i``, same shape
``memory_encoder``                          few-shot the target's memory (its features fused with its predicted
                                                     mask, paper eq. 2) ``(B, 64, S/16, S/16)``
``memory_encoder.mask_downsampler``         few-shot the predicted mask, downsampled ``(B, 256, S/16, S/16)``
``memory_encoder.fuser``                    few-shot features + mask after the fuser ``(B, 256, S/16, S/16)``
``sam_mask_decoder``                        few-shot mask logits ``(B, M, S/4, S/4)`` (``M`` = 1 or 3)
``sam_mask_decoder.transformer``            few-shot image tokens after the two-way transformer ``(B, 256, S/16, S/16)``
``sam_mask_decoder.transformer.layers.<i>`` few-shot image tokens after two-way block ``i``, same shape
``sam_mask_decoder.output_upscaling.<k>``   few-shot the upscaled mask embedding (its last activation)
                                                     ``(B, 32, S/4, S/4)``
``sam_mask_decoder.conv_s0`` / ``conv_s1``  image    high-resolution features for the decoder
                                                     ``(B, 32, S/4, S/4)`` / ``(B, 64, S/8, S/8)``
==========================================  =======  ===============================================

The neck returns a list of levels, so its levels are named by indexing its output,
``image_encoder.neck[l]`` (``l`` as in sam2's ``backbone_fpn``), and not by ``neck.convs.<l>``
(those are lateral 1x1 convolutions before the top-down sum, numbered from the coarsest level).
Channels-last Hiera tensors ``(B, H, W, C)`` and token sequences ``(B, HW, C)`` / ``(HW, B, C)``
are all returned as ``(B, C, H, W)``.

**Default layer** (:func:`default_layer`): ``image_encoder.neck[2]``, the stride-16 image
embedding that sam2 calls ``vision_features``: what memory attention conditions and what the
memory encoder writes to memory, i.e. the image encoder's output used for memory. It is
downstream of both adapted Hiera stages (lateral from stage 3, top-down from stage 4), so it
is "SAM2 image features after the adapted stages" in the paper's sense.

**Stages.** Image-stage layers need an image forward only. Few-shot layers run in the
few-shot forward: pass ``references`` and ``reference_prompts`` to :meth:`FeatureExtractor.extract`;
the references are encoded into memory with recording paused, then the images (targets) run
through the image encoder, memory attention and the mask decoder, and, if a memory-encoder layer
is asked for, their predictions are encoded as pseudo-references (paper eq. 7). Only the
targets' pass is recorded.

**Objects** (:meth:`FeatureExtractor.object_features`): an image of any size is resized to the
square model input, so an ``H x W`` mask maps onto the whole ``h x w`` feature grid. Its
*coverage* of each cell is its adaptive average pool onto the grid (:func:`mask_coverage`,
torch's ``mode="area"``): the fraction of the cell's pixels inside the mask (exact when ``h``
divides ``H``; otherwise neighbouring bins share at most one pixel row/column). Pooling:
``"mask_mean"`` (default) is the coverage-weighted mean of the cells, ``sum(w F) / sum(w)``, so a
border cell counts in proportion to its overlap and no object is lost, however small;
``"mask_threshold"`` averages the cells with coverage >= ``threshold`` (falling back to the most
covered cell(s)); ``"mask_max"`` is the channel-wise max over cells with coverage > 0.

**Cache** (:class:`FeatureCache`): one file per model state (adapters off: SAM2's weights;
on: SAM2's weights + adapters, by content hash), layer, dataset, fold and split, with its
config in a JSON beside it and inside it; any config difference (pooling, images, dataset
options, ...) means recompute and overwrite. Writes are atomic.

The last section holds the command-line pieces shared by the probe commands
(``python -m sansa_probe.pca`` and its siblings).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sam2.modeling.backbones.hieradet import MultiScaleBlock
from sam2.modeling.backbones.image_encoder import FpnNeck
from sam2.modeling.backbones.utils import PatchEmbed
from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
from sam2.modeling.memory_encoder import Fuser, MaskDownSampler, MemoryEncoder
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.transformer import TwoWayAttentionBlock, TwoWayTransformer
from torch import nn
from tqdm.auto import tqdm

from sansa_probe.cli import add_model_arguments
from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.images import ImageInput, batch_to_model_input, load_rgb
from sansa_probe.model.prompting import PromptInputs, prompt_to_inputs
from sansa_probe.model.sansa import SansaModel
from sansa_probe.prompts.types import as_prompt
from sansa_probe.utils.io import atomic_torch_save, atomic_write_json, atomic_write_text

__all__ = [
    "MODELS",
    "IMAGE_STAGE",
    "FEW_SHOT_STAGE",
    "POOLINGS",
    "LayerInfo",
    "FeatureExtractor",
    "FeatureCache",
    "ProbeSplits",
    "default_layer",
    "mask_coverage",
    "masks_to_grid",
    "pool_object",
    "probe_splits",
    "select_images",
    "semantic_label_maps",
    "source_config",
]

IMAGE_STAGE = "image"
FEW_SHOT_STAGE = "few_shot"
POOLINGS = ("mask_mean", "mask_threshold", "mask_max")
CACHE_FORMAT = "sansa-probe/features"
CACHE_VERSION = 1

ReturnNodes = Union[str, Sequence[str], Mapping[str, str], Callable[[str], bool], None]


# ============================================================================ layer registry


@dataclass(frozen=True)
class LayerInfo:
    """One hookable layer.

    Attributes:
        name: the hook name (a module path of ``model.sam``, or ``image_encoder.neck[l]``).
        module: the path of the module the hook is registered on.
        stage: ``"image"`` (image forward) or ``"few_shot"`` (needs references).
        layout: how the module's raw output becomes ``(B, C, H, W)``: ``"channels_last"``
            ``(B, H, W, C)``; ``"channels_first"``; ``"tokens"`` ``(B, HW, C)``; ``"tokens_seq_first"``
            ``(HW, B, C)``; ``"list"`` (element ``index`` of the first returned list);
            ``"item"`` (element ``index`` of a returned tuple, channels-first);
            ``"item_tokens"`` (element ``index`` of a returned tuple, ``(B, HW, C)``);
            ``"key"`` (``output[key]``, channels-first).
        index: list / tuple element, or dict key, for the layouts that select one.
        description: what the tensor is.
    """

    name: str
    module: str
    stage: str
    layout: str
    description: str
    index: int | str | None = None


def _tokens_to_map(tokens: torch.Tensor, *, name: str) -> torch.Tensor:
    """``(B, HW, C)`` -> ``(B, C, H, W)`` on the square grid sam2 always uses."""
    b, n, c = tokens.shape
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"{name}: {n} tokens do not form a square grid")
    return tokens.transpose(1, 2).reshape(b, c, side, side)


def _to_map(info: LayerInfo, output: Any) -> torch.Tensor:
    """The raw output of ``info.module`` as a channels-first ``(B, C, H, W)`` tensor."""
    layout = info.layout
    if layout == "channels_last":
        return output.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
    if layout == "channels_first":
        return output
    if layout == "tokens":
        return _tokens_to_map(output, name=info.name)
    if layout == "tokens_seq_first":
        return _tokens_to_map(output.transpose(0, 1), name=info.name)  # (HW, B, C) -> (B, HW, C)
    if layout == "list":
        return output[0][info.index]  # FpnNeck returns (levels, positional encodings)
    if layout == "item":
        return output[info.index]
    if layout == "item_tokens":
        return _tokens_to_map(output[info.index], name=info.name)
    if layout == "key":
        return output[info.index]
    raise AssertionError(f"unknown layout {layout!r}")  # pragma: no cover


def _layer_infos(sam: nn.Module) -> list[LayerInfo]:
    """Walk ``sam.named_modules()`` (in order) and describe every hookable layer by module class."""
    decoder = getattr(sam, "sam_mask_decoder", None)
    upscaling_last = decoder.output_upscaling[-1] if decoder is not None else None
    high_res = {id(getattr(decoder, n)): n for n in ("conv_s0", "conv_s1") if decoder is not None and hasattr(decoder, n)}
    memory_attention = getattr(sam, "memory_attention", None)
    layers_batch_first = bool(getattr(memory_attention, "batch_first", True))
    infos: list[LayerInfo] = []
    for path, module in sam.named_modules():
        if not path:
            continue
        add = lambda stage, layout, text, index=None, name=path: infos.append(  # noqa: E731
            LayerInfo(name=name, module=path, stage=stage, layout=layout, description=text, index=index)
        )
        if isinstance(module, PatchEmbed):
            add(IMAGE_STAGE, "channels_last", "patch embedding")
        elif isinstance(module, MultiScaleBlock):
            add(IMAGE_STAGE, "channels_last", "Hiera block output (adapter branch included)")
        elif isinstance(module, FpnNeck):
            for level in range(len(module.convs)):
                add(IMAGE_STAGE, "list", f"FPN level {level} (stride {2 ** (level + 2)})", level, f"{path}[{level}]")
        elif isinstance(module, MemoryAttention):
            add(FEW_SHOT_STAGE, "tokens_seq_first", "target features conditioned on memory")
        elif isinstance(module, MemoryAttentionLayer):
            add(FEW_SHOT_STAGE, "tokens" if layers_batch_first else "tokens_seq_first", "memory-attention layer output")
        elif isinstance(module, MemoryEncoder):
            add(FEW_SHOT_STAGE, "key", "memory of the target (features fused with its predicted mask)", "vision_features")
        elif isinstance(module, MaskDownSampler):
            add(FEW_SHOT_STAGE, "channels_first", "predicted mask, downsampled by the memory encoder")
        elif isinstance(module, Fuser):
            add(FEW_SHOT_STAGE, "channels_first", "memory encoder: features + mask after the fuser")
        elif isinstance(module, MaskDecoder):
            add(FEW_SHOT_STAGE, "item", "mask logits (B, M, S/4, S/4)", 0)
        elif isinstance(module, TwoWayTransformer):
            add(FEW_SHOT_STAGE, "item_tokens", "image tokens after the two-way transformer", 1)
        elif isinstance(module, TwoWayAttentionBlock):
            add(FEW_SHOT_STAGE, "item_tokens", "image tokens after a two-way attention block", 1)
        elif module is upscaling_last:
            add(FEW_SHOT_STAGE, "channels_first", "upscaled mask embedding (dotted with the mask tokens)")
        elif id(module) in high_res:
            add(IMAGE_STAGE, "channels_first", f"high-resolution decoder features ({high_res[id(module)]})")
    return infos


def default_layer(model: SansaModel) -> str:
    """``image_encoder.neck[l]`` with ``l`` the level sam2 keeps as ``vision_features`` (stride 16):
    the image encoder's output used for memory (see the module docstring)."""
    encoder = model.sam.image_encoder
    return f"image_encoder.neck[{len(encoder.neck.convs) - 1 - int(encoder.scalp)}]"


# ============================================================================ masks on the feature grid


def mask_coverage(mask: Any, grid: tuple[int, int]) -> torch.Tensor:
    """Fraction of each grid cell covered by an ``H x W`` mask -> float32 ``(h, w)`` in ``[0, 1]``.

    The mask spans the whole grid (the image is resized to the square model input); the
    coverage is ``F.adaptive_avg_pool2d`` of the mask onto ``grid`` (torch's ``mode="area"``).
    """
    tensor = torch.as_tensor(np.asarray(mask), dtype=torch.float32) if not isinstance(mask, torch.Tensor) else mask.float()
    if tensor.ndim != 2:
        raise ValueError(f"mask: expected a 2-D HxW mask, got shape {tuple(tensor.shape)}")
    return F.adaptive_avg_pool2d(tensor[None, None].cpu(), tuple(int(g) for g in grid))[0, 0]


def masks_to_grid(masks: Sequence[Any], grid: tuple[int, int], *, threshold: float = 0.5) -> list[np.ndarray]:
    """Bool masks at feature resolution (coverage >= ``threshold``), for the pixel-level probes
    (:class:`~sansa_probe.probes.PCARGB`, :class:`~sansa_probe.probes.PartMatching`)."""
    return [(mask_coverage(m, grid) >= float(threshold)).numpy() for m in masks]


def pool_object(features: torch.Tensor, coverage: torch.Tensor, *, pooling: str = "mask_mean", threshold: float = 0.5) -> torch.Tensor:
    """One object vector ``(C,)`` from a feature map ``(C, h, w)`` and its coverage ``(h, w)``
    (see the module docstring for the poolings)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
    c = features.shape[0]
    flat, weights = features.reshape(c, -1).float(), coverage.reshape(-1).to(features.device, torch.float32)
    if float(weights.sum()) <= 0:
        raise ValueError("mask: is empty; an object needs at least one pixel")
    if pooling == "mask_mean":
        return flat @ weights / weights.sum()
    if pooling == "mask_max":
        return flat[:, weights > 0].max(dim=1).values
    keep = weights >= float(threshold)
    if not bool(keep.any()):
        keep = weights == weights.max()
    return flat[:, keep].mean(dim=1)


def _as_object_list(entry: Any, labels: Any, *, index: int) -> list[Instance]:
    """One image's objects as Instances: an Instance, Instances, one HxW mask or several."""
    if isinstance(entry, Instance):
        return [entry]
    if isinstance(entry, (list, tuple)) and entry and all(isinstance(e, Instance) for e in entry):
        return list(entry)
    array = entry if isinstance(entry, (list, tuple)) else np.asarray(entry.detach().cpu() if hasattr(entry, "detach") else entry)
    if isinstance(array, np.ndarray) and array.ndim == 2:
        array, labels = [array], [labels]
    elif isinstance(array, np.ndarray) and array.ndim == 3:
        array = list(array)
    elif not isinstance(array, list) and not isinstance(array, tuple):
        raise ValueError(f"masks[{index}]: expected an Instance, a list of Instances, an HxW mask or a list of masks")
    if labels is None:
        labels = [None] * len(array)
    elif np.ndim(labels) == 0:
        labels = [labels]
    labels = list(labels)
    if len(labels) != len(array):
        raise ValueError(f"labels[{index}]: expected {len(array)} labels (one per mask of image {index}), got {len(labels)}")
    return [Instance(class_id=label, instance_id=k, mask=np.asarray(m)) for k, (m, label) in enumerate(zip(array, labels))]


def _check_object_mask(mask: Any, size: tuple[int, int] | None, *, name: str) -> np.ndarray:
    array = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D HxW mask, got shape {tuple(array.shape)}")
    if array.dtype != bool:
        if not np.all(np.isin(np.unique(array), (0, 1))):
            raise ValueError(f"{name}: expected a boolean (or 0/1) mask")
        array = array.astype(bool)
    if size is not None and array.shape != tuple(size):
        raise ValueError(f"{name}: mask of size {array.shape[0]}x{array.shape[1]} does not match its image of size {size[0]}x{size[1]} (HxW)")
    return array


# ============================================================================ the extractor


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
                self.outputs[self.keys[name]] = _to_map(self.infos[name], output).detach().clone()

        return hook

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        previous, self.active = self.active, False
        try:
            yield
        finally:
            self.active = previous


class FeatureExtractor:
    """Hook-based feature extraction from one :class:`~sansa_probe.model.SansaModel`.

    Frozen SAM2 and SANSA are the same model object: ``adapters=False`` / ``True`` switches the
    adapters for one call (``None``: as the model is currently switched).

    Args:
        model: the model (its device is used for every forward).
        batch_size: images per forward in the batched helpers.
        progress: show tqdm progress bars (on stderr) in the batched helpers.
        cache_dir: folder of the on-disk feature cache of the dataset helpers (``None``: no cache).
    """

    def __init__(self, model: SansaModel, *, batch_size: int = 8, progress: bool = False, cache_dir: str | os.PathLike | None = None) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        self.progress = progress
        self.cache = FeatureCache(cache_dir) if cache_dir is not None else None
        self._infos = {info.name: info for info in _layer_infos(model.sam)}
        self._digests: dict[str, tuple[int, int, tuple[int, ...], bytes]] = {}

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
        return batch_to_model_input(arrays, size), [a.shape[:2] for a in arrays]

    def _reference_inputs(self, references: Any, prompts: Any) -> tuple[torch.Tensor, list[PromptInputs]]:
        if prompts is None:
            raise ValueError("reference_prompts: required with references= (one prompt per reference)")
        prompts = list(prompts)
        tensor, sizes = self._model_input(references, name="references")
        if len(prompts) != tensor.shape[0]:
            raise ValueError(f"reference_prompts: {len(prompts)} prompts for {tensor.shape[0]} references (one per reference)")
        inputs = []
        for i, prompt in enumerate(prompts):
            if isinstance(prompt, PromptInputs):
                inputs.append(prompt)
                continue
            if sizes is None:
                raise ValueError(f"reference_prompts[{i}]: with a reference tensor, give sam2-ready PromptInputs")
            prompt = as_prompt(prompt, name=f"reference_prompts[{i}]")
            prompt.validate(*sizes[i], name=f"reference_prompts[{i}]")
            inputs.append(prompt_to_inputs(prompt, height=sizes[i][0], width=sizes[i][1], image_size=self.model.image_size))
        return tensor, inputs

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
                ``(B, 3, S, S)`` tensor (``model.preprocess``-style).
            return_nodes: a layer name, a list of names, a dict name -> output key, or a
                predicate on names (over the image-stage layers, or all layers when references are
                given); ``None``: :func:`default_layer`.
            adapters: ``True`` SANSA, ``False`` frozen SAM2, ``None`` the model's current state.
            references: k reference images (as ``images``) for few-shot layers.
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
                ref_tensor, ref_inputs = self._reference_inputs(references, reference_prompts)
                with recorder.paused():
                    memory = self.model.reference_memory(ref_tensor.to(device), ref_inputs)
                feats = self.model.encode_images(x.to(device))
                output = self.model.segment(feats, memory)
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
            pooling, threshold: see the module docstring.
            adapters: ``True`` / ``False`` / ``None`` (current state).
            min_area: skip objects with fewer mask pixels (image resolution).
            class_names: optional ``class_id -> name`` for a ``class_name`` column.

        Returns:
            ``(table, X)``: ``table`` has one row per object, columns ``image_index, image_id,
            instance_id, class_id, area, coverage`` (+ ``class_name``); ``coverage`` is the mask
            area in feature cells (sum of the cell coverages). ``X`` float32 ``(N_objects, C)``.
        """
        if pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
        layer = layer or self.default_layer()
        if self.layer_info(layer).stage != IMAGE_STAGE:
            raise ValueError(f"layer {layer!r}: object features use image-stage layers (available_layers('image'))")
        images = list(images)
        masks = list(masks)
        if len(masks) != len(images):
            raise ValueError(f"masks: expected one entry per image ({len(images)}), got {len(masks)}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"labels: expected one entry per image ({len(images)}), got {len(labels)}")
        if image_ids is not None and len(image_ids) != len(images):
            raise ValueError(f"image_ids: expected {len(images)} ids, got {len(image_ids)}")
        arrays = [load_rgb(image, name=f"images[{i}]") for i, image in enumerate(images)]
        objects = []
        for i, entry in enumerate(masks):
            instances = _as_object_list(entry, None if labels is None else labels[i], index=i)
            checked = [(inst, _check_object_mask(inst.mask, arrays[i].shape[:2], name=f"masks[{i}][{k}]")) for k, inst in enumerate(instances)]
            objects.append([(inst, m) for inst, m in checked if m.any() and int(m.sum()) >= int(min_area)])
        rows, vectors = [], []
        for part in self._batches(len(arrays), desc=f"objects {layer}"):
            if not any(objects[i] for i in range(part.start, part.stop)):
                continue
            fmap = self.extract(arrays[part], layer, adapters=adapters)[layer]
            for offset, i in enumerate(range(part.start, part.stop)):
                for inst, mask in objects[i]:
                    coverage = mask_coverage(mask, fmap.shape[-2:])
                    vectors.append(pool_object(fmap[offset], coverage, pooling=pooling, threshold=threshold).cpu())
                    row = {"image_index": i, "image_id": image_ids[i] if image_ids is not None else i, "instance_id": inst.instance_id,
                           "class_id": inst.class_id, "area": int(mask.sum()), "coverage": float(coverage.sum())}
                    if class_names is not None:
                        row["class_name"] = class_names(inst.class_id)
                    rows.append(row)
        columns = ["image_index", "image_id", "instance_id", "class_id", "area", "coverage"] + (["class_name"] if class_names else [])
        table = pd.DataFrame(rows, columns=columns)
        X = torch.stack(vectors).numpy().astype(np.float32) if vectors else np.zeros((0, 0), np.float32)
        return table, X

    # ------------------------------------------------------------------ model state
    def model_state(self, adapters: bool) -> dict[str, Any]:
        """Content hash of what the features depend on: SAM2's tensors and config, plus the adapters
        (tensors and recipe) when ``adapters`` is on. Per-tensor digests are reused while a tensor
        is not modified in place (``tensor._version``)."""
        sam = self.model.sam
        adapter_names = set(self.model.adapter_names)
        config = self.model.config.to_dict()
        if not adapters:
            config = {k: config[k] for k in ("backbone", "sam2_version", "image_size", "object_scores") if k in config}
        hasher = hashlib.blake2b(digest_size=20)
        hasher.update(json.dumps({"config": config, "adapters": bool(adapters)}, sort_keys=True, default=str).encode())
        for name, tensor in sorted(sam.state_dict(keep_vars=True).items()):
            if name in adapter_names and not adapters:
                continue
            hasher.update(name.encode())
            hasher.update(self._tensor_digest(name, tensor))
        digest = hasher.hexdigest()
        return {"id": f"{'sansa' if adapters else 'sam2'}-{digest[:12]}", "digest": digest, "adapters": bool(adapters), "config": config}

    def _tensor_digest(self, name: str, tensor: torch.Tensor) -> bytes:
        key = (tensor.data_ptr(), int(tensor._version), tuple(tensor.shape))
        cached = self._digests.get(name)
        if cached is not None and cached[:3] == key:
            return cached[3]
        data = tensor.detach().contiguous().cpu()
        digest = hashlib.blake2b(str((data.dtype, tuple(data.shape))).encode(), digest_size=16)
        if data.numel():
            digest.update(data.reshape(-1).view(torch.uint8).numpy().data)
        self._digests[name] = (*key, digest.digest())
        return self._digests[name][3]

    # ------------------------------------------------------------------ datasets
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
        layer = layer or self.default_layer()
        if self.layer_info(layer).stage != IMAGE_STAGE:
            raise ValueError(f"layer {layer!r}: dataset features use image-stage layers (available_layers('image'))")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
        classes = _check_classes(source, classes)
        ids = select_images(source, classes=classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        wanted = set(classes)
        config = {"image_ids_sha": _sha(ids), "n_images": len(ids), "classes": [str(c) for c in classes],
                  "pooling": pooling, "threshold": float(threshold), "min_area": int(min_area)}

        def compute() -> dict[str, Any]:
            tables, vectors = [], []
            chunk = max(self.batch_size * 8, 1)
            bar = tqdm(total=len(ids), desc=f"{source.name}/{source.split} {layer} {'sansa' if adapters else 'sam2'}",
                       unit="img", file=sys.stderr, disable=not self.progress)
            with bar, _quiet_progress(self):
                for start in range(0, len(ids), chunk):
                    part = ids[start:start + chunk]
                    images = [source.load_image(i) for i in part]
                    objects = [[inst for inst in source.load_instances(i) if inst.class_id in wanted] for i in part]
                    table, X = self.object_features(images, objects, image_ids=part, layer=layer, pooling=pooling, threshold=threshold,
                                                    adapters=adapters, min_area=min_area, class_names=source.class_name)
                    if len(table):
                        table["image_index"] += start
                        tables.append(table)
                        vectors.append(X)
                    bar.update(len(part))
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
        layer = layer or self.default_layer()
        if self.layer_info(layer).stage != IMAGE_STAGE:
            raise ValueError(f"layer {layer!r}: dataset features use image-stage layers (available_layers('image'))")
        classes = _check_classes(source, classes)
        ids = select_images(source, classes=classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        config = {"image_ids_sha": _sha(ids), "n_images": len(ids), "classes": [str(c) for c in classes],
                  "size": size if size is None or isinstance(size, int) else list(size), "dtype": str(dtype)}

        def compute() -> dict[str, Any]:
            chunks = []
            chunk = max(self.batch_size * 8, 1)
            bar = tqdm(total=len(ids), desc=f"{source.name}/{source.split} {layer} {'sansa' if adapters else 'sam2'}",
                       unit="img", file=sys.stderr, disable=not self.progress)
            with bar, _quiet_progress(self):
                for start in range(0, len(ids), chunk):
                    part = ids[start:start + chunk]
                    chunks.append(self.dense_features([source.load_image(i) for i in part], layer=layer, adapters=adapters, size=size, dtype=dtype))
                    bar.update(len(part))
            return {"image_ids": list(ids), "features": torch.cat(chunks)}

        payload = self._cached("dense", source, layer, adapters, config, compute)
        return list(payload["image_ids"]), payload["features"]


@contextlib.contextmanager
def _quiet_progress(extractor: FeatureExtractor) -> Iterator[None]:
    """Inner batch bars off while an outer per-image bar runs."""
    previous, extractor.progress = extractor.progress, False
    try:
        yield
    finally:
        extractor.progress = previous


def _sha(items: Sequence[Any]) -> str:
    return hashlib.sha1("\n".join(str(i) for i in items).encode()).hexdigest()


def _check_classes(source: SegmentationSource, classes: Sequence[ClassId] | None) -> list[ClassId]:
    available = source.class_ids()
    if classes is None:
        classes = available
    known = set(available)
    missing = [c for c in classes if c not in known]
    if missing:
        raise ValueError(f"classes: {missing[:5]} are not classes of {source!r}")
    if not classes:
        raise ValueError(f"{source!r}: has no class with images (is this split empty for this fold?)")
    return list(classes)


def select_images(
    source: SegmentationSource,
    *,
    classes: Sequence[ClassId] | None = None,
    images_per_class: int | None = None,
    max_images: int | None = None,
    seed: int = 0,
) -> list[str]:
    """Sorted image ids of ``source`` holding ``classes``: all of them, or a seeded sample of
    ``images_per_class`` per class (union), then at most ``max_images`` (seeded sample)."""
    classes = _check_classes(source, classes)
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for c in classes:
        ids = source.image_ids(c)
        if images_per_class is not None and len(ids) > int(images_per_class):
            ids = [ids[k] for k in sorted(rng.choice(len(ids), int(images_per_class), replace=False))]
        chosen.update(ids)
    ids = sorted(chosen)
    if max_images is not None and len(ids) > int(max_images):
        ids = [ids[k] for k in sorted(rng.choice(len(ids), int(max_images), replace=False))]
    if not ids:
        raise ValueError(f"{source!r}: no image holds the classes asked for; this split has no images for this fold")
    return ids


def source_config(source: SegmentationSource) -> dict[str, Any]:
    """The public scalar attributes of a source (fold, split, seed, image size, root, ...): part
    of the cache config, so a source built with other options is never mistaken for this one."""
    out: dict[str, Any] = {"type": type(source).__name__}
    for key, value in sorted(vars(source).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[key] = value
        elif isinstance(value, os.PathLike):
            out[key] = os.fspath(value)
    return out


def semantic_label_maps(
    source: SegmentationSource, image_ids: Sequence[str], classes: Sequence[ClassId], *, size: int, ignore_index: int = 255
) -> np.ndarray:
    """Semantic label maps ``(N, size, size)`` uint8 for a linear probe: 0 background, ``k`` for
    ``classes[k-1]`` (instances of other classes are background), ``ignore_index`` where the
    source's ``load_ignore`` says so; resized to the square ``size`` by nearest neighbour (as
    the image is resized to the square model input)."""
    if len(classes) >= ignore_index:
        raise ValueError(f"classes: at most {ignore_index - 1} classes fit in uint8 label maps with ignore_index {ignore_index}")
    index = {c: k + 1 for k, c in enumerate(classes)}
    out = np.zeros((len(image_ids), size, size), dtype=np.uint8)
    for n, image_id in enumerate(image_ids):
        instances = source.load_instances(image_id)
        if not instances:
            continue
        label = np.zeros(instances[0].mask.shape, dtype=np.uint8)
        for inst in instances:
            if inst.class_id in index:
                label[np.asarray(inst.mask, bool)] = index[inst.class_id]
        ignore = source.load_ignore(image_id)
        if ignore is not None:
            label[np.asarray(ignore, bool)] = ignore_index
        tensor = torch.from_numpy(label)[None, None].float()
        out[n] = F.interpolate(tensor, size=(size, size), mode="nearest")[0, 0].numpy().astype(np.uint8)
    return out


# ============================================================================ training / evaluation splits


@dataclass
class ProbeSplits:
    """Where a probe trains and where it is evaluated.

    ``test``: the fold's evaluation split (its novel classes, unseen by a strict SANSA of that
    fold); ``train``: a training split holding the same ``classes`` (``train_fold``'s), restricted
    to them by the caller; ``same_images``: both splits list the same images (``folder``-style
    datasets, where train = val = test).
    """

    train: SegmentationSource
    test: SegmentationSource
    classes: list[ClassId]
    train_fold: int
    same_images: bool


def probe_splits(dataset: str, fold: int, *, root: str | os.PathLike | None = None, eval_split: str = "val",
                 train_fold: int | None = None, **options: Any) -> ProbeSplits:
    """The probe's training and evaluation sources for ``dataset``'s ``fold``.

    The paper trains its probes (fig. 8 centroids, fig. 9 linear layer) on training *images* of
    fold 0's classes and evaluates on the val images of the same classes. In the few-shot
    benchmarks a fold's ``train`` split holds only its *training* classes, so the training images
    of the fold's evaluation classes come from a fold whose training split contains them
    (``train_fold``; default: the first of ``fold, fold + 1, ...`` that does, e.g. fold 1 for
    COCO-20i fold 0). A benchmark where no training split holds them (FSS-1000: disjoint
    train/val/test classes) raises ``ValueError``.
    """
    from sansa_probe.data import fold_classes, get_dataset, get_spec

    spec = get_spec(dataset)
    classes = fold_classes(dataset, fold, eval_split, root=root)
    candidates = [train_fold] if train_fold is not None else [(fold + k) % spec.folds for k in range(spec.folds)]
    chosen = None
    for g in candidates:
        if set(classes) <= set(fold_classes(dataset, g, "train", root=root)):
            chosen = g
            break
    if chosen is None:
        which = f"fold {train_fold}'s training split does" if train_fold is not None else "no fold's training split (folds 0.." + f"{spec.folds - 1}) does"
        raise ValueError(
            f"dataset {dataset!r}: {which} not hold the {len(classes)} classes of fold {fold}'s {eval_split!r} split; "
            "this probe needs training images of the evaluated classes (use a benchmark with per-fold class splits such as "
            "coco20i, pascal5i, lvis92i or synthetic)"
        )
    test = get_dataset(dataset, fold=fold, split=eval_split, root=root, **options)
    train = get_dataset(dataset, fold=chosen, split="train", root=root, **options)
    test_classes = test.class_ids()
    missing = [c for c in test_classes if c not in set(train.class_ids())]
    if missing:
        raise ValueError(f"dataset {dataset!r}: fold {chosen}'s training split has no image of classes {missing[:5]} of fold {fold}'s {eval_split!r} split")
    same = train.image_ids() == test.image_ids()
    if same:
        warnings.warn(f"dataset {dataset!r}: its train and {eval_split} splits are the same images; the probe is evaluated on its training images", stacklevel=2)
    return ProbeSplits(train=train, test=test, classes=list(test_classes), train_fold=chosen, same_images=same)


# ============================================================================ cache


class FeatureCache:
    """Feature sets on disk: ``<root>/<dataset>/fold<f>-<split>/<layer>/<model state>.<kind>.pt``
    plus ``.json`` with the config (also stored inside the ``.pt``). :meth:`load` returns
    ``None`` (recompute) when either is missing, unreadable or the config differs."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @staticmethod
    def _safe(text: Any) -> str:
        return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in str(text)).strip("-") or "none"

    def path(self, *, kind: str, dataset: str, fold: int | None, split: str, layer: str, state: str) -> Path:
        folder = self.root / self._safe(dataset) / f"fold{'-' if fold is None else fold}-{self._safe(split)}" / self._safe(layer)
        return folder / f"{self._safe(state)}.{self._safe(kind)}.pt"

    @staticmethod
    def _normal(config: Mapping[str, Any]) -> Any:
        return json.loads(json.dumps(config, sort_keys=True, default=str))

    def load(self, path: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
        meta = path.with_suffix(".json")
        if not path.is_file() or not meta.is_file():
            return None
        expected = self._normal(config)
        try:
            if json.loads(meta.read_text(encoding="utf-8")) != expected:
                return None
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, ValueError, RuntimeError, EOFError, json.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or json.loads(payload.get("config", "null")) != expected:
            return None
        return payload

    def save(self, path: Path, payload: Mapping[str, Any], config: Mapping[str, Any]) -> Path:
        text = json.dumps(self._normal(config), sort_keys=True)
        atomic_torch_save(path, {**payload, "config": text})
        atomic_write_text(path.with_suffix(".json"), json.dumps(self._normal(config), indent=2, sort_keys=True) + "\n")
        return path


# ============================================================================ command-line pieces of the probe commands

MODELS = {"sam2": False, "sansa": True}  # table name -> adapters on


def add_probe_arguments(parser: argparse.ArgumentParser, *, dataset: str | None = "coco20i", split: bool = False,
                        checkpoint_help: str | None = None) -> None:
    """Data, layer, output, cache and model options shared by the probe commands (``--adapters``
    defaults to both models)."""
    data = parser.add_argument_group("data")
    if dataset is not None:
        data.add_argument("--dataset", default=dataset, help=f"registered dataset (default {dataset}); 'synthetic' runs with no data on disk")
        data.add_argument("--fold", type=int, default=0, help="fold (default 0)")
        data.add_argument("--data-root", default=None, help="datasets root (default: $SANSA_DATA)")
        data.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                          help="dataset option, e.g. images_per_class=4 or image_size=128 for synthetic (repeatable)")
        data.add_argument("--images-per-class", type=int, default=50, help="seeded sample of images per class and split (default 50; 0 = all)")
        data.add_argument("--max-images", type=int, default=None, help="at most this many images per split (seeded sample)")
        if split:
            data.add_argument("--split", default="val", choices=["train", "val", "test"], help="split to read (default val)")
    data.add_argument("--seed", type=int, default=0, help="seed of the image samples")
    feats = parser.add_argument_group("features")
    feats.add_argument("--layer", default=None, help="hook name (default: image_encoder.neck[2], the image encoder's output used for memory); see --list-layers")
    feats.add_argument("--list-layers", action="store_true", help="print the hookable layers and exit")
    feats.add_argument("--batch-size", type=int, default=8, help="images per forward")
    run = parser.add_argument_group("run")
    run.add_argument("--out", default=None, help="output folder (required unless --list-layers)")
    run.add_argument("--cache-dir", default=None, help="feature cache (default <out>/feature_cache)")
    run.add_argument("--no-cache", action="store_true", help="always recompute features")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_model_arguments(parser, adapters_help=checkpoint_help or (
        "adapter checkpoint of this fold (default: $SANSA_CHECKPOINTS/<setting>/<dataset>/fold<f>.pt); 'none': fresh adapters"))
    parser.set_defaults(adapters=None)  # both models unless --adapters on|off
    parser.epilog = ((parser.epilog or "") + "\nBy default frozen SAM2 (adapters off, model 'sam2') and SANSA (adapters on, model 'sansa') "
                     "run through the same model object in one run; --adapters on|off keeps one.\n"
                     "--checkpoint defaults to $SANSA_CHECKPOINTS/<setting>/<dataset>/fold<f>.pt "
                     "(./checkpoints/... when SANSA_CHECKPOINTS is unset); --checkpoint none uses fresh adapters.").strip()


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["images_per_class=4", "seed=1"]`` -> ``{"images_per_class": 4, "seed": 1}`` (JSON values, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--dataset-option: {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@contextlib.contextmanager
def data_hint(prog: str, args: argparse.Namespace) -> Iterator[None]:
    """Re-raise a missing-dataset error with the same command on the procedural benchmark."""
    from sansa_probe.data import DatasetNotFoundError

    try:
        yield
    except DatasetNotFoundError as exc:
        if getattr(args, "dataset", None) == "synthetic":
            raise
        raise DatasetNotFoundError(
            f"{exc}\nThe same probe on the procedural benchmark (nothing on disk; add --checkpoint none to compare "
            f"with untrained adapters):\n    python -m {prog} --dataset synthetic --fold {getattr(args, 'fold', 0)} --out {args.out}"
        ) from None


def models_to_run(args: argparse.Namespace) -> dict[str, bool]:
    """``{"sam2": False, "sansa": True}``, or one of them with ``--adapters off|on``."""
    choice = getattr(args, "adapters", None)
    if choice is None:
        return dict(MODELS)
    return {"sansa": True} if choice == "on" else {"sam2": False}


def default_checkpoint(dataset: str, fold: int, setting: str = "strict") -> Path:
    """``$SANSA_CHECKPOINTS/<setting>/<dataset>/fold<fold>.pt`` (``./checkpoints`` when unset)."""
    root = Path(os.environ.get("SANSA_CHECKPOINTS") or "checkpoints").expanduser()
    return root / setting / dataset / f"fold{fold}.pt"


def resolve_checkpoint(args: argparse.Namespace, *, dataset: str, fold: int, needed: bool) -> str | None:
    """The adapter checkpoint a probe command loads: ``--checkpoint PATH``, ``none`` (fresh
    adapters), or the per-fold default (:func:`default_checkpoint`), which must exist when the
    adapted model runs (``needed``)."""
    given = getattr(args, "checkpoint", None)
    if given is not None:
        return None if str(given).lower() == "none" else str(given)
    if not needed:
        return None
    path = default_checkpoint(dataset, fold, getattr(args, "setting", "strict"))
    if not path.is_file():
        raise FileNotFoundError(
            f"--checkpoint: no adapter checkpoint for {dataset} fold {fold} at {path} (the default "
            "$SANSA_CHECKPOINTS/<setting>/<dataset>/fold<f>.pt; ./checkpoints when SANSA_CHECKPOINTS is unset).\n"
            f"Train one (adapters trained on the other folds' classes) with\n"
            f"    python -m sansa_probe.train --dataset {dataset} --fold {fold} --out runs/{dataset}_fold{fold}\n"
            f"and copy runs/{dataset}_fold{fold}/final.pt to {path}, or pass --checkpoint PATH "
            "(a sansa-probe or public SANSA checkpoint); --checkpoint none compares frozen SAM2 with untrained adapters "
            "(smoke tests), --adapters off runs frozen SAM2 only."
        )
    return str(path)


def extractor_from_args(model: SansaModel, args: argparse.Namespace) -> FeatureExtractor:
    cache = None if args.no_cache else (args.cache_dir or str(Path(args.out) / "feature_cache"))
    return FeatureExtractor(model, batch_size=args.batch_size, progress=not args.no_progress, cache_dir=cache)


def print_layers(build: Callable[..., SansaModel], args: argparse.Namespace) -> int:
    """``--list-layers``: build the model the arguments describe, without weights (layer names do
    not depend on them), and print its hookable layers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = build(args, adapters=None, sam2_checkpoint=None)
    print(FeatureExtractor(model).describe_layers().to_string(index=False))
    return 0


def write_table(frame: pd.DataFrame, path_stem: str | os.PathLike) -> list[Path]:
    """A tidy table as ``<stem>.csv`` and ``<stem>.json`` (records), atomically."""
    stem = Path(path_stem)
    csv = atomic_write_text(stem.with_name(stem.name + ".csv"), frame.to_csv(index=False))
    records = json.loads(frame.to_json(orient="records"))
    js = atomic_write_json(stem.with_name(stem.name + ".json"), records)
    return [csv, js]


def write_run_config(args: argparse.Namespace, out: str | os.PathLike, **extra: Any) -> Path:
    """The command's arguments (and ``extra``) as ``<out>/config.json``."""
    config = {k: v for k, v in sorted(vars(args).items()) if isinstance(v, (str, int, float, bool, list, type(None)))}
    return atomic_write_json(Path(out) / "config.json", {**config, **extra})

