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
:func:`timm_weights_file` (recorded with their SHA-256).
``random=True`` draws the weights from timm's own initialisation under a fixed seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from sansa_probe.features.layers import IMAGE_STAGE, LayerInfo
from sansa_probe.features.sources.base import EncoderSource, Preprocess, random_weights_warning
from sansa_probe.features.sources.weights import EncoderWeightsNotFound, reachable
from sansa_probe.utils.hashing import file_sha256

__all__ = ["TimmSource", "timm_layers", "timm_plain_dir", "timm_weights_file"]

RANDOM_SEED = 0


def _timm() -> ModuleType:
    import timm  # deferred: timm is the optional [encoders] extra; only timm sources need it

    return timm


def _hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def timm_plain_dir(model_name: str) -> Path:
    """``<torch hub dir>/checkpoints/timm/<model name>``: where a weights file put by hand is found."""
    return Path(torch.hub.get_dir()) / "checkpoints" / "timm" / model_name


def _hf_candidates(cfg: Any) -> list[str]:
    """The files timm loads for a Hugging Face hosted model, safetensors first."""
    filename = getattr(cfg, "hf_hub_filename", None) or "pytorch_model.bin"
    safe = {"pytorch_model.bin": ["model.safetensors"], "open_clip_pytorch_model.bin": ["open_clip_model.safetensors"]}.get(filename)
    if safe is None:
        safe = [filename[:-4] + ".safetensors"] if filename.endswith(".bin") else []
    return [*safe, filename]


def timm_weights_file(model_name: str) -> Path:
    """The pretrained weights file of the timm model ``model_name`` (``arch.tag``): the file timm
    would load from the Hugging Face hub (``model.safetensors``, or the model's own file name),
    looked up first in a plain folder, :func:`timm_plain_dir` (where an offline user puts it by
    hand), then in the Hugging Face cache (``~/.cache/huggingface/hub``, ``$HF_HOME``), else
    downloaded into that cache. Offline (``HF_HUB_OFFLINE=1`` or the hub unreachable):
    :class:`EncoderWeightsNotFound` naming the file to fetch and where to put it."""
    timm = _timm()
    from huggingface_hub import constants, errors, hf_hub_download, try_to_load_from_cache  # deferred: timm's dependency (the [encoders] extra)

    cfg = timm.models.get_pretrained_cfg(model_name)
    spec = f"timm:{model_name}"
    if cfg is None or not getattr(cfg, "hf_hub_id", None):
        raise EncoderWeightsNotFound(
            f"{spec}: timm {timm.__version__} has no pretrained weights on the Hugging Face hub for this name "
            f"(timm.list_pretrained() lists those that have); use {spec}:random for random weights"
        )
    repo = cfg.hf_hub_id
    candidates = _hf_candidates(cfg)
    plain = timm_plain_dir(model_name)
    for filename in candidates:
        if (plain / filename).is_file():
            return plain / filename
    for filename in candidates:
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str) and Path(cached).is_file():
            return Path(cached)
    url = f"{constants.ENDPOINT}/{repo}/resolve/main/{candidates[0]}"
    if _hf_offline() or not reachable(constants.ENDPOINT):
        raise EncoderWeightsNotFound(
            f"{spec}: its pretrained weights are not on disk and {constants.ENDPOINT} cannot be reached (offline?); "
            f"download {url} and put it at {plain / candidates[0]} (or run once online to fill the Hugging Face cache "
            f"{constants.HF_HUB_CACHE}), or use {spec}:random for a smoke test"
        )
    for filename in candidates:
        try:
            return Path(hf_hub_download(repo, filename))
        except errors.EntryNotFoundError:
            continue
        except (errors.LocalEntryNotFoundError, OSError) as exc:
            raise EncoderWeightsNotFound(f"{spec}: could not download {url} ({type(exc).__name__}); put that file at {plain / candidates[0]}") from None
    raise EncoderWeightsNotFound(f"{spec}: {repo} on the Hugging Face hub holds none of {', '.join(candidates)}")


def _check_timm_name(model_name: str) -> None:
    timm = _timm()
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
        timm = _timm()

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
