"""SansaModel: sam2's ``SAM2Base`` with adapters, used as a semantic tracker (paper section 3).

One object holds frozen SAM2 and SANSA: ``with model.adapters(False)`` is frozen SAM2, bit
for bit, through the very same code path.

Few-shot segmentation as semantic tracking (paper eq. 1)::

    references (image + prompt) --encode each alone--> memory entries (frame 0, conditioning)
    target --image encoder--> memory attention over all entries --> mask decoder --> logits

Training clip (paper eq. 7): one annotated reference (frame 0) and J targets (frames 1..J);
each target's prediction is encoded into memory as a pseudo-reference for the next target.
The whole chain is differentiable.

Everything below calls sam2's own modules and methods (``forward_image``,
``_prepare_backbone_features``, ``_use_mask_as_output``, ``_forward_sam_heads``,
``_encode_new_memory``, ``memory_attention``); only the memory bank layout is ours
(see :mod:`sansa_probe.model.memory`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from sam2.modeling.sam2_base import SAM2Base
from torch import nn

from sansa_probe.model.adapters import AdapterPlacement, AdapterSwitch, attach_adapters
from sansa_probe.model.checkpoint import load_adapters_into, save_adapters
from sansa_probe.model.config import BEHAVIOURS, SansaConfig
from sansa_probe.model.memory import MemoryEntry, assemble_memory
from sansa_probe.model.prompting import DEFAULT_MAX_SCRIBBLE_POINTS, PromptInputs, thin_points

__all__ = ["FrameFeatures", "SegmentationOutput", "ClipOutputs", "SansaModel"]


@dataclass
class FrameFeatures:
    """Image-encoder output of B frames in sam2's flattened layout.

    ``vision_feats[l]`` and ``vision_pos[l]`` are ``(H_l * W_l, B, C_l)`` for the levels sam2's
    heads use (two high-resolution levels, already projected by ``conv_s0``/``conv_s1``, then
    the stride-16 level); ``feat_sizes[l] = (H_l, W_l)``.
    """

    vision_feats: list[torch.Tensor]
    vision_pos: list[torch.Tensor]
    feat_sizes: list[tuple[int, int]]

    @property
    def batch_size(self) -> int:
        return self.vision_feats[-1].shape[1]

    def select(self, index: int | slice | torch.Tensor | Sequence[int]) -> "FrameFeatures":
        """The features of a subset of frames (batch positions)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        elif not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long, device=self.vision_feats[-1].device)
        return FrameFeatures(
            vision_feats=[x[:, index] for x in self.vision_feats],
            vision_pos=[x[:, index] for x in self.vision_pos],
            feat_sizes=list(self.feat_sizes),
        )

    def top(self) -> torch.Tensor:
        """Stride-16 features ``(B, C, H, W)``."""
        (h, w), x = self.feat_sizes[-1], self.vision_feats[-1]
        return x.permute(1, 2, 0).reshape(x.shape[1], x.shape[2], h, w)

    def high_res(self) -> list[torch.Tensor] | None:
        """The high-resolution levels ``(B, C_l, H_l, W_l)`` for sam2's mask decoder, or None."""
        if len(self.vision_feats) == 1:
            return None
        return [
            x.permute(1, 2, 0).reshape(x.shape[1], x.shape[2], *size)
            for x, size in zip(self.vision_feats[:-1], self.feat_sizes[:-1])
        ]

    def detach(self) -> "FrameFeatures":
        return FrameFeatures([x.detach() for x in self.vision_feats], [x.detach() for x in self.vision_pos], list(self.feat_sizes))


