"""The miniature's staged pretraining: clip variants, the clip pool and its feature cache, the
memory-path devices, and a stage on the model's own clip forward (deterministic, resumable)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sansa_probe.miniature.architecture import build_miniature_sam2
from sansa_probe.miniature.stages import ClipPool, StageConfig, run_stage, stage_loss, tracker_model
from sansa_probe.miniature.videos import ClipRecipe, pretraining_clip


@pytest.fixture(scope="module")
def tracker():
    return tracker_model(build_miniature_sam2(seed=0)).eval()


# ----------------------------------------------------------------------------- clip variants


def test_clip_variants_change_only_what_they_say():
    plain = pretraining_clip(seed=2, index=4, n_frames=3, image_size=64)
    mirror = pretraining_clip(seed=2, index=4, n_frames=3, image_size=64, recipe=ClipRecipe(mirror=1.0))
    np.testing.assert_array_equal(mirror.frames[0], plain.frames[0])
    for t in (1, 2):  # frames 1.. flipped left-right and up-down, masks with them
        np.testing.assert_array_equal(mirror.frames[t], plain.frames[t][::-1, ::-1])
        np.testing.assert_array_equal(mirror.masks[t], plain.masks[t][::-1, ::-1])
    recolour = pretraining_clip(seed=2, index=4, n_frames=3, image_size=64, recipe=ClipRecipe(recolour=1.0))
    np.testing.assert_array_equal(recolour.frames[0], plain.frames[0])
    for t in (1, 2):  # same shapes and motion, other colours
        np.testing.assert_array_equal(recolour.masks[t], plain.masks[t])
        assert np.abs(recolour.frames[t][plain.masks[t]].astype(int) - plain.frames[t][plain.masks[t]]).mean() > 20
    vanish = pretraining_clip(seed=2, index=4, n_frames=3, image_size=64, recipe=ClipRecipe(vanish=1.0))
    assert vanish.masks[0].any() and not vanish.masks[1].any() and not vanish.masks[2].any()


def test_redrawn_clips_keep_frame_0_and_redraw_only_from_frame_1():
    plain = pretraining_clip(seed=3, index=0, n_frames=3, image_size=128)
    redraw = pretraining_clip(seed=3, index=0, n_frames=3, image_size=128, recipe=ClipRecipe(redraw=1.0))
    np.testing.assert_array_equal(redraw.frames[0], plain.frames[0])
    np.testing.assert_array_equal(redraw.masks[0], plain.masks[0])
    for t in (1, 2):  # a new drawing of the tracked instance: another outline, new colours
        assert redraw.masks[t].any() and (redraw.masks[t] != plain.masks[t]).any()
        assert not np.array_equal(redraw.frames[t], plain.frames[t])
    # adding the variant changes no other variant's draw (earlier recipes draw the same clips)
    base = ClipRecipe(mirror=0.5, shuffle=0.5, recolour=0.5)
    for index in range(20):
        plain, with_redraw = base.draw(0, index), replace(base, redraw=0.5).draw(0, index)
        assert plain.pop("redraw") is False and with_redraw.pop("redraw") in (True, False) and with_redraw == plain


def test_large_twinned_clips_hold_an_exact_look_alike():
    clip = pretraining_clip(seed=0, index=1, n_frames=2, image_size=128, recipe=ClipRecipe(large=1.0, twin=1.0))
    default = pretraining_clip(seed=0, index=1, n_frames=2, image_size=128)
    assert clip.masks[0].mean() > 1.5 * default.masks[0].mean()  # radius 0.12-0.2 instead of 0.08-0.15
    assert clip.masks[0].sum() > 300


@pytest.mark.parametrize("kwargs", [{"mirror": 1.5}, {"twin": -0.1}, {"recolour": True}, {"redraw": 2}])
def test_clip_recipe_rejects_what_is_not_a_probability(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ClipRecipe(**kwargs)


# ----------------------------------------------------------------------------- stage configs


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "video"}, "kind"),
    ({"kind": "image", "prompts": (0.5, 0.5, 0.0, 0.0)}, "a mask prompt is its own answer"),
    ({"kind": "image", "prompts": (0.0, 1.0, 0.0, 0.0), "aux_weight": 1.0}, "aux_source"),
    ({"frames": 1}, "frames"),
    ({"prompts": (1.0, 0.0)}, "prompts"),
    ({"drop_high_res": 2.0}, "drop_high_res"),
])
def test_stage_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StageConfig(name="x", **kwargs)


def test_stage_config_round_trips_and_ignores_its_label():
    config = StageConfig(name="memory", clips=ClipRecipe(large=0.3, mirror=0.5), prompts=(0.5, 0.2, 0.1, 0.2))
    assert StageConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["clips"]["recolour"], old["aux_source"]  # written before those fields existed
    assert StageConfig.from_dict(old) == config
    assert config.same_training(replace(config, name="renamed")) and not config.same_training(replace(config, lr=1.0))


# ----------------------------------------------------------------------------- the model's own forward


def test_cached_features_feed_the_models_own_clip_forward(tracker):
    """The pool's cached encoder features are what encode_images gives, so a frozen-encoder stage
    runs exactly SansaModel.forward_clip."""
    config = StageConfig(name="t", steps=1, batch=3, frames=3, prompts=(0.5, 0.5, 0.0, 0.0), pool=3, freeze_encoder=True)
    pool = ClipPool(config, image_size=tracker.image_size)
    pool.cache_features(tracker, chunk=2)
    index = torch.tensor([2, 0, 1])
    cached = pool.encoded(index)
    images = pool.images(index)  # (T * B, 3, S, S) frame-major
    fresh = tracker.encode_images(images)
    for a, b in zip(cached.vision_feats + cached.vision_pos, fresh.vision_feats + fresh.vision_pos):
        torch.testing.assert_close(a, b)
    prompts = [pool.prompts[i] for i in index]
    with torch.no_grad():
        ours = tracker.track_features(cached, prompts).targets
        model = tracker.forward_clip(images[:3], prompts, [images[3:6], images[6:9]])
    for a, b in zip(ours, model):
        torch.testing.assert_close(a.high_res_logits, b.high_res_logits)


def test_dropping_high_resolution_features_changes_only_those_clips(tracker):
    config = StageConfig(name="t", steps=1, batch=2, frames=2, prompts=(1.0, 0.0, 0.0, 0.0))
    pool = ClipPool(config, image_size=tracker.image_size)
    feats = tracker.encode_images(pool.images(torch.arange(2)))
    with torch.no_grad():
        kept = tracker.track_features(feats, pool.prompts).targets[0].high_res_logits
        dropped = tracker.track_features(feats, pool.prompts, drop_high_res=torch.tensor([False, True])).targets[0].high_res_logits
    torch.testing.assert_close(kept[0], dropped[0])
    assert (kept[1] - dropped[1]).abs().max() > 1e-3


# ----------------------------------------------------------------------------- memory-path devices


def test_reinitialising_the_memory_path_keeps_what_the_image_stage_trained():
    from sansa_probe.miniature.memory_path import MEMORY_MODULES, reinitialise_memory_path

    trained, fresh = build_miniature_sam2(seed=0), build_miniature_sam2(seed=5)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    keys = reinitialise_memory_path(trained, fresh)
    assert keys and {k.split(".")[0] for k in keys} <= set(MEMORY_MODULES)
    after = trained.state_dict()
    for key, value in after.items():
        expected = fresh.state_dict()[key] if key in keys else before[key]
        torch.testing.assert_close(value, expected)
    assert any(k.startswith("image_encoder.") for k in before) and not any(k.startswith("image_encoder.") for k in keys)


def test_locality_prior_makes_memory_cross_attention_read_its_own_position():
    from sansa_probe.miniature.memory_path import add_locality_prior

    sam = build_miniature_sam2(seed=0)
    attention = sam.memory_attention.layers[0].cross_attn_image
    weight = attention.out_proj.weight.detach().clone()
    assert add_locality_prior(sam, bias=3.5, pairs=3, out_scale=4.0) == len(sam.memory_attention.layers)
    torch.testing.assert_close(attention.out_proj.weight, 4 * weight)
    d = attention.internal_dim // attention.num_heads
    ones = [2 * j + e for j in (0, 1, 2, d // 4, d // 4 + 1, d // 4 + 2) for e in (0, 1)]
    assert torch.all(attention.q_proj.bias[ones] == 3.5) and torch.all(attention.k_proj.bias[ones] == 3.5)
    # zero content: the attention of a query token over an 8 x 8 memory peaks at its own position
    side = 8
    q = attention.q_proj.bias.expand(1, side * side, -1)[None].reshape(1, 1, side * side, -1)
    k = attention.k_proj.bias.expand(1, side * side, -1)[None].reshape(1, 1, side * side, -1)
    from sam2.modeling.position_encoding import apply_rotary_enc

    q, k = apply_rotary_enc(q, k, freqs_cis=attention.compute_cis(end_x=side, end_y=side))
    scores = (q @ k.transpose(-1, -2))[0, 0]
    assert torch.equal(scores.argmax(dim=1), torch.arange(side * side))


def test_decoder_tokens_are_captured_per_decoder_call_and_released(tracker):
    from sansa_probe.miniature.memory_path import decoder_tokens

    config = StageConfig(name="t", steps=1, batch=2, frames=3, prompts=(0.0, 1.0, 0.0, 0.0))
    pool = ClipPool(config, image_size=tracker.image_size)
    feats = tracker.encode_images(pool.images(torch.arange(2)))
    with torch.no_grad(), decoder_tokens(tracker.sam) as tokens:
        tracker.track_features(feats, pool.prompts)
    assert len(tokens) == 2 + 2  # two box references decoded one by one, then one call per tracked frame
    assert all(t.shape == (2 if i >= 2 else 1, 64, 8, 8) for i, t in enumerate(tokens))
    assert not tracker.sam.sam_mask_decoder.transformer._forward_hooks


# ----------------------------------------------------------------------------- a stage


def _tiny(kind: str) -> StageConfig:
    if kind == "image":
        return StageConfig(name="image", kind="image", steps=4, batch=4, warmup=1, prompts=(0.0, 0.5, 0.5, 0.0), lr=2e-3,
                           aux_weight=1.0, aux_source="decoder", drop_high_res=0.5, clips=ClipRecipe(large=1.0))
    return StageConfig(name="memory", steps=4, batch=2, warmup=1, frames=2, pool=4, freeze_encoder=True, reinit_memory=True,
                       locality_bias=3.5, aux_weight=1.0, drop_high_res=0.5, lr=2e-3)


@pytest.mark.parametrize("kind", ["image", "tracking"])
def test_a_stage_lowers_its_loss_and_resumes_exactly(tmp_path, kind):
    config = _tiny(kind)
    pool = ClipPool(replace(config, steps=1), image_size=128)  # the clips of the first step
    index = torch.arange(config.batch)

    def loss(state) -> float:
        sam = build_miniature_sam2(seed=0)
        sam.load_state_dict(state)
        model = tracker_model(sam).eval()
        if config.freeze_encoder:
            pool.cache_features(model)
        feats = pool.encoded(index) if config.freeze_encoder else model.encode_images(pool.images(index))
        with torch.no_grad():
            return float(stage_loss(model, config, feats, pool.masks[index].transpose(0, 1), list(pool.prompts), pool.kinds,
                                    drop=None, aux=None)["loss"])

    from sansa_probe.miniature.stages import initial_sam

    start = initial_sam(config, None).state_dict()
    straight = run_stage(config, out=tmp_path / "straight", progress=False)
    assert loss(straight) < loss(start)
    assert (tmp_path / "straight" / "sam2.pt").is_file() and len((tmp_path / "straight" / "log.jsonl").read_text().splitlines()) == 4
    run_stage(config, out=tmp_path / "resumed", progress=False, until=2)  # an interrupted run
    assert not (tmp_path / "resumed" / "sam2.pt").is_file()
    resumed = run_stage(config, out=tmp_path / "resumed", progress=False)
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key])
    with pytest.raises(ValueError, match="another stage recipe"):
        run_stage(replace(config, lr=1.0), out=tmp_path / "straight", progress=False)
