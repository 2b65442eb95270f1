"""What every encoder source is: a module, its preprocessing, its hookable layers, its identity.

An :class:`EncoderSource` is everything the feature extractor needs from one image encoder:

* ``name``: how tables, figures and cache files call it (``"sam2"``, ``"timm:vit_small_patch14_dinov2.lvd142m"``, ...);
* ``module``: the ``torch.nn.Module`` whose module paths name the layers (hooks are registered on it);
* ``images(arrays) -> (B, 3, h, w)``: its own preprocessing (:class:`Preprocess`: size, normalisation);
* ``forward(x)``: one image forward of the module (the hooks record during it);
* ``layers()`` (:class:`~sansa_probe.features.layers.LayerInfo` s, module order) and ``default_layer()``;
* ``to_map(info, output, x) -> (B, C, h', w')``: a layer's raw output as a channels-first map,
  patch tokens on their grid (CLS and register tokens dropped: :func:`tokens_to_grid`);
* ``identity()``: a JSON-safe record of the weights (file and SHA-256, or the library name and
  version, or random), written in every output; ``state()``: a content hash for the cache key.

Layouts of :class:`~sansa_probe.features.layers.LayerInfo` used by sources besides SAM2's:
``"vit_tokens"`` (``(B, P + h*w, C)``, ``index`` = ``P`` leading prefix tokens: CLS, registers),
``"channels_first"`` ``(B, C, h, w)`` and ``"channels_last"`` ``(B, h, w, C)``.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from sansa_probe.features.layers import LayerInfo

__all__ = ["EncoderSource", "ModuleDigest", "Preprocess", "random_weights_warning", "tokens_to_grid"]

_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def random_weights_warning(name: str) -> str:
    """The flag in words for an encoder built with random weights (as for random SAM2 weights)."""
    return f"{name} has RANDOM weights: a smoke test, meaningless for results"


@dataclass(frozen=True)
class Preprocess:
    """How images enter an encoder: the whole image resized to ``size`` (no crop: an object mask
    of the image maps onto the whole feature grid), scaled to ``[0, 1]``, normalised by
    ``mean`` / ``std`` per channel.

    Attributes:
        size: ``(h, w)`` model input in pixels.
        mean, std: per-channel normalisation (RGB, in ``[0, 1]`` units).
        interpolation: PIL filter of the resize (``bicubic``, ``bilinear``, ...).
    """

    size: tuple[int, int]
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        size = (int(self.size), int(self.size)) if np.ndim(self.size) == 0 else tuple(int(s) for s in self.size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size: expected a positive int or (h, w), got {self.size!r}")
        if self.interpolation not in _RESAMPLING:
            raise ValueError(f"interpolation: expected one of {', '.join(_RESAMPLING)}, got {self.interpolation!r}")
        for key in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, key))
            if len(values) != 3:
                raise ValueError(f"{key}: expected 3 values (R, G, B), got {getattr(self, key)!r}")
            object.__setattr__(self, key, values)
        if min(self.std) <= 0:
            raise ValueError(f"std: expected positive values, got {self.std!r}")
        object.__setattr__(self, "size", size)

    def image(self, image: np.ndarray) -> torch.Tensor:
        """``HxWx3`` uint8 -> ``(3, h, w)`` float32."""
        pil = Image.fromarray(np.asarray(image))
        height, width = self.size
        if pil.size != (width, height):
            pil = pil.resize((width, height), _RESAMPLING[self.interpolation])
        tensor = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        mean = torch.tensor(self.mean, dtype=torch.float32)[:, None, None]
        std = torch.tensor(self.std, dtype=torch.float32)[:, None, None]
        return (tensor - mean) / std

    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``B`` images ``HxWx3`` uint8 (any sizes) -> ``(B, 3, h, w)`` float32."""
        return torch.stack([self.image(image) for image in images])

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def tokens_to_grid(tokens: torch.Tensor, *, grid: tuple[int, int], prefix: int = 0, name: str = "tokens") -> torch.Tensor:
    """Patch tokens on their grid: ``(B, P + h*w, C)`` -> ``(B, C, h, w)``, the ``P`` leading
    prefix tokens (CLS, registers) dropped; tokens are in row-major order as ViTs flatten them."""
    if tokens.ndim != 3:
        raise ValueError(f"{name}: expected tokens (B, N, C), got shape {tuple(tokens.shape)}")
    b, n, c = tokens.shape
    h, w = (int(g) for g in grid)
    if n != prefix + h * w:
        raise ValueError(f"{name}: {n} tokens are not {prefix} prefix tokens + a {h}x{w} grid of patches ({prefix + h * w})")
    return tokens[:, prefix:].transpose(1, 2).reshape(b, c, h, w)  # (B, hw, C) -> (B, C, h, w)


