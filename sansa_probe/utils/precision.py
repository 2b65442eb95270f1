"""Precision and output-resolution helpers shared by every inference path."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

__all__ = ["inference_precision", "inference_autocast", "upsample_logits"]


def inference_precision(device: torch.device | str, enabled: bool = True) -> str:
    """The precision inference runs in: ``"bf16"`` (autocast on CUDA when ``enabled``) or ``"fp32"``."""
    return "bf16" if enabled and torch.device(device).type == "cuda" else "fp32"


def inference_autocast(device: torch.device | str, enabled: bool = True):
    """The context of :func:`inference_precision`: bfloat16 autocast, or a no-op (fp32)."""
    if inference_precision(device, enabled) == "bf16":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def upsample_logits(low_res_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, 1, h, w)`` low-resolution mask logits -> ``(B, 1, H, W)`` float32 at ``size = (H, W)``.

    As sam2's video predictor: bilinear, ``align_corners=False``, straight from the low-resolution
    logits to the original image size.
    """
    return F.interpolate(low_res_logits.float(), size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
