"""The miniature: shipped weights and checksums, a real tracker, the SANSA effect, pretraining."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from sansa_probe.miniature.videos import pretraining_clip
from sansa_probe.miniature.weights import WEIGHTS_DIR, MiniatureWeightsError, load_miniature, read_manifest

# Measured on the shipped weights (docs/MINIATURE.md): tracking 25.1 vs 2.7 mIoU (32 held-out
# clips), but 25.1 also with another clip's prompt: the miniature segments every object-like
# thing and ignores its memory (prompt, reference), so 1-shot adapted - frozen = +0.3..+0.7 mIoU
# per fold and the SANSA effect does NOT appear (the PCA-concentration ranking flips with the
# image sample: no test of it until an effect exists). The tests of what we aim for are strict
# xfails: they turn into failures (to be promoted to plain tests) once a miniature shows it.
FEW_SHOT_EPISODES = 32
FEW_SHOT_AIMED_GAIN = 5.0
TRACKING_MIN_GAIN = 10.0
PROMPT_AIMED_GAIN = 10.0
NO_EFFECT_YET = pytest.mark.xfail(strict=True, reason="measured: adapters gain < 1 mIoU and do not steepen the PCA curve on the shipped miniature (docs/MINIATURE.md)")
IGNORES_MEMORY = pytest.mark.xfail(strict=True, reason="measured: the shipped miniature tracks as well with another clip's prompt (docs/MINIATURE.md)")

shipped = pytest.mark.skipif(not (WEIGHTS_DIR / "manifest.json").is_file(), reason="the miniature's weights are not installed")


@pytest.fixture(scope="module")
def miniature():
    return load_miniature(fold=0)


# ----------------------------------------------------------------------------- videos


def test_pretraining_clips_are_pure_functions_of_seed_and_index():
    a = pretraining_clip(seed=3, index=5, n_frames=3, image_size=64)
    b = pretraining_clip(seed=3, index=5, n_frames=3, image_size=64)
    c = pretraining_clip(seed=3, index=6, n_frames=3, image_size=64)
    assert len(a.frames) == len(a.masks) == 3
    assert a.frames[0].shape == (64, 64, 3) and a.frames[0].dtype == np.uint8
    assert a.masks[0].shape == (64, 64) and a.masks[0].dtype == bool
    for x, y in zip(a.frames + a.masks, b.frames + b.masks):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.frames[0], c.frames[0])
    assert a.masks[0].mean() >= 0.004  # the prompted instance is visible on frame 0
    assert not np.array_equal(a.masks[0], a.masks[-1])  # and it moves


@pytest.mark.parametrize("kwargs", [{"n_frames": 1}, {"image_size": 32}, {"seed": -1}, {"index": 1.5}])
def test_pretraining_clip_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        pretraining_clip(**{"seed": 0, "index": 0, **kwargs})


def test_a_few_pretraining_steps_lower_the_loss(tmp_path):
    from sansa_probe.miniature.pretrain import ClipStream, PretrainConfig, _collate, clip_loss, pretrain, track_clip

    config = PretrainConfig(steps=6, batch=2, frames=3, warmup=1, lr=1e-3, processes=1)
    stream = ClipStream(seed=config.seed, frames=config.frames, length=config.steps * config.batch)
    batch = _collate([stream[i] for i in range(2 * config.batch)])  # the clips of the first two steps

    def loss(model) -> float:
        with torch.no_grad():
            ref, out = track_clip(model, batch["frames"], batch["prompts"])
            return float(clip_loss(ref, out, batch["masks"])["loss"])

    from sansa_probe.miniature.architecture import build_miniature_sam2
    from sansa_probe.miniature.pretrain import tracker_model

    before = loss(tracker_model(build_miniature_sam2(seed=config.seed)))
    after = loss(pretrain(config, out=tmp_path, workers=0, progress=False))
    assert after < 0.8 * before
    assert (tmp_path / "last.pt").is_file()


# ----------------------------------------------------------------------------- shipped weights


@shipped
def test_shipped_weights_match_their_manifest_and_size_budget(miniature):
    manifest = read_manifest()
    names = set(manifest["files"])
    assert {"sam2.pt", "fold0.pt", "fold1.pt", "fold2.pt", "fold3.pt"} <= names
    assert sum(r["bytes"] for r in manifest["files"].values()) <= 20 * 2**20
    assert 1.5e6 < sum(p.numel() for p in miniature.sam.parameters()) < 5e6
    assert miniature.image_size == 128 and miniature.num_adapter_parameters() > 0


@shipped
def test_a_damaged_weight_file_is_refused(tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, folder)
    data = bytearray((folder / "fold1.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "fold1.pt").write_bytes(bytes(data))
    load_miniature(fold=0, folder=folder)  # other files still load
    with pytest.raises(MiniatureWeightsError, match="fold1.pt has SHA-256"):
        load_miniature(fold=1, folder=folder)
    with pytest.raises(ValueError, match="fold"):
        load_miniature(fold=4)


@shipped
def test_pretrained_miniature_tracks_far_better_than_random_init(miniature):
    from sansa_probe.miniature.architecture import build_miniature_sam2
    from sansa_probe.miniature.measure import tracking_miou
    from sansa_probe.miniature.pretrain import tracker_model

    with miniature.adapters(False):
        pretrained = tracking_miou(miniature, n_clips=8, frames=4)
    random_init = tracking_miou(tracker_model(build_miniature_sam2(seed=1)), n_clips=8, frames=4)
    assert pretrained > random_init + TRACKING_MIN_GAIN, (pretrained, random_init)


@shipped
@IGNORES_MEMORY
def test_pretrained_miniature_follows_its_prompt(miniature):
    """A tracker given another clip's frame 0 and prompt must lose the object it was tracking."""
    from sansa_probe.miniature.measure import tracking_miou

    with miniature.adapters(False):
        own = tracking_miou(miniature, n_clips=8, frames=4)
        other = tracking_miou(miniature, n_clips=8, frames=4, prompts="other_clip")
    assert own > other + PROMPT_AIMED_GAIN, (own, other)


