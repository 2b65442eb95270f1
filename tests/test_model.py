"""SansaModel: adapter placement, adapters off == sam2, sam2 parity, gradients, order invariance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import TINY, blob_image, build_tiny_model, randomized_adapters

from sansa_probe.model import SansaConfig, adapter_blocks, build_sam2_base, load_sansa, prompt_to_inputs
from sansa_probe.prompts import Box, Mask, Points, Scribble

S = 256

# (stage_ends, width of each stage) of sam2's shipped Hiera configs
LAYOUTS = {
    "hiera_t": ([0, 2, 9, 11], [96, 192, 384, 768]),
    "hiera_s": ([0, 2, 13, 15], [96, 192, 384, 768]),
    "hiera_b+": ([1, 4, 20, 23], [112, 224, 448, 896]),
    "hiera_l": ([1, 7, 43, 47], [144, 288, 576, 1152]),
}


def expected_adaptformer_params(backbone: str, ratio: float) -> tuple[list[int], int]:
    ends, dims = LAYOUTS[backbone]
    blocks, total = [], 0
    for stage in (2, 3):
        start = ends[stage - 1] + 1
        for block in range(start, ends[stage] + 1):
            # the release's rule: bottleneck from the block's input width (the previous stage's in a first block)
            d, b = dims[stage], int((dims[stage - 1] if block == start else dims[stage]) * ratio)
            blocks.append(block)
            total += 2 * d + (d * b + b) + (b * d + d)  # LayerNorm + down + up
    return blocks, total


def images(rng, n):
    return torch.from_numpy(rng.standard_normal((n, 3, S, S)).astype(np.float32))


def mask_prompt(rng):
    _, mask = blob_image(rng, S, S)
    return prompt_to_inputs(Mask(mask), height=S, width=S, image_size=S)


@pytest.mark.parametrize("backbone", ["hiera_t", "hiera_s", "hiera_b+", "hiera_l"])
def test_adapter_placement_and_parameter_count(backbone):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = load_sansa(backbone, sam2_checkpoint=None, image_size=256)
    blocks, total = expected_adaptformer_params(backbone, 0.3)
    assert model.placement.blocks == blocks
    assert model.num_adapter_parameters() == total
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"sam.{n}" for n in model.adapter_names}
    for index, block in enumerate(model.sam.image_encoder.trunk.blocks):
        assert hasattr(block, "adapter") == (index in blocks)
    assert list(model.placement.modules) == [f"blocks.{i}.adapter" for i in blocks]
    if backbone == "hiera_l":  # paper: about 10M trainable parameters in the strict setting
        assert 9.5e6 < total < 11e6
        assert model.sam.image_encoder.trunk.blocks[8].adapter.down_proj.out_features == int(288 * 0.3)  # first block of stage 2
        assert model.sam.image_encoder.trunk.blocks[9].adapter.down_proj.out_features == int(576 * 0.3)


def test_generalist_ratio_and_adapter_blocks_helper():
    assert adapter_blocks([0, 2, 9, 11], (2, 3)) == list(range(3, 12))
    assert adapter_blocks([1, 7, 43, 47], (3,)) == [44, 45, 46, 47]
    config = SansaConfig.for_setting("generalist", backbone="hiera_t")
    assert config.ratio == 0.8


def test_fresh_adapter_is_exact_no_op(tiny_model, rng):
    x = images(rng, 2)
    with torch.no_grad():
        on = tiny_model.encode_images(x)
        with tiny_model.adapters(False):
            off = tiny_model.encode_images(x)
    for a, b in zip(on.vision_feats, off.vision_feats):
        assert torch.equal(a, b)


def test_adapters_switch_and_context_manager(tiny_model):
    assert tiny_model.adapters_enabled is True
    with tiny_model.adapters(False):
        assert tiny_model.adapters_enabled is False
        with tiny_model.adapters(True):
            assert tiny_model.adapters_enabled is True
        assert tiny_model.adapters_enabled is False
    assert tiny_model.adapters_enabled is True


def plain_sam2_like(model):
    """A SAM2Base from sam2's build_sam2 with the same config and weights, no adapters at all."""
    from sam2.build_sam import build_sam2
    from sansa_probe.model.config import sam2_config_name

    plain = build_sam2(
        sam2_config_name(model.config.backbone, model.config.sam2_version),
        None,
        device="cpu",
        apply_postprocessing=False,
        hydra_overrides_extra=model.config.hydra_overrides(),
    )
    adapters = set(model.adapter_names)
    state = {k: v for k, v in model.sam.state_dict().items() if k not in adapters}
    plain.load_state_dict(state, strict=True)
    return plain