@dataclass
class SegmentationOutput:
    """sam2 head outputs for B frames.

    ``low_res_logits`` ``(B, 1, S/4, S/4)``, ``high_res_logits`` ``(B, 1, S, S)``, ``iou`` ``(B,)``
    (predicted IoU of the chosen mask), ``obj_ptr`` ``(B, C)``, ``object_score_logits`` ``(B, 1)``;
    ``conditioned_features`` ``(B, C, S/16, S/16)``: the stride-16 features the mask decoder read
    (memory attention's output for a tracked frame; None for a mask used as the output).
    """

    low_res_logits: torch.Tensor
    high_res_logits: torch.Tensor
    iou: torch.Tensor
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    conditioned_features: torch.Tensor | None = None

    @classmethod
    def cat(cls, outputs: Sequence["SegmentationOutput"]) -> "SegmentationOutput":
        """The outputs of several frame batches as one batch (``conditioned_features`` kept only if all have it)."""
        names = ("low_res_logits", "high_res_logits", "iou", "obj_ptr", "object_score_logits")
        joined = {name: torch.cat([getattr(o, name) for o in outputs]) for name in names}
        features = [o.conditioned_features for o in outputs]
        joined["conditioned_features"] = None if any(f is None for f in features) else torch.cat(features)
        return cls(**joined)


@dataclass
class ClipOutputs:
    """Every output of a training clip of B episodes: ``reference`` (frame 0: the mask sam2 derives
    from each prompt, the prompt mask itself for a mask prompt) and ``targets`` (frames 1..J)."""

    reference: SegmentationOutput
    targets: list[SegmentationOutput]


