"""``load_sansa``: build SAM2 from the sam2 package's own hydra configs, insert adapters, load weights."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Sequence

import torch
from hydra import compose
from hydra.utils import instantiate
from omegaconf import OmegaConf

import sam2  # noqa: F401 - importing sam2 registers its config module with hydra

from sansa_probe.model.checkpoint import assign_trained_state, check_compatible, read_adapter_checkpoint
from sansa_probe.model.config import SETTING_RATIOS, SansaConfig, sam2_config_name
from sansa_probe.model.release_checkpoint import release_stages_and_ratio
from sansa_probe.model.sam2_weights import CheckpointError, load_sam2_weights, read_sam2_state_dict, resolve_sam2_checkpoint
from sansa_probe.model.sansa import SansaModel

__all__ = ["build_sam2_base", "load_sansa"]


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


_UNSET: Any = object()


def load_sansa(
    backbone: str | None = None,
    *,
    sam2_version: str | None = None,
    sam2_checkpoint: str | os.PathLike | None = "auto",
    image_size: int | None = None,
    setting: str = "strict",
    adapters: str | os.PathLike | None = None,
    adapter: str = "adaptformer",
    ratio: float | None = None,
    stages: tuple[int, ...] = (2, 3),
    adapter_layernorm: bool = True,
    adapter_scale: float = 0.1,
    object_scores: bool = False,
    sam2_overrides: Sequence[str] | None = None,
    reference_memory: str | None = None,
    temporal_slots: str | None = None,
    point_prompts: str | None = None,
    scribble: str | None = None,
    precision: str | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> SansaModel:
    """Build a SANSA model: SAM2 (frozen) + adapters in every block of the last two Hiera stages.

    Args:
        backbone: ``"hiera_t" | "hiera_s" | "hiera_b+" | "hiera_l"`` (default ``hiera_l``, or the
            adapter checkpoint's backbone).
        sam2_version: ``"2.1"`` or ``"2"`` (default ``"2.1"``, or the adapter checkpoint's; the
            public SANSA release is built on ``"2"``).
        sam2_checkpoint: a path to Meta's SAM2 checkpoint, ``"auto"`` (download Meta's file into the
            torch hub cache when missing), or ``None`` for random SAM2 weights (tests; warns).
        image_size: SAM2 input size (default 1024, or the adapter checkpoint's).
        setting: ``"strict"`` (bottleneck ratio 0.3) or ``"generalist"`` (0.8).
        adapters: a checkpoint to load strictly: adapters saved by sansa-probe, a training checkpoint
            (adapters or a fine-tuning baseline), or a checkpoint of the public SANSA release.
        adapter, ratio, stages, adapter_layernorm, adapter_scale: the adapter recipe (Table 3 ablations).
        object_scores: keep SAM2's object-score heads (off, as in the public release).
        sam2_overrides: hydra override strings applied on sam2's shipped YAML of ``backbone`` after ours,
            exactly as ``sam2.build_sam.build_sam2(hydra_overrides_extra=...)`` does (custom SAM2
            architectures; default none, or the adapter checkpoint's). Recorded in the config, hence
            in every checkpoint.
        reference_memory, temporal_slots, point_prompts, scribble, precision: behaviour where the public
            release and sam2 differ (see :class:`SansaConfig`); default the release's (or the adapter
            checkpoint's): ``"release"``, ``"release"``, ``"release"``, ``"release"``, ``"float32"``.
        device: where the model lives.
        seed: seed of every random initialisation (SAM2 weights when ``sam2_checkpoint=None``, fresh
            adapters), drawn from a private generator state: the same call builds the same model, and the
            global RNG is left untouched.
    """
    if setting not in SETTING_RATIOS:
        raise ValueError(f"setting {setting!r} is unknown; expected 'strict' or 'generalist'")
    ckpt = read_adapter_checkpoint(adapters) if adapters is not None else None
    source = f"adapters: {adapters}"
    ckpt_config = ckpt.config if ckpt is not None else None

    def pick(name: str, given: Any, default: Any) -> Any:
        if given is not None:
            return given
        return getattr(ckpt_config, name) if ckpt_config is not None else default

    if ckpt is not None and ckpt.release is not None:
        backbone = backbone or ckpt.release.backbone()
        if backbone is None:
            raise CheckpointError(f"{source}: the release file names no backbone and its widths match no shipped Hiera; pass backbone=")
        sam2_version = sam2_version or "2"
        object_scores = False  # the release removes SAM2's object-score heads
    config = SansaConfig(
        backbone=pick("backbone", backbone, "hiera_l"),
        sam2_version=pick("sam2_version", sam2_version, "2.1"),
        image_size=pick("image_size", image_size, 1024),
        adapter=ckpt_config.adapter if ckpt_config is not None else adapter,
        ratio=pick("ratio", ratio, SETTING_RATIOS[setting]),
        stages=ckpt_config.stages if ckpt_config is not None else tuple(stages),
        adapter_layernorm=ckpt_config.adapter_layernorm if ckpt_config is not None else adapter_layernorm,
        adapter_scale=ckpt_config.adapter_scale if ckpt_config is not None else adapter_scale,
        object_scores=ckpt_config.object_scores if ckpt_config is not None else object_scores,
        sam2_overrides=pick("sam2_overrides", sam2_overrides, ()),
        adapter_sizing=ckpt_config.adapter_sizing if ckpt_config is not None else "dim_in",
        reference_memory=pick("reference_memory", reference_memory, "release"),
        temporal_slots=pick("temporal_slots", temporal_slots, "release"),
        point_prompts=pick("point_prompts", point_prompts, "release"),
        scribble=pick("scribble", scribble, "release"),
        precision=pick("precision", precision, "float32"),
    )
    if ckpt_config is not None:
        check_compatible(config, ckpt_config, source=source)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = build_sam2_base(config)
        if ckpt is not None and ckpt.release is not None:
            # the release's layout on the trunk just built (custom SAM2 configs included)
            release_stages, release_ratio = release_stages_and_ratio(ckpt.release, sam.image_encoder.trunk, source=source)
            config = dataclasses.replace(
                config, adapter="adaptformer", stages=release_stages, ratio=release_ratio,
                adapter_layernorm=ckpt.release.layernorm, adapter_scale=0.1,
            )
            if config.sam2_version != "2":
                warnings.warn(f"adapters {adapters} come from the SANSA release, trained on SAM2 v1; the model uses SAM2 {config.sam2_version}", stacklevel=2)
        model = SansaModel(sam=sam, config=config)  # adapters attached here, initialised from the same seed
    sam2_path = None
    if sam2_checkpoint is None:
        warnings.warn(
            "sam2_checkpoint=None: SAM2 has random weights (fine for tests, meaningless for results)",
            stacklevel=2,
        )
    else:
        path = sam2_path = resolve_sam2_checkpoint(sam2_checkpoint, backbone=config.backbone, sam2_version=config.sam2_version)
        adapters_state = model.adapter_state_dict()
        load_sam2_weights(sam, read_sam2_state_dict(path), source=f"sam2_checkpoint {path}", object_scores=config.object_scores, keep=adapters_state)
    if ckpt is not None:
        assign_trained_state(model, ckpt.state, kind=ckpt.kind, source=source)
    # what built this model, for the identity every output carries (sansa_probe.reporting.identity)
    model.provenance = {"sam2_checkpoint": None if sam2_path is None else str(sam2_path), "adapters": None if adapters is None else str(adapters)}
    return model.to(device)
