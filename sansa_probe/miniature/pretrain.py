"""Class-agnostic pretraining of the miniature SAM2 on procedural videos (SAM2's recipe, scaled down).

Each step takes ``batch`` clips of ``frames`` frames (:func:`~sansa_probe.miniature.videos.pretraining_clip`).
Frame 0 carries a prompt on the tracked instance (a mask, a box or 1-20 clicks, drawn per clip);
frames 1..J are segmented through memory attention, each prediction written back into memory for
the next frame (sam2's own ``_forward_sam_heads``, ``_encode_new_memory`` and ``memory_attention``,
through :class:`~sansa_probe.model.sansa.SansaModel`'s building blocks). Losses as SAM2's: focal
(x20) + Dice (x1) on every predicted mask (tracked frames, and frame 0 when it was prompted with a
box or clicks), plus the MSE of the predicted IoU. Every SAM2 parameter trains; no class label is
used anywhere.

Step ``s`` uses clips ``[s * batch, (s + 1) * batch)`` of the stream ``seed``, so a run is a pure
function of its :class:`PretrainConfig` (on one machine and thread count) and resumes exactly.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from sansa_probe.io.atomic import atomic_torch_save, atomic_write_text
from sansa_probe.io.images import to_model_input
from sansa_probe.miniature.architecture import IMAGE_SIZE, build_miniature_sam2, miniature_config
from sansa_probe.miniature.videos import pretraining_clip
from sansa_probe.model.config import SansaConfig
from sansa_probe.model.memory import MemoryEntry
from sansa_probe.model.prompting import PromptInputs, prompt_to_inputs
from sansa_probe.model.sansa import SansaModel, SegmentationOutput
from sansa_probe.prompts.generate import make_prompt
from sansa_probe.training.losses import segmentation_loss

__all__ = ["PretrainConfig", "ClipStream", "tracker_model", "track_clip", "clip_loss", "pretrain"]

PROMPT_KINDS = ("mask", "box", "point")
LOG_TERMS = ("loss", "pixel", "dice", "iou_mse", "miou")
PROMPT_PROBABILITIES = (0.6, 0.2, 0.2)


@dataclass(frozen=True)
class PretrainConfig:
    """Hyper-parameters of a pretraining run (AdamW, linear warm-up then cosine decay to 10 %).

    ``schedule_steps`` (default ``steps``) is the length of the cosine decay: a run of ``steps <
    schedule_steps`` is exactly the first ``steps`` steps of the longer schedule.
    """

    steps: int = 800
    batch: int = 4
    frames: int = 4
    lr: float = 1e-3
    warmup: int = 30
    weight_decay: float = 0.01
    clip: float = 1.0
    seed: int = 0
    iou_weight: float = 1.0
    loss: str = "bce_dice"
    processes: int = 4
    schedule_steps: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "warmup", "processes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if self.frames < 2:
            raise ValueError(f"frames: expected an int >= 2 (a prompted frame and a tracked one), got {self.frames!r}")
        if self.batch % self.processes:
            raise ValueError(f"batch {self.batch} is not a multiple of processes {self.processes}")

    @property
    def schedule_length(self) -> int:
        """Steps the cosine decay spans (``schedule_steps``, default ``steps``)."""
        return self.schedule_steps or self.steps

    def lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.schedule_length - self.warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class ClipStream(Dataset):
    """Clip ``i`` of stream ``seed`` as tensors: ``frames`` (T, 3, S, S), ``masks`` (T, S, S) bool, ``prompt``."""

    def __init__(self, *, seed: int, frames: int, length: int, image_size: int = IMAGE_SIZE) -> None:
        self.seed, self.frames, self.length, self.image_size = seed, frames, length, image_size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.item(index)

    def item(self, index: int, *, prompt: str | None = None) -> dict:
        """Clip ``index``; ``prompt`` forces the prompt kind (default: drawn per clip, 60 % mask, 20 % box, 20 % clicks)."""
        clip = pretraining_clip(seed=self.seed, index=index, n_frames=self.frames, image_size=self.image_size)
        rng = np.random.default_rng([self.seed, index, 13])
        kind = PROMPT_KINDS[int(rng.choice(len(PROMPT_KINDS), p=PROMPT_PROBABILITIES))]
        kind = prompt or kind
        prompt = make_prompt(kind, clip.masks[0], seed=(self.seed, index, 14), train=True)
        size = self.image_size
        return {
            "frames": torch.stack([to_model_input(f, size) for f in clip.frames]),
            "masks": torch.from_numpy(np.stack(clip.masks)),
            "prompt": prompt_to_inputs(prompt, height=size, width=size, image_size=size),
        }


def _collate(items: list[dict]) -> dict:
    return {
        "frames": torch.stack([i["frames"] for i in items], dim=1),  # (T, B, 3, S, S)
        "masks": torch.stack([i["masks"] for i in items], dim=1),  # (T, B, S, S)
        "prompts": [i["prompt"] for i in items],
    }


def tracker_model(sam: torch.nn.Module, *, config: SansaConfig | None = None) -> SansaModel:
    """A :class:`SansaModel` without adapters around ``sam`` (the tracker itself)."""
    if config is None:
        config = miniature_config(stages=())
    return SansaModel(sam=sam, config=config)


def track_clip(model: SansaModel, frames: torch.Tensor, prompts: list[PromptInputs]) -> tuple[list[SegmentationOutput | None], list[SegmentationOutput]]:
    """Prompt frame 0 and track through frames 1..T-1 of B clips ``frames`` (T, B, 3, S, S).

    Returns the frame-0 outputs (None for a mask prompt: sam2 uses the mask itself) and the T-1
    tracked outputs, each frame's prediction written to memory for the next one. Differentiable.
    """
    steps, batch = frames.shape[:2]
    feats = model.encode_images(frames.flatten(0, 1))
    reference = feats.select(slice(0, batch))
    ref_outputs: list[SegmentationOutput | None] = []
    entries: list[MemoryEntry] = []
    for i, prompt in enumerate(prompts):
        one = reference.select(i)
        out = model.decode_reference(one, prompt)
        ref_outputs.append(None if prompt.mask_inputs is not None else out)
        entries.append(model.write_memory(one, out, frame=0, conditioning=True, from_points=prompt.point_inputs is not None))
    memory = [
        MemoryEntry(
            features=torch.cat([e.features for e in entries]),
            pos_enc=torch.cat([e.pos_enc for e in entries]),
            obj_ptr=torch.cat([e.obj_ptr for e in entries]),
            frame=0,
            conditioning=True,
        )
    ]
    outputs = []
    for t in range(1, steps):
        target = feats.select(slice(t * batch, (t + 1) * batch))
        out = model.segment(target, memory, frame=t, num_frames=steps)
        outputs.append(out)
        if t < steps - 1:
            memory.append(model.write_memory(target, out, frame=t, conditioning=False))
    return ref_outputs, outputs


def _mask_iou(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """IoU of ``logits > 0`` with bool ``masks``, per sample ``(B,)``; 1 when both are empty."""
    pred = (logits > 0).flatten(1)
    gt = masks.flatten(1)
    inter = (pred & gt).sum(1).float()
    union = (pred | gt).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def clip_loss(ref_outputs, outputs, masks: torch.Tensor, *, iou_weight: float = 1.0, kind: str = "bce_dice") -> dict[str, torch.Tensor]:
    """Mask loss (``kind``: ``"bce_dice"`` 1:1, or SAM2's ``"focal_dice"`` 20:1) plus the MSE of the
    predicted IoU, averaged over every predicted mask; ``masks`` (T, B, S, S) bool.

    Terms: ``loss``, ``pixel`` (BCE or focal), ``dice``, ``iou_mse``, ``miou`` (IoU of ``logits > 0``).
    """
    logits, targets, ious = [], [], []
    for i, out in enumerate(ref_outputs):
        if out is not None:
            logits.append(out.high_res_logits[:, 0])
            targets.append(masks[0, i : i + 1])
            ious.append(out.iou)
    for t, out in enumerate(outputs, start=1):
        logits.append(out.high_res_logits[:, 0])
        targets.append(masks[t])
        ious.append(out.iou)
    logits_all, targets_all, iou_pred = torch.cat(logits), torch.cat(targets), torch.cat(ious)
    terms = segmentation_loss(logits_all, targets_all, kind=kind)
    terms["pixel"] = terms.pop("bce" if kind == "bce_dice" else "focal")
    iou_true = _mask_iou(logits_all.detach(), targets_all)
    iou_loss = torch.nn.functional.mse_loss(iou_pred.float(), iou_true)
    terms["loss"] = terms["loss"] + iou_weight * iou_loss
    terms["iou_mse"] = iou_loss.detach()
    terms["miou"] = iou_true.mean()
    return terms


def _batches(stream: ClipStream, start: int, steps: int, batch: int, rank: int, world: int, workers: int) -> Iterator[dict]:
    share = batch // world
    indices = [list(range(s * batch + rank * share, s * batch + (rank + 1) * share)) for s in range(start, steps)]
    loader = DataLoader(stream, batch_sampler=indices, collate_fn=_collate, num_workers=workers)
    yield from loader


def pretrain(config: PretrainConfig, *, out: str | Path, resume: bool = True, workers: int = 0, save_every: int = 50,
             progress: bool = True) -> SansaModel:
    """Run (or resume) pretraining into ``out`` and return the trained tracker (eval mode, frozen).

    Writes ``out/last.pt`` (resumable: weights, optimizer, scheduler, step) every ``save_every``
    steps and at the end, and ``out/log.jsonl`` (one line of loss terms per step). With
    ``config.processes > 1`` the batch is split over that many CPU processes (gloo), whose
    gradients are averaged: the same clips per step, one thread each.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    done = resume and last.is_file() and int(torch.load(last, map_location="cpu", weights_only=True)["step"]) == config.steps
    if config.processes > 1 and not done:
        mp.spawn(_distributed, args=(config, str(out), resume, save_every, _free_port()), nprocs=config.processes, join=True)
        sam = build_miniature_sam2(seed=config.seed)
        sam.load_state_dict(torch.load(out / "last.pt", map_location="cpu", weights_only=True)["model"])
        model = tracker_model(sam)
    else:
        model = _train(config, out=out, rank=0, resume=resume, workers=workers, save_every=save_every, progress=progress)
    model.eval()
    for p in model.sam.parameters():
        p.requires_grad_(False)
    return model


def _schedule_key(config: dict) -> dict:
    """What a checkpoint must share with a run that resumes it: everything but the stopping step."""
    key = dict(config)
    key["schedule_steps"] = key.get("schedule_steps") or key["steps"]
    key.pop("steps")
    return key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _distributed(rank: int, config: PretrainConfig, out: str, resume: bool, save_every: int, port: int) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=config.processes)
    try:
        _train(config, out=Path(out), rank=rank, resume=resume, workers=0, save_every=save_every, progress=False)
    finally:
        dist.destroy_process_group()