def test_adapters_off_equals_plain_sam2_bit_for_bit(tiny_model, rng):
    plain = plain_sam2_like(tiny_model)
    x = images(rng, 3)
    prompt = mask_prompt(rng)
    # sam2's exact reference memory (the release's temporal layout equals sam2's for k = 1)
    with randomized_adapters(tiny_model), torch.no_grad(), tiny_model.behaviour(reference_memory="exact"):
        with tiny_model.adapters(True):
            adapted = tiny_model.encode_images(x).vision_feats[-1]
        with tiny_model.adapters(False):
            ours = tiny_model.encode_images(x)
            # one target per call, as sam2's track_step (batched matmuls may round differently)
            ours_out = [tiny_model.few_shot(x[:1], [prompt], x[i : i + 1]).low_res_logits for i in (1, 2)]
        backbone = plain.forward_image(x)
        _, feats, pos, sizes = plain._prepare_backbone_features(backbone)
        # the same pseudo-video through sam2's own track_step: reference at frame 0, target at frame 1
        output_dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        sel = lambda t, i: [f[:, i : i + 1] for f in t]  # noqa: E731
        ref = plain.track_step(frame_idx=0, is_init_cond_frame=True, current_vision_feats=sel(feats, 0), current_vision_pos_embeds=sel(pos, 0),
                               feat_sizes=sizes, point_inputs=None, mask_inputs=prompt.mask_inputs, output_dict=output_dict, num_frames=2)
        output_dict["cond_frame_outputs"][0] = ref
        targets = []
        for i in (1, 2):
            out = plain.track_step(frame_idx=1, is_init_cond_frame=False, current_vision_feats=sel(feats, i), current_vision_pos_embeds=sel(pos, i),
                                   feat_sizes=sizes, point_inputs=None, mask_inputs=None, output_dict=output_dict, num_frames=2)
            targets.append(out["pred_masks"])
    for a, b in zip(ours.vision_feats, feats):
        assert torch.equal(a, b)
    assert not torch.equal(adapted, feats[-1])  # the randomized adapters do act
    for mine, theirs in zip(ours_out, targets):
        assert torch.equal(mine, theirs)


def test_training_clip_matches_sam2_track_step(tiny_model, rng):
    """The J-target path (paper eq. 7) is sam2's own video layout: compare with track_step."""
    x = images(rng, 4)
    prompt = mask_prompt(rng)
    with randomized_adapters(tiny_model, seed=3), torch.no_grad(), tiny_model.behaviour(reference_memory="exact"):
        ours = tiny_model.forward_clip(x[:1], [prompt], [x[1:2], x[2:3], x[3:4]])
        feats = tiny_model.encode_images(x)
        output_dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        theirs = []
        for f in range(4):
            ff = feats.select(f)
            out = tiny_model.sam.track_step(frame_idx=f, is_init_cond_frame=f == 0, current_vision_feats=ff.vision_feats,
                                            current_vision_pos_embeds=ff.vision_pos, feat_sizes=ff.feat_sizes, point_inputs=None,
                                            mask_inputs=prompt.mask_inputs if f == 0 else None, output_dict=output_dict, num_frames=4)
            output_dict["cond_frame_outputs" if f == 0 else "non_cond_frame_outputs"][f] = out
            theirs.append(out["pred_masks"])
    for j in range(3):
        assert torch.equal(ours[j].low_res_logits, theirs[j + 1])


