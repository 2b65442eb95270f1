"""A ``torch.hub`` vision transformer as an encoder source (``hub:<owner/repo>:<entry>[:random]``).

    source = HubSource("facebookresearch/dinov2", "dinov2_vits14")          # DINOv2 ViT-S/14, Meta's weights
    source = HubSource("facebookresearch/dinov2", "dinov2_vits14_reg")      # with 4 register tokens
    source = HubSource("/path/to/repo", "my_vit")                            # a local folder with a hubconf.py

The entry is called as ``torch.hub.load(repo, entry, pretrained=not random)`` (``trust_repo=True``:
naming the repository is trusting it); the files it downloads are loaded with
``weights_only=True`` and recorded with their SHA-256
(:func:`~sansa_probe.features.sources.weights.weights_only_downloads`). The model must be a
vision transformer as DINOv2's are: ``patch_embed``, ``blocks`` (possibly in chunks), ``norm``,
and a CLS token plus ``num_register_tokens`` registers before the patch tokens (or timm's
``num_prefix_tokens``). Anything else: wrap it in a
:class:`~sansa_probe.features.sources.ModuleSource` with a small adapter function. Images are
resized to ``image_size`` (default the model's ``patch_embed.img_size``, 518 for DINOv2) and
ImageNet-normalised.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sansa_probe.features.layers import IMAGE_STAGE, LayerInfo
from sansa_probe.features.sources.base import EncoderSource, Preprocess, random_weights_warning
from sansa_probe.features.sources.weights import EncoderWeightsNotFound, hub_repo_dirs, reachable, weights_only_downloads
from sansa_probe.utils.hashing import file_sha256

__all__ = ["HubSource", "vit_blocks", "vit_prefix_tokens"]

RANDOM_SEED = 0


def vit_blocks(model: nn.Module) -> list[str]:
    """Module paths of a ViT's transformer blocks in order: ``blocks.<i>``, or ``blocks.<c>.<i>``
    when they are grouped in chunks (DINOv2's ``BlockChunk``; its padding ``Identity`` skipped)."""
    paths = []
    for i, block in enumerate(model.blocks):
        if isinstance(block, nn.ModuleList):
            paths += [f"blocks.{i}.{j}" for j, inner in enumerate(block) if not isinstance(inner, nn.Identity)]
        else:
            paths.append(f"blocks.{i}")
    return paths


def vit_prefix_tokens(model: nn.Module) -> int:
    """Tokens before the patch tokens: timm's ``num_prefix_tokens``, else a CLS token (when
    ``cls_token`` is set) plus ``num_register_tokens``."""
    if hasattr(model, "num_prefix_tokens"):
        return int(model.num_prefix_tokens)
    return int(getattr(model, "cls_token", None) is not None) + int(getattr(model, "num_register_tokens", 0) or 0)


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


class HubSource(EncoderSource):
    """A torch.hub ViT as an encoder source (see the module docstring).

    Args:
        repo: ``owner/name`` on GitHub (default branch), or a local folder holding a ``hubconf.py``.
        entry: the hub entry (``dinov2_vits14``).
        random: build with ``pretrained=False`` under a fixed seed.
        device: where the model runs.
        image_size: square input size in pixels (a multiple of the patch size); default the model's own.
        name: the name in tables and figures (default ``hub:<repo>:<entry>[:random]``).
        **entry_kwargs: passed to the entry.
    """

    def __init__(self, repo: str, entry: str, *, random: bool = False, device: str | torch.device = "cpu", image_size: int | None = None,
                 name: str | None = None, **entry_kwargs: Any) -> None:
        self.repo, self.entry, self.random = str(repo), str(entry), bool(random)
        self.name = name or f"hub:{self.repo}:{self.entry}{':random' if random else ''}"
        self.entry_kwargs = dict(entry_kwargs)
        model, self.files = self._load()
        if not all(hasattr(model, a) for a in ("patch_embed", "blocks")):
            raise ValueError(f"{self.name}: the entry returned a {type(model).__name__} without patch_embed and blocks (not a ViT); "
                             "wrap it in ModuleSource(name=..., module=..., preprocess=..., to_grid=...)")
        self.module = model.eval().requires_grad_(False).to(device)
        patch = getattr(model.patch_embed, "patch_size", None) or getattr(model, "patch_size")
        self.patch = _pair(patch)
        size = _pair(image_size) if image_size is not None else _pair(getattr(model.patch_embed, "img_size", 224))
        if size[0] % self.patch[0] or size[1] % self.patch[1]:
            raise ValueError(f"image_size: {size[0]}x{size[1]} is not a multiple of {self.name}'s patch size {self.patch[0]}")
        self.preprocess = Preprocess(size=size)
        prefix = vit_prefix_tokens(model)
        infos = [LayerInfo(name=path, module=path, stage=IMAGE_STAGE, layout="vit_tokens", index=prefix,
                           description=f"transformer block {k} output, patch tokens ({prefix} prefix tokens dropped)")
                 for k, path in enumerate(vit_blocks(model))]
        if isinstance(getattr(model, "norm", None), nn.Module) and not isinstance(model.norm, nn.Identity):
            infos.append(LayerInfo(name="norm", module="norm", stage=IMAGE_STAGE, layout="vit_tokens", index=prefix,
                                   description="final norm: the patch tokens the model outputs"))
        self._layers = infos

    def _load(self) -> tuple[nn.Module, list[Path]]:
        local = Path(self.repo).is_dir()
        if not local:
            if self.repo.count("/") != 1 or ":" in self.repo:
                raise ValueError(f"{self.name}: expected a GitHub repository owner/name (default branch) or a local folder, got {self.repo!r}")
            folders = hub_repo_dirs(self.repo)
            if not any(f.is_dir() for f in folders) and not reachable("https://github.com"):
                raise EncoderWeightsNotFound(
                    f"{self.name}: the code of {self.repo} is not in {folders[0]} and github.com cannot be reached (offline?); on a "
                    f"connected machine run python -c \"import torch; torch.hub.load('{self.repo}', '{self.entry}')\" and copy "
                    f"{folders[0]} and {folders[0].parent / 'checkpoints'} here"
                )
        kwargs = {**self.entry_kwargs, "pretrained": not self.random}
        with weights_only_downloads(self.name) as files, torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            try:
                model = torch.hub.load(self.repo, self.entry, source="local" if local else "github", trust_repo=True,
                                       skip_validation=True, verbose=False, **kwargs)
            except TypeError as exc:
                if "pretrained" in str(exc):
                    raise ValueError(f"{self.name}: the entry takes no pretrained= argument ({exc}); wrap it in ModuleSource") from None
                raise
        return model, list(files)

    def layers(self) -> list[LayerInfo]:
        return list(self._layers)

    def default_layer(self) -> str:
        return self._layers[-1].name

    def grid(self, x: torch.Tensor) -> tuple[int, int]:
        return int(x.shape[-2]) // self.patch[0], int(x.shape[-1]) // self.patch[1]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "entry_kwargs": {k: str(v) for k, v in self.entry_kwargs.items()}, "random": self.random}

    def identity(self) -> dict[str, Any]:
        if self.random:
            weights: Any = "random"
        elif self.files:
            weights = [{"file": str(f), "sha256": file_sha256(f)} for f in self.files if f.is_file()]
        else:
            weights = "built by the entry (no file downloaded)"
        return {"encoder": self.name, "library": "torch.hub", "library_version": importlib.metadata.version("torch"),
                "repo": self.repo, "entry": self.entry, "weights": weights, "random": self.random,
                "preprocess": self.preprocess.to_dict(), "default_layer": self.default_layer(), "device": str(self.device),
                "warnings": [random_weights_warning(self.name)] if self.random else []}
