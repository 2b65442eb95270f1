"""What wakes the miniature's memory path: re-initialisation, a locality prior, an auxiliary head.

Measured (docs/MINIATURE.md, ../shared/notes/miniature-memory.md): trained end to end, the
miniature learns "every object" from the decoder's high-resolution features within ~100 steps
and shuts its memory path down. Three training devices keep it alive:

* :func:`reinitialise_memory_path`: the memory modules (memory attention and encoder, temporal
  encodings, object-pointer projections) get fresh random weights, everything the image stage
  trained (image encoder, prompt encoder, mask decoder, no-memory embeddings) is kept;
* :func:`add_locality_prior`: in every memory cross-attention, constant query and key biases
  on the highest RoPE frequencies of each axis, so that at initialisation each target token
  reads the memory at its own position (the RoPE score ``sum_j c^2 [cos(f_j dx) + cos(f_j dy)]``
  peaks at ``dx = dy = 0``), and a larger output projection so that what memory brings is not
  a 1-2 % change of the decoder's input. State-dict keys stay sam2's;
* :class:`AuxiliaryHead`: a 1x1 convolution on the memory attention's stride-16 output,
  trained against the tracked mask and discarded after pretraining: it gives the memory path a
  gradient that the decoder's shortcut cannot take away. The same head on the mask decoder's
  image tokens after its two-way transformer (:func:`decoder_tokens`) does it for prompts: a
  1x1 read-out of those tokens can only find the prompted object if the tokens took it from
  the prompt's tokens.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from sansa_probe.training.losses import dice_loss

__all__ = ["MEMORY_MODULES", "reinitialise_memory_path", "add_locality_prior", "AuxiliaryHead", "decoder_tokens"]

MEMORY_MODULES = ("memory_attention", "memory_encoder", "maskmem_tpos_enc", "obj_ptr_proj", "obj_ptr_tpos_proj",
                  "no_obj_embed_spatial", "mask_downsample")


def reinitialise_memory_path(sam: nn.Module, fresh: nn.Module) -> list[str]:
    """Copy the memory modules of ``fresh`` (a random-init SAM2 of the same architecture) into ``sam``.

    Returns the state-dict keys replaced (every key under :data:`MEMORY_MODULES`).
    """
    fresh_state = fresh.state_dict()
    keys = [k for k in fresh_state if k.split(".")[0] in MEMORY_MODULES]
    missing, unexpected = sam.load_state_dict({k: fresh_state[k] for k in keys}, strict=False)
    if unexpected:
        raise ValueError(f"unexpected keys {unexpected} (architectures differ)")
    return keys


@torch.no_grad()
def add_locality_prior(sam: nn.Module, *, bias: float = 3.5, pairs: int = 3, out_scale: float = 4.0) -> int:
    """Set the locality prior of the module docstring in every memory cross-attention; returns their count.

    In each head of dimension ``d``, the query and key biases of the ``pairs`` highest-frequency
    complex RoPE pairs of each axis (pairs ``0..pairs-1`` along x, ``d/4..d/4+pairs-1`` along y;
    bias entries ``2j`` and ``2j + 1``) are set to ``bias``; the output projection's weight is
    multiplied by ``out_scale``.
    """
    layers = [layer.cross_attn_image for layer in sam.memory_attention.layers]
    for attention in layers:
        heads = attention.num_heads
        head_dim = attention.internal_dim // heads
        if head_dim % 4 or pairs > head_dim // 4:
            raise ValueError(f"pairs: expected at most {head_dim // 4} RoPE pairs per axis for head dimension {head_dim}, got {pairs}")
        entries = []
        for j in [*range(pairs), *range(head_dim // 4, head_dim // 4 + pairs)]:
            entries += [2 * j, 2 * j + 1]
        index = torch.tensor([h * head_dim + e for h in range(heads) for e in entries])
        attention.q_proj.bias[index] = bias
        attention.k_proj.bias[index] = bias
        attention.out_proj.weight.mul_(out_scale)
    return len(layers)


class AuxiliaryHead(nn.Module):
    """A 1x1 convolution from the memory-conditioned stride-16 features ``(B, C, h, w)`` to mask
    logits, upsampled bilinearly to ``(B, S, S)``; :meth:`loss` is BCE (``pos_weight``) + Dice."""

    def __init__(self, *, channels: int, pos_weight: float = 10.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, kernel_size=1)
        self.pos_weight = pos_weight

    def forward(self, features: torch.Tensor, size: int) -> torch.Tensor:
        logits = self.conv(features)
        return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)[:, 0]

    def loss(self, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``masks`` ``(B, S, S)`` bool."""
        logits = self(features, masks.shape[-1])
        target = masks.float()
        bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(self.pos_weight, device=logits.device))
        return bce + dice_loss(logits, target)


@contextlib.contextmanager
def decoder_tokens(sam: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every mask-decoder call appends its image tokens after the two-way
    transformer, ``(B, C, h, w)`` at stride 16, to the yielded list."""
    captured: list[torch.Tensor] = []
    decoder = sam.sam_mask_decoder

    def hook(module, inputs, outputs) -> None:
        image = inputs[0]  # (B, C, h, w): the decoder's stride-16 input
        keys = outputs[1]  # (B, h * w, C)
        captured.append(keys.transpose(1, 2).reshape(image.shape))

    handle = decoder.transformer.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