class ModuleDigest:
    """Content hash of a module's tensors (names, dtypes, shapes, bytes), for cache keys.

    Per-tensor digests are kept while a tensor is not modified in place (``tensor._version``),
    so hashing again reads only the tensors that changed.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._digests: dict[str, tuple[int, int, tuple[int, ...], bytes]] = {}

    def __call__(self, extra: Any = None) -> str:
        """Hex digest of ``extra`` (JSON) and every tensor of the module's state dict."""
        hasher = hashlib.blake2b(digest_size=20)
        hasher.update(json.dumps(extra, sort_keys=True, default=str).encode())
        for name, tensor in sorted(self.module.state_dict(keep_vars=True).items()):
            hasher.update(name.encode())
            hasher.update(self._tensor_digest(name, tensor))
        return hasher.hexdigest()

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


class EncoderSource(abc.ABC):
    """One image encoder for the feature extractor (see the module docstring).

    Subclasses set ``name``, ``module``, ``random`` (random weights) and ``preprocess`` (a
    :class:`Preprocess`, or ``None`` when they override :meth:`images`) in ``__init__``, and
    implement :meth:`layers`, :meth:`default_layer` and :meth:`identity`.
    """

    name: str
    module: nn.Module
    random: bool = False
    preprocess: Preprocess | None = None

    # ------------------------------------------------------------------ layers
    @abc.abstractmethod
    def layers(self) -> list[LayerInfo]:
        """The hookable layers, in module order (names are module paths of :attr:`module`)."""

    @abc.abstractmethod
    def default_layer(self) -> str:
        """The layer used when none is named: the encoder's output features."""

    def grid(self, x: torch.Tensor) -> tuple[int, int]:
        """The patch grid ``(h, w)`` of the ``"vit_tokens"`` layers for the input ``x`` ``(B, 3, H, W)``."""
        raise NotImplementedError(f"{self.name}: has no token layers")

    def to_map(self, info: LayerInfo, output: Any, x: torch.Tensor) -> torch.Tensor:
        """The raw output of ``info.module`` for the input ``x`` as ``(B, C, h, w)``."""
        if info.layout == "vit_tokens":
            return tokens_to_grid(output, grid=self.grid(x), prefix=int(info.index or 0), name=f"{self.name} {info.name}")
        if info.layout == "channels_first":
            return output
        if info.layout == "channels_last":
            return output.permute(0, 3, 1, 2)  # (B, h, w, C) -> (B, C, h, w)
        raise ValueError(f"{self.name} {info.name}: unknown layout {info.layout!r}")

    # ------------------------------------------------------------------ forward
    def images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``B`` images ``HxWx3`` uint8 -> the module's input ``(B, 3, h, w)`` on the CPU."""
        if self.preprocess is None:  # pragma: no cover - subclasses without one override this method
            raise NotImplementedError(f"{self.name}: no preprocessing")
        return self.preprocess(images)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """The state the module runs in for this source (e.g. SAM2's adapters on or off)."""
        yield

    def forward(self, x: torch.Tensor) -> None:
        """One image forward of the module on ``x`` (already on :attr:`device`); hooks record during it."""
        self.module(x)

    @property
    def device(self) -> torch.device:
        parameter = next(self.module.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    # ------------------------------------------------------------------ identity
    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """A JSON-safe record of what this encoder is (weights file and SHA-256, or name, library
        version and ``random``), with ``warnings`` (random weights in words)."""

    def config(self) -> dict[str, Any]:
        """What the features depend on besides the weights (hashed into :meth:`state`)."""
        return {"name": self.name, "preprocess": self.preprocess.to_dict() if self.preprocess is not None else None,
                "layers": [(i.name, i.layout, i.index) for i in self.layers()]}

    def state(self) -> dict[str, Any]:
        """Content hash of the weights and :meth:`config` -> ``{"id", "digest", "config"}``: the
        cache key (the ``id`` names the cache file)."""
        if getattr(self, "_digest", None) is None:
            self._digest = ModuleDigest(self.module)
        config = self.config()
        digest = self._digest(config)
        return {"id": f"{self.name}-{digest[:12]}", "digest": digest, "config": config}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
