"""The hookable layers of SAM2 / SANSA: names, stages, and how each output becomes a feature map.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch
from sam2.modeling.backbones.hieradet import MultiScaleBlock
from sam2.modeling.backbones.image_encoder import FpnNeck
from sam2.modeling.backbones.utils import PatchEmbed
from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
from sam2.modeling.memory_encoder import Fuser, MaskDownSampler, MemoryEncoder
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.transformer import TwoWayAttentionBlock, TwoWayTransformer
from torch import nn

from sansa_probe.model.sansa import SansaModel

__all__ = ["IMAGE_STAGE", "FEW_SHOT_STAGE", "LayerInfo", "ReturnNodes", "default_layer", "layer_infos", "to_map"]

IMAGE_STAGE = "image"
FEW_SHOT_STAGE = "few_shot"

ReturnNodes = Union[str, Sequence[str], Mapping[str, str], Callable[[str], bool], None]


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


def to_map(info: LayerInfo, output: Any) -> torch.Tensor:
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


def layer_infos(sam: nn.Module) -> list[LayerInfo]:
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
