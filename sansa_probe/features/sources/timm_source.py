"""Any ``timm`` model as an encoder source (``timm:<model name>[:random]``).

    source = TimmSource("vit_small_patch14_dinov2.lvd142m")          # DINOv2 ViT-S/14 (Hugging Face weights)
    source = TimmSource("vit_small_patch14_dinov2.lvd142m", random=True)   # same architecture, random weights
    source.layers()          # patch_embed, blocks.0 ... blocks.11, norm
    source.default_layer()   # 'norm': the patch tokens the model outputs (CLS and registers dropped)

The model is built without its classifier head (``num_classes=0``). Preprocessing is the
model's pretrained config (``timm.data.resolve_data_config``: input size, mean, std,
interpolation), applied to the whole image (no centre crop, so masks map onto the whole grid).
Layers: for vision transformers (``num_prefix_tokens``), ``patch_embed``, every block and the
final ``norm``, their tokens put on the patch grid with the prefix tokens dropped; for other
models (ConvNets, Swin, ...), the modules of timm's ``feature_info`` (channels-first, or
channels-last where the model says ``output_fmt == "NHWC"``). Pretrained weights:
:func:`~sansa_probe.features.sources.weights.timm_weights_file` (recorded with their SHA-256).
``random=True`` draws the weights from timm's own initialisation under a fixed seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sansa_probe.features.layers import IMAGE_STAGE, LayerInfo
from sansa_probe.features.sources.base import EncoderSource, Preprocess, random_weights_warning
from sansa_probe.features.sources.weights import timm_weights_file
from sansa_probe.utils.hashing import file_sha256

__all__ = ["TimmSource", "timm_layers"]

RANDOM_SEED = 0


def _check_timm_name(model_name: str) -> None:
    import timm  # deferred on purpose: timm is an optional dependency (the ``encoders`` extra)

    architecture = model_name.split(".", 1)[0]
    if not timm.is_model(architecture):
        close = timm.list_models(f"*{architecture.split('_')[0]}*")[:5]
        hint = f" (e.g. {', '.join(close)})" if close else ""
        raise ValueError(f"timm:{model_name}: timm {timm.__version__} has no model {architecture!r}{hint}; timm.list_models() lists them")
    try:
        timm.models.get_pretrained_cfg(model_name)
    except RuntimeError:
        tags = timm.list_pretrained(f"{architecture}.*")[:5]
        raise ValueError(f"timm:{model_name}: timm {timm.__version__} knows no such pretrained tag of {architecture!r}"
                         f"{' (it has ' + ', '.join(tags) + ')' if tags else ''}") from None


def timm_layers(model: nn.Module) -> list[LayerInfo]:
    """The hookable layers of a timm model, in module order (see the module docstring)."""
    paths = {path for path, _ in model.named_modules()}
    if hasattr(model, "num_prefix_tokens") and hasattr(model, "blocks") and hasattr(model, "patch_embed"):
        prefix = int(model.num_prefix_tokens)
        embed = model.patch_embed
        embed_layout = "vit_tokens" if getattr(embed, "flatten", True) else ("channels_last" if str(getattr(embed, "output_fmt", "")).endswith("NHWC") else "channels_first")
        infos = [LayerInfo(name="patch_embed", module="patch_embed", stage=IMAGE_STAGE, layout=embed_layout, index=0, description="patch embedding")]
        for k in range(len(model.blocks)):
            infos.append(LayerInfo(name=f"blocks.{k}", module=f"blocks.{k}", stage=IMAGE_STAGE, layout="vit_tokens", index=prefix,
                                   description=f"transformer block {k} output, patch tokens ({prefix} prefix tokens dropped)"))
        if "norm" in paths and not isinstance(model.norm, nn.Identity):
            infos.append(LayerInfo(name="norm", module="norm", stage=IMAGE_STAGE, layout="vit_tokens", index=prefix,
                                   description="final norm: the patch tokens the model outputs"))
        return infos
    feature_info = model.feature_info if isinstance(model.feature_info, list) else model.feature_info.get_dicts()
    layout = "channels_last" if str(getattr(model, "output_fmt", "NCHW")).endswith("NHWC") else "channels_first"
    return [LayerInfo(name=f["module"], module=f["module"], stage=IMAGE_STAGE, layout=layout,
                      description=f"feature level ({f['num_chs']} channels, stride {f['reduction']})")
            for f in feature_info if f["module"] in paths]


class TimmSource(EncoderSource):
    """A timm model as an encoder source (see the module docstring).

    Args:
        model_name: a timm model name, with or without its pretrained tag
            (``vit_small_patch14_dinov2.lvd142m``, ``vit_base_patch16_clip_224.openai``).
        random: random weights (timm's initialisation, seed 0) instead of the pretrained ones.
        device: where the model runs.
        name: the name in tables and figures (default ``timm:<model_name>[:random]``).
        **create_kwargs: passed to ``timm.create_model`` (e.g. ``img_size=224``, or ``depth=2`` for tests).
    """

    def __init__(self, model_name: str, *, random: bool = False, device: str | torch.device = "cpu", name: str | None = None,
                 **create_kwargs: Any) -> None:
        import timm  # deferred on purpose: timm is an optional dependency (the ``encoders`` extra)

        _check_timm_name(model_name)
        self.model_name = model_name
        self.random = bool(random)
        self.name = name or f"timm:{model_name}{':random' if random else ''}"
        self.create_kwargs = dict(create_kwargs)
        self.weights: Path | None = None
        if self.random:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_SEED)
                model = timm.create_model(model_name, pretrained=False, num_classes=0, **create_kwargs)
        else:
            self.weights = timm_weights_file(model_name)
            overlay = {"file": str(self.weights)}
            if self.weights.suffix != ".npz":
                overlay["custom_load"] = False  # a safetensors / torch file, not the npz some configs load by hand
            model = timm.create_model(model_name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay, **create_kwargs)
        self.module = model.eval().requires_grad_(False).to(device)
        self.timm_version = timm.__version__
        config = timm.data.resolve_data_config({}, model=model)
        size = tuple(getattr(getattr(model, "patch_embed", None), "img_size", None) or config["input_size"][1:])
        self.preprocess = Preprocess(size=size, mean=config["mean"], std=config["std"], interpolation=config.get("interpolation", "bicubic"))
        self._layers = timm_layers(model)
        if not self._layers:  # pragma: no cover - every timm model has feature_info
            raise ValueError(f"{self.name}: found no hookable layer (no blocks, no feature_info)")

    def layers(self) -> list[LayerInfo]:
        return list(self._layers)

    def default_layer(self) -> str:
        return self._layers[-1].name

    def grid(self, x: torch.Tensor) -> tuple[int, int]:
        embed = self.module.patch_embed
        if hasattr(embed, "dynamic_feat_size"):
            return tuple(int(g) for g in embed.dynamic_feat_size(tuple(x.shape[-2:])))
        patch = embed.patch_size
        return int(x.shape[-2]) // int(patch[0]), int(x.shape[-1]) // int(patch[1])

    def config(self) -> dict[str, Any]:
        return {**super().config(), "create_kwargs": self.create_kwargs, "random": self.random}

    def identity(self) -> dict[str, Any]:
        weights: Any = "random"
        if self.weights is not None:
            weights = {"file": str(self.weights), "sha256": file_sha256(self.weights)}
        warnings = [random_weights_warning(self.name)] if self.random else []
        return {"encoder": self.name, "library": "timm", "library_version": self.timm_version, "model_name": self.model_name,
                "create_kwargs": {k: str(v) for k, v in self.create_kwargs.items()}, "weights": weights, "random": self.random,
                "preprocess": self.preprocess.to_dict(), "default_layer": self.default_layer(), "device": str(self.device),
                "warnings": warnings}
