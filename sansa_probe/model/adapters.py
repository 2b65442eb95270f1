"""Adapters inserted into sam2's Hiera blocks by hooks, never by editing sam2.

A Hiera ``MultiScaleBlock`` computes (``sam2/modeling/backbones/hieradet.py``)::

    x = shortcut + attn(norm1(x))          # x_self of paper eq. 5, (B, H, W, C)
    x = x + mlp(norm2(x))

SANSA's AdaptFormer (paper eq. 6) adds a bottleneck branch in parallel with the MLP,
fed with the post-attention stream ``x_self``::

    x' = x_self + MLP(norm2(x_self)) + A(x_self),   A(x) = s * up(ReLU(down(LN(x))))

We obtain this without touching the block: a forward pre-hook on ``norm2`` keeps its
input ``x_self`` and a forward hook on ``mlp`` adds ``A(x_self)`` to the MLP output. The
adapter module is registered on the block as ``block.adapter`` so its parameters are
named ``image_encoder.trunk.blocks.<i>.adapter.{adapter_layer_norm_before,down_proj,up_proj}``,
the names of the public SANSA release.

Every hook reads one :class:`AdapterSwitch`; when it is off the hooks return without
changing anything, so the block computes exactly what plain sam2 computes.

Ablation families (paper Table 3): ``houlsby`` (sequential bottlenecks after the
attention and after the MLP), ``lora`` (low-rank update of the fused ``attn.qkv``
projection), ``mona`` (multi-cognitive convolutional adapters after attention and MLP).
All are no-ops at initialisation (their last projection is zero-initialised).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = [
    "AdapterSwitch",
    "AdaptFormer",
    "HoulsbyAdapter",
    "LoRA",
    "MonaAdapter",
    "AdapterPlacement",
    "attach_adapters",
    "adapter_blocks",
    "adapter_bottleneck",
]


@dataclass
class AdapterSwitch:
    """Shared on/off state read by every adapter hook of one model."""

    enabled: bool = True


class AdaptFormer(nn.Module):
    """Token-wise bottleneck ``s * up(ReLU(down(LN(x))))`` (AdaptFormer, Chen et al. 2022).

    ``down`` is Kaiming-uniform initialised, ``up`` zero-initialised: a fresh adapter is an exact no-op.

    Shapes: ``x`` (..., dim) -> (..., dim).
    """

    def __init__(self, *, dim: int, bottleneck: int, layernorm: bool = True, scale: float = 0.1) -> None:
        super().__init__()
        if bottleneck < 1:
            raise ValueError(f"bottleneck must be >= 1, got {bottleneck} (dim={dim})")
        self.adapter_layer_norm_before = nn.LayerNorm(dim) if layernorm else None
        self.down_proj = nn.Linear(dim, bottleneck)
        self.non_linear_func = nn.ReLU()
        self.up_proj = nn.Linear(bottleneck, dim)
        self.scale = float(scale)
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.down_proj.weight, a=math.sqrt(5))
            nn.init.zeros_(self.down_proj.bias)
            nn.init.zeros_(self.up_proj.weight)
            nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.adapter_layer_norm_before is not None:
            x = self.adapter_layer_norm_before(x)
        return self.up_proj(self.non_linear_func(self.down_proj(x))) * self.scale


class HoulsbyAdapter(nn.Module):
    """Sequential bottleneck adapter (Houlsby et al. 2019): ``x + up(GELU(down(x)))``; returns the delta."""

    def __init__(self, *, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.down_proj = nn.Linear(dim, bottleneck)
        self.act = nn.GELU()
        self.up_proj = nn.Linear(bottleneck, dim)
        with torch.no_grad():
            nn.init.normal_(self.down_proj.weight, std=1e-3)
            nn.init.zeros_(self.down_proj.bias)
            nn.init.zeros_(self.up_proj.weight)
            nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_proj(self.act(self.down_proj(x)))


class LoRA(nn.Module):
    """Low-rank update ``(alpha / r) * B(A(x))`` of a linear layer (Hu et al. 2022); B is zero-initialised."""

    def __init__(self, *, in_features: int, out_features: int, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        self.lora_a = nn.Linear(in_features, rank, bias=False)
        self.lora_b = nn.Linear(rank, out_features, bias=False)
        self.scaling = float(alpha if alpha is not None else rank) / rank
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.lora_a.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_b.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lora_b(self.lora_a(x)) * self.scaling


class MonaAdapter(nn.Module):
    """Multi-cognitive visual adapter (Mona, Yin et al. CVPR 2025), channels-last input; returns the delta.

    ``LN(x) * g + x * gx`` -> down -> mean of depth-wise 3/5/7 convolutions (+ skip) -> 1x1 conv (+ skip)
    -> GELU -> up. ``x``: (B, H, W, dim).
    """

    def __init__(self, *, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))
        self.gamma_x = nn.Parameter(torch.ones(dim))
        self.down_proj = nn.Linear(dim, bottleneck)
        self.convs = nn.ModuleList(
            nn.Conv2d(bottleneck, bottleneck, k, padding=k // 2, groups=bottleneck) for k in (3, 5, 7)
        )
        self.projector = nn.Conv2d(bottleneck, bottleneck, 1)
        self.act = nn.GELU()
        self.up_proj = nn.Linear(bottleneck, dim)
        with torch.no_grad():
            nn.init.zeros_(self.up_proj.weight)
            nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x) * self.gamma + x * self.gamma_x
        h = self.down_proj(h).permute(0, 3, 1, 2)  # (B, H, W, b) -> (B, b, H, W)
        h = sum(conv(h) for conv in self.convs) / len(self.convs) + h
        h = self.projector(h) + h
        h = self.act(h).permute(0, 2, 3, 1)  # (B, b, H, W) -> (B, H, W, b)
        return self.up_proj(h)


@dataclass
class AdapterPlacement:
    """Where adapters were inserted: the block indices, the adapter modules, the hooks.

    ``modules`` maps each adapter's path inside the trunk (``blocks.10.adapter``,
    ``blocks.10.adapter_attn``, ``blocks.10.lora_qkv``, ...) to the module, in block order.
    """

    kind: str
    blocks: list[int]
    modules: dict[str, nn.Module] = field(default_factory=dict)
    handles: list[RemovableHandle] = field(default_factory=list)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


_ADAPTER_TYPES = (AdaptFormer, HoulsbyAdapter, LoRA, MonaAdapter)


def adapter_bottleneck(dim_in: int, ratio: float) -> int:
    """The release's bottleneck width ``int(dim_in * ratio)`` (``dim_in``: the block's input width)."""
    return int(dim_in * ratio)


def adapter_blocks(stage_ends: list[int], stages: tuple[int, ...]) -> list[int]:
    """Indices of every block of the given Hiera stages (``stage_ends`` from ``Hiera.stage_ends``)."""
    starts = [0] + [end + 1 for end in stage_ends[:-1]]
    return [i for s in stages for i in range(starts[s], stage_ends[s] + 1)]


def _add_output(module: nn.Module, delta: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], switch: AdapterSwitch) -> RemovableHandle:
    """Forward hook: ``output + delta(input, output)`` while the switch is on."""

    def hook(_module: nn.Module, args: tuple, output: torch.Tensor):
        if not switch.enabled:
            return None
        return output + delta(args[0], output)

    return module.register_forward_hook(hook)


def _attach_adaptformer(block: nn.Module, *, bottleneck: int, layernorm: bool, scale: float, switch: AdapterSwitch) -> list[RemovableHandle]:
    block.adapter = AdaptFormer(dim=block.dim_out, bottleneck=bottleneck, layernorm=layernorm, scale=scale)
    stash: dict[str, torch.Tensor] = {}

    def keep_stream(_module: nn.Module, args: tuple) -> None:
        if switch.enabled:
            stash["x_self"] = args[0]  # (B, H, W, C): the post-attention residual stream

    def add_branch(_module: nn.Module, _args: tuple, output: torch.Tensor):
        if not switch.enabled:
            return None
        x_self = stash.pop("x_self")
        return output + block.adapter(x_self)

    return [block.norm2.register_forward_pre_hook(keep_stream), block.mlp.register_forward_hook(add_branch)]


def _attach_houlsby(block: nn.Module, *, bottleneck: int, switch: AdapterSwitch) -> list[RemovableHandle]:
    block.adapter_attn = HoulsbyAdapter(dim=block.dim_out, bottleneck=bottleneck)
    block.adapter_mlp = HoulsbyAdapter(dim=block.dim_out, bottleneck=bottleneck)
    return [
        _add_output(block.attn, lambda _x, y: block.adapter_attn(y), switch),
        _add_output(block.mlp, lambda _x, y: block.adapter_mlp(y), switch),
    ]


def _attach_lora(block: nn.Module, *, rank: int, switch: AdapterSwitch) -> list[RemovableHandle]:
    qkv = block.attn.qkv
    block.lora_qkv = LoRA(in_features=qkv.in_features, out_features=qkv.out_features, rank=rank)
    return [_add_output(qkv, lambda x, _y: block.lora_qkv(x), switch)]


def _attach_mona(block: nn.Module, *, bottleneck: int, switch: AdapterSwitch) -> list[RemovableHandle]:
    block.adapter_attn = MonaAdapter(dim=block.dim_out, bottleneck=bottleneck)
    block.adapter_mlp = MonaAdapter(dim=block.dim_out, bottleneck=bottleneck)
    return [
        _add_output(block.attn, lambda _x, y: block.adapter_attn(y), switch),
        _add_output(block.mlp, lambda _x, y: block.adapter_mlp(y), switch),
    ]


def attach_adapters(
    trunk: nn.Module,
    *,
    kind: str,
    stages: tuple[int, ...],
    ratio: float,
    switch: AdapterSwitch,
    layernorm: bool = True,
    scale: float = 0.1,
    sizing: str = "dim_in",
) -> AdapterPlacement:
    """Insert one adapter of ``kind`` in every block of ``stages`` of a sam2 ``Hiera`` trunk.

    Sizing follows the public SANSA release (``hieradet.py``: ``int(dim * adapt_dim)``): the
    bottleneck (for LoRA: the rank) is ``int(block.dim * ratio)`` of the block's INPUT width, also in
    the first block of a stage, whose width doubles; the adapter reads and writes ``block.dim_out``
    channels. Release checkpoints and ours are therefore interchangeable. ``sizing="dim_out"``
    sizes from the output width instead (sansa-probe checkpoints written before it followed the
    release).
    """
    blocks = adapter_blocks(list(trunk.stage_ends), stages)
    placement = AdapterPlacement(kind=kind, blocks=blocks)
    for index in blocks:
        block = trunk.blocks[index]
        bottleneck = max(1, adapter_bottleneck(block.dim if sizing == "dim_in" else block.dim_out, ratio))
        if kind == "adaptformer":
            handles = _attach_adaptformer(block, bottleneck=bottleneck, layernorm=layernorm, scale=scale, switch=switch)
        elif kind == "houlsby":
            handles = _attach_houlsby(block, bottleneck=bottleneck, switch=switch)
        elif kind == "lora":
            handles = _attach_lora(block, rank=bottleneck, switch=switch)
        elif kind == "mona":
            handles = _attach_mona(block, bottleneck=bottleneck, switch=switch)
        else:
            raise ValueError(f"adapter kind {kind!r} is unknown; expected adaptformer, houlsby, lora or mona")
        placement.handles.extend(handles)
        for child_name, child in block.named_children():
            if isinstance(child, _ADAPTER_TYPES):
                placement.modules[f"blocks.{index}.{child_name}"] = child
    return placement
