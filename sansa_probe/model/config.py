"""What a SANSA model is made of: backbone, SAM2 version, image size, adapter recipe.

A :class:`SansaConfig` fully determines the module tree (not the weights): it is saved
beside every adapter checkpoint, and a checkpoint only loads into a model built from
an equal config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BACKBONES",
    "SAM2_VERSIONS",
    "ADAPTER_KINDS",
    "SETTING_RATIOS",
    "SansaConfig",
    "sam2_config_name",
    "sam2_checkpoint_name",
    "sam2_checkpoint_url",
    "check_sam2_overrides",
    "BEHAVIOURS",
    "ADAPTER_SIZINGS",
    "ARCHITECTURE",
]

BACKBONES = ("hiera_t", "hiera_s", "hiera_b+", "hiera_l")
SAM2_VERSIONS = ("2.1", "2")
ADAPTER_KINDS = ("adaptformer", "houlsby", "lora", "mona")
# Bottleneck ratio of the adapters per setting (paper section 4, appendix H.1).
SETTING_RATIOS = {"strict": 0.3, "generalist": 0.8}

_SHORT = {"hiera_t": "t", "hiera_s": "s", "hiera_b+": "b+", "hiera_l": "l"}
_LONG = {"hiera_t": "tiny", "hiera_s": "small", "hiera_b+": "base_plus", "hiera_l": "large"}
# Meta's official download folders (see the sam2 repository's checkpoints/download_ckpts.sh).
_URL_BASE = {
    "2": "https://dl.fbaipublicfiles.com/segment_anything_2/072824",
    "2.1": "https://dl.fbaipublicfiles.com/segment_anything_2/092824",
}


# How the model behaves where the public release and sam2 differ: the first choice of each is the
# release's (the default: the published weights were trained so), the second ours, kept as a named
# option (an ablation row each). See SansaConfig's docstring.
ADAPTER_SIZINGS = ("dim_in", "dim_out")
BEHAVIOURS: dict[str, tuple[str, str]] = {
    "reference_memory": ("release", "exact"),
    "temporal_slots": ("release", "shared"),
    "point_prompts": ("release", "multimask"),
    "scribble": ("release", "thinned"),
    "precision": ("float32", "bfloat16"),
}

# The fields that fix the module tree and the meaning of trained weights: a checkpoint loads only
# into a model whose values of these equal its own. The others (image_size, the behaviours) may
# differ from the checkpoint's: they change how the model runs, not what its weights are.
ARCHITECTURE = (
    "backbone", "sam2_version", "adapter", "ratio", "stages", "adapter_layernorm", "adapter_scale",
    "object_scores", "sam2_overrides", "adapter_sizing",
)  # fmt: skip

# Keys whose value SansaConfig owns (``image_size``, ``object_scores``): an override may not contradict them.
_OWNED_KEYS = ("model.image_size", "model.pred_obj_scores", "model.pred_obj_scores_mlp", "model.fixed_no_obj_ptr")


def check_sam2_overrides(overrides: Any, *, object_scores: bool) -> tuple[str, ...]:
    """Validate hydra override strings (``key=value`` with an optional ``+``/``++``/``~`` prefix)."""
    if isinstance(overrides, str):
        raise ValueError(f"sam2_overrides: expected a list of override strings, got the single string {overrides!r}")
    checked = []
    for override in overrides:
        if not isinstance(override, str) or not override.strip():
            raise ValueError(f"sam2_overrides: {override!r} is not an override string like '++model.image_encoder.trunk.embed_dim=16'")
        override = override.strip()
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep and not override.startswith("~"):
            raise ValueError(f"sam2_overrides: {override!r} has no '=': expected 'key=value' (e.g. '++model.memory_attention.d_model=16')")
        if key.strip() == "model.image_size":
            raise ValueError(f"sam2_overrides: {override!r} sets the image size; pass image_size= (--image-size) instead")
        if key.strip() in _OWNED_KEYS[1:] and value.strip().lower() != str(bool(object_scores)).lower():
            raise ValueError(
                f"sam2_overrides: {override!r} contradicts object_scores={object_scores}; "
                f"pass object_scores={not object_scores} instead"
            )
        checked.append(override)
    return tuple(checked)


def _check_backbone(backbone: str) -> str:
    if backbone not in BACKBONES:
        raise ValueError(f"backbone {backbone!r} is unknown; expected one of {', '.join(BACKBONES)}")
    return backbone


def _check_version(version: str) -> str:
    version = str(version)
    if version not in SAM2_VERSIONS:
        raise ValueError(f"sam2_version {version!r} is unknown; expected '2.1' or '2'")
    return version


def sam2_config_name(backbone: str, sam2_version: str) -> str:
    """The hydra config shipped inside the ``sam2`` package, e.g. ``configs/sam2.1/sam2.1_hiera_t.yaml``."""
    _check_backbone(backbone)
    version = _check_version(sam2_version)
    prefix = "sam2.1" if version == "2.1" else "sam2"
    return f"configs/{prefix}/{prefix}_hiera_{_SHORT[backbone]}.yaml"


def sam2_checkpoint_name(backbone: str, sam2_version: str) -> str:
    """Meta's file name, e.g. ``sam2.1_hiera_large.pt``."""
    _check_backbone(backbone)
    version = _check_version(sam2_version)
    prefix = "sam2.1" if version == "2.1" else "sam2"
    return f"{prefix}_hiera_{_LONG[backbone]}.pt"


