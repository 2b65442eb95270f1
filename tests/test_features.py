"""Feature hooks, object pooling, dataset walking and the feature cache (issue 6)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import blob_image, randomized_adapters

from sansa_probe.data import Instance, get_dataset
from sansa_probe.features.source_extractor import SourceExtractor
from sansa_probe.features import (
    FeatureCache,
    FeatureExtractor,
    default_layer,
    mask_coverage,
    masks_to_grid,
    probe_splits,
    select_images,
    semantic_label_maps,
)

# The exact, ordered hook names of Hiera-T (sam2.1 config) at 256 px: the module order of model.sam.
HIERA_T_LAYERS = [
    "image_encoder.trunk.patch_embed",
    *[f"image_encoder.trunk.blocks.{i}" for i in range(12)],
    "image_encoder.neck[0]",
    "image_encoder.neck[1]",
    "image_encoder.neck[2]",
    "image_encoder.neck[3]",
    "memory_attention",
    "memory_attention.layers.0",
    "memory_attention.layers.1",
    "memory_attention.layers.2",
    "memory_attention.layers.3",
    "memory_encoder",
    "memory_encoder.mask_downsampler",
    "memory_encoder.fuser",
    "sam_mask_decoder",
    "sam_mask_decoder.transformer",
    "sam_mask_decoder.transformer.layers.0",
    "sam_mask_decoder.transformer.layers.1",
    "sam_mask_decoder.output_upscaling.4",
    "sam_mask_decoder.conv_s0",
    "sam_mask_decoder.conv_s1",
]
IMAGE_SHAPES = {  # (C, H, W) at 256 px
    "image_encoder.trunk.patch_embed": (96, 64, 64),
    "image_encoder.trunk.blocks.0": (96, 64, 64),
    "image_encoder.trunk.blocks.2": (192, 32, 32),
    "image_encoder.trunk.blocks.9": (384, 16, 16),
    "image_encoder.trunk.blocks.11": (768, 8, 8),
    "image_encoder.neck[0]": (256, 64, 64),
    "image_encoder.neck[2]": (256, 16, 16),
    "image_encoder.neck[3]": (256, 8, 8),
    "sam_mask_decoder.conv_s0": (32, 64, 64),
    "sam_mask_decoder.conv_s1": (64, 32, 32),
}


@pytest.fixture(scope="module")
def fx(tiny_model):
    return FeatureExtractor(tiny_model)


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(3)
    return [blob_image(rng, 90, 130), blob_image(rng, 256, 256)]


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.sam.modules())


def test_hook_names_are_the_real_module_paths_golden(fx, tiny_model):
    assert fx.available_layers() == HIERA_T_LAYERS
    assert fx.available_layers("image") == [n for n in HIERA_T_LAYERS if n.startswith("image_encoder") or n.endswith(("conv_s0", "conv_s1"))]
    modules = dict(tiny_model.sam.named_modules())
    for name in HIERA_T_LAYERS:
        assert fx.layer_info(name).module in modules
    assert default_layer(tiny_model) == "image_encoder.neck[2]"
    assert list(fx.describe_layers().columns) == ["name", "module", "stage", "description"]


def test_extract_name_list_dict_and_predicate(fx, pictures):
    images = [image for image, _ in pictures]
    one = images[:1]
    single = fx.extract(one, "image_encoder.trunk.blocks.11")
    assert list(single) == ["image_encoder.trunk.blocks.11"] and single["image_encoder.trunk.blocks.11"].shape == (1, 768, 8, 8)
    many = fx.extract(images, list(IMAGE_SHAPES))
    assert list(many) == list(IMAGE_SHAPES)  # request order
    for name, shape in IMAGE_SHAPES.items():
        assert tuple(many[name].shape) == (2, *shape), name
        assert torch.isfinite(many[name]).all()
    keyed = fx.extract(one, {"image_encoder.neck[2]": "memory_features", "image_encoder.trunk.blocks.3": "stage3_first"})
    assert list(keyed) == ["memory_features", "stage3_first"]
    assert torch.allclose(keyed["memory_features"][0], many["image_encoder.neck[2]"][0], atol=1e-5)
    picked = fx.extract(one, lambda name: "blocks.1" in name)  # blocks.1, .10, .11
    assert list(picked) == ["image_encoder.trunk.blocks.1", "image_encoder.trunk.blocks.10", "image_encoder.trunk.blocks.11"]
    assert torch.equal(picked["image_encoder.trunk.blocks.11"], single["image_encoder.trunk.blocks.11"])
    assert list(fx.extract(one)) == ["image_encoder.neck[2]"]  # the default layer


def test_block_and_neck_outputs_equal_the_models_own_forward(fx, tiny_model, pictures):
    images = [pictures[0][0]]
    out = fx.extract(images, ["image_encoder.trunk.blocks.9", "image_encoder.trunk.blocks.11", "image_encoder.neck[2]", "sam_mask_decoder.conv_s1"])
    from sansa_probe.inference import ReleaseProtocol

    x = ReleaseProtocol(image_size=tiny_model.image_size, output="image").images(images)  # the default input path
    with torch.no_grad():
        trunk = tiny_model.sam.image_encoder.trunk(x)  # stage outputs, channels-first
        feats = tiny_model.encode_images(x)
    assert torch.equal(out["image_encoder.trunk.blocks.11"], trunk[-1])
    assert torch.equal(out["image_encoder.trunk.blocks.9"], trunk[-2])
    assert torch.equal(out["image_encoder.neck[2]"], feats.top())
    assert torch.equal(out["sam_mask_decoder.conv_s1"], feats.high_res()[1])


def test_few_shot_layers_need_references_and_match_the_segmentation(fx, tiny_model, pictures):
    (ref, ref_mask), (target, _) = pictures
    with pytest.raises(ValueError, match="references"):
        fx.extract([target], "memory_attention")
    out = fx.extract([target], fx.available_layers(), references=[ref], reference_prompts=[ref_mask])
    assert list(out) == HIERA_T_LAYERS
    for name in ("memory_attention", "memory_attention.layers.3", "sam_mask_decoder.transformer", "memory_encoder.fuser"):
        assert out[name].shape == (1, 256, 16, 16)
    assert out["memory_encoder"].shape == (1, 64, 16, 16)
    assert out["sam_mask_decoder.output_upscaling.4"].shape == (1, 32, 64, 64)
    assert out["image_encoder.trunk.blocks.11"].shape == (1, 768, 8, 8)  # the target's, not the reference's
    # the decoder's mask logits are the ones the few-shot forward picks from
    from sansa_probe.inference import ReleaseProtocol

    batch_to_model_input = lambda arrays, size: ReleaseProtocol(image_size=size, output="image").images(arrays)  # the default input path
    from sansa_probe.prompts.types import Mask

    prompt = ReleaseProtocol(image_size=256, output="image").prompt(Mask(ref_mask), size=ref.shape[:2])
    with torch.no_grad():
        seg = tiny_model.few_shot(batch_to_model_input([ref], 256), [prompt], batch_to_model_input([target], 256))
    masks = out["sam_mask_decoder"]
    assert any(torch.allclose(masks[0, m], seg.low_res_logits[0, 0], atol=1e-5) for m in range(masks.shape[1]))


def test_hooks_are_removed_after_extract_and_on_error(fx, tiny_model, pictures):
    images = [image for image, _ in pictures]
    before = hook_count(tiny_model)  # the adapters' own hooks
    fx.extract(images, fx.available_layers("image"))
    assert hook_count(tiny_model) == before
    with pytest.raises(ValueError, match="reference_prompts"):  # fails inside the hooked forward
        fx.extract(images, "memory_attention", references=[images[0]], reference_prompts=[])
    assert hook_count(tiny_model) == before
    with pytest.raises(RuntimeError, match="boom"):
        with fx.hooks(["image_encoder.trunk.blocks.0", "memory_encoder"]) as cache:
            assert hook_count(tiny_model) == before + 2
            raise RuntimeError("boom")
    assert hook_count(tiny_model) == before
    with fx.hooks("image_encoder.trunk.blocks.0") as cache:
        with torch.no_grad():
            tiny_model.encode_images(torch.zeros(1, 3, 256, 256))
    assert cache["image_encoder.trunk.blocks.0"].shape == (1, 96, 64, 64)


def test_adapters_flag_equals_the_model_with_adapters_switched(fx, tiny_model, pictures):
    images = [pictures[0][0]]
    from sansa_probe.inference import ReleaseProtocol

    batch_to_model_input = lambda arrays, size: ReleaseProtocol(image_size=size, output="image").images(arrays)  # the default input path

    x = batch_to_model_input(images, 256)
    with randomized_adapters(tiny_model):
        off = fx.extract(images, ["image_encoder.neck[2]", "image_encoder.trunk.blocks.11"], adapters=False)
        on = fx.extract(images, ["image_encoder.neck[2]", "image_encoder.trunk.blocks.11"], adapters=True)
        assert tiny_model.adapters_enabled is True  # restored
        with torch.no_grad():
            with tiny_model.adapters(False):
                plain = tiny_model.encode_images(x).top()
            adapted = tiny_model.encode_images(x).top()
        assert torch.equal(off["image_encoder.neck[2]"], plain)
        assert torch.equal(on["image_encoder.neck[2]"], adapted)
        assert not torch.allclose(on["image_encoder.trunk.blocks.11"], off["image_encoder.trunk.blocks.11"])
        with tiny_model.adapters(False):
            current = fx.extract(images, "image_encoder.neck[2]")  # adapters=None: as switched
        assert torch.equal(current["image_encoder.neck[2]"], plain)


def test_unknown_layer_lists_close_matches(fx, pictures):
    with pytest.raises(ValueError, match=r"did you mean image_encoder\.trunk\.blocks\.11"):
        fx.extract([pictures[0][0]], "image_encoder.trunk.block.11")
    with pytest.raises(ValueError, match=r"image_encoder\.neck\[2\]"):
        fx.extract([pictures[0][0]], "image_encoder.neck.2")
    with pytest.raises(ValueError, match="predicate selected no layer"):
        fx.extract([pictures[0][0]], lambda name: name.startswith("memory"))
    with pytest.raises(ValueError, match="images"):
        fx.extract(torch.zeros(1, 3, 128, 128), "image_encoder.neck[2]")


def test_mask_coverage_and_grid_masks():
    mask = np.zeros((32, 48), dtype=bool)
    mask[0:8, 0:12] = True  # exactly cell (0, 0) of a 4x4 grid (cells of 8 x 12 pixels)
    mask[8:12, 12:24] = True  # the top half of cell (1, 1)
    coverage = mask_coverage(mask, (4, 4))
    expected = np.zeros((4, 4), np.float32)
    expected[0, 0], expected[1, 1] = 1.0, 0.5
    np.testing.assert_allclose(coverage.numpy(), expected)
    grid = masks_to_grid([mask], (4, 4))[0]
    assert grid.dtype == bool and grid.sum() == 2 and grid[0, 0] and grid[1, 1]
    assert masks_to_grid([mask], (4, 4), threshold=0.75)[0].sum() == 1


def test_object_features_pool_like_a_hand_computation(fx):
    rng = np.random.default_rng(0)
    image = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    a = np.zeros((256, 256), bool)
    a[32:48, 48:64] = True  # all of cell (2, 3) of the 16 x 16 grid (16 px cells)
    a[80:88, 80:96] = True  # the top half of cell (5, 5)
    b = np.zeros((256, 256), bool)
    b[0:16, 0:16] = True  # cell (0, 0)
    F = fx.extract([image], "image_encoder.neck[2]")["image_encoder.neck[2]"][0]
    table, X = fx.object_features([image], [[Instance(class_id=7, instance_id=3, mask=a), Instance(class_id=9, instance_id=4, mask=b)]])
    assert list(table.columns) == ["image_index", "image_id", "instance_id", "class_id", "area", "coverage"]
    assert table["class_id"].tolist() == [7, 9] and table["instance_id"].tolist() == [3, 4]
    assert table["area"].tolist() == [16 * 16 + 8 * 16, 256] and table["coverage"].tolist() == [1.5, 1.0]
    np.testing.assert_allclose(X[0], ((F[:, 2, 3] + 0.5 * F[:, 5, 5]) / 1.5).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(X[1], F[:, 0, 0].numpy(), rtol=1e-6)
    _, thresholded = fx.object_features([image], [a], labels=[1], pooling="mask_threshold")
    np.testing.assert_allclose(thresholded[0], ((F[:, 2, 3] + F[:, 5, 5]) / 2).numpy(), rtol=1e-5, atol=1e-6)
    _, strict = fx.object_features([image], [a], labels=[1], pooling="mask_threshold", threshold=0.75)
    np.testing.assert_allclose(strict[0], F[:, 2, 3].numpy(), rtol=1e-6)
    _, peak = fx.object_features([image], [a], labels=[1], pooling="mask_max")
    np.testing.assert_allclose(peak[0], torch.maximum(F[:, 2, 3], F[:, 5, 5]).numpy(), rtol=1e-6)
    small, _ = fx.object_features([image], [[a, b]], labels=[[1, 2]], min_area=300)
    assert small["class_id"].tolist() == [1]


def test_object_features_reject_masks_that_do_not_fit(fx, pictures):
    image, mask = pictures[0]
    with pytest.raises(ValueError, match=r"masks\[0\]\[0\].*does not match its image of size 90x130"):
        fx.object_features([image], [mask.T])
    with pytest.raises(ValueError, match="one entry per image"):
        fx.object_features([image, image], [mask])
    with pytest.raises(ValueError, match="labels"):
        fx.object_features([image], [[mask, mask]], labels=[[1]])
    with pytest.raises(ValueError, match="pooling"):
        fx.object_features([image], [mask], pooling="median")
    with pytest.raises(ValueError, match="image-stage"):
        fx.object_features([image], [mask], layer="memory_attention")


def test_dense_features_batched_and_resized(tiny_model, pictures):
    images = [image for image, _ in pictures] * 2
    fx = FeatureExtractor(tiny_model, batch_size=3)
    dense = fx.dense_features(images, layer="image_encoder.trunk.blocks.11")
    assert dense.shape == (4, 768, 8, 8) and dense.device.type == "cpu"
    assert torch.allclose(dense[0], dense[2], atol=1e-5)  # the same image in two batches
    resized = fx.dense_features(images[:1], size=32, dtype=torch.float16)
    assert resized.shape == (1, 256, 32, 32) and resized.dtype == torch.float16


@pytest.fixture(scope="module")
def tiny_source():
    # 8 classes: fold 0 holds classes 0 and 4; one 64 px image per class and split
    return get_dataset("synthetic", fold=0, split="val", image_size=64, images_per_class=1, n_classes=8)


def test_dataset_object_features_walk_load_instances(fx, tiny_source):
    table, X = fx.dataset_object_features(tiny_source, adapters=False)
    assert set(table["class_id"]) <= {0, 4} and len(table) == X.shape[0] and X.shape[1] == 256
    expected = sum(len(tiny_source.load_instances(i)) for i in tiny_source.image_ids())
    assert len(table) == expected
    assert set(table["class_name"]) <= {tiny_source.class_name(0), tiny_source.class_name(4)}
    only = fx.dataset_object_features(tiny_source, adapters=False, classes=[4])[0]
    assert set(only["class_id"]) == {4}


def test_feature_cache_hit_miss_and_invalidation(tiny_model, tiny_source, tmp_path, monkeypatch):
    fx = FeatureExtractor(tiny_model, cache_dir=tmp_path)
    calls = []
    original = SourceExtractor._object_features  # what the dataset walk computes per chunk of images

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("pooling"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SourceExtractor, "_object_features", counting)
    first, X1 = fx.dataset_object_features(tiny_source, adapters=False, classes=[0])
    assert len(calls) == 1
    state = fx.model_state(False)["id"]
    path = FeatureCache(tmp_path).path(kind="objects", dataset="synthetic", fold=0, split="val", layer="image_encoder.neck[2]", state=state)
    assert path.is_file() and path.with_suffix(".json").is_file()
    config = json.loads(path.with_suffix(".json").read_text())
    assert config["layer"] == "image_encoder.neck[2]" and config["model_state"]["adapters"] is False and config["pooling"] == "mask_mean"

    second, X2 = fx.dataset_object_features(tiny_source, adapters=False, classes=[0])  # hit
    assert len(calls) == 1
    pd.testing.assert_frame_equal(first, second)
    np.testing.assert_array_equal(X1, X2)

    fx.dataset_object_features(tiny_source, adapters=False, classes=[0], pooling="mask_max")  # config mismatch: recompute, overwrite
    assert calls == ["mask_mean", "mask_max"]
    assert json.loads(path.with_suffix(".json").read_text())["pooling"] == "mask_max"

    fx.dataset_object_features(tiny_source, adapters=True, classes=[0])  # another model state, another file
    assert len(calls) == 3
    with randomized_adapters(tiny_model):
        assert fx.model_state(False)["id"] == state  # frozen features do not depend on the adapters
        fx.dataset_object_features(tiny_source, adapters=False, classes=[0], pooling="mask_max")
        assert len(calls) == 3
        fx.dataset_object_features(tiny_source, adapters=True, classes=[0])  # new adapter weights: recompute
        assert len(calls) == 4
    other = get_dataset("synthetic", fold=0, split="val", image_size=64, images_per_class=1, n_classes=8, seed=5)
    fx.dataset_object_features(other, adapters=False, classes=[0], pooling="mask_max")  # another source option
    assert len(calls) == 5

    path.with_suffix(".json").write_text("{not json")  # a damaged cache entry is recomputed
    fx.dataset_object_features(other, adapters=False, classes=[0], pooling="mask_max")
    assert len(calls) == 6


def test_dense_dataset_features_and_label_maps(tiny_model, tiny_source, tmp_path):
    fx = FeatureExtractor(tiny_model, cache_dir=tmp_path)
    ids, X = fx.dataset_dense_features(tiny_source, adapters=False)
    assert ids == tiny_source.image_ids() and X.shape == (2, 256, 16, 16) and X.dtype == torch.float16
    again_ids, again = fx.dataset_dense_features(tiny_source, adapters=False)
    assert again_ids == ids and torch.equal(again, X)
    labels = semantic_label_maps(tiny_source, ids, [0, 4], size=32)
    assert labels.shape == (2, 32, 32) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2} and (labels == 1).any() and (labels == 2).any()


def test_probe_splits_find_training_images_of_the_evaluated_classes():
    splits = probe_splits("synthetic", 0, image_size=64, images_per_class=1, n_classes=8)
    assert splits.classes == [0, 4] and splits.train_fold == 1 and splits.test.split == "val"
    assert {0, 4} <= set(splits.train.class_ids()) and not splits.same_images
    ids = select_images(splits.train, classes=splits.classes)
    assert ids and all(i.startswith("train-f1-") for i in ids)
    with pytest.raises(ValueError, match="fold 0's training split does not hold"):
        probe_splits("synthetic", 0, train_fold=0, image_size=64, images_per_class=1, n_classes=8)


def test_a_fold_without_the_needed_split_is_an_error(tmp_path):
    from fixtures.datasets import write_fss

    write_fss(tmp_path, {"ant": 2, "bee": 2, "cat": 2}, split_lists={"trn": ["ant"], "val": ["bee"], "test": ["cat"]})
    with pytest.raises(ValueError, match=r"no fold's training split .* the \d+ classes of fold 0's 'val' split"):
        probe_splits("fss1000", 0, root=tmp_path)
    source = get_dataset("synthetic", fold=0, split="val", image_size=64, images_per_class=1, n_classes=8)
    with pytest.raises(ValueError, match="not classes of"):
        select_images(source, classes=[1])
