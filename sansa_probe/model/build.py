"""``load_sansa``: build SAM2 from the sam2 package's own hydra configs, insert adapters, load weights."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Mapping

import torch
from hydra import compose
from hydra.utils import instantiate
from omegaconf import OmegaConf

import sam2  # noqa: F401 - importing sam2 registers its config module with hydra

from sansa_probe.model.checkpoint import AdapterCheckpoint, assign_trained_state, check_compatible, read_adapter_checkpoint
from sansa_probe.model.config import SETTING_RATIOS, SansaConfig, sam2_config_name
from sansa_probe.model.release_checkpoint import ReleaseCheckpoint, release_stages_and_ratio
from sansa_probe.model.sam2_weights import CheckpointError, load_sam2_weights, read_sam2_state_dict, resolve_sam2_checkpoint
from sansa_probe.model.sansa import SansaModel

__all__ = ["NO_CHECKPOINT", "build_sam2_base", "load_sansa", "given_fields", "spelled_none"]


def build_sam2_base(config: SansaConfig) -> torch.nn.Module:
    """Instantiate sam2's ``SAM2Base`` from its shipped YAML plus ``config.hydra_overrides()`` (random weights)."""
    name = sam2_config_name(config.backbone, config.sam2_version)
    try:
        cfg = compose(config_name=name, overrides=config.hydra_overrides())
        OmegaConf.resolve(cfg)
        return instantiate(cfg.model, _recursive_=True)
    except Exception as exc:
        if not config.sam2_overrides:
            raise
        raise ValueError(
            f"sam2_overrides {list(config.sam2_overrides)} do not build a SAM2 from {name} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc


def load_sansa(
    config_or_name: SansaConfig | str | None = None,
    *,
    adapters: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    sam2_checkpoint: str | os.PathLike | None = "auto",
    setting: str = "strict",
    seed: int = 0,
    **overrides: Any,
) -> SansaModel:
    """Build a SANSA model: SAM2 (frozen) + adapters in every block of the last two Hiera stages.

    The config is the checkpoint's recorded one (``adapters``; without one, :class:`SansaConfig`'s
    defaults), then what the call gives, applied with ``dataclasses.replace``: ``config_or_name``
    (a :class:`SansaConfig`, all of whose fields count as given, or a backbone name), then
    ``overrides`` (:class:`SansaConfig` field names; ``None`` means not given). A given
    :data:`~sansa_probe.model.config.ARCHITECTURE` field that differs from the checkpoint's is a
    :class:`CheckpointError` naming every such field; ``image_size`` and the behaviours
    (``reference_memory, temporal_slots, point_prompts, scribble, precision``) may differ.

    Args:
        config_or_name: a :class:`SansaConfig`, a backbone (``"hiera_t" | "hiera_s" | "hiera_b+" |
            "hiera_l"``), or ``None`` (``hiera_l``, or the checkpoint's).
        adapters: ``None`` (or ``"none"``, as on the command line: fresh adapters) or a checkpoint to
            load strictly: adapters saved by sansa-probe, a training checkpoint
            (adapters or a fine-tuning baseline), or a checkpoint of the public SANSA release (its
            adapter layout is read from the built trunk; SAM2 ``"2"`` and no object-score heads).
        device: where the model lives.
        sam2_checkpoint: a path to Meta's SAM2 checkpoint, ``"auto"`` (download Meta's file into the
            torch hub cache when missing), or ``None`` (also spelled ``"none"``, as on the command
            line) for random SAM2 weights (tests; warns).
        setting: ``"strict"`` (bottleneck ratio 0.3) or ``"generalist"`` (0.8): the ratio when
            neither ``ratio=`` nor the checkpoint gives one.
        seed: seed of every random initialisation (SAM2 weights when ``sam2_checkpoint=None``, fresh
            adapters), drawn from a private generator state: the same call builds the same model, and the
            global RNG is left untouched.
        **overrides: :class:`SansaConfig` fields, e.g. ``image_size=256``, ``sam2_version="2"``,
            ``stages=()``, ``sam2_overrides=[...]`` (hydra strings on sam2's shipped YAML, exactly as
            ``sam2.build_sam.build_sam2(hydra_overrides_extra=...)``), ``temporal_slots="shared"``.
            Another name is a ``ValueError`` listing the valid ones.
    """
    if setting not in SETTING_RATIOS:
        raise ValueError(f"setting {setting!r} is unknown; expected 'strict' or 'generalist'")
    adapters, sam2_checkpoint = spelled_none(adapters), spelled_none(sam2_checkpoint)  # "none" means None, as on the command line
    given = given_fields(config_or_name, overrides)
    ckpt = read_adapter_checkpoint(adapters) if adapters is not None else None
    source = f"adapters: {adapters}"
    config = dataclasses.replace(_recorded_config(ckpt, given, setting=setting, source=source), **given)
    if ckpt is not None and ckpt.config is not None:
        check_compatible(config, ckpt.config, source=source, asked="the call asks for")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = build_sam2_base(config)
        if ckpt is not None and ckpt.release is not None:
            config = _release_layout(config, ckpt.release, sam.image_encoder.trunk, given, source=source)
        model = SansaModel(sam=sam, config=config)  # adapters attached here, initialised from the same seed
    sam2_path = None
    if sam2_checkpoint is None:
        warnings.warn("sam2_checkpoint=None: SAM2 has random weights (fine for tests, meaningless for results)", stacklevel=2)
    else:
        sam2_path = resolve_sam2_checkpoint(sam2_checkpoint, backbone=config.backbone, sam2_version=config.sam2_version)
        load_sam2_weights(sam, read_sam2_state_dict(sam2_path), source=f"sam2_checkpoint {sam2_path}",
                          object_scores=config.object_scores, keep=model.adapter_state_dict())  # fmt: skip
    if ckpt is not None:
        assign_trained_state(model, ckpt.state, kind=ckpt.kind, source=source)
    # what built this model, for the identity every output carries (sansa_probe.reporting.identity)
    model.provenance = {"sam2_checkpoint": None if sam2_path is None else str(sam2_path), "adapters": None if adapters is None else str(adapters)}
    return model.to(device)


NO_CHECKPOINT = "none"  # the one spelling of "no checkpoint" shared by the Python API and the commands


def spelled_none(value: str | os.PathLike | None) -> str | os.PathLike | None:
    """``None`` for ``"none"`` (the command line's spelling of no checkpoint), else ``value``."""
    return None if isinstance(value, str) and value == NO_CHECKPOINT else value


def given_fields(config_or_name: SansaConfig | str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`SansaConfig` fields a :func:`load_sansa` call gives (``None`` values: not given)."""
    fields = [f.name for f in dataclasses.fields(SansaConfig)]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(
            f"load_sansa: unknown option(s) {', '.join(unknown)}; expected SansaConfig fields ({', '.join(fields)}) "
            "or adapters, device, sam2_checkpoint, setting, seed"
        )
    given = {name: value for name, value in overrides.items() if value is not None}
    if isinstance(config_or_name, SansaConfig):
        return {**{name: getattr(config_or_name, name) for name in fields}, **given}
    if isinstance(config_or_name, str):
        if given.get("backbone", config_or_name) != config_or_name:
            raise ValueError(f"load_sansa: backbone given twice ({config_or_name!r} and backbone={given['backbone']!r})")
        return {**given, "backbone": config_or_name}
    if config_or_name is not None:
        raise ValueError(f"config_or_name: expected a SansaConfig, a backbone name or None, got {type(config_or_name).__name__}")
    return given


def _recorded_config(ckpt: AdapterCheckpoint | None, given: Mapping[str, Any], *, setting: str, source: str) -> SansaConfig:
    """What the call starts from: the checkpoint's config, the release's known facts, or the defaults."""
    if ckpt is None:
        return SansaConfig(ratio=SETTING_RATIOS[setting])
    if ckpt.config is not None:
        return ckpt.config
    backbone = given.get("backbone") or ckpt.release.backbone()
    if backbone is None:
        raise CheckpointError(f"{source}: the release file names no backbone and its widths match no shipped Hiera; pass backbone=")
    return SansaConfig(backbone=backbone, sam2_version="2", object_scores=False)  # the release removes the object-score heads


def _release_layout(config: SansaConfig, release: ReleaseCheckpoint, trunk: torch.nn.Module, given: Mapping[str, Any], *, source: str) -> SansaConfig:
    """``config`` with the release file's adapter layout on the built ``trunk`` (custom SAM2 configs included)."""
    stages, ratio = release_stages_and_ratio(release, trunk, source=source)
    facts = dict(adapter="adaptformer", stages=stages, ratio=ratio, adapter_layernorm=release.layernorm, adapter_scale=0.1, object_scores=False)
    recorded = dataclasses.replace(config, **facts)
    check_compatible(config, recorded, source=source, names=[name for name in facts if name in given], asked="the call asks for")
    if config.sam2_version != "2":
        warnings.warn(f"{source} come from the SANSA release, trained on SAM2 v1; the model uses SAM2 {config.sam2_version}", stacklevel=3)
    return recorded
