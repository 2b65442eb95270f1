"""The release's behaviour (the default) against sam2's where they differ, and the named options.

Rules checked against a reading of the release's code (``models/sansa/sansa.py``,
``models/sam2/modeling/sam2_base.py``, ``util/demo_sansa.py`` of github.com/ClaudiaCuttano/SANSA).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import blob_image, randomized_adapters

from sansa_probe.model import SansaConfig, prompt_to_inputs
from sansa_probe.model.memory import MemoryEntry, assemble_memory
from sansa_probe.inference.predictor import SansaPredictor
from sansa_probe.prompts import Box, Mask, Points, Scribble

S = 256


def images(rng, n):
    return torch.from_numpy(rng.standard_normal((n, 3, S, S)).astype(np.float32))


def mask_prompt(rng):
    _, mask = blob_image(rng, S, S)
    return prompt_to_inputs(Mask(mask), height=S, width=S, image_size=S)


def test_defaults_are_the_release_and_are_recorded():
    config = SansaConfig(backbone="hiera_t")
    assert config.behaviour() == {"reference_memory": "release", "temporal_slots": "release", "point_prompts": "release",
                                  "scribble": "release", "precision": "float32"}
    assert SansaConfig.from_dict(config.to_dict() | {"temporal_slots": "shared"}).temporal_slots == "shared"
    with pytest.raises(ValueError, match="temporal_slots 'fixed'"):
        SansaConfig(temporal_slots="fixed")


def test_reference_memory_from_the_decoder_shaped_mask(tiny_model, rng):
    feats = tiny_model.encode_images(images(rng, 1))
    prompt = mask_prompt(rng)
    with torch.no_grad():
        release = tiny_model.decode_reference(feats, prompt)
        with tiny_model.behaviour(reference_memory="exact"):
            exact = tiny_model.decode_reference(feats, prompt)
    torch.testing.assert_close(exact.high_res_logits, prompt.mask_inputs * 20 - 10, atol=0, rtol=0)  # sam2
    upsampled = F.interpolate(release.low_res_logits, size=(S, S), mode="bilinear", align_corners=False)
    assert torch.equal(release.high_res_logits, upsampled)
    assert torch.equal(release.low_res_logits, exact.low_res_logits) and torch.equal(release.obj_ptr, exact.obj_ptr)
    assert not torch.equal(release.high_res_logits, exact.high_res_logits)
    with torch.no_grad():
        a = tiny_model.write_memory(feats, release, frame=0, conditioning=True)
        b = tiny_model.write_memory(feats, exact, frame=0, conditioning=True)
    assert not torch.allclose(a.features, b.features, atol=1e-4)


def _entries(sam, k):
    """k reference entries with distinct, recognisable values at frames 0..k-1."""
    h = w = 2
    out = []
    for i in range(k):
        features = torch.full((1, sam.mem_dim, h, w), float(i + 1))
        pos_enc = torch.full((1, sam.mem_dim, h, w), 0.5 * (i + 1))
        obj_ptr = torch.full((1, sam.hidden_dim), float(10 * (i + 1)))
        out.append(MemoryEntry(features=features, pos_enc=pos_enc, obj_ptr=obj_ptr, frame=i, conditioning=True))
    return out


@pytest.mark.parametrize("k", [1, 3, 9])
def test_release_temporal_slots(tiny_model, k):
    """Reference 0 in the last slot, reference i >= 1 at maskmem_tpos_enc[k - 1 - i] (only within the
    num_maskmem - 1 window), memories in order 0..k-1; pointers 0, k-1, ..., 1 (sam2_base.py:526-543)."""
    sam = tiny_model.sam
    entries = _entries(sam, k)
    with torch.no_grad():
        memory, memory_pos, num_ptr = assemble_memory(sam, entries, frame=k, num_frames=k + 1, batch=1, layout="release")
    kept = [0] + [i for i in range(1, k) if k - i <= sam.num_maskmem - 1]
    slots = [sam.num_maskmem - 1] + [k - 1 - i for i in kept[1:]]
    spatial = 4
    split = sam.hidden_dim // sam.mem_dim
    assert num_ptr == k * split and memory.shape[0] == len(kept) * spatial + k * split
    for row, (i, slot) in enumerate(zip(kept, slots)):
        block = slice(row * spatial, (row + 1) * spatial)
        assert (memory[block] == i + 1).all()
        expected_pos = 0.5 * (i + 1) + sam.maskmem_tpos_enc[slot].reshape(1, 1, -1)
        torch.testing.assert_close(memory_pos[block], expected_pos.expand(spatial, 1, -1))
    pointer_order = [0] + list(range(k - 1, 0, -1))
    pointers = memory[len(kept) * spatial :].reshape(k, split, sam.mem_dim)
    assert [int(p[0, 0]) for p in pointers] == [10 * (i + 1) for i in pointer_order]
    if k == 9:
        assert kept == [0, 3, 4, 5, 6, 7, 8]  # references 1 and 2 fall outside the release's window


def test_release_slots_equal_shared_for_one_reference_and_are_order_dependent(tiny_model, rng):
    x = images(rng, 4)
    prompts = [mask_prompt(rng) for _ in range(2)]
    tpos = tiny_model.sam.maskmem_tpos_enc
    saved = tpos.detach().clone()
    # random SAM2 init gives tiny temporal encodings (std 0.02): enlarge them so slots visibly matter
    with randomized_adapters(tiny_model, seed=5), torch.no_grad():
        tpos.mul_(100)
        try:
            one_release = tiny_model.few_shot(x[:1], prompts[:1], x[3:])
            two = tiny_model.few_shot(x[:2], prompts, x[3:])
            swapped = tiny_model.few_shot(x[[1, 0]], prompts[::-1], x[3:])
            with tiny_model.behaviour(temporal_slots="shared"):
                one_shared = tiny_model.few_shot(x[:1], prompts[:1], x[3:])
                two_shared = tiny_model.few_shot(x[:2], prompts, x[3:])
                swapped_shared = tiny_model.few_shot(x[[1, 0]], prompts[::-1], x[3:])
        finally:
            tpos.copy_(saved)
    assert torch.equal(one_release.low_res_logits, one_shared.low_res_logits)
    torch.testing.assert_close(two_shared.low_res_logits, swapped_shared.low_res_logits, atol=1e-5, rtol=0)
    assert float((two.low_res_logits - swapped.low_res_logits).abs().max()) > 1e-3  # the release is order-dependent
    assert float((two.low_res_logits - two_shared.low_res_logits).abs().max()) > 1e-3


class DecoderCalls:
    def __init__(self, sam):
        self.calls = []
        self.sam = sam

    def __enter__(self):
        self.handles = [
            self.sam.sam_mask_decoder.register_forward_hook(lambda m, a, kw, out: self.calls.append(("decoder", kw["multimask_output"])), with_kwargs=True),
            self.sam.sam_prompt_encoder.register_forward_hook(lambda m, a, kw, out: self.calls.append(("points", kw["points"])), with_kwargs=True),
            self.sam.memory_encoder.register_forward_hook(lambda m, a, kw, out: self.calls.append(("memory_mask", a[1] if len(a) > 1 else kw["masks"])), with_kwargs=True),
        ]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()

    def get(self, name):
        return [value for key, value in self.calls if key == name]


@pytest.mark.parametrize("prompt", ["click", "box"])
def test_point_and_box_references_single_mask_and_soft_memory(tiny_model, rng, prompt):
    """The release decodes point/box references with multimask_output=False (also one click), a box as
    two points labelled 2 and 3, and writes sigmoid(mask) to memory."""
    image, mask = blob_image(rng, S, S)
    rows, cols = np.nonzero(mask)
    given = Points(np.array([[cols.mean(), rows.mean()]]), np.array([1])) if prompt == "click" else Box((cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))
    inputs = prompt_to_inputs(given, height=S, width=S, image_size=S)
    feats = tiny_model.encode_images(images(rng, 1))
    with torch.no_grad():
        with DecoderCalls(tiny_model.sam) as release:
            tiny_model.encode_reference(feats, inputs)
        with tiny_model.behaviour(point_prompts="multimask"), DecoderCalls(tiny_model.sam) as ours:
            tiny_model.encode_reference(feats, inputs)
    assert release.get("decoder") == [False]
    assert ours.get("decoder") == [prompt == "click"]  # sam2: 3 masks for one click, one for a box
    labels = release.get("points")[0][1]
    assert labels.tolist() == ([[1]] if prompt == "click" else [[2, 3]])
    # the memory gets the soft mask (sigmoid * 20 - 10), as in the release: sam2's image build leaves
    # binarize_mask_from_pts_for_mem_enc off (only its video predictor turns it on)
    soft = release.get("memory_mask")[0]
    assert len(soft.unique()) > 2 and float(soft.min()) >= -10 and float(soft.max()) <= 10


def test_scribble_every_stroke_pixel_or_thinned(tiny_model, rng):
    stroke = np.zeros((S, S), bool)
    stroke[100:110, 20:200] = True  # 1,800 pixels
    inputs = prompt_to_inputs(Scribble(stroke), height=S, width=S, image_size=S)
    assert inputs.point_inputs["point_coords"].shape == (1, 1800, 2)
    rows, cols = np.nonzero(stroke)
    assert inputs.point_inputs["point_coords"][0, :3].tolist() == [[float(c), float(r)] for r, c in zip(rows[:3], cols[:3])]
    feats = tiny_model.encode_images(images(rng, 1))
    with torch.no_grad():
        with DecoderCalls(tiny_model.sam) as release:
            tiny_model.decode_reference(feats, inputs)
        with tiny_model.behaviour(scribble="thinned"), DecoderCalls(tiny_model.sam) as thinned:
            tiny_model.decode_reference(feats, inputs)
    assert release.get("points")[0][0].shape == (1, 1800, 2)
    assert thinned.get("points")[0][0].shape == (1, 1024, 2)


def test_precision_option_drives_inference_autocast(tiny_model):
    predictor = SansaPredictor(tiny_model)
    assert tiny_model.autocast is False and predictor.path.autocast is False
    assert SansaPredictor(tiny_model, autocast=True).path.autocast is True
    with tiny_model.behaviour(precision="bfloat16"):
        assert tiny_model.autocast is True and predictor.path.autocast is True
    with pytest.raises(ValueError, match="unknown"):
        with tiny_model.behaviour(ratio=0.5):
            pass


def test_behaviour_command_line_option():
    import argparse

    from sansa_probe.commands.grammar import add_model_group, parse_behaviour

    parser = argparse.ArgumentParser()
    add_model_group(parser)
    args = parser.parse_args(["--behaviour", "temporal_slots=shared", "--behaviour", "precision=bfloat16"])
    assert parse_behaviour(args.behaviour) == {"temporal_slots": "shared", "precision": "bfloat16"}
    assert parse_behaviour(None) == {}
    with pytest.raises(ValueError, match="temporal_slots=release|shared"):
        parse_behaviour(["temporal_slots=fixed"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_behaviour(["shared"])


def test_adapter_sizing_is_the_release_rule_and_old_configs_keep_theirs(tiny_model):
    from sansa_probe.model.config import SansaConfig

    trunk = tiny_model.sam.image_encoder.trunk
    for index in tiny_model.placement.blocks:  # int(dim_in * ratio), also where a stage doubles the width
        block = trunk.blocks[index]
        assert block.adapter.down_proj.weight.shape == (int(block.dim * tiny_model.config.ratio), block.dim_out)
    assert any(trunk.blocks[i].dim != trunk.blocks[i].dim_out for i in tiny_model.placement.blocks)
    recorded = tiny_model.config.to_dict()
    assert recorded["adapter_sizing"] == "dim_in" and SansaConfig.from_dict(recorded).adapter_sizing == "dim_in"
    old = {k: v for k, v in recorded.items() if k != "adapter_sizing"}  # written before the sizing was recorded
    assert SansaConfig.from_dict(old).adapter_sizing == "dim_out"
    with pytest.raises(ValueError, match="adapter_sizing"):
        SansaConfig.from_dict({**recorded, "adapter_sizing": "dim_mid"})
