"""The procedural benchmark: classes, folds, determinism, labels, leakage, distractors, video."""

from __future__ import annotations

import numpy as np
import pytest

from sansa_probe.data import Instance, fold_classes, get_dataset, get_spec
from sansa_probe.data.synthetic import (
    DEFAULT_CLASSES,
    MAX_CLASSES,
    SHAPES,
    SPECS,
    TEXTURES,
    SyntheticSource,
    build,
    class_shape_texture,
    contact_sheet,
    synthetic_class_name,
    synthetic_fold_classes,
    synthetic_video,
)

SIZE = 96  # small images keep the suite fast


def _source(**options) -> SyntheticSource:
    defaults = {"fold": 0, "split": "test", "image_size": SIZE, "images_per_class": 3}
    return build(**{**defaults, **options})


def _sample_ids(source: SyntheticSource, per_class: int = 1, classes: int = 6) -> list[str]:
    return [i for c in source.class_ids()[:classes] for i in source.image_ids(c)[:per_class]]


def test_at_least_60_readable_classes_defined_by_shape_and_texture() -> None:
    assert len(SHAPES) * len(TEXTURES) == MAX_CLASSES and DEFAULT_CLASSES >= 60
    pairs = [class_shape_texture(c) for c in range(MAX_CLASSES)]
    assert len(set(pairs)) == MAX_CLASSES
    names = [synthetic_class_name(c) for c in range(MAX_CLASSES)]
    assert len(set(names)) == MAX_CLASSES
    assert all(name == f"{t}-{s}" for name, (s, t) in zip(names, pairs))
    assert "striped-star" in names
    source = _source()
    assert source.class_name(0) == synthetic_class_name(0)


def test_folds_are_disjoint_interleaved_and_cover_all_classes() -> None:
    tests = [synthetic_fold_classes(f, "test") for f in range(4)]
    assert sorted(sum(tests, [])) == list(range(DEFAULT_CLASSES))
    for f in range(4):
        assert all(c % 4 == f for c in tests[f])
        train = synthetic_fold_classes(f, "train")
        assert set(train) == set(range(DEFAULT_CLASSES)) - set(tests[f])
        assert synthetic_fold_classes(f, "val") == tests[f]
        # every novel class is a new combination of a shape and a texture seen in training
        seen_shapes = {class_shape_texture(c)[0] for c in train}
        seen_textures = {class_shape_texture(c)[1] for c in train}
        for c in tests[f]:
            assert class_shape_texture(c)[0] in seen_shapes and class_shape_texture(c)[1] in seen_textures
    assert len(synthetic_fold_classes(2, "test", n_classes=80)) == 20


def test_registry_builds_without_a_data_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANSA_DATA", raising=False)
    spec = get_spec("synthetic")
    assert spec is SPECS[0] and spec.folds == 4 and not spec.needs_root and spec.default_episodes == 1000
    assert fold_classes("synthetic", 3) == synthetic_fold_classes(3, "test")
    source = get_dataset("synthetic", fold=1, split="train", image_size=64, images_per_class=2)
    assert isinstance(source, SyntheticSource)
    assert source.class_ids() == synthetic_fold_classes(1, "train")
    assert len(source.image_ids()) == 2 * len(source.class_ids())


def test_image_ids_are_sorted_deterministic_lists_per_class() -> None:
    source = _source(images_per_class=4)
    ids = source.image_ids()
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 4 * 16
    assert source.image_ids(4) == [f"test-f0-c04-{k:05d}" for k in range(4)]
    assert source.image_ids(1) == []  # a training class is not in the test split
    assert _source(images_per_class=4).image_ids() == ids


def test_images_and_masks_are_a_pure_function_of_seed_and_id() -> None:
    a, b = _source(seed=5), _source(seed=5, cache_size=0)
    other = _source(seed=6)
    for image_id in _sample_ids(a, classes=3):
        image = a.load_image(image_id)
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
        assert np.array_equal(image, b.load_image(image_id))
        c = int(image_id.split("-c")[1][:2])
        assert np.array_equal(a.load_mask(image_id, c), b.load_mask(image_id, c))
        assert np.mean(np.abs(image.astype(int) - other.load_image(image_id).astype(int))) > 10
        image[:] = 0  # callers get copies: the cache is not corrupted
        assert a.load_image(image_id).any()
    first, second = a.image_ids(0)[:2]
    assert not np.array_equal(a.load_image(first), a.load_image(second))
    val = _source(split="val", seed=5)
    assert not np.array_equal(val.load_image(val.image_ids(0)[0]), a.load_image(first))


def test_masks_are_the_union_of_visible_instances() -> None:
    source = _source(fold=2)
    for image_id in _sample_ids(source, per_class=2, classes=4):
        instances = source.load_instances(image_id, all_classes=True)
        assert all(isinstance(i, Instance) for i in instances)
        assert len({i.instance_id for i in instances}) == len(instances)
        stack = np.stack([i.mask for i in instances])
        assert stack.shape[1:] == (SIZE, SIZE) and stack.dtype == bool
        assert stack.any(axis=(1, 2)).all()  # every listed instance is visible
        assert stack.sum(axis=0).max() <= 1  # visible masks do not overlap
        for c in {i.class_id for i in instances}:
            union = np.any([i.mask for i in instances if i.class_id == c], axis=0)
            assert np.array_equal(source.load_mask(image_id, c), union)
        primary = int(image_id.split("-c")[1][:2])
        assert source.load_mask(image_id, primary).sum() >= 20
        own = source.load_instances(image_id)
        assert {i.class_id for i in own} <= set(source.class_ids()) and primary in {i.class_id for i in own}
        absent = next(c for c in range(DEFAULT_CLASSES) if c not in {i.class_id for i in instances})
        assert not source.load_mask(image_id, absent).any()


