"""Episode samplers: determinism, constraints, policies, sharding and DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DataLoader

from sansa_probe.data import (
    Episode,
    EpisodeData,
    EpisodeDataset,
    EpisodeSampler,
    SegmentationSource,
    TrainingEpisodeSampler,
    collate_episodes,
    get_dataset,
)

try:
    from tests.fixtures.datasets import HW, write_coco, write_fss, write_lvis, write_voc
except ImportError:  # pragma: no cover - tests/ not importable as a package
    from fixtures.datasets import HW, write_coco, write_fss, write_lvis, write_voc

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

SPLITS = "COCO2014/splits"  # the fixture's own HSNet-style lists (the shipped ones name the real images)
FSS_SPLITS = "FSS-1000/splits"  # the fixture's class lists (the shipped ones name all 1,000 folders)
FSS_CLASSES = {"bus": 5, "fish": 4, "moon": 3, "swan": 1}


@pytest.fixture(scope="module")
def fss_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fss")
    write_fss(root, FSS_CLASSES, split_lists={"trn": ["bus", "fish"], "val": ["moon"], "test": sorted(FSS_CLASSES)})
    return root


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return write_coco(tmp_path_factory.mktemp("coco"), layouts=("json",))


@pytest.fixture(scope="module")
def coco_root(coco):
    return coco.data_root


def _ids(episodes):
    return [(e.index, e.class_id, e.target_id, e.reference_ids) for e in episodes]


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_episodes_any_order(coco_root):
    a = EpisodeSampler("coco20i", 0, "val", 2, 40, seed=7, root=coco_root, splits_dir=coco_root / SPLITS)
    b = EpisodeSampler("coco20i", 0, "val", 2, 40, seed=7, root=coco_root, splits_dir=coco_root / SPLITS)
    assert _ids(a) == _ids(b)
    backwards = [b[i] for i in reversed(range(len(b)))][::-1]
    assert _ids(a) == _ids(backwards)  # episode i depends on (seed, i) only
    assert a[-1] == a[39]
    other = EpisodeSampler("coco20i", 0, "val", 2, 40, seed=8, root=coco_root, splits_dir=coco_root / SPLITS)
    assert _ids(a) != _ids(other)
    with pytest.raises(IndexError, match="out of range for 40"):
        a[40]


def test_sampler_from_env_root_equals_explicit_root(coco_root, monkeypatch):
    monkeypatch.setenv("SANSA_DATA", str(coco_root))
    from_env = EpisodeSampler("coco20i", 0, "test", 1, 12, seed=3, splits_dir=coco_root / SPLITS)
    source = get_dataset("coco20i", fold=0, split="val", root=coco_root, splits_dir=coco_root / SPLITS)
    from_source = EpisodeSampler(source, shots=1, n_episodes=12, seed=3)
    assert _ids(from_env) == _ids(from_source)
    assert from_env.policy == from_source.policy == "random_class"


# ----------------------------------------------------------------------------- constraints


@pytest.mark.parametrize("shots", [1, 2])
def test_episode_constraints(coco_root, shots):
    sampler = EpisodeSampler("coco20i", 0, "val", shots, 60, seed=0, root=coco_root, splits_dir=coco_root / SPLITS)
    source = sampler.source
    # boat (9) has 2 images: enough for 1 shot, not for 2
    assert sampler.classes == ([1, 5, 9] if shots == 1 else [1, 5])
    seen = set()
    for episode in sampler:
        members = set(source.image_ids(episode.class_id))
        assert episode.target_id in members
        assert len(episode.reference_ids) == shots == len(set(episode.reference_ids))
        assert episode.target_id not in episode.reference_ids
        assert set(episode.reference_ids) <= members
        seen.add(episode.class_id)
    assert seen == set(sampler.classes)  # random classes: all of them show up in 60 episodes


def test_load_returns_images_and_union_masks(coco):
    sampler = EpisodeSampler("coco20i", 0, "val", 2, 10, seed=1, root=coco.data_root, splits_dir=coco.splits)
    fixture = coco
    for i in range(3):
        data = sampler.load(i)
        assert isinstance(data, EpisodeData) and data.index == i
        assert data.target_image.shape == (*HW, 3) and data.target_image.dtype == np.uint8
        assert data.target_mask.dtype == bool
        np.testing.assert_array_equal(data.target_mask, fixture.masks[(data.target_id, data.class_id)])
        assert len(data.reference_images) == len(data.reference_masks) == 2
        for ref, mask in zip(data.reference_ids, data.reference_masks):
            np.testing.assert_array_equal(mask, fixture.masks[(ref, data.class_id)])
        assert data.target_ignore is None


def test_pascal_episodes_carry_the_boundary_ignore(tmp_path):
    fixture = write_voc(tmp_path)
    sampler = EpisodeSampler("pascal5i", 0, "test", 1, root=tmp_path, splits_dir=fixture.folder / "splits")
    assert len(sampler) == 1000 and sampler.policy == "list_order"
    data = sampler.load(5)
    np.testing.assert_array_equal(data.target_ignore, fixture.ignore[data.target_id])
    assert not (data.target_mask & data.target_ignore).any()


# ----------------------------------------------------------------------------- policies


def test_fss_every_test_image_once(fss_root):
    sampler = EpisodeSampler("fss1000", 0, "test", 1, root=fss_root, splits_dir=fss_root / FSS_SPLITS)
    assert sampler.policy == "every_image"
    assert sampler.classes == ["bus", "fish", "moon"]  # swan has a single image
    assert len(sampler) == 5 + 4 + 3
    targets = [(e.class_id, e.target_id) for e in sampler]
    assert len(set(targets)) == len(targets) == 12
    assert all(t.startswith(c + "/") for c, t in targets)
    assert all(r.startswith(e.class_id + "/") for e in sampler for r in e.reference_ids)
    five = EpisodeSampler("fss1000", 0, "test", 5, root=fss_root, splits_dir=fss_root / FSS_SPLITS)  # no class has 6 images
    with pytest.raises(ValueError, match="no class with at least 6 images"):
        len(five)
    wrap = EpisodeSampler("fss1000", 0, "test", 1, 30, root=fss_root, splits_dir=fss_root / FSS_SPLITS)
    assert [wrap[i].target_id for i in range(12)] == [wrap[i + 12].target_id for i in range(12)]


def test_pascal_episodes_walk_the_val_list_in_file_order_wrapping_at_1000(tmp_path):
    from sansa_probe.data.pascal import shipped_val_pairs

    write_voc(tmp_path)
    listed = [(c, image) for image, c in shipped_val_pairs(2)]  # 725 pairs, classes interleaved in the file
    sampler = EpisodeSampler("pascal5i", 2, "test", 1, root=tmp_path)
    assert sampler.policy == "list_order" and len(sampler) == 1000
    assert [(e.class_id, e.target_id) for e in sampler] == [listed[i % 725] for i in range(1000)]
    assert [e.class_id for e in sampler][:6] != sorted(e.class_id for e in sampler)[:6]  # not class-sorted
    assert all(e.target_id not in e.reference_ids and e.reference_ids[0] in sampler.source.image_ids(e.class_id) for e in sampler)
    assert sampler.scored_classes() == [11, 12, 13, 14, 15]
    assert _ids(sampler) == _ids(EpisodeSampler("pascal5i", 2, "test", 1, root=tmp_path))  # references depend on (seed, i)
    drawn = EpisodeSampler("pascal5i", 2, "test", 1, root=tmp_path, policy="random_class")  # the named alternative
    assert len(drawn) == 1000 and [e.class_id for e in drawn] != [e.class_id for e in sampler]
    with pytest.raises(ValueError, match="policy 'list_order'.* no published episode list"):
        EpisodeSampler(_Crops(), shots=1, n_episodes=3, policy="list_order")


def test_lvis_cycles_classes_and_builds_for_the_shot_count(tmp_path):
    write_lvis(tmp_path)
    one = EpisodeSampler("lvis92i", 0, "test", 1, root=tmp_path)
    assert len(one) == 2300 and one.policy == "cycle_classes"
    assert [one[i].class_id for i in range(6)] == [1, 11, 1, 11, 1, 11]
    two = EpisodeSampler("lvis92i", 0, "test", 2, 10, root=tmp_path)
    assert two.source.class_ids() == [1] and {e.class_id for e in two} == {1}  # eligibility follows the shots


def test_custom_source_needs_an_episode_count(coco_root):
    source = get_dataset("coco20i", fold=0, split="val", root=coco_root, splits_dir=coco_root / SPLITS)
    source.name = "my_benchmark"  # an unregistered source: no literature default
    with pytest.raises(ValueError, match="pass n_episodes"):
        EpisodeSampler(source, shots=1)
    assert len(EpisodeSampler(source, shots=1, n_episodes=5)) == 5
    assert len(EpisodeSampler(source, shots=1, policy="every_image")) == 3 + 3 + 2


# ----------------------------------------------------------------------------- sharding and workers


def test_shards_cover_every_episode_once(coco_root):
    sampler = EpisodeSampler("coco20i", 0, "val", 1, 23, seed=5, root=coco_root, splits_dir=coco_root / SPLITS)
    shards = [sampler.indices(rank, 3) for rank in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(23))
    merged = sorted((e for rank in range(3) for e in EpisodeDataset(sampler, rank=rank, world_size=3)), key=lambda d: d.index)
    single = [sampler.load(i) for i in range(23)]
    assert [(d.index, d.target_id, d.reference_ids) for d in merged] == [(d.index, d.target_id, d.reference_ids) for d in single]
    with pytest.raises(ValueError, match="rank 3"):
        sampler.indices(3, 3)
    with pytest.raises(ValueError, match="world_size 0"):
        sampler.indices(0, 0)


def test_dataloader_workers_give_identical_episodes(fss_root):
    sampler = EpisodeSampler("fss1000", 0, "test", 2, 8, seed=11, root=fss_root, splits_dir=fss_root / FSS_SPLITS)

    def run(workers: int) -> list[EpisodeData]:
        loader = DataLoader(EpisodeDataset(sampler), batch_size=3, num_workers=workers, collate_fn=collate_episodes)
        return [episode for batch in loader for episode in batch]

    serial, parallel = run(0), run(2)
    assert [d.index for d in serial] == list(range(8))
    for a, b in zip(serial, parallel, strict=True):
        assert (a.index, a.class_id, a.target_id, a.reference_ids) == (b.index, b.class_id, b.target_id, b.reference_ids)
        np.testing.assert_array_equal(a.target_mask, b.target_mask)
        np.testing.assert_array_equal(a.reference_images[1], b.reference_images[1])


# ----------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shots": 0}, "shots 0: expected an integer >= 1"),
        ({"shots": -2}, "shots -2"),
        ({"n_episodes": 0}, "n_episodes 0"),
        ({"seed": -1}, "seed -1"),
        ({"policy": "shuffle"}, "policy 'shuffle'"),
    ],
)
def test_bad_arguments(coco_root, kwargs, message):
    args = {"shots": 1, "n_episodes": 4, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        EpisodeSampler("coco20i", 0, "val", root=coco_root, splits_dir=coco_root / SPLITS, **args)


def test_unknown_dataset_and_bad_fold(coco_root):
    with pytest.raises(ValueError, match="unknown dataset 'cityscapes'"):
        EpisodeSampler("cityscapes", 0, "test", 1, 5, root=coco_root, splits_dir=coco_root / SPLITS)
    with pytest.raises(ValueError, match="fold 7 is out of range for coco20i"):
        EpisodeSampler("coco20i", 7, "test", 1, 5, root=coco_root, splits_dir=coco_root / SPLITS)
    source = get_dataset("coco20i", fold=0, split="val", root=coco_root, splits_dir=coco_root / SPLITS)
    with pytest.raises(ValueError, match="only when dataset is a name"):
        EpisodeSampler(source, shots=1, root=coco_root, splits_dir=coco_root / SPLITS)
    with pytest.raises(ValueError, match="expected a dataset name or a SegmentationSource"):
        EpisodeSampler(42, shots=1)


# ----------------------------------------------------------------------------- training clips


def test_training_clips_one_reference_and_j_targets(coco_root):
    sampler = TrainingEpisodeSampler("coco20i", 0, n_episodes=20, seed=2, root=coco_root, splits_dir=coco_root / SPLITS, targets=2)
    assert sampler.split == "train" and sampler.classes == [2, 3]  # bicycle, car: 3 images each
    for clip in sampler:
        images = [clip.reference_id, *clip.target_ids]
        assert len(images) == 3 == len(set(images))
        assert set(images) <= set(sampler.source.image_ids(clip.class_id))
    assert [sampler[i] for i in range(20)] == [TrainingEpisodeSampler("coco20i", 0, 2, 20, 2, root=coco_root, splits_dir=coco_root / SPLITS)[i] for i in range(20)]
    data = sampler.load(4)
    assert len(data.reference_images) == 1 and len(data.target_images) == len(data.target_masks) == 2
    assert data.reference_masks[0].any() and all(m.any() for m in data.target_masks)
    assert data.target_images[0].shape == (*HW, 3) and data.target_ignores == [None, None]


def test_training_defaults_and_policies(coco_root, fss_root):
    default = TrainingEpisodeSampler("coco20i", 0, root=coco_root, splits_dir=coco_root / SPLITS, targets=2)
    assert len(default) == 4  # one pass: every distinct training image of the eligible classes
    with pytest.raises(ValueError, match="no class with at least 4 images"):
        TrainingEpisodeSampler("coco20i", 0, root=coco_root, splits_dir=coco_root / SPLITS).classes  # J = 3 needs 4 images
    anchored = TrainingEpisodeSampler("fss1000", 0, 3, policy="every_image", root=fss_root, splits_dir=fss_root / FSS_SPLITS)
    assert len(anchored) == 5 + 4  # bus and fish are the training classes
    assert [anchored[i].reference_id for i in range(5)] == [f"bus/{n}.jpg" for n in range(1, 6)]
    assert all(anchored[i].reference_id not in anchored[i].target_ids for i in range(len(anchored)))
    with pytest.raises(ValueError, match="targets 0"):
        TrainingEpisodeSampler("fss1000", 0, 0, root=fss_root, splits_dir=fss_root / FSS_SPLITS)
    assert isinstance(EpisodeSampler("fss1000", 0, "test", 1, root=fss_root, splits_dir=fss_root / FSS_SPLITS)[0], Episode)


# ----------------------------------------------------------------------------- crops of photos


class _Crops(SegmentationSource):
    """In-memory source whose images are object crops ``"<photo>/<object>"`` (like the part benchmarks)."""

    name = "crops_for_test"

    def __init__(self) -> None:
        # class "a": photo p1 holds three objects, p2 and p3 one each; class "b": only crops of p4
        self._images = {"a": ["p1/0", "p1/1", "p1/2", "p2/0", "p3/0"], "b": ["p4/0", "p4/1"]}

    def class_ids(self):
        return sorted(self._images)

    def image_ids(self, class_id=None):
        return list(self._images[class_id]) if class_id is not None else sorted(i for v in self._images.values() for i in v)

    def source_image_id(self, image_id: str) -> str:
        return image_id.split("/")[0]

    def load_image(self, image_id):  # pragma: no cover - ids only here
        raise NotImplementedError

    def load_mask(self, image_id, class_id):  # pragma: no cover
        raise NotImplementedError


def test_references_never_come_from_the_target_photo():
    sampler = EpisodeSampler(_Crops(), shots=2, n_episodes=50, seed=4)
    assert sampler.classes == ["a"]  # "b" has two crops but one photo
    for episode in sampler:
        target_photo = episode.target_id.split("/")[0]
        assert all(ref.split("/")[0] != target_photo for ref in episode.reference_ids)
    clips = TrainingEpisodeSampler(_Crops(), targets=2, n_episodes=30, seed=1)
    for clip in clips:
        assert all(t.split("/")[0] != clip.reference_id.split("/")[0] for t in clip.target_ids)