def sam2_checkpoint_url(backbone: str, sam2_version: str) -> str:
    return f"{_URL_BASE[_check_version(sam2_version)]}/{sam2_checkpoint_name(backbone, sam2_version)}"


@dataclass(frozen=True)
class SansaConfig:
    """The architecture of a SANSA model.

    Attributes:
        backbone: SAM2 image encoder size.
        sam2_version: ``"2.1"`` or ``"2"`` (the public SANSA release is built on ``"2"``).
        image_size: square input size of SAM2 (1024 in the paper; tests use 256).
        adapter: adapter family (``adaptformer`` is SANSA; the others are Table 3 ablations).
        ratio: bottleneck = ``int(dim_in * ratio)`` of the adapted block's input width, as the release sizes it (0.3 strict, 0.8 generalist).
        stages: Hiera stages (0-based) whose every block gets an adapter; SANSA adapts the last two.
        adapter_layernorm: LayerNorm before the down projection (AdaptFormer "in" option, as in the release).
        adapter_scale: output scale of the adapter (0.1 in the public release).
        object_scores: keep SAM2's object-score heads. ``False`` (the release's choice) removes them,
            so that no mask is gated to SAM2's constant "no object" logits (which would also zero every
            gradient during training).
        sam2_overrides: hydra override strings (``"++model.memory_attention.d_model=16"``) applied after
            ours on sam2's shipped YAML, exactly as ``sam2.build_sam.build_sam2(hydra_overrides_extra=...)``
            applies them: custom (e.g. miniature) SAM2 architectures. ``model.image_size`` and the
            object-score switches are set by ``image_size`` and ``object_scores``, never here.
        adapter_sizing: ``"dim_in"`` (the release's rule, ``int(dim_in * ratio)`` of a block's input
            width; every new model) or ``"dim_out"`` (``int(dim_out * ratio)``: checkpoints written
            by sansa-probe before it adopted the release's rule, which record no sizing; they still
            load, as what they are).

    Behaviour (:data:`BEHAVIOURS`; default: the public release's, the model the published weights
    were trained as; the alternatives are ours). Recorded in every checkpoint; a checkpoint can be
    run with either:
        reference_memory: ``"release"`` writes a mask reference to memory from the decoder-shaped mask
            (its low-res logits upsampled bilinearly, the release's ``_use_mask_as_output``);
            ``"exact"`` from sam2's ``mask * 20 - 10``.
        temporal_slots: ``"release"`` gives k references sequential frames (reference 0 in the last
            temporal slot, reference i >= 1 at ``maskmem_tpos_enc[k - 1 - i]``, within sam2's
            ``num_maskmem - 1`` window; object pointers ordered 0, k-1, ..., 1): order-dependent;
            ``"shared"`` one slot for all references: order-invariant (for k = 1 both are sam2's layout).
        point_prompts: ``"release"`` decodes point/box/scribble references with a single mask (also one
            click); ``"multimask"`` follows sam2 (3 masks for one click, the best kept).
        scribble: ``"release"`` clicks every stroke pixel (on the model grid); ``"thinned"`` keeps at
            most 1,024 evenly spaced stroke pixels.
        precision: ``"float32"`` (the release) or ``"bfloat16"`` autocast on CUDA for inference (ours).
    """

    backbone: str = "hiera_l"
    sam2_version: str = "2.1"
    image_size: int = 1024
    adapter: str = "adaptformer"
    ratio: float = 0.3
    stages: tuple[int, ...] = (2, 3)
    adapter_layernorm: bool = True
    adapter_scale: float = 0.1
    object_scores: bool = False
    sam2_overrides: tuple[str, ...] = ()
    adapter_sizing: str = "dim_in"
    reference_memory: str = "release"
    temporal_slots: str = "release"
    point_prompts: str = "release"
    scribble: str = "release"
    precision: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_backbone(self.backbone)
        object.__setattr__(self, "sam2_version", _check_version(self.sam2_version))
        if not isinstance(self.image_size, int) or self.image_size < 64 or self.image_size % 32:
            raise ValueError(f"image_size {self.image_size!r}: expected a multiple of 32 (Hiera downsamples by 32), at least 64")
        if self.adapter not in ADAPTER_KINDS:
            raise ValueError(f"adapter {self.adapter!r} is unknown; expected one of {', '.join(ADAPTER_KINDS)}")
        if not 0.0 < float(self.ratio) <= 4.0:
            raise ValueError(f"ratio {self.ratio!r}: expected a bottleneck ratio in (0, 4]")
        stages = tuple(sorted({int(s) for s in self.stages}))
        if any(not 0 <= s <= 3 for s in stages):
            raise ValueError(f"stages {self.stages!r}: Hiera has stages 0..3")
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "ratio", float(self.ratio))
        object.__setattr__(self, "adapter_scale", float(self.adapter_scale))
        if self.adapter_sizing not in ADAPTER_SIZINGS:
            raise ValueError(f"adapter_sizing {self.adapter_sizing!r} is unknown; expected one of {', '.join(map(repr, ADAPTER_SIZINGS))}")
        for name, choices in BEHAVIOURS.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} {getattr(self, name)!r} is unknown; expected {' or '.join(map(repr, choices))}")
        object.__setattr__(self, "sam2_overrides", check_sam2_overrides(self.sam2_overrides, object_scores=self.object_scores))

    @classmethod
    def for_setting(cls, setting: str, **kwargs: Any) -> "SansaConfig":
        if setting not in SETTING_RATIOS:
            raise ValueError(f"setting {setting!r} is unknown; expected 'strict' or 'generalist'")
        kwargs.setdefault("ratio", SETTING_RATIOS[setting])
        return cls(**kwargs)

    def behaviour(self) -> dict[str, str]:
        """The behaviour options (:data:`BEHAVIOURS`) as a dict, e.g. for a results file."""
        return {name: getattr(self, name) for name in BEHAVIOURS}

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stages"] = list(self.stages)
        data["sam2_overrides"] = list(self.sam2_overrides)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SansaConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"SansaConfig: unknown field(s) {unknown}")
        data = dict(data)
        data.setdefault("adapter_sizing", "dim_out")  # a config recorded before the sizing was recorded
        for name in ("stages", "sam2_overrides"):
            if name in data:
                data[name] = tuple(data[name])
        return cls(**data)

    def hydra_overrides(self) -> list[str]:
        """Overrides applied on top of sam2's own YAML (never an edited copy)."""
        overrides = [f"++model.image_size={self.image_size}"]
        if not self.object_scores:
            overrides += [
                "++model.pred_obj_scores=false",
                "++model.pred_obj_scores_mlp=false",
                "++model.fixed_no_obj_ptr=false",
            ]
        return overrides + list(self.sam2_overrides)