def test_train_images_contain_no_test_class_pixels() -> None:
    for fold in (0, 3):
        source = _source(fold=fold, split="train", images_per_class=2)
        novel = synthetic_fold_classes(fold, "test")
        for image_id in _sample_ids(source, per_class=2, classes=48):
            classes = {i.class_id for i in source.load_instances(image_id, all_classes=True)}
            assert classes <= set(source.class_ids())
            assert not any(source.load_mask(image_id, c).any() for c in novel[:4])


def test_every_image_has_distractors_of_other_classes() -> None:
    for split in ("train", "test"):
        source = _source(fold=1, split=split)
        hard = 0
        ids = _sample_ids(source, per_class=3, classes=10)
        for image_id in ids:
            primary = int(image_id.split("-c")[1][:2])
            others = [i.class_id for i in source.load_instances(image_id, all_classes=True) if i.class_id != primary]
            assert others, f"{image_id} has no distractor"
            shape, texture = class_shape_texture(primary)
            hard += any(set(class_shape_texture(c)) & {shape, texture} for c in others)
        assert hard >= len(ids) // 4  # hard negatives share the shape or the texture


def test_instances_vary_in_colour_and_scale_within_a_class() -> None:
    source = _source(images_per_class=8)
    colours, areas = [], []
    for image_id in source.image_ids(8):
        image = source.load_image(image_id)
        for instance in source.load_instances(image_id):
            if instance.class_id == 8:
                colours.append(image[instance.mask].mean(axis=0))
                areas.append(instance.mask.sum())
    assert len(colours) >= 8
    assert np.linalg.norm(np.std(colours, axis=0)) > 30  # colour does not identify the class
    assert max(areas) > 1.5 * min(areas)


def test_invalid_arguments_name_the_argument() -> None:
    source = _source()
    with pytest.raises(ValueError, match=r"image_id: 'train-f0-c01-00000' is not an image"):
        source.load_image("train-f0-c01-00000")
    with pytest.raises(ValueError, match=r"image_id: .* is not an image"):
        source.load_image("test-f0-c00-00099")
    with pytest.raises(ValueError, match=r"image_id"):
        source.load_image("nonsense")
    with pytest.raises(ValueError, match=r"class_id: expected an int in 0..63"):
        source.load_mask(source.image_ids()[0], 64)
    with pytest.raises(ValueError, match=r"image_size: expected an int in 64..512"):
        _source(image_size=32)
    with pytest.raises(ValueError, match=r"n_classes"):
        _source(n_classes=100)
    with pytest.raises(ValueError, match=r"fold"):
        _source(fold=4)
    with pytest.raises(ValueError, match=r"split"):
        _source(split="dev")
    with pytest.raises(ValueError, match=r"options: unknown option\(s\) colour"):
        build(fold=0, split="test", colour=True)
    with pytest.raises(ValueError, match=r"n_objects"):
        synthetic_video(n_objects=0)


def test_video_objects_move_smoothly() -> None:
    size = 128
    frames, instances = synthetic_video(n_frames=6, image_size=size, seed=1, n_objects=3)
    assert len(frames) == len(instances) == 6
    assert all(f.shape == (size, size, 3) and f.dtype == np.uint8 for f in frames)
    assert all([i.instance_id for i in frame] == [0, 1, 2] for frame in instances)
    assert all(len({i.class_id for i in frame}) >= 1 for frame in instances)
    for obj in range(3):
        masks = [frame[obj].mask for frame in instances]
        areas = np.array([m.sum() for m in masks])
        assert areas.min() > 0.5 * areas.max()  # the same object, not a different one
        centroids = np.array([np.argwhere(m).mean(axis=0) for m in masks])
        steps = np.linalg.norm(np.diff(centroids, axis=0), axis=1)
        assert steps.min() > 0.2 and steps.max() < 0.06 * size
    again, _ = synthetic_video(n_frames=6, image_size=size, seed=1, n_objects=3)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))
    other, _ = synthetic_video(n_frames=6, image_size=size, seed=2, n_objects=3)
    assert not np.array_equal(frames[0], other[0])


def test_contact_sheet_is_a_labelled_grid() -> None:
    sheet = contact_sheet(_source(image_size=64), n=6)
    assert sheet.dtype == np.uint8 and sheet.shape == (2 * 66, 3 * 66, 3)


def test_benchmark_v2_crowds_the_class_among_palette_coloured_distractors() -> None:
    from sansa_probe.data.synthetic.scenes import PALETTE

    v1, v2 = _source(fold=2, images_per_class=2), _source(fold=2, images_per_class=2, benchmark="v2")
    assert v1.benchmark == "v1" and _source().benchmark == "v1"  # v1 stays the default
    palette = np.concatenate(PALETTE)
    counts = []
    for image_id in _sample_ids(v2, per_class=2, classes=8):
        primary = int(image_id.split("-c")[1][:2])
        instances = v2.load_instances(image_id, all_classes=True)
        ours = [i for i in instances if i.class_id == primary]
        assert 1 <= len(ours) <= 2 and 3 <= len(instances) - len(ours) <= 5, image_id
        counts.append(len(instances))
        image = v2.load_image(image_id)
        for instance in instances:  # every object is painted in palette colours (noise and lighting aside)
            pixels = image[instance.mask].astype(float)
            if len(pixels) > 30:
                nearest = np.linalg.norm(pixels[:, None] - palette[None], axis=2).min(axis=1)
                assert np.median(nearest) < 60, image_id
    assert np.mean(counts) > 4.5
    assert not np.array_equal(v1.load_image(v1.image_ids()[0]), v2.load_image(v2.image_ids()[0]))
    with pytest.raises(ValueError, match=r"benchmark: expected one of v1, v2"):
        _source(benchmark="v3")
