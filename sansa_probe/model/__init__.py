"""SANSA on the official sam2 package: building, adapters, memory, checkpoints."""

from sansa_probe.model.adapters import AdaptFormer, HoulsbyAdapter, LoRA, MonaAdapter, adapter_blocks
from sansa_probe.model.build import build_sam2_base, load_sansa
from sansa_probe.model.checkpoint import read_adapter_checkpoint
from sansa_probe.model.config import ADAPTER_KINDS, BACKBONES, SAM2_VERSIONS, SETTING_RATIOS, SansaConfig
from sansa_probe.model.memory import MemoryEntry, assemble_memory
from sansa_probe.model.prompting import PromptInputs, prompt_to_inputs
from sansa_probe.model.sam2_weights import CheckpointError
from sansa_probe.model.sansa import FrameFeatures, SansaModel, SegmentationOutput

__all__ = [
    "ADAPTER_KINDS",
    "AdaptFormer",
    "BACKBONES",
    "CheckpointError",
    "FrameFeatures",
    "HoulsbyAdapter",
    "LoRA",
    "MemoryEntry",
    "MonaAdapter",
    "PromptInputs",
    "SAM2_VERSIONS",
    "SETTING_RATIOS",
    "SansaConfig",
    "SansaModel",
    "SegmentationOutput",
    "adapter_blocks",
    "assemble_memory",
    "build_sam2_base",
    "load_sansa",
    "prompt_to_inputs",
    "read_adapter_checkpoint",
]
