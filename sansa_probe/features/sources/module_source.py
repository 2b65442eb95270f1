"""Your own ``torch.nn.Module`` as an encoder source, with a small adapter function.

    source = ModuleSource(
        name="my_vit",
        module=net,                                           # any nn.Module; layers are its module paths
        preprocess=Preprocess(size=224, mean=(0.5,) * 3, std=(0.5,) * 3),
        to_grid=lambda out: out[:, 1:].transpose(1, 2).reshape(out.shape[0], -1, 14, 14),  # (B, 1+196, C) -> (B, C, 14, 14)
        layers=["blocks.5", "blocks.11"],
    )

``to_grid`` turns a hooked layer's raw output into a channels-first ``(B, C, h, w)`` map (one
function for every layer, or a dict ``{layer: function}``); without it every output must already
be ``(B, C, h, w)``. ``layers`` are module paths of ``module`` (default: the module's own output,
named ``output``); ``default_layer`` is the last of them unless named. ``preprocess`` is a
:class:`~sansa_probe.features.sources.Preprocess` or any function ``list of HxWx3 uint8 ->
(B, 3, h, w)``. ``weights``: the file the module's weights came from, recorded with its SHA-256
(otherwise the identity says "in memory" and the cache key is the weights' content hash).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sansa_probe.features.layers import IMAGE_STAGE, LayerInfo
from sansa_probe.features.sources.base import EncoderSource, Preprocess, random_weights_warning
from sansa_probe.utils.hashing import file_sha256

__all__ = ["OUTPUT", "ModuleSource"]

OUTPUT = "output"  # the layer name of the module's own output

ToGrid = Callable[[Any], torch.Tensor]


class ModuleSource(EncoderSource):
    """A user's module as an encoder source (see the module docstring); keyword-only arguments.

    Args:
        name: the name in tables, figures and cache files.
        module: the encoder.
        preprocess: a :class:`Preprocess` or a function ``images -> (B, 3, h, w)``.
        to_grid: raw output -> ``(B, C, h, w)``, or ``{layer: function}``; ``None``: outputs already are.
        layers: module paths to hook (``"output"``: the module's own output).
        default_layer: the layer used when none is named (default: the last of ``layers``).
        weights: the weights file (recorded in the identity with its SHA-256).
        random: the weights are random (flagged in every output).
        forward: how to run the module on a batch (default ``module(x)``).
    """

    def __init__(self, *, name: str, module: nn.Module, preprocess: Preprocess | Callable[[Sequence[np.ndarray]], torch.Tensor],
                 to_grid: ToGrid | Mapping[str, ToGrid] | None = None, layers: Sequence[str] | None = None, default_layer: str | None = None,
                 weights: str | Path | None = None, random: bool = False, forward: Callable[[nn.Module, torch.Tensor], Any] | None = None) -> None:
        if not isinstance(module, nn.Module):
            raise ValueError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
        if not str(name).strip() or "," in str(name):
            raise ValueError(f"name: expected a non-empty name without commas, got {name!r}")
        self.name = str(name)
        self.module = module.eval().requires_grad_(False)
        if not isinstance(preprocess, Preprocess) and not callable(preprocess):
            raise ValueError(f"preprocess: expected a Preprocess or a function of a list of images, got {type(preprocess).__name__}")
        self.preprocess = preprocess if isinstance(preprocess, Preprocess) else None
        self._preprocess = preprocess
        self.random = bool(random)
        self.weights = Path(weights) if weights is not None else None
        self._forward = forward
        names = list(layers) if layers is not None else [OUTPUT]
        paths = {path for path, _ in module.named_modules()}
        unknown = [n for n in names if n != OUTPUT and n not in paths]
        if unknown or not names:
            raise ValueError(f"layers: {unknown or names} are not module paths of {type(module).__name__} "
                             f"(e.g. {', '.join(list(p for p in paths if p)[:5])}; {OUTPUT!r} is the module's own output)")
        if isinstance(to_grid, Mapping):
            missing = [n for n in names if n not in to_grid]
            if missing:
                raise ValueError(f"to_grid: no function for layers {missing}")
        self._to_grid = to_grid
        self._layers = [LayerInfo(name=n, module="" if n == OUTPUT else n, stage=IMAGE_STAGE, layout="custom",
                                  description="module output" if n == OUTPUT else "module output, through to_grid") for n in names]
        self._default = default_layer or names[-1]
        if self._default not in names:
            raise ValueError(f"default_layer: {self._default!r} is not one of layers {names}")

    def layers(self) -> list[LayerInfo]:
        return list(self._layers)

    def default_layer(self) -> str:
        return self._default

    def images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        x = self._preprocess(images)
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != len(images):
            raise ValueError(f"{self.name} preprocess: expected a (B, 3, h, w) tensor for {len(images)} images, got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        return x.float()

    def forward(self, x: torch.Tensor) -> None:
        if self._forward is not None:
            self._forward(self.module, x)
        else:
            self.module(x)

    def to_map(self, info: LayerInfo, output: Any, x: torch.Tensor) -> torch.Tensor:
        convert = self._to_grid[info.name] if isinstance(self._to_grid, Mapping) else self._to_grid
        out = convert(output) if convert is not None else output
        if not isinstance(out, torch.Tensor) or out.ndim != 4 or out.shape[0] != x.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"{self.name} {info.name}: to_grid must give a (B, C, h, w) tensor for a batch of {x.shape[0]}, got {shape}")
        return out

    def config(self) -> dict[str, Any]:
        preprocess = self.preprocess.to_dict() if self.preprocess is not None else getattr(self._preprocess, "__qualname__", repr(self._preprocess))
        return {"name": self.name, "preprocess": preprocess, "layers": [i.name for i in self._layers], "class": type(self.module).__qualname__}

    def identity(self) -> dict[str, Any]:
        if self.random:
            weights: Any = "random"
        elif self.weights is not None:
            weights = {"file": str(self.weights), **({"sha256": file_sha256(self.weights)} if self.weights.is_file() else {})}
        else:
            weights = f"in memory (content hash {self.state()['digest'][:12]})"
        return {"encoder": self.name, "library": "module", "class": f"{type(self.module).__module__}.{type(self.module).__qualname__}",
                "weights": weights, "random": self.random, "preprocess": self.config()["preprocess"], "default_layer": self._default,
                "device": str(self.device), "warnings": [random_weights_warning(self.name)] if self.random else []}