def test_gradients_reach_exactly_the_adapters_through_the_clip(rng):
    model = build_tiny_model()
    x = images(rng, 4)
    _, target_mask = blob_image(rng, S, S)
    prompt = mask_prompt(rng)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    for step in range(2):  # up_proj starts at zero, so down_proj gets gradients from the 2nd step on
        optimizer.zero_grad()
        outputs = model.forward_clip(x[:1], [prompt], [x[1:2], x[2:3], x[3:4]])
        target = torch.from_numpy(target_mask).float()[None, None]
        loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(o.high_res_logits, target) for o in outputs)
        loss.backward()
        with_grad = {n for n, p in model.sam.named_parameters() if p.grad is not None}
        assert with_grad == set(model.adapter_names)
        nonzero = {n for n, p in model.sam.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert all(n.endswith(("up_proj.weight", "up_proj.bias")) or step == 1 for n in nonzero)
        assert any("up_proj" in n for n in nonzero)
        optimizer.step()
    assert any("down_proj" in n for n in nonzero)
    # the J-th target's loss also reaches the adapters through the memory of targets 1..J-1
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_prediction_does_not_depend_on_reference_order_with_shared_slots(tiny_model, k):
    rng = np.random.default_rng(k)
    x = images(rng, k + 2)
    prompts = [mask_prompt(rng) for _ in range(k)]
    order = rng.permutation(k)
    if k > 1 and np.all(order == np.arange(k)):
        order = np.roll(order, 1)
    with randomized_adapters(tiny_model, seed=k), torch.no_grad(), tiny_model.behaviour(temporal_slots="shared"):
        a = tiny_model.few_shot(x[:k], prompts, x[k:])
        b = tiny_model.few_shot(x[:k][torch.as_tensor(order)], [prompts[i] for i in order], x[k:])
    assert a.low_res_logits.shape == (2, 1, S // 4, S // 4)
    torch.testing.assert_close(a.low_res_logits, b.low_res_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.iou, b.iou, atol=1e-5, rtol=0)


def test_all_k_references_stay_in_memory(tiny_model, rng):
    from sansa_probe.model.memory import assemble_memory

    k = 9  # more than sam2's 7-frame window
    with torch.no_grad(), tiny_model.behaviour(temporal_slots="shared"):
        memory = tiny_model.reference_memory(images(rng, k), [mask_prompt(rng) for _ in range(k)])
        mem, pos, num_ptr = assemble_memory(tiny_model.sam, memory, frame=1, num_frames=2, batch=1)
    spatial = (S // 16) ** 2
    pointer_tokens = tiny_model.sam.hidden_dim // tiny_model.sam.mem_dim
    assert num_ptr == k * pointer_tokens
    assert mem.shape == (k * spatial + k * pointer_tokens, 1, tiny_model.sam.mem_dim)
    # and each reference changes the prediction: dropping one changes the logits
    target = images(rng, 1)
    with torch.no_grad(), tiny_model.behaviour(temporal_slots="shared"):
        full = tiny_model.segment(tiny_model.encode_images(target), memory)
        fewer = tiny_model.segment(tiny_model.encode_images(target), memory[:-1])
    assert not torch.equal(full.low_res_logits, fewer.low_res_logits)


@pytest.mark.parametrize(
    "prompt",
    [
        Points(np.array([[120.0, 100.0], [30.0, 40.0]]), np.array([1, 0])),
        Box((60.0, 50.0, 200.0, 180.0)),
        "scribble",
        "mask",
    ],
    ids=["points", "box", "scribble", "mask"],
)
def test_each_prompt_type_gives_a_reference_memory(tiny_model, rng, prompt):
    image, mask = blob_image(rng, 200, 300)
    if prompt == "mask":
        prompt = Mask(mask)
    elif prompt == "scribble":
        stroke = np.zeros_like(mask)
        rows, cols = np.nonzero(mask)
        stroke[rows.min() + 5 : rows.max() - 5, int(cols.mean())] = True
        prompt = Scribble(stroke & mask)
    prompt.validate(200, 300)
    inputs = prompt_to_inputs(prompt, height=200, width=300, image_size=S)
    from sansa_probe.io.images import batch_to_model_input

    with torch.no_grad():
        memory = tiny_model.reference_memory(batch_to_model_input([image], S), [inputs])
        output = tiny_model.segment(tiny_model.encode_images(images(rng, 2)), memory)
    assert memory[0].features.shape == (1, 64, S // 16, S // 16)
    assert memory[0].obj_ptr.shape == (1, 256)
    assert torch.isfinite(output.low_res_logits).all()


def test_prompt_conversion_geometry():
    points = prompt_to_inputs(Points(np.array([[150.0, 50.0]])), height=100, width=300, image_size=S)
    torch.testing.assert_close(points.point_inputs["point_coords"], torch.tensor([[[128.0, 128.0]]]))
    assert points.point_inputs["point_labels"].tolist() == [[1]]
    box = prompt_to_inputs(Box((0.0, 0.0, 300.0, 100.0)), height=100, width=300, image_size=S)
    assert box.point_inputs["point_labels"].tolist() == [[2, 3]]
    torch.testing.assert_close(box.point_inputs["point_coords"], torch.tensor([[[0.0, 0.0], [256.0, 256.0]]]))
    mask = np.zeros((100, 300), bool)
    mask[:, :150] = True
    converted = prompt_to_inputs(Mask(mask), height=100, width=300, image_size=S).mask_inputs
    assert converted.shape == (1, 1, S, S)
    assert converted[0, 0, :, :120].all() and not converted[0, 0, :, 136:].any()
    stroke = np.zeros((100, 300), bool)
    stroke[50, 10:290] = True
    scribble = prompt_to_inputs(Scribble(stroke), height=100, width=300, image_size=S, max_scribble_points=16)
    assert scribble.point_inputs["point_coords"].shape == (1, 16, 2)
    assert (scribble.point_inputs["point_labels"] == 1).all()


def test_object_score_heads_are_off_by_default_and_can_be_kept():
    assert SansaConfig(backbone="hiera_t").object_scores is False
    sam = build_sam2_base(SansaConfig(backbone="hiera_t", image_size=256, object_scores=True))
    assert sam.pred_obj_scores and hasattr(sam.sam_mask_decoder, "obj_score_token")
    sam = build_sam2_base(SansaConfig(backbone="hiera_t", image_size=256))
    assert not sam.pred_obj_scores and not hasattr(sam.sam_mask_decoder, "obj_score_token")


def test_unknown_backbone_and_bad_config_values():
    with pytest.raises(ValueError, match="backbone 'hiera_xl'"):
        load_sansa("hiera_xl", sam2_checkpoint=None)
    with pytest.raises(ValueError, match="sam2_version '3'"):
        load_sansa("hiera_t", sam2_version="3", sam2_checkpoint=None)
    with pytest.raises(ValueError, match="setting"):
        load_sansa("hiera_t", sam2_checkpoint=None, setting="medium")
    with pytest.raises(ValueError, match="image_size"):
        SansaConfig(image_size=250)
    with pytest.raises(ValueError, match="stages"):
        SansaConfig(stages=(4,))


@pytest.mark.parametrize("kind", ["houlsby", "lora", "mona"])
def test_ablation_adapters_are_no_ops_at_init_and_trainable(kind, rng):
    model = build_tiny_model(adapter=kind)
    assert model.num_adapter_parameters() > 0
    children = {"houlsby": ["adapter_attn", "adapter_mlp"], "lora": ["lora_qkv"], "mona": ["adapter_attn", "adapter_mlp"]}[kind]
    assert list(model.placement.modules) == [f"blocks.{i}.{c}" for i in model.placement.blocks for c in children]
    # the placement's modules hold exactly the parameters sam2 does not have
    added = {n for n, _ in model.sam.named_parameters() if any(f".{c}." in n for c in children)}
    assert set(model.adapter_parameters()) == added == set(model.adapter_names)
    x = images(rng, 1)
    with torch.no_grad():
        on = model.encode_images(x).vision_feats[-1]
        with model.adapters(False):
            off = model.encode_images(x).vision_feats[-1]
    torch.testing.assert_close(on, off, atol=1e-6, rtol=0)
    outputs = model.forward_clip(x, [mask_prompt(rng)], [images(rng, 1)])
    outputs[0].high_res_logits.sigmoid().mean().backward()
    with_grad = {n for n, p in model.sam.named_parameters() if p.grad is not None}
    assert with_grad and with_grad <= set(model.adapter_names)


def test_random_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first = load_sansa("hiera_t", sam2_checkpoint=None, image_size=128)
        assert torch.equal(torch.rand(3), expected_next)  # the global generator did not move
        second = load_sansa("hiera_t", sam2_checkpoint=None, image_size=128)
        other = load_sansa("hiera_t", sam2_checkpoint=None, image_size=128, seed=1)
    one, two, three = first.sam.state_dict(), second.sam.state_dict(), other.sam.state_dict()
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not torch.equal(one["image_encoder.trunk.patch_embed.proj.weight"], three["image_encoder.trunk.patch_embed.proj.weight"])
