"""What the miniature shows, measured: tracking, few-shot frozen vs adapted, linear probe, PCA concentration.

Every function returns tidy rows (``fold``, ``model``, ``metric``, ``value``, ...) so that the
results table of :mod:`sansa_probe.miniature` is their concatenation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from sansa_probe.data.episodes import EpisodeData, EpisodeSampler
from sansa_probe.evaluation.episodes import evaluate_episodes
from sansa_probe.features import FeatureExtractor, probe_splits
from sansa_probe.inference import get_protocol
from sansa_probe.miniature.architecture import IMAGE_SIZE
from sansa_probe.miniature.pretrain import ClipStream, _collate, _mask_iou, track_clip
from sansa_probe.model.sansa import SansaModel
from sansa_probe.pipelines import linear_probe, pca

__all__ = ["HELD_OUT_SEED", "tracking_miou", "few_shot_miou", "probe_rows"]

REFERENCES = ("own", "other_class")

HELD_OUT_SEED = 1_000_003  # a stream never used in pretraining (which uses seed 0)


@torch.no_grad()
def tracking_miou(model: SansaModel, *, n_clips: int = 32, frames: int = 6, seed: int = HELD_OUT_SEED, batch: int = 8,
                  prompts: str = "own") -> float:
    """Mean IoU (in %) of the tracked frames 1..T-1 of ``n_clips`` held-out procedural clips, mask prompt on frame 0.

    ``prompts="other_clip"`` gives each clip the frame 0 and the prompt of the next clip of its
    batch instead of its own: a tracker that follows its prompt falls to near zero there, a
    model that segments whatever looks like an object keeps its score (the miniature of this
    commit does: see docs). The model runs as its adapters are switched (pretraining models
    have none).
    """
    if prompts not in ("own", "other_clip"):
        raise ValueError(f"prompts: expected 'own' or 'other_clip', got {prompts!r}")
    stream = ClipStream(seed=seed, frames=frames, length=n_clips, image_size=model.image_size)
    was_training = model.training
    model.eval()
    ious = []
    try:
        for start in range(0, n_clips, batch):
            items = [stream.item(i, prompt="mask") for i in range(start, min(n_clips, start + batch))]
            clip = _collate(items)
            frames, clip_prompts = clip["frames"], clip["prompts"]
            if prompts == "other_clip":
                if len(items) < 2:
                    raise ValueError(f"prompts='other_clip' needs at least 2 clips per batch, got {len(items)}")
                shift = [(i + 1) % len(items) for i in range(len(items))]
                frames = frames.clone()
                frames[0] = frames[0][shift]
                clip_prompts = [clip_prompts[i] for i in shift]
            _, outputs = track_clip(model, frames, clip_prompts)
            for t, out in enumerate(outputs, start=1):
                ious.append(_mask_iou(out.high_res_logits[:, 0], clip["masks"][t]))
    finally:
        model.train(was_training)
    return 100.0 * float(torch.cat(ious).mean())


def few_shot_miou(model: SansaModel, *, fold: int, adapters: bool, episodes: int = 100, shots: int = 1, seed: int = 0,
                  references: str = "own", progress: bool = False) -> float:
    """1-shot (``shots``) mIoU (in %) on the fold's novel classes of the procedural benchmark at the model size.

    ``references="other_class"`` pairs each target with the references of the next episode of
    another class (the target's class and ground truth unchanged): a model that segments what
    its reference shows loses most of its score, one that ignores the reference does not.
    """
    if references not in REFERENCES:
        raise ValueError(f"references: expected one of {', '.join(REFERENCES)}, got {references!r}")
    kind = EpisodeSampler if references == "own" else _OtherClassReferences
    sampler = kind("synthetic", fold, "test", shots, n_episodes=episodes, seed=seed, image_size=model.image_size)
    with model.adapters(adapters):
        metric, _ = evaluate_episodes(model, sampler, prompt="mask", progress=progress,
                                      description=f"fold {fold} {'adapted' if adapters else 'frozen'}")
    return float(metric.compute()["miou"])


class _OtherClassReferences(EpisodeSampler):
    """Episode ``i`` with the references of the first later episode (cyclically) of another class."""

    def load(self, index: int) -> EpisodeData:
        data = super().load(index)
        n = len(self)
        for step in range(1, n):
            other = self[(index + step) % n]
            if other.class_id != data.class_id:
                donor = super().load(other.index)
                return replace(data, reference_ids=donor.reference_ids, reference_images=donor.reference_images,
                               reference_masks=donor.reference_masks)
        raise ValueError(f"references='other_class': the {n} episodes hold a single class")


def probe_rows(model: SansaModel, *, fold: int, images_per_class: int = 12, seed: int = 0, progress: bool = False) -> list[dict[str, Any]]:
    """Linear-probe mIoU and PCA-concentration area (frozen and adapted) on the fold's novel classes."""

    protocol = get_protocol("release", image_size=model.image_size, dataset="synthetic", output="image")  # no resize at 128 px
    extractor = FeatureExtractor(model, batch_size=16, progress=progress, protocol=protocol)
    splits = probe_splits("synthetic", fold, image_size=model.image_size)
    models = {"frozen": False, "adapted": True}
    rows = []
    tables = pca.compute(extractor, splits, models=models, images_per_class=images_per_class, seed=seed)
    summary = tables["summary"]
    for name in models:
        for metric in ("auc_relative_accuracy", "full_accuracy"):
            value = summary.query("model == @name and metric == @metric")["value"].iloc[0]
            rows.append({"fold": fold, "model": name, "metric": f"pca_{metric}", "value": float(value)})
    tables = linear_probe.compute(extractor, splits, models=models, images_per_class=images_per_class, seed=seed)
    summary = tables["summary"]
    for name in models:
        value = summary.query("model == @name and metric == 'miou_percent'")["value"].iloc[0]
        rows.append({"fold": fold, "model": name, "metric": "linear_probe_miou", "value": float(value)})
    return rows