def _average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def _train(config: PretrainConfig, *, out: Path, rank: int, resume: bool, workers: int, save_every: int, progress: bool) -> SansaModel:
    world = config.processes
    sam = build_miniature_sam2(seed=config.seed)
    model = tracker_model(sam)
    params = list(sam.parameters())
    for p in params:
        p.requires_grad_(True)
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=config.lr
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)
    step = 0
    last, log_path = out / "last.pt", out / "log.jsonl"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        if _schedule_key(state["config"]) != _schedule_key(asdict(config)):
            raise ValueError(f"{last} was written by another pretraining recipe: {state['config']} (this run: {asdict(config)})")
        if int(state["step"]) > config.steps:
            raise ValueError(f"{last} is at step {state['step']}, past this run's {config.steps} steps")
        sam.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
    if rank == 0:  # keep the log lines of the steps the checkpoint holds
        kept = [line for line in (log_path.read_text().splitlines() if log_path.is_file() else []) if json.loads(line)["step"] <= step]
        atomic_write_text(log_path, "".join(line + "\n" for line in kept))
    stream = ClipStream(seed=config.seed, frames=config.frames, length=config.steps * config.batch)
    model.train()
    bar = tqdm(total=config.steps, initial=step, desc="pretrain", unit="step", disable=not (progress and rank == 0), file=sys.stderr)
    started = time.perf_counter()
    for batch in _batches(stream, step, config.steps, config.batch, rank, world, workers):
        ref_outputs, outputs = track_clip(model, batch["frames"], batch["prompts"])
        terms = clip_loss(ref_outputs, outputs, batch["masks"], iou_weight=config.iou_weight, kind=config.loss)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        values = torch.stack([terms[k].detach().float() for k in LOG_TERMS])
        if world > 1:
            _average_gradients(params, world)
            dist.all_reduce(values)
            values /= world
        norm = torch.nn.utils.clip_grad_norm_(params, config.clip)
        optimizer.step()
        scheduler.step()
        step += 1
        if rank == 0:
            row = {k: round(float(v), 5) for k, v in zip(LOG_TERMS, values)}
            row |= {"step": step, "grad_norm": round(float(norm), 4), "s": round(time.perf_counter() - started, 2)}
            with open(log_path, "a") as handle:
                handle.write(json.dumps(row) + "\n")
            bar.set_postfix(loss=f"{row['loss']:.3f}", miou=f"{row['miou']:.2f}")
            bar.update(1)
            if step % save_every == 0 or step == config.steps:
                payload = {"config": asdict(config), "model": sam.state_dict(), "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict(), "step": step}
                atomic_torch_save(last, payload)
    bar.close()
    return model
