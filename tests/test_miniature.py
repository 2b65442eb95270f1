"""The miniature: shipped weights and checksums, the tracker's gate, the SANSA effect."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from sansa_probe.miniature.videos import pretraining_clip
from sansa_probe.miniature.weights import WEIGHTS_DIR, MiniatureWeightsError, load_miniature, read_manifest

# The gate a pretrained miniature passes before any adapter is trained (issue 21), measured on
# the shipped float16 weights with the results table's settings (32 held-out clips):
# tracking with its own prompt >= 45 and another clip's <= half of it; on the same clips with
# frames 1.. mirrored (every object jumps, appearance kept) own >= 30 and >= 2x another clip's;
# one click on the object beats another clip's click by >= 15 IoU points.
GATE_CLIPS = 32
FEW_SHOT_EPISODES = 32
FEW_SHOT_AIMED_GAIN = 5.0
READS_REFERENCE_GAIN = 10.0
TRACKING_MIN_GAIN = 10.0
NO_EFFECT_YET = pytest.mark.xfail(strict=True, reason="measured: the adapters gain no reference-reading on the shipped miniature (docs/MINIATURE.md)")

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
    from sansa_probe.miniature.stages import tracker_model

    with miniature.adapters(False):
        pretrained = tracking_miou(miniature, n_clips=8, frames=4)
    random_init = tracking_miou(tracker_model(build_miniature_sam2(seed=1)), n_clips=8, frames=4)
    assert pretrained > random_init + TRACKING_MIN_GAIN, (pretrained, random_init)


@pytest.fixture(scope="module")
def gate(miniature):
    """The gate's numbers of the shipped pretrained miniature (adapters off), as in its results table."""
    from sansa_probe.miniature.measure import tracker_rows

    with miniature.adapters(False):
        return {row["metric"]: row["value"] for row in tracker_rows(miniature, n_clips=GATE_CLIPS)}


@shipped
def test_pretrained_miniature_follows_its_prompt(gate):
    """A tracker given another clip's frame 0 and prompt loses the object it was tracking."""
    own, other = gate["tracking_miou"], gate["tracking_miou_other_clip_prompt"]
    assert own >= 45 and other <= own / 2, (own, other)


@shipped
def test_pretrained_miniature_matches_appearance_not_position(gate):
    """On the same clips with frames 1.. mirrored, it still finds its object (and not with another clip's prompt)."""
    own, other = gate["tracking_miou_mirrored"], gate["tracking_miou_mirrored_other_clip_prompt"]
    assert own >= 30 and own >= 2 * other, (own, other)


@shipped
def test_pretrained_miniature_follows_a_click(gate):
    own, other = gate["click_miou"], gate["click_miou_other_clip_click"]
    assert own >= other + 15, (own, other)


@shipped
def test_gate_numbers_are_the_shipped_results_tables(gate):
    table = pd.read_csv(WEIGHTS_DIR / "results.csv")
    shipped_rows = table[(table["fold"].astype(str) == "all") & (table["model"] == "pretrained")].set_index("metric")["value"]
    for metric, value in gate.items():
        assert shipped_rows[metric] == pytest.approx(value, abs=0.05), metric
    stages = table[table["model"].str.endswith("_stage")]
    assert list(dict.fromkeys(stages["model"])) == ["image_stage", "memory_stage", "appearance_stage", "recolour_stage"]


@pytest.fixture(scope="module")
def few_shot(miniature):
    """Fold 0, 1-shot on its novel classes: frozen and adapted, with the right and another class's reference."""
    from sansa_probe.miniature.measure import few_shot_miou

    return {(model, refs): few_shot_miou(miniature, fold=0, adapters=model == "adapted", episodes=FEW_SHOT_EPISODES, references=refs)
            for model in ("frozen", "adapted") for refs in ("own", "other_class")}


@shipped
def test_adapted_miniature_beats_frozen_on_novel_classes(few_shot):
    frozen, adapted = few_shot["frozen", "own"], few_shot["adapted", "own"]
    assert adapted > frozen + FEW_SHOT_AIMED_GAIN, (frozen, adapted)


@shipped
@NO_EFFECT_YET
def test_the_adapted_gain_comes_from_reading_the_reference(few_shot):
    """SANSA's effect: with another class's reference the adapted miniature loses what it gained."""
    right, other = few_shot["adapted", "own"], few_shot["adapted", "other_class"]
    assert right >= other + READS_REFERENCE_GAIN, (right, other)


def test_attribute_probe_reads_colour_from_rgb_and_reports_every_attribute(miniature):
    from sansa_probe.miniature.measure import ATTRIBUTES, attribute_rows

    rows = attribute_rows(miniature, fold=1, images_per_class=2)
    value = {(r["model"], r["metric"].removeprefix("attribute_probe_").removesuffix("_accuracy")): r["value"] for r in rows}
    assert set(value) == {(m, a) for m in ("majority", "object_rgb", "frozen", "adapted") for a in ATTRIBUTES}
    assert all(0.0 <= v <= 100.0 for v in value.values()) and {r["fold"] for r in rows} == {1}
    # the hue sextant is a function of the mean RGB: a linear probe on it is far above the majority
    assert value["object_rgb", "colour"] >= 70 and value["object_rgb", "colour"] > value["majority", "colour"] + 30
    # shape is not in the mean colour: near the majority label (16 shapes)
    assert value["object_rgb", "shape"] < 25


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
    from sansa_probe.miniature.measure import click_miou, few_shot_miou, tracking_miou
    from sansa_probe.miniature.stages import tracker_model

    model = tracker_model(build_miniature_sam2(seed=1))
    with pytest.raises(ValueError, match="prompts: expected 'own' or 'other_clip'"):
        tracking_miou(model, n_clips=2, prompts="swapped")
    with pytest.raises(ValueError, match="references: expected one of own, other_class"):
        few_shot_miou(model, fold=0, adapters=False, episodes=2, references="wrong")

    with pytest.raises(ValueError, match="motion: expected one of drift, mirror"):
        tracking_miou(model, n_clips=2, motion="flip")
    with pytest.raises(ValueError, match="clicks: expected 'own' or 'other_clip'"):
        click_miou(model, n_clips=2, clicks="swapped")


def test_command_rejects_an_unknown_stage(capsys):
    from sansa_probe.miniature.__main__ import main

    assert main(["--stage-steps", "video=10"]) == 2
    assert "STAGE one of image, memory, appearance, recolour" in capsys.readouterr().err
