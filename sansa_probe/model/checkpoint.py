"""Adapter checkpoints: ours (adapters + the config that built them) and the public SANSA release's.

Our format (written atomically)::

    {"format": "sansa-probe/adapters", "version": 1, "config": SansaConfig.to_dict(),
     "state_dict": {<name in model.sam's namespace>: tensor}, "meta": {...}}

The public release stores ``{"model": {"sam.image_encoder.trunk.blocks.<i>.adapter.
{adapter_layer_norm_before,down_proj,up_proj}.{weight,bias}": tensor, ...}, "args": Namespace, ...}``
(see :mod:`sansa_probe.model.release_checkpoint`), built on SAM2 v1 Hiera configs without
object-score heads. Every file is read weights-only.

Loading is strict: a missing, unexpected or mis-shaped adapter key is an error that names the
key. There is never a silent fall-back to frozen SAM2.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from sansa_probe.model.config import ARCHITECTURE, SansaConfig
from sansa_probe.model.finetune import finetune_parameter_names
from sansa_probe.model.release_checkpoint import ReleaseCheckpoint, load_weights_only, parse_release_checkpoint, release_stages_and_ratio
from sansa_probe.model.sam2_weights import CheckpointError, check_finite, check_tensor, existing_checkpoint_file
from sansa_probe.io.atomic import atomic_torch_save

__all__ = [
    "FORMAT",
    "TRAIN_FORMAT",
    "save_adapters",
    "read_adapter_checkpoint",
    "load_adapters_into",
    "AdapterCheckpoint",
    "check_compatible",
    "assign_trained_state",
    "ABSURD_ADAPTERS",
    "ADAPTER_WEIGHT_LIMIT",
    "largest_adapter_weight",
    "absurd_adapters_message",
]

FORMAT = "sansa-probe/adapters"
# Training checkpoints (sansa_probe.train) also carry the trained tensors: "config", "finetune"
# (one of sansa_probe.model.finetune.FINETUNE_MODES) and "trainable" {name: tensor}, beside the
# optimizer/scheduler/RNG state needed to resume.
TRAIN_FORMAT = "sansa-probe/train"


def save_adapters(model, path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> Path:
    payload = {
        "format": FORMAT,
        "version": 1,
        "config": model.config.to_dict(),
        "state_dict": model.adapter_state_dict(),
        "meta": dict(meta or {}),
    }
    return atomic_torch_save(path, payload)


@dataclass(frozen=True)
class AdapterCheckpoint:
    """What an adapter checkpoint holds.

    ``kind`` is ``"sansa-probe"`` (adapters), ``"train:<mode>"`` (a training checkpoint of fine-tuning
    mode ``<mode>``) or ``"release"`` (the public SANSA release). ``config`` is the recorded
    :class:`SansaConfig` (``None`` for a release file: its layout is read from the built model);
    ``state`` the trained tensors in ``model.sam``'s namespace; ``release`` the parsed release file.
    """

    kind: str
    state: dict[str, torch.Tensor]
    config: SansaConfig | None = None
    release: ReleaseCheckpoint | None = None


def read_adapter_checkpoint(path: str | os.PathLike) -> AdapterCheckpoint:
    """Open an adapter checkpoint (ours, a training checkpoint, or the release's), weights-only."""
    path = existing_checkpoint_file(path, name="adapters")
    payload = load_weights_only(path, what="adapters")
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        try:
            config = SansaConfig.from_dict(payload["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"adapters: {path} has an invalid config ({exc})") from None
        state = payload.get("state_dict")
        if not isinstance(state, dict):
            raise CheckpointError(f"adapters: {path} has no 'state_dict'")
        return AdapterCheckpoint(kind="sansa-probe", state=state, config=config)
    if isinstance(payload, dict) and payload.get("format") == TRAIN_FORMAT:
        try:
            config = SansaConfig.from_dict(payload["config"])
            mode = str(payload["finetune"])
            state = payload["trainable"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"adapters: {path} is an incomplete training checkpoint ({exc})") from None
        return AdapterCheckpoint(kind=f"train:{mode}", state=state, config=config)
    if isinstance(payload, dict) and isinstance(payload.get("model"), dict):
        release = parse_release_checkpoint(payload, source=f"adapters: {path}")
        return AdapterCheckpoint(kind="release", state=release.state, release=release)
    found = list(payload)[:5] if isinstance(payload, dict) else type(payload).__name__
    raise CheckpointError(
        f"adapters: {path} is neither a sansa-probe adapter checkpoint nor a SANSA release checkpoint (found {found})"
    )


def load_adapters_into(model, path: str | os.PathLike, *, strict: bool = True) -> None:
    """Load trained tensors from ``path`` into ``model``; strict about keys, shapes and config."""
    ckpt = read_adapter_checkpoint(path)
    source = f"adapters: {path}"
    if ckpt.release is not None:
        stages, _ = release_stages_and_ratio(ckpt.release, model.sam.image_encoder.trunk, source=source)
        for name, theirs in (("adapter", "adaptformer"), ("stages", stages), ("adapter_layernorm", ckpt.release.layernorm)):
            if getattr(model.config, name) != theirs:
                raise CheckpointError(f"{source} was built with {name}={theirs!r}, the model has {name}={getattr(model.config, name)!r}")
    else:
        check_compatible(model.config, ckpt.config, source=source)
    assign_trained_state(model, ckpt.state, kind=ckpt.kind, source=source, strict=strict)


def assign_trained_state(model, state: dict[str, torch.Tensor], *, kind: str, source: str, strict: bool = True) -> None:
    """Assign a checkpoint's tensors: adapters, or the parameters its fine-tuning mode trained."""
    if kind.startswith("train:"):
        names = finetune_parameter_names(model, kind.split(":", 1)[1])
        params = dict(model.sam.named_parameters())
        _assign(state, {n: params[n] for n in names}, source=source, strict=strict)
    else:
        assign_adapter_state(model, state, source=source, strict=strict)


def check_compatible(
    model_config: SansaConfig, ckpt_config: SansaConfig, *, source: str, names: Sequence[str] = ARCHITECTURE, asked: str = "the model has"
) -> None:
    """A checkpoint loads only into a model of an equal architecture (:data:`ARCHITECTURE`, or
    ``names``); one error names every field that differs, the checkpoint's value and ours."""
    differ = [name for name in names if getattr(model_config, name) != getattr(ckpt_config, name)]
    if differ:
        theirs = ", ".join(f"{name}={getattr(ckpt_config, name)!r}" for name in differ)
        ours = ", ".join(f"{name}={getattr(model_config, name)!r}" for name in differ)
        raise CheckpointError(f"{source} was built with {theirs}; {asked} {ours}")


def assign_adapter_state(model, state: dict[str, torch.Tensor], *, source: str, strict: bool = True) -> None:
    _assign(state, model.adapter_parameters(), source=source, strict=strict)


def _assign(state: dict[str, torch.Tensor], params: dict[str, torch.nn.Parameter], *, source: str, strict: bool) -> None:
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    if strict and (missing or unexpected):
        parts = [f"missing adapter key {missing[0]!r} ({len(missing)} missing)"] if missing else []
        parts += [f"unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected)"] if unexpected else []
        raise CheckpointError(f"{source}: {'; '.join(parts)}")
    for key, tensor in state.items():
        if key not in params:
            continue
        check_tensor(key, tensor, params[key], source=source)
        if tuple(tensor.shape) != tuple(params[key].shape):
            raise CheckpointError(f"{source}: key {key!r} has shape {tuple(tensor.shape)}, the model expects {tuple(params[key].shape)}")
    check_finite({k: v for k, v in state.items() if k in params}, source=source)
    with torch.no_grad():
        for key, tensor in state.items():
            if key in params:
                params[key].copy_(tensor.to(params[key].dtype))
    largest = largest_adapter_weight({k: v for k, v in state.items() if k in params})
    if largest is not None and largest[1] > ADAPTER_WEIGHT_LIMIT:
        warnings.warn(absurd_adapters_message(*largest, source=source), UserWarning, stacklevel=4)


# Trained adapters stay within a few units (the shipped miniature's: |w| <= 1.25); a weight beyond
# this is no training's result: a damaged, hand-edited or foreign file.
ADAPTER_WEIGHT_LIMIT = 1e4
ABSURD_ADAPTERS = "far outside anything training produces"  # the words of the warning (its filter key)


def largest_adapter_weight(state: dict[str, torch.Tensor]) -> tuple[str, float] | None:
    """``(key, max |value|)`` over the adapter tensors of ``state`` (keys with ``.adapter.``), or ``None``."""
    best = None
    for key, tensor in state.items():
        if ".adapter." in key and isinstance(tensor, torch.Tensor) and tensor.numel() and tensor.is_floating_point():
            value = float(tensor.detach().abs().max())
            if best is None or value > best[1]:
                best = (key, value)
    return best


def absurd_adapters_message(key: str, value: float, *, source: str = "adapters") -> str:
    return (f"{source}: adapter tensor {key!r} holds values up to {value:.3g} in magnitude, {ABSURD_ADAPTERS} "
            f"(|w| < {ADAPTER_WEIGHT_LIMIT:g}): its outputs will swamp SAM2's features (a damaged or hand-edited file?)")