@shipped
@NO_EFFECT_YET
def test_adapted_miniature_beats_frozen_on_novel_classes(miniature):
    from sansa_probe.miniature.measure import few_shot_miou

    frozen = few_shot_miou(miniature, fold=0, adapters=False, episodes=FEW_SHOT_EPISODES)
    adapted = few_shot_miou(miniature, fold=0, adapters=True, episodes=FEW_SHOT_EPISODES)
    assert adapted > frozen + FEW_SHOT_AIMED_GAIN, (frozen, adapted)



def test_embedded_default_only_when_no_sam2_option_is_given():
    import argparse

    from sansa_probe.miniature.default import wants_miniature

    base = dict(dataset="synthetic", sam2_checkpoint="auto", backbone=None, sam2_version=None, image_size=None,
                sam2_overrides=None, checkpoint=None)
    assert wants_miniature(argparse.Namespace(**base))
    assert wants_miniature(argparse.Namespace(**{**base, "checkpoint": "none"}))
    for change in ({"dataset": "coco20i"}, {"sam2_checkpoint": None}, {"backbone": "hiera_t"}, {"image_size": 256},
                   {"sam2_overrides": ["++model.num_maskmem=2"]}, {"checkpoint": "adapters.pt"}, {"sam2_version": "2"}):
        assert not wants_miniature(argparse.Namespace(**{**base, **change})), change


def test_other_class_references_swap_the_reference_only():
    from sansa_probe.data.episodes import EpisodeSampler
    from sansa_probe.miniature.measure import _OtherClassReferences

    own = EpisodeSampler("synthetic", 0, "test", 1, n_episodes=6, seed=0, image_size=64)
    other = _OtherClassReferences("synthetic", 0, "test", 1, n_episodes=6, seed=0, image_size=64)
    for i in range(6):
        a, b = own.load(i), other.load(i)
        assert (b.class_id, b.target_id) == (a.class_id, a.target_id)
        np.testing.assert_array_equal(b.target_mask, a.target_mask)
        assert int(b.reference_ids[0].split("-")[2][1:]) != a.class_id  # ids: test-f<fold>-c<class>-<index>
        assert b.reference_masks[0].any()


def test_tracking_and_few_shot_measures_reject_unknown_modes():
    from sansa_probe.miniature.architecture import build_miniature_sam2
    from sansa_probe.miniature.measure import few_shot_miou, tracking_miou
    from sansa_probe.miniature.pretrain import tracker_model

    model = tracker_model(build_miniature_sam2(seed=1))
    with pytest.raises(ValueError, match="prompts: expected 'own' or 'other_clip'"):
        tracking_miou(model, n_clips=2, prompts="swapped")
    with pytest.raises(ValueError, match="references: expected one of own, other_class"):
        few_shot_miou(model, fold=0, adapters=False, episodes=2, references="wrong")

