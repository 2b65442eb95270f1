"""The memory bank of a pseudo-video and its assembly into memory-attention inputs.

sam2 keeps its memory in a dict keyed by frame index and assembles it inside
``SAM2Base._prepare_memory_conditioned_features``. We keep a list of :class:`MemoryEntry`
instead, and assemble it under one of two layouts (``SansaConfig.temporal_slots``):

``"release"`` (default; the public release's copy of that method, ``sam2_base.py:526-543``):
k references sit at frames 0..k-1 and the target at frame k. Reference 0 takes the last
temporal slot ``maskmem_tpos_enc[num_maskmem - 1]``; an entry d frames before the target
(1 <= d <= num_maskmem - 1) takes ``maskmem_tpos_enc[d - 1]``, oldest first, so reference
i >= 1 sits at ``maskmem_tpos_enc[k - 1 - i]`` and references more than ``num_maskmem - 1``
frames back (other than reference 0) are left out, as in the release. Object pointers:
reference 0's, then those 1, 2, ... frames back (k-1, ..., 1), with sam2's temporal encoding
of those distances when the config has one (SAM2 v1, the release's, has none). The
prediction depends on the order of the references.

``"shared"`` (ours; sam2's rules with all references in one slot, checked against
``SAM2Base.track_step`` in the tests):

* conditioning entries (annotated references) all get temporal position 0, i.e.
  ``maskmem_tpos_enc[num_maskmem - 1]``, and are all kept (no ``max_cond_frames_in_attn``
  window: every reference stays in memory);
* non-conditioning entries (predicted frames, paper eq. 7) within the last
  ``num_maskmem - 1`` frames get ``maskmem_tpos_enc[frame - entry.frame - 1]``, oldest first;
* object pointers of conditioning entries, then of non-conditioning entries at distance
  ``1 .. min(num_frames, max_obj_ptrs_in_encoder) - 1``, with sam2's temporal encoding of
  the (signed) frame distance when the config enables it.

With all k references at frame 0 and the target at frame 1 the prediction does not depend
on the order of the references. For one reference and for the training clip (one reference,
then targets 1..J) both layouts are sam2's own video layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from sam2.modeling.sam2_base import SAM2Base
from sam2.modeling.sam2_utils import get_1d_sine_pe

__all__ = ["MemoryEntry", "assemble_memory", "LAYOUTS"]

LAYOUTS = ("release", "shared")


@dataclass
class MemoryEntry:
    """One frame written to memory.

    Attributes:
        features: ``maskmem_features`` ``(B, mem_dim, h, w)``.
        pos_enc: spatial encoding of the memory ``(B, mem_dim, h, w)``.
        obj_ptr: object pointer ``(B, C)``.
        frame: temporal index of the frame in the pseudo-video.
        conditioning: True for annotated references, False for predicted frames.
    """

    features: torch.Tensor
    pos_enc: torch.Tensor
    obj_ptr: torch.Tensor
    frame: int
    conditioning: bool

    @property
    def batch_size(self) -> int:
        return self.features.shape[0]

    def detach(self) -> "MemoryEntry":
        return MemoryEntry(self.features.detach(), self.pos_enc.detach(), self.obj_ptr.detach(), self.frame, self.conditioning)

    def to(self, device: torch.device | str) -> "MemoryEntry":
        return MemoryEntry(self.features.to(device), self.pos_enc.to(device), self.obj_ptr.to(device), self.frame, self.conditioning)


def _expand(tensor: torch.Tensor, batch: int, what: str) -> torch.Tensor:
    if tensor.shape[0] == batch:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(batch, *tensor.shape[1:])
    raise ValueError(f"memory {what} has batch {tensor.shape[0]}, the target batch is {batch}")


def assemble_memory(
    sam: SAM2Base,
    entries: Sequence[MemoryEntry],
    *,
    frame: int,
    num_frames: int,
    batch: int,
    layout: str = "shared",
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Memory tokens for a target at ``frame`` of a ``num_frames``-long pseudo-video.

    ``layout``: ``"shared"`` (sam2's rules, every conditioning entry in one temporal slot) or
    ``"release"`` (the public release's rules, entries at distinct frames; see the module docstring).

    Returns ``memory`` and ``memory_pos`` of shape ``(M, batch, mem_dim)`` (sequence first, as
    sam2's memory attention expects) and the number of object-pointer tokens at their end.
    Entries with batch 1 are broadcast to ``batch`` (one reference memory, many targets).
    """
    if not any(e.conditioning for e in entries):
        raise ValueError("the memory bank holds no annotated reference: at least one reference is needed")
    if layout == "release":
        timed, pointers = _release_layout(sam, entries, frame=frame, num_frames=num_frames)
    elif layout == "shared":
        timed, pointers = _shared_layout(sam, entries, frame=frame, num_frames=num_frames)
    else:
        raise ValueError(f"temporal layout {layout!r} is unknown; expected 'release' or 'shared'")

    memory, memory_pos = [], []
    for tpos_index, entry in timed:
        memory.append(_expand(entry.features, batch, "features").flatten(2).permute(2, 0, 1))
        pos = _expand(entry.pos_enc, batch, "pos_enc").flatten(2).permute(2, 0, 1)
        memory_pos.append(pos + sam.maskmem_tpos_enc[tpos_index])

    num_ptr_tokens = 0
    if sam.use_obj_ptrs_in_encoder:
        max_ptrs = min(num_frames, sam.max_obj_ptrs_in_encoder)
        distances = [d for d, _ in pointers]
        obj_ptrs = torch.stack([_expand(e.obj_ptr, batch, "obj_ptr") for _, e in pointers], dim=0)  # (P, B, C)
        channels = obj_ptrs.shape[-1]
        if sam.add_tpos_enc_to_obj_ptrs:
            if max_ptrs < 2:
                raise ValueError(f"num_frames={num_frames}: a pseudo-video needs at least 2 frames")
            tpos_dim = channels if sam.proj_tpos_enc_in_obj_ptrs else sam.mem_dim
            obj_pos = torch.tensor(distances, device=obj_ptrs.device)
            obj_pos = get_1d_sine_pe(obj_pos / (max_ptrs - 1), dim=tpos_dim)
            obj_pos = sam.obj_ptr_tpos_proj(obj_pos).unsqueeze(1).expand(-1, batch, sam.mem_dim)
        else:
            obj_pos = obj_ptrs.new_zeros(len(distances), batch, sam.mem_dim)
        if sam.mem_dim < channels:
            # one pointer becomes channels // mem_dim tokens, as in sam2
            split = channels // sam.mem_dim
            obj_ptrs = obj_ptrs.reshape(-1, batch, split, sam.mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            obj_pos = obj_pos.repeat_interleave(split, dim=0)
        memory.append(obj_ptrs)
        memory_pos.append(obj_pos)
        num_ptr_tokens = obj_ptrs.shape[0]
    return torch.cat(memory, dim=0), torch.cat(memory_pos, dim=0), num_ptr_tokens


Timed = list[tuple[int, MemoryEntry]]


def _shared_layout(sam: SAM2Base, entries: Sequence[MemoryEntry], *, frame: int, num_frames: int) -> tuple[Timed, Timed]:
    """sam2's rules, conditioning entries all in the last slot: ``(tpos index, entry)`` memories and
    ``(frame distance, entry)`` object pointers, in sam2's order."""
    num_maskmem = sam.num_maskmem
    conditioning = [e for e in entries if e.conditioning]
    # non-conditioning memories within sam2's window, keyed by distance; oldest first
    recent = {frame - e.frame: e for e in entries if not e.conditioning and 1 <= frame - e.frame <= num_maskmem - 1}
    timed = [(num_maskmem - 1, e) for e in conditioning]
    timed += [(distance - 1, recent[distance]) for distance in sorted(recent, reverse=True)]
    signed = sam.use_signed_tpos_enc_to_obj_ptrs
    pointers = [((frame - e.frame) if signed else abs(frame - e.frame), e) for e in conditioning]
    by_frame = {e.frame: e for e in entries if not e.conditioning}
    for distance in range(1, min(num_frames, sam.max_obj_ptrs_in_encoder)):
        t = frame - distance
        if t < 0 or t >= num_frames:
            break
        if t in by_frame:
            pointers.append((distance, by_frame[t]))
    return timed, pointers


def _release_layout(sam: SAM2Base, entries: Sequence[MemoryEntry], *, frame: int, num_frames: int) -> tuple[Timed, Timed]:
    """The public release's rules (``SAM2Base._prepare_memory_conditioned_features`` of its copy).

    Every entry sits at its own frame (references at 0..k-1, then predicted targets). The entry at
    frame 0 always takes the last slot ``maskmem_tpos_enc[num_maskmem - 1]``; an entry ``d`` frames
    before the target (1 <= d <= num_maskmem - 1, frame > 0) takes ``maskmem_tpos_enc[d - 1]``,
    oldest first; older entries are left out. Object pointers: frame 0's (distance ``frame``), then
    those at distances 1, 2, ... back to frame 1, within ``max_obj_ptrs_in_encoder``.
    """
    num_maskmem = sam.num_maskmem
    by_frame: dict[int, MemoryEntry] = {}
    for entry in entries:
        if entry.frame in by_frame:
            raise ValueError(f"temporal_slots='release': two memory entries at frame {entry.frame}; each needs its own frame")
        by_frame[entry.frame] = entry
    if 0 not in by_frame:
        raise ValueError("temporal_slots='release': no memory entry at frame 0 (the first reference)")
    timed = [(num_maskmem - 1, by_frame[0])]
    for distance in range(num_maskmem - 1, 0, -1):
        if frame - distance > 0 and frame - distance in by_frame:
            timed.append((distance - 1, by_frame[frame - distance]))
    pointers = [(frame, by_frame[0])]
    for distance in range(1, min(num_frames, sam.max_obj_ptrs_in_encoder)):
        t = frame - distance
        if t <= 0 or t >= num_frames:
            break
        if t in by_frame:
            pointers.append((distance, by_frame[t]))
    return timed, pointers
