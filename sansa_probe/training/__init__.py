"""Episodic training of SANSA (paper eq. 7): clips, losses, the training loop."""

from sansa_probe.training.data import ClipBatch, ClipDataset, MixedClips, StepBatchSampler, collate_clips
from sansa_probe.training.losses import LOSSES, bce_loss, dice_loss, focal_loss, segmentation_loss
from sansa_probe.training.trainer import TrainConfig, Trainer

__all__ = [
    "ClipBatch",
    "ClipDataset",
    "LOSSES",
    "MixedClips",
    "StepBatchSampler",
    "TrainConfig",
    "Trainer",
    "bce_loss",
    "collate_clips",
    "dice_loss",
    "focal_loss",
    "segmentation_loss",
]
