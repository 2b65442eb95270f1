"""Staged class-agnostic pretraining of the miniature SAM2: SAM's image stage, then SAM2's video stages.

A :class:`StageConfig` says what one stage draws, which parameters train and with which devices;
:func:`run_stage` trains it (resumable) from the previous stage's weights. The default stages
(:data:`DEFAULT_STAGES`, docs/MINIATURE.md):

1. ``image``: single frames with several objects, a box or click prompt on one, the loss on its
   mask (SAM's interactive segmentation, no memory): the decoder learns to *select* an object
   through the stride-16 map, not to segment every object from the high-resolution features;
2. ``memory``: two-frame clips, the memory modules re-initialised with a locality prior, an
   auxiliary head on the memory-attention output, high-resolution feature dropout on tracked
   frames, a third of the clips with larger instances and look-alike twins; the image encoder is
   frozen and its features cached (:mod:`sansa_probe.miniature.memory_path`);
3. ``appearance``: the same from the memory stage's weights, with clips whose frames 1.. are
   mirrored or shuffled and instances that look distinct, so that memory has to match by
   appearance rather than copy by position.

Every stage runs on the model's own clip forward (:meth:`SansaModel.track_features`, the encoder
part of :meth:`SansaModel.forward_clip` done once per frame or read from the cache). Clips are
drawn ahead of time into a pool (in ``processes`` worker processes; pool item ``i`` is clip
``stream * 10**7 + i`` of the pretraining stream ``seed``), step ``s`` takes ``batch`` pool items of
the epoch's permutation, so a stage is a pure function of its config (on one machine and thread
count) and resumes exactly.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sansa_probe.io.images import IMAGENET_MEAN, IMAGENET_STD
from sansa_probe.miniature.architecture import IMAGE_SIZE, build_miniature_sam2, miniature_config
from sansa_probe.miniature.memory_path import AuxiliaryHead, add_locality_prior, decoder_tokens, reinitialise_memory_path
from sansa_probe.miniature.videos import ClipRecipe, pretraining_clip
from sansa_probe.model.prompting import PromptInputs, prompt_to_inputs
from sansa_probe.model.sansa import FrameFeatures, SansaModel, SegmentationOutput
from sansa_probe.prompts.generate import box_from_mask, make_prompt, sample_points
from sansa_probe.training.losses import segmentation_loss
from sansa_probe.io.atomic import atomic_torch_save, atomic_write_text

__all__ = ["PROMPTS", "StageConfig", "DEFAULT_STAGES", "ClipPool", "tracker_model", "run_stage", "run_stages", "decode_prompts",
           "mask_iou"]

PROMPTS = ("mask", "box", "click", "clicks")
KINDS = ("image", "tracking")
LOG_TERMS = ("loss", "pixel", "dice", "iou_mse", "aux", "miou")
STREAM_STRIDE = 10**7


@dataclass(frozen=True)
class StageConfig:
    """One pretraining stage (AdamW, linear warm-up then cosine decay to 10 %, gradient clipping).

    ``kind``: ``"image"`` (frame 0 only, loss on the prompt's mask) or ``"tracking"`` (prompt on
    frame 0, frames 1..``frames``-1 tracked through memory). ``prompts``: probabilities of
    :data:`PROMPTS` (a mask, a box, one click, 1-20 clicks) for frame 0. ``pool``: clips drawn
    ahead of time and cycled through (0: ``steps * batch``, each clip once). ``freeze_encoder``:
    the image encoder does not train, its features are computed once per pool clip.
    ``reinit_memory``, ``locality_bias``/``locality_out_scale``, ``aux_weight``/``aux_lr`` and
    ``drop_high_res`` (per clip probability) are the devices of
    :mod:`~sansa_probe.miniature.memory_path`.
    """

    name: str
    kind: str = "tracking"
    steps: int = 400
    batch: int = 8
    frames: int = 2
    lr: float = 2e-3
    warmup: int = 30
    weight_decay: float = 0.01
    clip: float = 1.0
    seed: int = 0
    stream: int = 0
    prompts: tuple[float, float, float, float] = (0.6, 0.2, 0.0, 0.2)
    clips: ClipRecipe = field(default_factory=ClipRecipe)
    pool: int = 0
    freeze_encoder: bool = False
    reinit_memory: bool = False
    locality_bias: float = 0.0
    locality_out_scale: float = 4.0
    aux_weight: float = 0.0
    aux_lr: float = 1e-2
    aux_source: str = "memory"
    drop_high_res: float = 0.0
    iou_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("steps", "batch", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if self.kind == "tracking" and self.frames < 2:
            raise ValueError(f"frames: expected >= 2 for a tracking stage (a prompted frame and a tracked one), got {self.frames}")
        if len(self.prompts) != len(PROMPTS) or min(self.prompts) < 0 or sum(self.prompts) <= 0:
            raise ValueError(f"prompts: expected {len(PROMPTS)} non-negative probabilities ({', '.join(PROMPTS)}), got {self.prompts}")
        if self.kind == "image" and self.prompts[0] > 0:
            raise ValueError("prompts: an image stage learns from box and click prompts (a mask prompt is its own answer)")
        if self.aux_source not in ("memory", "decoder"):
            raise ValueError(f"aux_source: expected 'memory' or 'decoder', got {self.aux_source!r}")
        if self.kind == "image" and self.aux_weight and self.aux_source != "decoder":
            raise ValueError("aux_source: an image stage has no memory; use 'decoder'")
        if not 0.0 <= self.drop_high_res <= 1.0:
            raise ValueError(f"drop_high_res: expected a probability in [0, 1], got {self.drop_high_res}")

    @property
    def pool_size(self) -> int:
        return min(self.pool, self.steps * self.batch) if self.pool else self.steps * self.batch

    @property
    def n_frames(self) -> int:
        return 1 if self.kind == "image" else self.frames

    def lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prompts"] = list(self.prompts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StageConfig":
        """The config of :meth:`to_dict` (fields added since it was written take their defaults)."""
        data = dict(data)
        data["prompts"] = tuple(data["prompts"])
        data["clips"] = ClipRecipe(**data["clips"])
        return cls(**data)

    def same_training(self, other: "StageConfig") -> bool:
        """Whether two configs train the same (``name`` is a label only)."""
        return replace(self, name="") == replace(other, name="")


DEFAULT_STAGES: tuple[StageConfig, ...] = (
    StageConfig(name="image", kind="image", steps=600, batch=16, stream=0, prompts=(0.0, 0.3, 0.5, 0.2),
                clips=ClipRecipe(large=0.5, twin=0.5), aux_weight=1.0, aux_source="decoder", drop_high_res=0.5),
    StageConfig(name="memory", steps=400, batch=8, stream=1, clips=ClipRecipe(large=1 / 3, twin=0.7), pool=1600,
                freeze_encoder=True, reinit_memory=True, locality_bias=3.5, aux_weight=1.0, drop_high_res=0.5),
    StageConfig(name="appearance", steps=2500, batch=8, stream=2, lr=1e-3, warmup=10, pool=5000, freeze_encoder=True,
                clips=ClipRecipe(large=0.5, twin=0.0, mirror=0.5, shuffle=0.2, distinct=0.5, vanish=0.2), aux_weight=1.0,
                drop_high_res=0.5),
    StageConfig(name="recolour", steps=1000, batch=8, stream=2, lr=1e-3, warmup=10, pool=4000,
                clips=ClipRecipe(large=0.5, twin=0.0, mirror=0.5, shuffle=0.2, distinct=0.3, vanish=0.1, recolour=0.3),
                aux_weight=1.0, drop_high_res=0.5),
)
"""The measured recipe (docs/MINIATURE.md): image 600 steps, memory 400, appearance 2500 (encoder
frozen, features cached), recolour 1000 (every parameter trains; the same clip indices as the
appearance stage, drawn with another recipe)."""


# ----------------------------------------------------------------------------- clips drawn ahead of time


def _prompt(kind: str, mask: np.ndarray, seed: tuple[int, ...]):
    if kind == "click":
        return sample_points(mask, seed=seed, n=1)
    if kind == "clicks":
        return make_prompt("point", mask, seed=seed, train=True)
    if kind == "box":
        return box_from_mask(mask)
    return make_prompt("mask", mask, seed=seed)


def _draw(args: tuple) -> tuple[np.ndarray, np.ndarray, int]:
    seed, index, frames, size, recipe, probabilities = args
    clip = pretraining_clip(seed=seed, index=index, n_frames=max(2, frames), image_size=size, recipe=recipe)
    kind = int(np.random.default_rng([seed, index, 13]).choice(len(PROMPTS), p=probabilities))
    return np.stack(clip.frames[:frames]), np.stack(clip.masks[:frames]), kind


class ClipPool:
    """``size`` clips of a stage drawn ahead of time: ``frames`` (N, T, S, S, 3) uint8, ``masks``
    (N, T, S, S) bool, ``kinds`` (N,) prompt kinds (indices into :data:`PROMPTS`), ``prompts``."""

    def __init__(self, config: StageConfig, *, image_size: int = IMAGE_SIZE, processes: int = 1) -> None:
        probabilities = np.asarray(config.prompts, dtype=np.float64) / sum(config.prompts)
        first = config.stream * STREAM_STRIDE
        jobs = [(config.seed, first + i, config.n_frames, image_size, config.clips, probabilities) for i in range(config.pool_size)]
        if processes > 1:
            with multiprocessing.get_context("spawn").Pool(processes) as pool:
                drawn = pool.map(_draw, jobs, chunksize=64)
        else:
            drawn = [_draw(job) for job in jobs]
        self.frames = torch.from_numpy(np.stack([d[0] for d in drawn]))
        self.masks = torch.from_numpy(np.stack([d[1] for d in drawn]))
        self.kinds = [PROMPTS[d[2]] for d in drawn]
        self.prompts = [
            prompt_to_inputs(_prompt(kind, masks[0], (config.seed, first + i, 14)), height=image_size, width=image_size, image_size=image_size)
            for i, (kind, masks) in enumerate(zip(self.kinds, (d[1] for d in drawn)))
        ]
        self.image_size = image_size
        self.features: list[torch.Tensor] | None = None
        self.positions: list[torch.Tensor] | None = None
        self.feat_sizes: list[tuple[int, int]] | None = None

    def __len__(self) -> int:
        return self.frames.shape[0]

    def images(self, index: torch.Tensor) -> torch.Tensor:
        """Model input of pool items ``index`` (B,), frame-major: ``(T * B, 3, S, S)``."""
        frames = self.frames[index].transpose(0, 1).flatten(0, 1)  # (T * B, S, S, 3)
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
        std = torch.tensor(IMAGENET_STD)[:, None, None]
        return (x - mean) / std

    @torch.no_grad()
    def cache_features(self, model: SansaModel, *, chunk: int = 32) -> None:
        """Encode every frame once with ``model``'s (frozen) image encoder."""
        levels: list[list[torch.Tensor]] | None = None
        n, t = self.frames.shape[:2]
        for start in range(0, n, chunk):
            index = torch.arange(start, min(n, start + chunk))
            feats = model.encode_images(self.images(index))
            per_level = [x.transpose(0, 1).reshape(t, len(index), *x.shape[0:1], x.shape[2]).transpose(0, 1) for x in feats.vision_feats]
            if levels is None:
                levels = [[] for _ in per_level]
                self.positions = [x[:, :1].clone() for x in feats.vision_pos]
                self.feat_sizes = list(feats.feat_sizes)
            for store, x in zip(levels, per_level):
                store.append(x.clone())  # (chunk, T, HW, C)
        self.features = [torch.cat(store) for store in levels]

    def encoded(self, index: torch.Tensor) -> FrameFeatures:
        """Cached features of pool items ``index``, frame-major as :meth:`SansaModel.encode_images` returns them."""
        if self.features is None:
            raise RuntimeError("cache_features() first")
        batch = len(index)
        feats = [x[index].transpose(0, 1).flatten(0, 1).transpose(0, 1) for x in self.features]  # (HW, T * B, C)
        pos = [p.expand(-1, feats[0].shape[1], -1) for p in self.positions]
        return FrameFeatures(vision_feats=feats, vision_pos=pos, feat_sizes=list(self.feat_sizes))


