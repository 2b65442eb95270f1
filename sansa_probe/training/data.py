"""Training clips as tensors (paper eq. 7), their schedule over optimizer steps and ranks.

Clip ``i`` is a pure function of ``(seed, i)`` (images, masks, prompt), so a run can resume
at any step and any number of data-loader workers or ranks sees the same clips.

Schedule: optimizer step ``s`` consumes the global batch of clips
``[s * G, (s + 1) * G)`` with ``G = micro_batch * world_size * accumulation``; rank ``r`` takes
micro-batch ``m`` = clips ``s * G + (m * world_size + r) * micro_batch + [0, micro_batch)``.
One process with a micro-batch of ``G`` therefore sees exactly the clips that ``world_size``
processes see together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from sansa_probe.data.episodes import TrainingEpisodeData, TrainingEpisodeSampler
from sansa_probe.inference.protocol import PROTOCOLS, Protocol, get_protocol
from sansa_probe.model.prompting import PromptInputs
from sansa_probe.prompts.generate import PROMPT_TYPES, make_prompt

__all__ = ["ClipDataset", "MixedClips", "StepBatchSampler", "collate_clips", "ClipBatch"]


class MixedClips:
    """Clip ``i`` from one of several training samplers, chosen by ``(seed, i)`` with given weights."""

    def __init__(self, samplers: Sequence[TrainingEpisodeSampler], weights: Sequence[float], *, seed: int) -> None:
        if len(samplers) != len(weights) or not samplers:
            raise ValueError(f"{len(samplers)} datasets but {len(weights)} weights: give one weight per dataset")
        weights = np.asarray(weights, dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"weights {weights.tolist()}: expected non-negative numbers with a positive sum")
        self.samplers = list(samplers)
        self.probabilities = weights / weights.sum()
        self.seed = seed

    def __len__(self) -> int:
        return min(len(s) for s in self.samplers)

    def which(self, index: int) -> int:
        rng = np.random.default_rng([self.seed, index, 1])
        return int(rng.choice(len(self.samplers), p=self.probabilities))

    def load(self, index: int) -> TrainingEpisodeData:
        return self.samplers[self.which(index)].load(index)


def _resize_mask(mask: np.ndarray, size: int) -> torch.Tensor:
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    return F.interpolate(tensor, size=(size, size), mode="nearest")[0, 0] > 0.5


class ClipDataset(Dataset):
    """Clip ``i`` of a training sampler as model-ready tensors.

    Item: ``reference`` (3, S, S), ``prompt`` (:class:`PromptInputs`), ``targets`` (J, 3, S, S),
    ``target_masks`` (J, S, S) bool, ``target_valid`` (J, S, S) bool (False where ignored),
    ``index`` and ``class_id``. ``prompt="multi"`` draws the prompt kind per clip.

    ``protocol`` (a name of :data:`~sansa_probe.inference.PROTOCOLS`) makes the images and the
    reference prompt: ``"release"`` (default; the public release's per-dataset square, then the
    model size) or ``"hsnet"``. Target masks go nearest to the model size in both.
    """

    def __init__(self, clips: TrainingEpisodeSampler | MixedClips, *, image_size: int, prompt: str = "mask", seed: int = 0,
                 protocol: str = "release") -> None:
        if prompt not in (*PROMPT_TYPES, "multi"):
            raise ValueError(f"prompt {prompt!r} is unknown; expected one of {', '.join(PROMPT_TYPES)} or 'multi'")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r} is unknown; expected one of {', '.join(PROTOCOLS)}")
        self.clips = clips
        self.image_size = image_size
        self.prompt = prompt
        self.seed = seed
        self.protocol = protocol
        self._protocols: dict[str | None, Protocol] = {}

    def _protocol(self, index: int) -> Protocol:
        """The protocol of clip ``index``'s dataset (one per dataset: its release square)."""
        sampler = self.clips.samplers[self.clips.which(index)] if isinstance(self.clips, MixedClips) else self.clips
        name = getattr(getattr(sampler, "source", None), "name", None)
        if name not in self._protocols:
            self._protocols[name] = get_protocol(self.protocol, image_size=self.image_size, dataset=name)
        return self._protocols[name]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        data = self.clips.load(index)
        size = self.image_size
        rng = np.random.default_rng([self.seed, index, 2])
        kind = PROMPT_TYPES[int(rng.integers(len(PROMPT_TYPES)))] if self.prompt == "multi" else self.prompt
        ref_image, ref_mask = data.reference_images[0], data.reference_masks[0]
        prompt = make_prompt(kind, ref_mask, seed=(self.seed, index, 3), train=True)
        protocol = self._protocol(index)
        inputs = protocol.prompt(prompt, size=ref_mask.shape[:2])
        valid = [
            torch.ones(size, size, dtype=torch.bool) if ignore is None else ~_resize_mask(ignore, size)
            for ignore in data.target_ignores
        ]
        return {
            "index": index,
            "class_id": data.class_id,
            "reference": protocol.image(ref_image),
            "prompt": inputs,
            "targets": protocol.images(data.target_images),
            "target_masks": torch.stack([_resize_mask(mask, size) for mask in data.target_masks]),
            "target_valid": torch.stack(valid),
        }


@dataclass
class ClipBatch:
    """B clips: ``reference`` (B, 3, S, S), ``prompts`` (B), ``targets`` list of J (B, 3, S, S),
    ``target_masks`` / ``target_valid`` (J, B, S, S)."""

    indices: list[int]
    reference: torch.Tensor
    prompts: list[PromptInputs]
    targets: list[torch.Tensor]
    target_masks: torch.Tensor
    target_valid: torch.Tensor

    def to(self, device: torch.device) -> "ClipBatch":
        return ClipBatch(
            indices=self.indices,
            reference=self.reference.to(device, non_blocking=True),
            prompts=[p.to(device) for p in self.prompts],
            targets=[t.to(device, non_blocking=True) for t in self.targets],
            target_masks=self.target_masks.to(device, non_blocking=True),
            target_valid=self.target_valid.to(device, non_blocking=True),
        )


def collate_clips(items: list[dict]) -> ClipBatch:
    targets = torch.stack([item["targets"] for item in items], dim=1)  # (J, B, 3, S, S)
    return ClipBatch(
        indices=[int(item["index"]) for item in items],
        reference=torch.stack([item["reference"] for item in items]),
        prompts=[item["prompt"] for item in items],
        targets=list(targets.unbind(0)),
        target_masks=torch.stack([item["target_masks"] for item in items], dim=1),
        target_valid=torch.stack([item["target_valid"] for item in items], dim=1),
    )


class StepBatchSampler(Sampler[list[int]]):
    """Micro-batches of clip indices for one rank, from optimizer step ``start_step`` to ``end_step``."""

    def __init__(self, *, start_step: int, end_step: int, micro_batch: int, accumulation: int, rank: int = 0, world_size: int = 1) -> None:
        self.start_step, self.end_step = start_step, end_step
        self.micro_batch, self.accumulation = micro_batch, accumulation
        self.rank, self.world_size = rank, world_size

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.world_size * self.accumulation

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step) * self.accumulation

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.end_step):
            for micro in range(self.accumulation):
                first = step * self.global_batch + (micro * self.world_size + self.rank) * self.micro_batch
                yield list(range(first, first + self.micro_batch))
