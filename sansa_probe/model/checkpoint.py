"""Adapter checkpoints: ours (adapters + the config that built them) and the public SANSA release's.

Our format (written atomically)::

    {"format": "sansa-probe/adapters", "version": 1, "config": SansaConfig.to_dict(),
     "state_dict": {<name in model.sam's namespace>: tensor}, "meta": {...}}

The public release stores ``{"model": {"sam.image_encoder.trunk.blocks.<i>.adapter.
{adapter_layer_norm_before,down_proj,up_proj}.{weight,bias}": tensor, ...}}`` (possibly with
other, non-adapter entries), built on SAM2 v1 Hiera configs without object-score heads.

Loading is strict: a missing, unexpected or mis-shaped adapter key is an error that names the
key. There is never a silent fall-back to frozen SAM2.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from sansa_probe.model.config import SETTING_RATIOS, SansaConfig
from sansa_probe.model.sam2_weights import CheckpointError, check_finite, existing_checkpoint_file
from sansa_probe.utils.io import atomic_torch_save

__all__ = [
    "FORMAT",
    "TRAIN_FORMAT",
    "save_adapters",
    "read_adapter_checkpoint",
    "load_adapters_into",
    "infer_release_config",
    "assign_trained_state",
]

FORMAT = "sansa-probe/adapters"
# Training checkpoints (sansa_probe.train) also carry the trained tensors: "config", "finetune"
# (one of sansa_probe.model.finetune.FINETUNE_MODES) and "trainable" {name: tensor}, beside the
# optimizer/scheduler/RNG state needed to resume.
TRAIN_FORMAT = "sansa-probe/train"
_RELEASE_KEY = re.compile(r"^(?:module\.)?sam\.image_encoder\.trunk\.blocks\.(\d+)\.adapter\.(adapter_layer_norm_before|down_proj|up_proj)\.(weight|bias)$")
# Hiera stage layouts of the shipped configs: (stage_ends, output width of each stage)
_HIERA_LAYOUTS = {
    "hiera_t": ([0, 2, 9, 11], [96, 192, 384, 768]),
    "hiera_s": ([0, 2, 13, 15], [96, 192, 384, 768]),
    "hiera_b+": ([1, 4, 20, 23], [112, 224, 448, 896]),
    "hiera_l": ([1, 7, 43, 47], [144, 288, 576, 1152]),
}


def save_adapters(model, path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> Path:
    payload = {
        "format": FORMAT,
        "version": 1,
        "config": model.config.to_dict(),
        "state_dict": model.adapter_state_dict(),
        "meta": dict(meta or {}),
    }
    return atomic_torch_save(path, payload)


def infer_release_config(state: dict[str, torch.Tensor], *, source: str) -> tuple[SansaConfig, dict[str, torch.Tensor]]:
    """Backbone, stages and bottleneck of a release checkpoint from its tensors; keys mapped to ours."""
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        match = _RELEASE_KEY.match(key)
        if match:
            block, module, kind = match.groups()
            mapped[f"image_encoder.trunk.blocks.{block}.adapter.{module}.{kind}"] = tensor
    if not mapped:
        raise CheckpointError(f"{source}: no SANSA adapter tensor found (expected keys like 'sam.image_encoder.trunk.blocks.<i>.adapter.down_proj.weight')")
    blocks = sorted({int(k.split(".")[3]) for k in mapped})
    widths = {b: mapped[f"image_encoder.trunk.blocks.{b}.adapter.down_proj.weight"].shape[1] for b in blocks}
    for backbone, (ends, dims) in _HIERA_LAYOUTS.items():
        starts = [0] + [e + 1 for e in ends[:-1]]
        stages = sorted({s for b in blocks for s in range(4) if starts[s] <= b <= ends[s]})
        covered = [b for s in stages for b in range(starts[s], ends[s] + 1)]
        if blocks == covered and all(widths[b] == dims[next(s for s in range(4) if starts[s] <= b <= ends[s])] for b in blocks):
            break
    else:
        raise CheckpointError(f"{source}: adapters on blocks {blocks} with widths {sorted(set(widths.values()))} match no Hiera backbone")
    first = blocks[0]
    dim = widths[first]
    bottleneck = mapped[f"image_encoder.trunk.blocks.{first}.adapter.down_proj.weight"].shape[0]
    ratio = next((r for r in SETTING_RATIOS.values() if int(r * dim) == bottleneck), (bottleneck + 0.5) / dim)
    layernorm = any(".adapter_layer_norm_before." in k for k in mapped)
    config = SansaConfig(
        backbone=backbone,
        sam2_version="2",
        image_size=1024,
        adapter="adaptformer",
        ratio=ratio,
        stages=tuple(stages),
        adapter_layernorm=layernorm,
        adapter_scale=0.1,
        object_scores=False,
    )
    return config, mapped


def read_adapter_checkpoint(path: str | os.PathLike) -> tuple[SansaConfig, dict[str, torch.Tensor], str]:
    """``(config, state_dict in model.sam's namespace, kind)``.

    ``kind`` is ``"sansa-probe"`` (adapters), ``"release"`` (the public SANSA release) or
    ``"train:<mode>"`` (a training checkpoint of fine-tuning mode ``<mode>``).
    """
    path = existing_checkpoint_file(path, name="adapters")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"adapters: {path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        try:
            config = SansaConfig.from_dict(payload["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"adapters: {path} has an invalid config ({exc})") from None
        state = payload.get("state_dict")
        if not isinstance(state, dict):
            raise CheckpointError(f"adapters: {path} has no 'state_dict'")
        return config, state, "sansa-probe"
    if isinstance(payload, dict) and payload.get("format") == TRAIN_FORMAT:
        try:
            config = SansaConfig.from_dict(payload["config"])
            mode = str(payload["finetune"])
            state = payload["trainable"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"adapters: {path} is an incomplete training checkpoint ({exc})") from None
        return config, state, f"train:{mode}"
    if isinstance(payload, dict) and isinstance(payload.get("model"), dict):
        config, state = infer_release_config(payload["model"], source=f"adapters: {path}")
        return config, state, "release"
    found = list(payload)[:5] if isinstance(payload, dict) else type(payload).__name__
    raise CheckpointError(
        f"adapters: {path} is neither a sansa-probe adapter checkpoint nor a SANSA release checkpoint (found {found})"
    )


def load_adapters_into(model, path: str | os.PathLike, *, strict: bool = True) -> None:
    """Load trained tensors from ``path`` into ``model``; strict about keys, shapes and config."""
    config, state, kind = read_adapter_checkpoint(path)
    check_compatible(model.config, config, source=f"adapters: {path}", release=(kind == "release"))
    assign_trained_state(model, state, kind=kind, source=f"adapters: {path}", strict=strict)


def assign_trained_state(model, state: dict[str, torch.Tensor], *, kind: str, source: str, strict: bool = True) -> None:
    """Assign a checkpoint's tensors: adapters, or the parameters its fine-tuning mode trained."""
    if kind.startswith("train:"):
        from sansa_probe.model.finetune import finetune_parameter_names

        names = finetune_parameter_names(model, kind.split(":", 1)[1])
        params = dict(model.sam.named_parameters())
        _assign(state, {n: params[n] for n in names}, source=source, strict=strict)
    else:
        assign_adapter_state(model, state, source=source, strict=strict)


def check_compatible(model_config: SansaConfig, ckpt_config: SansaConfig, *, source: str, release: bool) -> None:
    fields = ["backbone", "adapter", "stages", "adapter_layernorm"]
    if not release:
        fields += ["sam2_version", "ratio", "adapter_scale", "object_scores", "sam2_overrides"]
    for name in fields:
        ours, theirs = getattr(model_config, name), getattr(ckpt_config, name)
        if ours != theirs:
            raise CheckpointError(f"{source} was built with {name}={theirs!r}, the model has {name}={ours!r}")


def assign_adapter_state(model, state: dict[str, torch.Tensor], *, source: str, strict: bool = True) -> None:
    _assign(state, model.adapter_parameters(), source=source, strict=strict)


def _assign(state: dict[str, torch.Tensor], params: dict[str, torch.nn.Parameter], *, source: str, strict: bool) -> None:
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    if strict and missing:
        raise CheckpointError(f"{source}: missing adapter key {missing[0]!r} ({len(missing)} missing)")
    if strict and unexpected:
        raise CheckpointError(f"{source}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected)")
    for key, tensor in state.items():
        if key not in params:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{source}: key {key!r} is not a tensor")
        if tuple(tensor.shape) != tuple(params[key].shape):
            raise CheckpointError(f"{source}: key {key!r} has shape {tuple(tensor.shape)}, the model expects {tuple(params[key].shape)}")
    check_finite({k: v for k, v in state.items() if k in params}, source=source)
    with torch.no_grad():
        for key, tensor in state.items():
            if key in params:
                params[key].copy_(tensor.to(params[key].dtype))
