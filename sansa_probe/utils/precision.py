"""Precision and output-resolution helpers shared by every inference path."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

__all__ = ["inference_autocast", "upsample_logits"]


def inference_autocast(device: torch.device | str, enabled: bool = True):
    """bfloat16 autocast on CUDA when ``enabled``; a no-op context on CPU (fp32)."""
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def upsample_logits(low_res_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, 1, h, w)`` low-resolution mask logits -> ``(B, 1, H, W)`` float32 at ``size = (H, W)``.

    As sam2's video predictor: bilinear, ``align_corners=False``, straight from the low-resolution
    logits to the original image size.
    """
    return F.interpolate(low_res_logits.float(), size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