class SansaModel(nn.Module):
    """SAM2 with adapters in the last Hiera stages; SAM2 frozen, adapters trainable.

    Build it with :func:`sansa_probe.load_sansa`. ``model.sam`` is the ``SAM2Base`` instance; its
    module paths (``image_encoder.trunk.blocks.10``, ``memory_attention.layers.3``, ...) are the
    hook names used by :mod:`sansa_probe.features`.

    SAM2 always runs in eval mode (no dropout in its frozen modules), also while training.
    """

    def __init__(self, *, sam: SAM2Base, config: SansaConfig) -> None:
        super().__init__()
        self.sam = sam
        self.config = config
        self._switch = AdapterSwitch(enabled=True)
        for parameter in self.sam.parameters():
            parameter.requires_grad_(False)
        self.placement: AdapterPlacement = attach_adapters(
            sam.image_encoder.trunk,
            kind=config.adapter,
            stages=config.stages,
            ratio=config.ratio,
            switch=self._switch,
            layernorm=config.adapter_layernorm,
            scale=config.adapter_scale,
            sizing=config.adapter_sizing,
        )
        self._adapter_names = tuple(sorted(self.adapter_parameters()))
        for name, parameter in self.sam.named_parameters():
            parameter.requires_grad_(name in self._adapter_names)
        self.sam.eval()

    # ------------------------------------------------------------------ adapters and parameters
    def adapter_parameters(self) -> dict[str, nn.Parameter]:
        """Every adapter parameter, keyed by its name in ``model.sam``'s namespace
        (``image_encoder.trunk.blocks.10.adapter.down_proj.weight``), in block order."""
        return {
            f"image_encoder.trunk.{path}.{name}": parameter
            for path, module in self.placement.modules.items()
            for name, parameter in module.named_parameters()
        }

    @property
    def adapter_names(self) -> tuple[str, ...]:
        """Names (in ``model.sam``'s namespace) of every adapter parameter, sorted."""
        return self._adapter_names

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """Adapter tensors only, keyed as in ``model.sam.state_dict()``."""
        return {name: p.detach().clone() for name, p in self.adapter_parameters().items()}

    def num_adapter_parameters(self) -> int:
        return sum(p.numel() for p in self.adapter_parameters().values())

    @property
    def adapters_enabled(self) -> bool:
        """Whether the adapters act (SANSA) or not (frozen SAM2)."""
        return self._switch.enabled

    @adapters_enabled.setter
    def adapters_enabled(self, value: bool) -> None:
        self._switch.enabled = bool(value)

    @contextlib.contextmanager
    def adapters(self, enabled: bool) -> Iterator["SansaModel"]:
        """``with model.adapters(False): ...`` runs frozen SAM2; the previous state is restored after."""
        previous = self._switch.enabled
        self._switch.enabled = bool(enabled)
        try:
            yield self
        finally:
            self._switch.enabled = previous

    @contextlib.contextmanager
    def behaviour(self, **options: str) -> Iterator["SansaModel"]:
        """``with model.behaviour(temporal_slots="shared"): ...`` runs with other behaviour options
        (:data:`sansa_probe.model.config.BEHAVIOURS`); the previous config is restored after.
        To change them for good: ``model.config = dataclasses.replace(model.config, ...)``."""
        unknown = sorted(set(options) - set(BEHAVIOURS))
        if unknown:
            raise ValueError(f"behaviour options {unknown} are unknown; expected some of {', '.join(BEHAVIOURS)}")
        previous = self.config
        self.config = dataclasses.replace(previous, **options)  # values validated by SansaConfig
        try:
            yield self
        finally:
            self.config = previous

    @property
    def autocast(self) -> bool:
        """Whether inference runs in bfloat16 autocast (on CUDA): ``config.precision == "bfloat16"``."""
        return self.config.precision == "bfloat16"

    def train(self, mode: bool = True) -> "SansaModel":
        # frozen SAM2 modules stay in eval mode: no dropout in memory attention while training
        self.training = mode
        self.sam.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.sam.parameters()).device

    @property
    def image_size(self) -> int:
        return int(self.sam.image_size)

    def save_adapters(self, path, *, meta: dict | None = None):
        """Write the adapters (and the config that built them) atomically to ``path``."""
        return save_adapters(self, path, meta=meta)

    def load_adapters(self, path, *, strict: bool = True) -> None:
        """Load adapters saved by :meth:`save_adapters` or by the public SANSA release (strict)."""
        load_adapters_into(self, path, strict=strict)

    # ------------------------------------------------------------------ building blocks
    def encode_images(self, images: torch.Tensor) -> FrameFeatures:
        """Image encoder on ``(B, 3, S, S)`` normalised frames (adapters as currently switched)."""
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"images: expected a (B, 3, {self.image_size}, {self.image_size}) tensor, got {tuple(images.shape)}"
            )
        backbone_out = self.sam.forward_image(images)
        _, feats, pos, sizes = self.sam._prepare_backbone_features(backbone_out)
        return FrameFeatures(vision_feats=feats, vision_pos=pos, feat_sizes=[tuple(s) for s in sizes])

    def _run_heads(self, pix_feat: torch.Tensor, feats: FrameFeatures, *, point_inputs=None, mask_inputs=None, multimask: bool,
                   drop_high_res: torch.Tensor | None = None) -> SegmentationOutput:
        high_res = feats.high_res()
        if drop_high_res is not None and high_res is not None:
            keep = (~drop_high_res.to(device=pix_feat.device, dtype=torch.bool)).to(pix_feat.dtype).view(-1, 1, 1, 1)
            high_res = [x * keep for x in high_res]
        _, _, ious, low, high, obj_ptr, obj_score = self.sam._forward_sam_heads(
            backbone_features=pix_feat,
            point_inputs=point_inputs,
            mask_inputs=mask_inputs,
            high_res_features=high_res,
            multimask_output=multimask,
        )
        return SegmentationOutput(low, high, ious.max(dim=1).values, obj_ptr, obj_score, conditioned_features=pix_feat)

    def decode_reference(self, feats: FrameFeatures, prompt: PromptInputs, *, drop_high_res: torch.Tensor | None = None) -> SegmentationOutput:
        """The mask sam2 derives from a reference prompt, without any memory (an initial conditioning frame).

        ``drop_high_res`` ``(B,)`` bool: decode a point/box prompt without the high-resolution
        features for those frames (a training option, see :meth:`segment`)."""
        if prompt.mask_inputs is not None:
            if prompt.mask_inputs.shape[0] != feats.batch_size:
                raise ValueError(f"mask prompt batch {prompt.mask_inputs.shape[0]} != {feats.batch_size} frames")
            mask_inputs = prompt.mask_inputs.to(self.device)
            if self.sam.use_mask_input_as_output_without_sam:
                _, _, ious, low, high, obj_ptr, obj_score = self.sam._use_mask_as_output(feats.top(), feats.high_res(), mask_inputs)
                if self.config.reference_memory == "release":
                    # the release's _use_mask_as_output: memory from the decoder-shaped mask, i.e. the
                    # (antialiased) low-res logits upsampled back, not sam2's exact mask * 20 - 10
                    high = F.interpolate(low, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
                return SegmentationOutput(low, high, ious.max(dim=1).values, obj_ptr, obj_score)
            pix = self._no_memory_features(feats)
            return self._run_heads(pix, feats, mask_inputs=mask_inputs, multimask=self.sam._use_multimask(True, None))
        points = {k: v.to(self.device) for k, v in prompt.point_inputs.items()}
        if prompt.kind == "scribble" and self.config.scribble == "thinned":
            points = thin_points(points, DEFAULT_MAX_SCRIBBLE_POINTS)
        # the release decodes every point/box/scribble reference with a single mask; sam2 uses 3 for one click
        multimask = False if self.config.point_prompts == "release" else self.sam._use_multimask(True, points)
        pix = self._no_memory_features(feats)
        return self._run_heads(pix, feats, point_inputs=points, multimask=multimask, drop_high_res=drop_high_res)

    def _no_memory_features(self, feats: FrameFeatures) -> torch.Tensor:
        return self.sam._prepare_memory_conditioned_features(
            frame_idx=0,
            is_init_cond_frame=True,
            current_vision_feats=feats.vision_feats[-1:],
            current_vision_pos_embeds=feats.vision_pos[-1:],
            feat_sizes=feats.feat_sizes[-1:],
            output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
            num_frames=1,
        )

    def write_memory(self, feats: FrameFeatures, output: SegmentationOutput, *, frame: int, conditioning: bool, from_points: bool = False) -> MemoryEntry:
        """Encode a frame and its (given or predicted) mask into a memory entry (paper eq. 2)."""
        features, pos_enc = self.sam._encode_new_memory(
            current_vision_feats=feats.vision_feats,
            feat_sizes=feats.feat_sizes,
            pred_masks_high_res=output.high_res_logits,
            object_score_logits=output.object_score_logits,
            is_mask_from_pts=from_points,
        )
        return MemoryEntry(features=features, pos_enc=pos_enc[-1], obj_ptr=output.obj_ptr, frame=frame, conditioning=conditioning)

    def encode_reference(self, feats: FrameFeatures, prompt: PromptInputs, *, frame: int = 0) -> MemoryEntry:
        """A reference frame (features + prompt) as a conditioning memory entry, no memory attention."""
        output = self.decode_reference(feats, prompt)
        # the release never flags a mask as from clicks (sam2 binarises such a mask only when its config sets
        # binarize_mask_from_pts_for_mem_enc, as its video predictor does)
        from_points = prompt.point_inputs is not None and self.config.point_prompts != "release"
        return self.write_memory(feats, output, frame=frame, conditioning=True, from_points=from_points)

    def segment(
        self,
        feats: FrameFeatures,
        memory: Sequence[MemoryEntry],
        *,
        frame: int | None = None,
        num_frames: int | None = None,
        point_inputs: dict[str, torch.Tensor] | None = None,
        drop_high_res: torch.Tensor | None = None,
    ) -> SegmentationOutput:
        """Segment B target frames through memory attention and the mask decoder.

        ``frame``: the targets' frame in the pseudo-video (default: right after the last memory entry);
        ``num_frames`` (default ``frame + 1``). ``point_inputs`` optionally adds clicks on the targets
        (e.g. geometric negatives, label 0). ``drop_high_res`` ``(B,)`` bool: the mask decoder gets
        zeros instead of the high-resolution features for those targets (a training option: the
        prediction must then come through the memory-conditioned stride-16 map).
        """
        batch = feats.batch_size
        if frame is None:
            frame = 1 + max(entry.frame for entry in memory) if memory else 1
        if num_frames is None:
            num_frames = frame + 1
        mem, mem_pos, num_ptr = assemble_memory(
            self.sam, memory, frame=frame, num_frames=num_frames, batch=batch, layout=self.config.temporal_slots
        )
        pix = self.sam.memory_attention(
            curr=feats.vision_feats[-1:],
            curr_pos=feats.vision_pos[-1:],
            memory=mem,
            memory_pos=mem_pos,
            num_obj_ptr_tokens=num_ptr,
        )
        (h, w) = feats.feat_sizes[-1]
        pix = pix.permute(1, 2, 0).reshape(batch, -1, h, w)  # (HW, B, C) -> (B, C, H, W)
        if point_inputs is not None:
            point_inputs = {k: v.to(self.device) for k, v in point_inputs.items()}
        return self._run_heads(pix, feats, point_inputs=point_inputs, multimask=self.sam._use_multimask(False, point_inputs),
                               drop_high_res=drop_high_res)

    # ------------------------------------------------------------------ few-shot and training paths
    def reference_memory(self, reference_images: torch.Tensor, prompts: Sequence[PromptInputs]) -> list[MemoryEntry]:
        """Encode k references ``(k, 3, S, S)`` with their prompts: k conditioning memory entries.

        Each reference is encoded on its own (no memory attention to other references). Their frames
        follow ``config.temporal_slots``: ``"release"`` puts reference i at frame i (the release's
        order-dependent layout), ``"shared"`` all at frame 0 (order-invariant).
        """
        if len(prompts) != reference_images.shape[0]:
            raise ValueError(f"{reference_images.shape[0]} reference images but {len(prompts)} prompts")
        return self.memory_from_features(self.encode_images(reference_images), prompts)

    def memory_from_features(self, feats: FrameFeatures, prompts: Sequence[PromptInputs]) -> list[MemoryEntry]:
        """As :meth:`reference_memory`, from the k references' encoded features."""
        if len(prompts) == 0:
            raise ValueError("zero references: at least one annotated reference is needed")
        if len(prompts) != feats.batch_size:
            raise ValueError(f"{feats.batch_size} reference frames but {len(prompts)} prompts")
        release = self.config.temporal_slots == "release"
        return [self.encode_reference(feats.select(i), prompt, frame=i if release else 0) for i, prompt in enumerate(prompts)]

    def few_shot(
        self,
        reference_images: torch.Tensor,
        prompts: Sequence[PromptInputs],
        target_images: torch.Tensor,
        *,
        point_inputs: dict[str, torch.Tensor] | None = None,
    ) -> SegmentationOutput:
        """k-shot segmentation of B targets ``(B, 3, S, S)`` from k references (paper eq. 1)."""
        memory = self.reference_memory(reference_images, prompts)
        return self.segment(self.encode_images(target_images), memory, point_inputs=point_inputs)

    def forward_clip(
        self,
        reference_images: torch.Tensor,
        prompts: Sequence[PromptInputs],
        target_images: Sequence[torch.Tensor],
    ) -> list[SegmentationOutput]:
        """The training clip of paper eq. 7 for a batch of B episodes.

        ``reference_images`` ``(B, 3, S, S)`` with one prompt per episode; ``target_images`` a list of J
        tensors ``(B, 3, S, S)``. Target j (frame j) attends to the reference and to the predictions
        of targets 1..j-1 written to memory. Returns J outputs; differentiable end to end.
        """
        batch = reference_images.shape[0]
        if len(prompts) != batch:
            raise ValueError(f"{batch} reference images but {len(prompts)} prompts")
        num_targets = len(target_images)
        if num_targets < 1:
            raise ValueError("a training clip needs at least one target (J >= 1)")
        frames = torch.cat([reference_images, *target_images], dim=0)  # one encoder forward for the clip
        return self.track_features(self.encode_images(frames), prompts).targets

    def track_features(self, feats: FrameFeatures, prompts: Sequence[PromptInputs], *,
                       drop_high_res: torch.Tensor | None = None) -> ClipOutputs:
        """:meth:`forward_clip` from encoded frames: ``feats`` holds ``(J + 1) * B`` frames, frame-major
        (the B references, then the B frames of each target in turn), as :meth:`encode_images` of the
        concatenated clip returns them (or a cache of it, when the image encoder is frozen).

        ``drop_high_res`` ``(B,)`` bool: for those episodes the decoder of every target frame gets no
        high-resolution features (see :meth:`segment`; the reference and memory writing keep them).
        Returns the reference outputs too (frame 0: what sam2 derives from each prompt).
        """
        batch = len(prompts)
        if batch < 1 or feats.batch_size % batch or feats.batch_size < 2 * batch:
            raise ValueError(f"{feats.batch_size} encoded frames do not hold a reference and >= 1 target for each of {batch} prompts")
        num_targets = feats.batch_size // batch - 1
        reference = feats.select(slice(0, batch))
        entry, reference_output = self._batched_reference(reference, prompts)
        memory = [entry]
        outputs = []
        for j in range(1, num_targets + 1):
            target = feats.select(slice(j * batch, (j + 1) * batch))
            output = self.segment(target, memory, frame=j, num_frames=num_targets + 1, drop_high_res=drop_high_res)
            outputs.append(output)
            if j < num_targets:
                memory.append(self.write_memory(target, output, frame=j, conditioning=False))
        return ClipOutputs(reference=reference_output, targets=outputs)

    def _batched_reference(self, feats: FrameFeatures, prompts: Sequence[PromptInputs]) -> tuple[MemoryEntry, SegmentationOutput]:
        """One conditioning entry holding B episodes' references (prompts of one kind are batched),
        and the B reference outputs."""
        if all(p.mask_inputs is not None for p in prompts):
            masks = torch.cat([p.mask_inputs for p in prompts], dim=0)
            output = self.decode_reference(feats, PromptInputs(kind="mask", mask_inputs=masks))
            return self.write_memory(feats, output, frame=0, conditioning=True), output
        outputs = [self.decode_reference(feats.select(i), p) for i, p in enumerate(prompts)]
        output = SegmentationOutput.cat(outputs)
        # as encode_reference: the release never flags a mask as from clicks
        from_points = torch.tensor([p.point_inputs is not None and self.config.point_prompts != "release" for p in prompts])
        if not from_points.any() or from_points.all():
            return self.write_memory(feats, output, frame=0, conditioning=True, from_points=bool(from_points.all())), output
        entries = [self.write_memory(feats.select(i), outputs[i], frame=0, conditioning=True, from_points=bool(f))
                   for i, f in enumerate(from_points)]
        entry = MemoryEntry(
            features=torch.cat([e.features for e in entries]),
            pos_enc=torch.cat([e.pos_enc for e in entries]),
            obj_ptr=torch.cat([e.obj_ptr for e in entries]),
            frame=0,
            conditioning=True,
        )
        return entry, output

    def forward(self, reference_images, prompts, target_images) -> torch.Tensor:
        """Training clip (see :meth:`forward_clip`) as one tensor, the entry DistributedDataParallel calls.

        Returns the J targets' full-resolution mask logits stacked: ``(J, B, 1, S, S)``.
        """
        return torch.stack([o.high_res_logits for o in self.forward_clip(reference_images, prompts, target_images)])