def batch_order(config: StageConfig, step: int) -> torch.Tensor:
    """Pool items of step ``step``: the ``batch`` next items of the epoch's permutation."""
    n, per_epoch = config.pool_size, config.pool_size // config.batch
    if per_epoch < 1:
        raise ValueError(f"pool {n} is smaller than the batch {config.batch}")
    epoch, position = divmod(step, per_epoch)
    permutation = np.random.default_rng([config.seed, config.stream, epoch, 17]).permutation(n)
    return torch.from_numpy(permutation[position * config.batch : (position + 1) * config.batch].copy())


# ----------------------------------------------------------------------------- forward and loss


def mask_iou(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """IoU of ``logits > 0`` with bool ``masks``, per sample ``(B,)``; 1 when both are empty."""
    pred = (logits > 0).flatten(1)
    gt = masks.flatten(1)
    inter = (pred & gt).sum(1).float()
    union = (pred | gt).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def _point_groups(prompts: list[PromptInputs]) -> dict[int, list[int]]:
    """Prompt indices by point count (in order of first appearance)."""
    groups: dict[int, list[int]] = {}
    for i, prompt in enumerate(prompts):
        if prompt.point_inputs is None:
            raise ValueError(f"prompt {i} is a {prompt.kind}: decode_prompts takes point and box prompts")
        groups.setdefault(prompt.point_inputs["point_coords"].shape[1], []).append(i)
    return groups


def decode_prompts(model: SansaModel, feats: FrameFeatures, prompts: list[PromptInputs], *, drop_high_res: torch.Tensor | None = None) -> SegmentationOutput:
    """Frame-0 outputs of B point/box prompts (no memory), decoded in batches of equal point counts."""
    groups = _point_groups(prompts)
    order, outputs = [], []
    for members in groups.values():
        points = {key: torch.cat([prompts[i].point_inputs[key] for i in members]) for key in ("point_coords", "point_labels")}
        drop = None if drop_high_res is None else drop_high_res[members]
        outputs.append(model.decode_reference(feats.select(members), PromptInputs(kind="point", point_inputs=points), drop_high_res=drop))
        order += members
    joined = SegmentationOutput.cat(outputs)
    inverse = torch.argsort(torch.tensor(order))
    return SegmentationOutput(*(None if x is None else x[inverse] for x in (
        joined.low_res_logits, joined.high_res_logits, joined.iou, joined.obj_ptr, joined.object_score_logits, joined.conditioned_features)))


def _mask_terms(logits: list[torch.Tensor], targets: list[torch.Tensor], ious: list[torch.Tensor], iou_weight: float) -> dict[str, torch.Tensor]:
    logits_all, targets_all, iou_pred = torch.cat(logits), torch.cat(targets), torch.cat(ious)
    terms = segmentation_loss(logits_all, targets_all)
    terms["pixel"] = terms.pop("bce")
    iou_true = mask_iou(logits_all.detach(), targets_all)
    iou_loss = torch.nn.functional.mse_loss(iou_pred.float(), iou_true)
    terms["loss"] = terms["loss"] + iou_weight * iou_loss
    terms["iou_mse"] = iou_loss.detach()
    terms["miou"] = iou_true.mean()
    return terms


def stage_loss(model: SansaModel, config: StageConfig, feats: FrameFeatures, masks: torch.Tensor, prompts: list[PromptInputs],
               kinds: list[str], *, drop: torch.Tensor | None, aux: AuxiliaryHead | None) -> dict[str, torch.Tensor]:
    """Loss terms of one step; ``masks`` ``(T, B, S, S)`` bool, frame-major as ``feats``."""
    if config.kind == "image":
        with decoder_tokens(model.sam) as tokens:
            out = decode_prompts(model, feats, prompts, drop_high_res=drop)
        terms = _mask_terms([out.high_res_logits[:, 0]], [masks[0]], [out.iou], config.iou_weight)
        aux_loss = torch.zeros(())
        if aux is not None:
            order = [i for group in _point_groups(prompts).values() for i in group]
            aux_loss = aux.loss(torch.cat(tokens), masks[0][order])
            terms["loss"] = terms["loss"] + config.aux_weight * aux_loss
        terms["aux"] = aux_loss.detach()
        return terms
    with decoder_tokens(model.sam) as tokens:
        clip = model.track_features(feats, prompts, drop_high_res=drop)
    prompted = [i for i, kind in enumerate(kinds) if kind != "mask"]
    logits, targets, ious = [], [], []
    if prompted:
        logits.append(clip.reference.high_res_logits[prompted, 0])
        targets.append(masks[0, prompted])
        ious.append(clip.reference.iou[prompted])
    for t, out in enumerate(clip.targets, start=1):
        logits.append(out.high_res_logits[:, 0])
        targets.append(masks[t])
        ious.append(out.iou)
    terms = _mask_terms(logits, targets, ious, config.iou_weight)
    aux_loss = torch.zeros(())
    if aux is not None:
        if config.aux_source == "memory":
            features = [out.conditioned_features for out in clip.targets]
        else:  # the decoder calls of the tracked frames are the last len(targets) ones, in frame order
            features = tokens[len(tokens) - len(clip.targets):]
        aux_loss = sum(aux.loss(f, masks[t]) for t, f in enumerate(features, start=1)) / len(clip.targets)
        terms["loss"] = terms["loss"] + config.aux_weight * aux_loss
    terms["aux"] = aux_loss.detach()
    return terms


# ----------------------------------------------------------------------------- one stage


def initial_sam(config: StageConfig, init_state: dict[str, torch.Tensor] | None) -> torch.nn.Module:
    """The stage's starting SAM2: ``init_state`` (or random init), memory path re-initialised / primed as configured."""
    sam = build_miniature_sam2(seed=config.seed)
    if init_state is not None:
        sam.load_state_dict(init_state)
    if config.reinit_memory:
        reinitialise_memory_path(sam, build_miniature_sam2(seed=config.seed + 1 + config.stream))
    if config.locality_bias:
        add_locality_prior(sam, bias=config.locality_bias, out_scale=config.locality_out_scale)
    return sam


def tracker_model(sam: torch.nn.Module) -> SansaModel:
    """A :class:`SansaModel` without adapters around ``sam`` (the tracker itself)."""
    return SansaModel(sam=sam, config=miniature_config(stages=()))


def _say(message: str) -> None:
    print(f"[miniature {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _check_recipe(path: Path, saved: dict[str, Any], config: StageConfig) -> None:
    if not StageConfig.from_dict(saved).same_training(config):
        raise ValueError(f"{path} was written by another stage recipe: {saved} (this run: {config.to_dict()}); "
                         "use another --out or remove that stage's folder")


def run_stage(config: StageConfig, *, out: str | Path, init_state: dict[str, torch.Tensor] | None = None, processes: int = 1,
              save_every: int = 50, progress: bool = True, until: int | None = None) -> dict[str, torch.Tensor]:
    """Train (or resume, or skip when finished) one stage into ``out``; returns the trained SAM2 state dict.

    Writes ``out/last.pt`` (resumable: weights, auxiliary head, optimizer, scheduler, step) every
    ``save_every`` steps, ``out/log.jsonl`` (loss terms per step) and, when finished,
    ``out/sam2.pt`` (the state dict, float32). ``processes`` draw the clip pool. ``until``: stop
    after that step (saved, resumable; the stage is not finished), as an interrupted run would.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    final = out / "sam2.pt"
    if final.is_file():
        state = torch.load(final, map_location="cpu", weights_only=True)
        _check_recipe(final, state["config"], config)
        return state["model"]
    sam = initial_sam(config, init_state)
    model = tracker_model(sam)
    trainable = [(n, p) for n, p in sam.named_parameters() if not (config.freeze_encoder and n.startswith("image_encoder."))]
    for name, p in sam.named_parameters():
        p.requires_grad_(False)
    for _, p in trainable:
        p.requires_grad_(True)
    params = [p for _, p in trainable]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    aux = None
    if config.aux_weight > 0:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 101)
            aux = AuxiliaryHead(channels=sam.hidden_dim)
        groups.append({"params": list(aux.parameters()), "weight_decay": 0.0, "lr": config.aux_lr})
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)
    step = 0
    last, log_path = out / "last.pt", out / "log.jsonl"
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        _check_recipe(last, state["config"], config)
        sam.load_state_dict(state["model"])
        if aux is not None:
            aux.load_state_dict(state["aux"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
    kept = [line for line in (log_path.read_text().splitlines() if log_path.is_file() else []) if json.loads(line)["step"] <= step]
    atomic_write_text(log_path, "".join(line + "\n" for line in kept))

    started = time.perf_counter()
    _say(f"stage {config.name}: drawing {config.pool_size} clips of {config.n_frames} frame(s)")
    pool = ClipPool(config, image_size=sam.image_size, processes=processes)
    if config.freeze_encoder:
        model.eval()
        pool.cache_features(model)
    timing = {"pool_s": round(time.perf_counter() - started, 2)}
    _say(f"stage {config.name}: pool ready in {timing['pool_s']:.0f} s; training steps {step}..{config.steps}")
    model.train()
    bar = tqdm(total=config.steps, initial=step, desc=config.name, unit="step", disable=not progress, file=sys.stderr)
    started = time.perf_counter()
    stop = config.steps if until is None else min(until, config.steps)
    while step < stop:
        index = batch_order(config, step)
        feats = pool.encoded(index) if config.freeze_encoder else model.encode_images(pool.images(index))
        masks = pool.masks[index].transpose(0, 1)  # (T, B, S, S)
        drop = None
        if config.drop_high_res > 0:
            drop = torch.from_numpy(np.random.default_rng([config.seed, config.stream, step, 19]).random(len(index)) < config.drop_high_res)
        terms = stage_loss(model, config, feats, masks, [pool.prompts[i] for i in index], [pool.kinds[i] for i in index],
                           drop=drop, aux=aux)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(params, config.clip)
        optimizer.step()
        scheduler.step()
        step += 1
        row = {k: round(float(terms[k].detach()), 5) for k in LOG_TERMS} | {"step": step, "grad_norm": round(float(norm), 4),
                                                                   "s": round(time.perf_counter() - started, 2)}
        with open(log_path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        bar.set_postfix(loss=f"{row['loss']:.3f}", miou=f"{row['miou']:.2f}")
        bar.update(1)
        if step % save_every == 0 or step == stop:
            payload = {"config": config.to_dict(), "model": sam.state_dict(), "aux": None if aux is None else aux.state_dict(),
                       "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step}
            atomic_torch_save(last, payload)
    bar.close()
    state = {k: v.detach().clone() for k, v in sam.state_dict().items()}
    if step == config.steps:
        atomic_torch_save(final, {"config": config.to_dict(), "model": state, "timing": timing})
    return state


def run_stages(stages: tuple[StageConfig, ...], *, out: str | Path, processes: int = 1,
               progress: bool = True) -> list[tuple[StageConfig, dict[str, torch.Tensor]]]:
    """Every stage in order into ``out/<name>/``, each from the previous one's weights (the first from
    random init); returns ``(config, state dict)`` per stage."""
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"stages: expected distinct stage names, got {names}")
    state, done = None, []
    for config in stages:
        state = run_stage(config, out=Path(out) / config.name, init_state=state, processes=processes, progress=progress)
        done.append((config, state))
    return done
