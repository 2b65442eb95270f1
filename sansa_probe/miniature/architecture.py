"""The miniature SAM2: sam2's own Hiera-T config, every width shrunk by hydra override strings.

Same classes and the same structure as SAM2.1 Hiera-T (four Hiera stages with q-pooling between
them and global attention in the third, FPN neck, memory attention with RoPE self- and
cross-attention, memory encoder, mask decoder with high-resolution features, object pointers with
temporal encoding), at 128 px:

=====================  ====================  ==================
part                   Hiera-T (1024 px)      miniature (128 px)
=====================  ====================  ==================
trunk widths           96, 192, 384, 768      24, 48, 96, 192
trunk blocks           1, 2, 7, 2             1, 2, 4, 1
windows                8, 4, 14, 7            8, 4, 8, 4
neck / decoder width   256                    64
memory attention       4 layers, 256, ff 2048 4 layers, 64, ff 256
memory width           64                     16
=====================  ====================  ==================

About 2.1 M parameters. Object-score heads are off (as in the public SANSA release) and the mask
decoder always returns a single mask (``multimask_output_in_sam=false``).
"""

from __future__ import annotations

import torch

from sansa_probe.model.build import build_sam2_base
from sansa_probe.model.config import SansaConfig

__all__ = ["IMAGE_SIZE", "BACKBONE", "SAM2_VERSION", "SAM2_OVERRIDES", "ADAPTER_STAGES", "miniature_config", "build_miniature_sam2"]

IMAGE_SIZE = 128
BACKBONE = "hiera_t"
SAM2_VERSION = "2.1"
ADAPTER_STAGES = (2, 3)

_E, _D = 24, 64  # trunk embedding width, neck/decoder width
_MEM = _D // 4
_GRID = IMAGE_SIZE // 16

SAM2_OVERRIDES: tuple[str, ...] = (
    f"++model.image_encoder.trunk.embed_dim={_E}",
    "++model.image_encoder.trunk.stages=[1,2,4,1]",
    "++model.image_encoder.trunk.global_att_blocks=[4,6]",
    "++model.image_encoder.trunk.window_spec=[8,4,8,4]",
    f"++model.image_encoder.neck.d_model={_D}",
    f"++model.image_encoder.neck.backbone_channel_list=[{8 * _E},{4 * _E},{2 * _E},{_E}]",
    f"++model.image_encoder.neck.position_encoding.num_pos_feats={_D}",
    f"++model.memory_attention.d_model={_D}",
    f"++model.memory_attention.layer.d_model={_D}",
    f"++model.memory_attention.layer.dim_feedforward={4 * _D}",
    f"++model.memory_attention.layer.self_attention.embedding_dim={_D}",
    f"++model.memory_attention.layer.self_attention.feat_sizes=[{_GRID},{_GRID}]",
    f"++model.memory_attention.layer.cross_attention.embedding_dim={_D}",
    f"++model.memory_attention.layer.cross_attention.feat_sizes=[{_GRID},{_GRID}]",
    f"++model.memory_attention.layer.cross_attention.kv_in_dim={_MEM}",
    f"++model.memory_encoder.in_dim={_D}",
    f"++model.memory_encoder.out_dim={_MEM}",
    f"++model.memory_encoder.position_encoding.num_pos_feats={_MEM}",
    f"++model.memory_encoder.mask_downsampler.embed_dim={_D}",
    f"++model.memory_encoder.fuser.layer.dim={_D}",
    "++model.multimask_output_in_sam=false",
)


def miniature_config(*, stages: tuple[int, ...] = ADAPTER_STAGES) -> SansaConfig:
    """The :class:`SansaConfig` of the miniature; ``stages=()`` builds it without adapters (pretraining)."""
    return SansaConfig(
        backbone=BACKBONE,
        sam2_version=SAM2_VERSION,
        image_size=IMAGE_SIZE,
        stages=stages,
        sam2_overrides=SAM2_OVERRIDES,
    )


def build_miniature_sam2(*, seed: int = 0) -> torch.nn.Module:
    """sam2's ``SAM2Base`` with the miniature's architecture and random weights (seeded privately)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_sam2_base(miniature_config(stages=()))
