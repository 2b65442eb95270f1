"""What the miniature shows, measured: tracking, few-shot frozen vs adapted, linear probe, PCA concentration,
and what its features know of an object (shape, texture, colour, class).

Every function returns tidy rows (``fold``, ``model``, ``metric``, ``value``, ...) so that the
results table of :mod:`sansa_probe.miniature` is their concatenation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sansa_probe.data.episodes import EpisodeData, EpisodeSampler
from sansa_probe.data.synthetic import SyntheticSource
from sansa_probe.data.synthetic.classes import SHAPES, TEXTURES, class_shape_texture
from sansa_probe.data.synthetic.source import DEFAULT_BENCHMARK
from sansa_probe.evaluation.episodes import evaluate_episodes
from sansa_probe.features import FeatureExtractor, probe_splits
from sansa_probe.inference import get_protocol
from sansa_probe.io.images import to_model_input
from sansa_probe.miniature.architecture import IMAGE_SIZE
from sansa_probe.miniature.stages import decode_prompts, mask_iou
from sansa_probe.miniature.videos import VideoClip, mirrored, pretraining_clip
from sansa_probe.model.prompting import prompt_to_inputs
from sansa_probe.model.sansa import SansaModel
from sansa_probe.pipelines import linear_probe, pca
from sansa_probe.prompts.generate import make_prompt, sample_points

__all__ = ["HELD_OUT_SEED", "MOTIONS", "held_out_clips", "tracking_miou", "click_miou", "tracker_rows", "few_shot_miou",
           "every_object_miou", "probe_rows", "ATTRIBUTES", "attribute_rows"]

REFERENCES = ("own", "other_class")
MOTIONS = ("drift", "mirror")

HELD_OUT_SEED = 1_000_003  # a stream never used in pretraining (which uses seed 0)


def held_out_clips(n_clips: int, *, frames: int, seed: int = HELD_OUT_SEED, image_size: int = IMAGE_SIZE,
                   motion: str = "drift") -> list[VideoClip]:
    """``n_clips`` clips of the held-out stream (today's clip recipe); ``motion="mirror"`` flips their
    frames 1.. left-right and up-down (every object jumps, its appearance kept)."""
    if motion not in MOTIONS:
        raise ValueError(f"motion: expected one of {', '.join(MOTIONS)}, got {motion!r}")
    clips = [pretraining_clip(seed=seed, index=i, n_frames=frames, image_size=image_size) for i in range(n_clips)]
    return [mirrored(c) for c in clips] if motion == "mirror" else clips


def _model_input(clips: list[VideoClip], size: int) -> torch.Tensor:
    """``(T * B, 3, S, S)`` frame-major."""
    return torch.stack([to_model_input(clip.frames[t], size) for t in range(len(clips[0].frames)) for clip in clips])


@torch.no_grad()
def tracking_miou(model: SansaModel, *, n_clips: int = 32, frames: int = 6, seed: int = HELD_OUT_SEED, batch: int = 8,
                  prompts: str = "own", motion: str = "drift") -> float:
    """Mean IoU (in %) of the tracked frames 1..T-1 of ``n_clips`` held-out procedural clips, mask prompt on frame 0.

    ``prompts="other_clip"`` gives each clip the frame 0 and the prompt of the next clip of its
    batch instead of its own: a tracker that follows its prompt falls to near zero there, a
    model that segments whatever looks like an object keeps its score. ``motion="mirror"``
    flips frames 1.. of every clip left-right and up-down: a tracker that matches appearance
    keeps most of its score, one that copies the prompt's position loses it. Runs the model's
    own clip forward (:meth:`SansaModel.track_features`) as its adapters are switched.
    """
    if prompts not in ("own", "other_clip"):
        raise ValueError(f"prompts: expected 'own' or 'other_clip', got {prompts!r}")
    clips = held_out_clips(n_clips, frames=frames, seed=seed, image_size=model.image_size, motion=motion)
    was_training = model.training
    model.eval()
    ious = []
    size = model.image_size
    try:
        for start in range(0, n_clips, batch):
            chunk = clips[start : start + batch]
            if prompts == "other_clip":
                if len(chunk) < 2:
                    raise ValueError(f"prompts='other_clip' needs at least 2 clips per batch, got {len(chunk)}")
                shift = [(i + 1) % len(chunk) for i in range(len(chunk))]
                chunk = [VideoClip(frames=[chunk[j].frames[0], *c.frames[1:]], masks=[chunk[j].masks[0], *c.masks[1:]])
                         for c, j in zip(chunk, shift)]
            prompt_inputs = [prompt_to_inputs(make_prompt("mask", c.masks[0], seed=0), height=size, width=size, image_size=size)
                             for c in chunk]
            outputs = model.track_features(model.encode_images(_model_input(chunk, size)), prompt_inputs).targets
            for t, out in enumerate(outputs, start=1):
                masks = torch.from_numpy(np.stack([c.masks[t] for c in chunk]))
                ious.append(mask_iou(out.high_res_logits[:, 0], masks))
    finally:
        model.train(was_training)
    return 100.0 * float(torch.cat(ious).mean())


@torch.no_grad()
def click_miou(model: SansaModel, *, n_clips: int = 32, seed: int = HELD_OUT_SEED, batch: int = 8, clicks: str = "own") -> float:
    """Mean IoU (in %) of the mask decoded from one click on frame 0 of ``n_clips`` held-out clips
    (the tracked instance's mask; the click drawn on it), no memory.

    ``clicks="other_clip"`` places the click of the next clip of the batch instead (usually on
    another object or the background): a model that selects what it is shown loses most of its
    score, one that segments every object keeps it.
    """
    if clicks not in ("own", "other_clip"):
        raise ValueError(f"clicks: expected 'own' or 'other_clip', got {clicks!r}")
    clips = held_out_clips(n_clips, frames=2, seed=seed, image_size=model.image_size)
    size = model.image_size
    points = [prompt_to_inputs(sample_points(c.masks[0], seed=(seed, i, 21), n=1), height=size, width=size, image_size=size)
              for i, c in enumerate(clips)]
    was_training = model.training
    model.eval()
    ious = []
    try:
        for start in range(0, n_clips, batch):
            chunk = list(range(start, min(n_clips, start + batch)))
            given = chunk if clicks == "own" else [chunk[(k + 1) % len(chunk)] for k in range(len(chunk))]
            if clicks == "other_clip" and len(chunk) < 2:
                raise ValueError(f"clicks='other_clip' needs at least 2 clips per batch, got {len(chunk)}")
            feats = model.encode_images(torch.stack([to_model_input(clips[i].frames[0], size) for i in chunk]))
            out = decode_prompts(model, feats, [points[i] for i in given])
            masks = torch.from_numpy(np.stack([clips[i].masks[0] for i in chunk]))
            ious.append(mask_iou(out.high_res_logits[:, 0], masks))
    finally:
        model.train(was_training)
    return 100.0 * float(torch.cat(ious).mean())


def tracker_rows(model: SansaModel, *, n_clips: int = 32, stage: str = "pretrained") -> list[dict[str, Any]]:
    """The gate's numbers of a tracker (adapters as switched): tracking own / other-clip prompt, on
    the held-out clips as they are and mirrored, and one click own / another clip's."""
    rows = []
    for motion, suffix in (("drift", ""), ("mirror", "_mirrored")):
        for prompts, tail in (("own", ""), ("other_clip", "_other_clip_prompt")):
            value = tracking_miou(model, n_clips=n_clips, prompts=prompts, motion=motion)
            rows.append({"fold": "all", "model": stage, "metric": f"tracking_miou{suffix}{tail}", "value": value})
    for clicks, tail in (("own", ""), ("other_clip", "_other_clip_click")):
        rows.append({"fold": "all", "model": stage, "metric": f"click_miou{tail}", "value": click_miou(model, n_clips=n_clips, clicks=clicks)})
    return rows


def few_shot_miou(model: SansaModel, *, fold: int, adapters: bool, episodes: int = 100, shots: int = 1, seed: int = 0,
                  references: str = "own", benchmark: str = DEFAULT_BENCHMARK, progress: bool = False) -> float:
    """1-shot (``shots``) mIoU (in %) on the fold's novel classes of the procedural benchmark at the model size.

    ``references="other_class"`` pairs each target with the references of the next episode of
    another class (the target's class and ground truth unchanged): a model that segments what
    its reference shows loses most of its score, one that ignores the reference does not.
    """
    if references not in REFERENCES:
        raise ValueError(f"references: expected one of {', '.join(REFERENCES)}, got {references!r}")
    kind = EpisodeSampler if references == "own" else _OtherClassReferences
    sampler = kind("synthetic", fold, "test", shots, n_episodes=episodes, seed=seed, image_size=model.image_size, benchmark=benchmark)
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


def every_object_miou(*, fold: int, episodes: int = 100, seed: int = 0, image_size: int = IMAGE_SIZE, benchmark: str = DEFAULT_BENCHMARK) -> float:
    """The class-blind oracle (in %): every object of the target (all instances, any class) as the
    prediction, scored like :func:`few_shot_miou` (per-class IoU over the episodes, averaged). A
    benchmark on which it scores high rewards segmenting objects without reading the reference."""
    sampler = EpisodeSampler("synthetic", fold, "test", 1, n_episodes=episodes, seed=seed, image_size=image_size, benchmark=benchmark)
    inter: dict[int, int] = {}
    union: dict[int, int] = {}
    for episode in sampler:
        every = np.zeros((image_size, image_size), dtype=bool)
        for instance in sampler.source.load_instances(episode.target_id, all_classes=True):
            every |= instance.mask
        truth = sampler.source.load_mask(episode.target_id, episode.class_id)
        inter[episode.class_id] = inter.get(episode.class_id, 0) + int((every & truth).sum())
        union[episode.class_id] = union.get(episode.class_id, 0) + int((every | truth).sum())
    return 100.0 * float(np.mean([inter[c] / union[c] for c in inter]))


def probe_rows(model: SansaModel, *, fold: int, images_per_class: int = 12, seed: int = 0, benchmark: str = DEFAULT_BENCHMARK,
               progress: bool = False) -> list[dict[str, Any]]:
    """Linear-probe mIoU and PCA-concentration area (frozen and adapted) on the fold's novel classes."""

    protocol = get_protocol("release", image_size=model.image_size, dataset="synthetic", output="image")  # no resize at 128 px
    extractor = FeatureExtractor(model, batch_size=16, progress=progress, protocol=protocol)
    splits = probe_splits("synthetic", fold, image_size=model.image_size, benchmark=benchmark)
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


ATTRIBUTES = ("shape", "texture", "colour", "class")
_MIN_OBJECT_PIXELS = 48


def _object_table(fold: int, images_per_class: int, seed: int, image_size: int, benchmark: str):
    """Every visible object (primary and distractors) of fold ``fold``'s train and test images:
    the images, per object (image index, mask, labels of :data:`ATTRIBUTES`) and its mean/std RGB."""
    images, objects = [], []
    for split in ("train", "test"):
        source = SyntheticSource(fold=fold, split=split, image_size=image_size, images_per_class=images_per_class,
                                 seed=seed, benchmark=benchmark)
        for class_id in source.class_ids():
            for image_id in source.image_ids(class_id):
                image = source.load_image(image_id)
                images.append(image)
                for instance in source.load_instances(image_id, all_classes=True):
                    if instance.mask.sum() >= _MIN_OBJECT_PIXELS:
                        objects.append((len(images) - 1, instance.mask, instance.class_id, image[instance.mask] / 255.0))
    labels: dict[str, list[int]] = {name: [] for name in ATTRIBUTES}
    for _, _, class_id, pixels in objects:
        shape, texture = class_shape_texture(class_id)
        r, g, b = pixels.mean(0)
        hue = float(np.arctan2(np.sqrt(3.0) * (g - b), 2.0 * r - g - b) % (2 * np.pi))  # hexcone hue
        labels["shape"].append(SHAPES.index(shape))
        labels["texture"].append(TEXTURES.index(texture))
        labels["colour"].append(int(hue / (np.pi / 3)) % 6)
        labels["class"].append(class_id)
    rgb = np.array([np.concatenate([p.mean(0), p.std(0)]) for *_, p in objects])
    return images, objects, {name: np.array(v) for name, v in labels.items()}, rgb


@torch.no_grad()
def _object_features(model: SansaModel, images: list[np.ndarray], objects: list, batch: int = 32) -> np.ndarray:
    """Each object's mask-weighted mean of the stride-16 feature map (the memory attention's input)."""
    features = []
    for start in range(0, len(images), batch):
        top = model.encode_images(torch.stack([to_model_input(im, model.image_size) for im in images[start:start + batch]])).top()
        for index, mask, *_ in objects:
            if start <= index < start + batch:
                weight = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(mask).float()[None, None], top.shape[-1])[0, 0]
                features.append(((top[index - start] * weight).sum((1, 2)) / weight.sum()).numpy())
    return np.stack(features)


def _probe_accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray) -> float:
    scaler = StandardScaler().fit(features[train])
    classifier = LogisticRegression(max_iter=2000, C=0.5).fit(scaler.transform(features[train]), labels[train])
    return 100.0 * float((classifier.predict(scaler.transform(features[~train])) == labels[~train]).mean())


