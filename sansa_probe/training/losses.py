"""Segmentation losses on mask logits, with an optional validity mask (ignored pixels excluded).

* ``bce_dice`` (the paper, section 3.3 and appendix H): binary cross-entropy + Dice, weights 1 and 1.
* ``focal_dice`` (the public release's option): sigmoid focal loss (alpha 0.25, gamma 2) + Dice,
  weighted 20 : 1 as in SAM's mask loss unless other weights are given.

All functions take ``logits`` and ``targets`` of shape ``(B, H, W)`` (or ``(B, 1, H, W)``) and an
optional boolean ``valid`` of the same shape; they return the mean over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "dice_loss", "bce_loss", "focal_loss", "segmentation_loss"]

LOSSES = ("bce_dice", "focal_dice")
DEFAULT_WEIGHTS = {"bce_dice": (1.0, 1.0), "focal_dice": (20.0, 1.0)}


def _flatten(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None):
    logits = logits.float().flatten(1)
    targets = targets.float().flatten(1)
    weight = torch.ones_like(logits) if valid is None else valid.float().flatten(1)
    if logits.shape != targets.shape or logits.shape != weight.shape:
        raise ValueError(f"logits {tuple(logits.shape)}, targets {tuple(targets.shape)} and valid must have one shape")
    return logits, targets, weight


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None, *, eps: float = 1.0) -> torch.Tensor:
    """``1 - (2 sum(p g) + eps) / (sum(p) + sum(g) + eps)`` per sample, averaged."""
    logits, targets, weight = _flatten(logits, targets, valid)
    probs = logits.sigmoid() * weight
    targets = targets * weight
    numerator = 2 * (probs * targets).sum(1) + eps
    denominator = probs.sum(1) + targets.sum(1) + eps
    return (1 - numerator / denominator).mean()


def bce_loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    logits, targets, weight = _flatten(logits, targets, valid)
    per_pixel = F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weight
    return (per_pixel.sum(1) / weight.sum(1).clamp(min=1)).mean()


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None, *, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    logits, targets, weight = _flatten(logits, targets, valid)
    probs = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probs * targets + (1 - probs) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return ((loss * weight).sum(1) / weight.sum(1).clamp(min=1)).mean()


def segmentation_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    kind: str = "bce_dice",
    weights: tuple[float, float] | None = None,
) -> dict[str, torch.Tensor]:
    """``{"loss": total, <term>: value, ...}`` for ``kind`` in :data:`LOSSES`."""
    if kind not in LOSSES:
        raise ValueError(f"loss {kind!r} is unknown; expected one of {', '.join(LOSSES)}")
    w_pixel, w_dice = weights or DEFAULT_WEIGHTS[kind]
    pixel = bce_loss(logits, targets, valid) if kind == "bce_dice" else focal_loss(logits, targets, valid)
    dice = dice_loss(logits, targets, valid)
    name = "bce" if kind == "bce_dice" else "focal"
    return {"loss": w_pixel * pixel + w_dice * dice, name: pixel.detach(), "dice": dice.detach()}