def attribute_rows(model: SansaModel, *, fold: int, images_per_class: int = 10, seed: int = 0,
                   benchmark: str = DEFAULT_BENCHMARK) -> list[dict[str, Any]]:
    """What the stride-16 features hold of each object: held-out accuracy (in %) of a logistic probe
    on its shape, texture, colour (hue sextant of its mean RGB) and class, per object of every class.

    Objects of half the images (chosen by ``seed``) train the probe, the other half test it. Rows
    for the frozen and adapted model, for the objects' mean/std RGB (``object_rgb``: what colour
    alone gives) and for the majority label (``majority``). If shape and texture sit near
    ``majority`` there is no latent class information for adapters to bring out.
    """
    images, objects, labels, rgb = _object_table(fold, images_per_class, seed, model.image_size, benchmark)
    in_train = np.random.default_rng([seed, 21]).random(len(images)) < 0.5
    train = in_train[[index for index, *_ in objects]]
    inputs = {"object_rgb": rgb}
    for name, adapters in (("frozen", False), ("adapted", True)):
        with model.adapters(adapters):
            inputs[name] = _object_features(model, images, objects)
    rows = []
    for name in ATTRIBUTES:
        held_out = labels[name][~train]
        rows.append({"fold": fold, "model": "majority", "metric": f"attribute_probe_{name}_accuracy",
                     "value": 100.0 * float(np.bincount(held_out).max() / len(held_out))})
        rows += [{"fold": fold, "model": model_name, "metric": f"attribute_probe_{name}_accuracy",
                  "value": _probe_accuracy(features, labels[name], train)} for model_name, features in inputs.items()]
    return rows
