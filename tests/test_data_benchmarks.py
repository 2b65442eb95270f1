"""COCO-20i, LVIS-92i, FSS-1000, Pascal-5i: folds, class lists, masks and errors on tiny real-format trees."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import sansa_probe.data.pascal as pascal
from sansa_probe.data import DatasetNotFoundError, fold_classes, get_dataset, get_spec, list_datasets

try:
    from tests.fixtures.datasets import (
        HW,
        coco_image_id,
        corrupt,
        lvis_image_id,
        write_coco,
        write_fss,
        write_lvis,
        write_voc,
    )
except ImportError:  # pragma: no cover - tests/ not importable as a package
    from fixtures.datasets import HW, coco_image_id, corrupt, lvis_image_id, write_coco, write_fss, write_lvis, write_voc

# pycocotools' decoder (numpy 2) warns on every call; the loaders silence it, the fixtures do not
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


# ----------------------------------------------------------------------------- registry


def test_registry_knows_the_benchmarks_and_rejects_unknown_names():
    assert {"coco20i", "lvis92i", "fss1000", "pascal5i"} <= set(list_datasets())
    assert get_spec("COCO20i").name == "coco20i" and get_spec("fss1000").episode_policy == "every_image"
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        get_dataset("imagenet", root=".")
    with pytest.raises(ValueError, match="unknown dataset"):
        fold_classes("nope", 0)


@pytest.mark.parametrize(("name", "fold"), [("coco20i", 4), ("pascal5i", -1), ("lvis92i", 10), ("fss1000", 1)])
def test_fold_out_of_range(name, fold, tmp_path):
    with pytest.raises(ValueError, match=f"fold {fold} is out of range for {name}"):
        fold_classes(name, fold, root=tmp_path)


def test_missing_root_names_path_and_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="COCO2014") as info:
        get_dataset("coco20i", root=tmp_path / "nowhere")
    assert "instances_val2014.json" in str(info.value)


def test_no_root_and_no_env(monkeypatch):
    monkeypatch.delenv("SANSA_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="SANSA_DATA"):
        get_dataset("pascal5i")


# ----------------------------------------------------------------------------- COCO-20i

FOLD0_LITERATURE = [1, 5, 9, 14, 18, 22, 27, 33, 37, 41, 46, 50, 54, 58, 62, 67, 74, 78, 82, 87]


def test_coco_folds_are_interleaved_20_test_60_train():
    assert fold_classes("coco20i", 0) == FOLD0_LITERATURE
    assert fold_classes("coco20i", 0, "val") == FOLD0_LITERATURE
    assert fold_classes("coco20i", 1)[:4] == [2, 6, 10, 15]
    tests = [set(fold_classes("coco20i", f)) for f in range(4)]
    assert all(len(t) == 20 for t in tests)
    assert set.union(*tests) == set(fold_classes("coco20i", 0) + fold_classes("coco20i", 0, "train"))
    assert sum(len(t) for t in tests) == 80
    for f in range(4):
        train = fold_classes("coco20i", f, "train")
        assert len(train) == 60 and not set(train) & tests[f] and train == sorted(train)
    assert max(max(t) for t in tests) == 90  # COCO's own ids, with gaps


@pytest.mark.parametrize("layout", ["json", "hsnet"])
def test_coco_val_masks_are_union_of_instances(tmp_path, layout):
    fixture = write_coco(tmp_path)
    source = get_dataset("coco20i", fold=0, split="val", root=tmp_path, layout=layout, splits_dir=fixture.splits)
    assert source.layout == layout
    assert source.class_ids() == [1, 5, 9]  # person, airplane, boat; bicycle (2) is a training class
    assert source.class_name(1) == "person"
    assert source.image_ids(1) == [coco_image_id("val2014", i) for i in (1, 2, 4)]
    assert source.image_ids(14) == []  # parking meter: a fold-0 class without images here
    assert source.image_ids() == [coco_image_id("val2014", i) for i in (1, 2, 3, 4, 5)]
    for (image_id, class_id), expected in fixture.masks.items():
        if image_id.startswith("val2014") and class_id in (1, 5, 9):
            mask = source.load_mask(image_id, class_id)
            assert mask.dtype == bool and mask.shape == HW
            np.testing.assert_array_equal(mask, expected, err_msg=f"{image_id} class {class_id}")
    two_people = source.load_mask(coco_image_id("val2014", 1), 1)
    assert two_people[2, 2] and two_people[10, 4] and not two_people[0, 19]
    image = source.load_image(coco_image_id("val2014", 3))
    assert image.shape == (*HW, 3) and image.dtype == np.uint8
    with pytest.raises(ValueError, match="not a class of coco20i fold 0"):
        source.load_mask(coco_image_id("val2014", 4), 2)
    with pytest.raises(ValueError, match="not an image of coco20i fold 0 split 'val'"):
        source.load_image("val2014/COCO_val2014_000000000999.jpg")


def test_coco_layouts_agree_and_test_equals_val(tmp_path):
    fixture = write_coco(tmp_path)
    json_src = get_dataset("coco20i", fold=0, split="test", root=tmp_path, layout="json", splits_dir=fixture.splits)
    hsnet_src = get_dataset("coco20i", fold=0, split="val", root=tmp_path, splits_dir=fixture.splits)  # auto: the PNGs win
    derived = get_dataset("coco20i", fold=0, split="val", root=tmp_path, lists="annotations")
    assert hsnet_src.layout == "hsnet" and derived.layout == "json"
    with pytest.warns(UserWarning, match="lists='annotations' takes every image .* not comparable"):
        assert derived.class_ids() == json_src.class_ids() == hsnet_src.class_ids()
    for c in json_src.class_ids():
        assert json_src.image_ids(c) == hsnet_src.image_ids(c) == derived.image_ids(c)


def test_coco_uses_the_shipped_lists_by_default_in_both_layouts(tmp_path):
    from sansa_probe.data.coco import read_image_lists, shipped_image_lists

    write_coco(tmp_path)  # the fixture's own pickles under splits/ are not read without splits_dir=
    shipped = read_image_lists(shipped_image_lists(0, "val"))
    for layout in ("json", "hsnet"):
        source = get_dataset("coco20i", fold=0, split="val", root=tmp_path, layout=layout)
        assert source.lists_path == shipped_image_lists(0, "val")
        assert source.class_ids() == FOLD0_LITERATURE
        assert source.image_ids(1) == sorted(shipped[0]) and len(source.image_ids(1)) == 19217
        assert coco_image_id("val2014", 1) not in source.image_ids(1)
    train = get_dataset("coco20i", fold=2, split="train", root=tmp_path, layout="json")
    assert train.lists_path.name == "trn_fold2.json.gz" and train.class_ids() == fold_classes("coco20i", 2, "train")
    assert all(image.startswith("train2014/COCO_train2014_") for image in train.image_ids(1)[:50])
    with pytest.raises(ValueError, match="COCO_val2014_000000000001.jpg' is not an image of coco20i fold 0"):
        get_dataset("coco20i", fold=0, split="val", root=tmp_path).load_image(coco_image_id("val2014", 1))
    with pytest.raises(ValueError, match="lists 'all'"):
        get_dataset("coco20i", fold=0, root=tmp_path, lists="all")
    with pytest.raises(ValueError, match="needs layout='json'"):
        get_dataset("coco20i", fold=0, root=tmp_path, lists="annotations", layout="hsnet")


def test_coco_instances_and_crowd(tmp_path):
    fixture = write_coco(tmp_path, layouts=("json",))
    image_id = coco_image_id("val2014", 1)
    source = get_dataset("coco20i", fold=0, split="val", root=tmp_path, splits_dir=fixture.splits)
    instances = source.load_instances(image_id)
    assert [(i.class_id, i.instance_id) for i in instances] == [(1, 101), (1, 102), (5, 103)]
    crowd_image = coco_image_id("val2014", 2)
    with_crowd = source.load_mask(crowd_image, 1)
    without = get_dataset("coco20i", fold=0, split="val", root=tmp_path, include_crowd=False, splits_dir=fixture.splits)
    np.testing.assert_array_equal(with_crowd & ~without.load_mask(crowd_image, 1), fixture.crowd[(crowd_image, 1)])


def test_coco_train_split_uses_train2014_and_training_classes(tmp_path):
    fixture = write_coco(tmp_path)
    for layout in ("json", "hsnet"):
        source = get_dataset("coco20i", fold=0, split="train", root=tmp_path, layout=layout, splits_dir=fixture.splits)
        assert source.class_ids() == [2, 3]  # person (1) appears in image 14 but is a fold-0 test class
        assert source.image_ids(2) == [coco_image_id("train2014", i) for i in (11, 12, 13)]
    fold1 = get_dataset("coco20i", fold=1, split="train", root=tmp_path, layout="json", splits_dir=fixture.splits)
    assert fold1.class_ids() == [1, 3]  # bicycle is a fold-1 test class


def test_coco_missing_split_file_and_masks(tmp_path):
    fixture = write_coco(tmp_path, layouts=("json",))
    with pytest.raises(DatasetNotFoundError, match=r"annotations/val2014 does not exist \(hsnet layout\)") as info:
        get_dataset("coco20i", fold=2, split="val", root=tmp_path, layout="hsnet")
    assert "Expected layout" in str(info.value)
    with pytest.raises(DatasetNotFoundError, match=r"mysplits/trn/fold0\.pkl"):
        get_dataset("coco20i", fold=0, split="train", root=tmp_path, splits_dir=tmp_path / "mysplits")
    (fixture.splits / "val" / "fold2.pkl").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"splits/val/fold2\.pkl"):
        get_dataset("coco20i", fold=2, split="val", root=tmp_path, splits_dir=fixture.splits)


def test_coco_corrupt_split_pickle(tmp_path):
    fixture = write_coco(tmp_path, layouts=("hsnet",))
    (fixture.splits / "val" / "fold0.pkl").write_bytes(pickle.dumps(["not", "a", "dict"]))
    source = get_dataset("coco20i", fold=0, split="val", root=tmp_path, splits_dir=fixture.splits)
    with pytest.raises(ValueError, match=r"fold0\.pkl holds a list"):
        source.class_ids()


def test_coco_annotation_for_missing_image(tmp_path):
    fixture = write_coco(tmp_path, layouts=("json",))
    path = fixture.folder / "annotations" / "instances_val2014.json"
    data = json.loads(path.read_text())
    data["annotations"].append({**data["annotations"][0], "id": 9999, "image_id": 777})
    path.write_text(json.dumps(data))
    source = get_dataset("coco20i", fold=0, split="val", root=tmp_path, splits_dir=fixture.splits)
    with pytest.raises(ValueError, match=r"annotation 9999 refers to image id 777") as info:
        source.image_ids()
    assert "instances_val2014.json" in str(info.value)


def test_coco_missing_and_corrupt_image_files(tmp_path):
    fixture = write_coco(tmp_path, layouts=("json",))
    source = get_dataset("coco20i", fold=0, split="val", root=tmp_path, splits_dir=fixture.splits)
    gone = coco_image_id("val2014", 3)
    (fixture.folder / gone).unlink()
    with pytest.raises(DatasetNotFoundError, match="COCO_val2014_000000000003.jpg does not exist"):
        source.load_image(gone)
    broken = coco_image_id("val2014", 5)
    corrupt(fixture.folder / broken)
    with pytest.raises(ValueError, match=r"COCO_val2014_000000000005\.jpg cannot be decoded"):
        source.load_image(broken)


def test_coco_construction_is_lazy(tmp_path):
    fixture = write_coco(tmp_path, layouts=("json",))
    (fixture.folder / "annotations" / "instances_val2014.json").write_text("{ broken json")
    source = get_dataset("coco20i", fold=0, split="val", root=tmp_path, splits_dir=fixture.splits)  # nothing read yet
    with pytest.raises(ValueError, match="cannot read COCO annotations"):
        source.class_ids()


# ----------------------------------------------------------------------------- LVIS-92i


def test_lvis_folds_follow_matcher_and_depend_on_shots(tmp_path):
    write_lvis(tmp_path)
    # shots=1: categories with >= 2 val images are 1..20 (21 has one) -> 2 per fold, interleaved
    folds = [fold_classes("lvis92i", f, root=tmp_path) for f in range(10)]
    assert folds == [[f + 1, f + 11] for f in range(10)]
    assert fold_classes("lvis92i", 3, "train", root=tmp_path) == [c for c in range(1, 22) if c not in (4, 14, 5)]
    # shots=2: only the odd categories have 3 images -> one class per fold
    src = get_dataset("lvis92i", fold=4, split="test", root=tmp_path, shots=2)
    assert src.class_ids() == [9]
    assert get_spec("lvis92i").fold_classes(4, "test", tmp_path / "LVIS", shots=2) == [9]


def test_lvis_masks_union_and_image_folders(tmp_path):
    fixture = write_lvis(tmp_path)
    source = get_dataset("lvis92i", fold=0, split="val", root=tmp_path)
    assert source.class_ids() == [1, 11]
    assert source.class_name(11) == "lvis_cat_11"
    assert source.image_ids(1) == [lvis_image_id(i, "val2017") for i in (101, 102, 103)]
    for (image_id, class_id), expected in fixture.masks.items():
        if class_id in (1, 11):
            np.testing.assert_array_equal(source.load_mask(image_id, class_id), expected)
    union = source.load_mask(lvis_image_id(101, "val2017"), 1)
    assert union[15, 19] and union.sum() == fixture.masks[(lvis_image_id(101, "val2017"), 1)].sum()
    assert len(source.load_instances(lvis_image_id(101, "val2017"))) == 3  # two of class 1, one of 11
    assert source.load_image(lvis_image_id(103, "val2017")).shape == (*HW, 3)
    # category 21 lives in a train2017 image (LVIS val draws on both COCO folders)
    fold0_train = get_dataset("lvis92i", fold=0, split="train", root=tmp_path)
    assert 21 in fold0_train.class_ids() and 5 not in fold0_train.class_ids()


def test_lvis_pickle_layout_keeps_key_order(tmp_path):
    fixture = write_lvis(tmp_path, layout="pkl", reverse_pickle_keys=True)
    # eligible categories in pickle order are 20, 19, ..., 1 -> fold 0 takes positions 0 and 10
    assert fold_classes("lvis92i", 0, root=tmp_path) == [10, 20]
    source = get_dataset("lvis92i", fold=9, split="test", root=tmp_path)
    assert source.layout == "pkl" and source.class_ids() == [1, 11]
    for c in (1, 11):
        for image_id in source.image_ids(c):
            np.testing.assert_array_equal(source.load_mask(image_id, c), fixture.masks[(image_id, c)])


def test_lvis_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="lvis_v1_val.json"):
        fold_classes("lvis92i", 0, root=tmp_path)
    fixture = write_lvis(tmp_path)
    path = fixture.folder / "lvis_v1_val.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["image_id"] = 4242
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="refers to image id 4242"):
        fold_classes("lvis92i", 0, root=tmp_path)
    with pytest.raises(ValueError, match="shots 0"):
        get_dataset("lvis92i", fold=0, root=tmp_path, shots=0)


# ----------------------------------------------------------------------------- FSS-1000


def test_fss_shipped_hsnet_lists_and_derived_train_val(tmp_path):
    lists = {s: fold_classes("fss1000", 0, s) for s in ("train", "val", "test")}  # no data needed
    assert [len(lists[s]) for s in ("train", "val", "test")] == [520, 240, 240]
    assert all(len(set(names)) == len(names) and names == sorted(names) for names in lists.values())
    assert not set(lists["train"]) & set(lists["val"]) and not set(lists["val"]) & set(lists["test"])
    assert not set(lists["train"]) & set(lists["test"]) and "abe's_flyingfish" in lists["test"]
    write_fss(tmp_path, {}, all_classes=True)
    assert {s: fold_classes("fss1000", 0, s, root=tmp_path) for s in lists} == lists  # folders on disk change nothing
    with pytest.warns(UserWarning, match="lists='derived'.* not HSNet's published"):
        derived = {s: fold_classes("fss1000", 0, s, root=tmp_path, lists="derived") for s in ("train", "val")}
    assert [len(derived[s]) for s in ("train", "val")] == [520, 240]
    assert all(name.startswith("other_class_") for name in derived["train"] + derived["val"])
    with pytest.warns(UserWarning):
        assert derived == {s: fold_classes("fss1000", 0, s, root=tmp_path, lists="derived") for s in derived}  # deterministic
    with pytest.raises(DatasetNotFoundError, match="lists='derived' splits the class folders on disk"):
        fold_classes("fss1000", 0, "train", lists="derived")
    with pytest.raises(ValueError, match="lists 'mine'"):
        fold_classes("fss1000", 0, "train", lists="mine")


def test_fss_defective_mask_is_resized_to_its_image_with_one_warning(tmp_path):
    """The public peregine_falcon/8.png is an RGB 480x960 mask for a 224x224 image."""
    from PIL import Image

    from sansa_probe.data import EpisodeSampler

    write_fss(tmp_path, {"peregine_falcon": 3}, split_lists={"test": ["peregine_falcon"]})
    folder = tmp_path / "FSS-1000" / "peregine_falcon"
    grey = np.zeros((48, 96), dtype=np.uint8)  # twice the image's height, 4.8x its width
    grey[:24, :48] = 200  # top-left quarter: foreground
    grey[24:, 48:] = 127  # just below the threshold
    Image.fromarray(np.repeat(grey[..., None], 3, axis=-1), mode="RGB").save(folder / "2.png")
    source = get_dataset("fss1000", split="test", root=tmp_path, splits_dir=tmp_path / "FSS-1000" / "splits")
    with pytest.warns(UserWarning, match=r"peregine_falcon/2\.png is 48x96 but its image is 16x20 .*known defect") as record:
        mask = source.load_mask("peregine_falcon/2.jpg", "peregine_falcon")
        again = source.load_mask("peregine_falcon/2.jpg", "peregine_falcon")
    assert len([w for w in record if "peregine_falcon/2.png" in str(w.message)]) == 1
    expected = np.zeros(HW, dtype=bool)
    expected[:8, :10] = True  # rows floor(i * 3) < 24, columns floor(j * 4.8) < 48
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(again, expected)
    fresh = get_dataset("fss1000", split="test", root=tmp_path, splits_dir=tmp_path / "FSS-1000" / "splits")
    sampler = EpisodeSampler(fresh, shots=2)
    assert len(sampler) == 3  # the image stays a target: no episode is skipped
    with pytest.warns(UserWarning, match="known defect") as record:
        loaded = [sampler.load(i) for i in range(3)]  # 2.png is read three times (target once, reference twice)
    assert len(record) == 1
    assert [d.target_id for d in loaded] == [f"peregine_falcon/{n}.jpg" for n in (1, 2, 3)]
    assert all(d.target_mask.shape == d.target_image.shape[:2] for d in loaded)


def test_fss_masks_threshold_and_ids(tmp_path):
    fixture = write_fss(tmp_path, {"bus": 4, "fish": 3, "moon": 2}, all_classes=True, data_subdir=True)
    source = get_dataset("fss1000", split="test", root=tmp_path)
    assert source.class_ids() == ["bus", "fish", "moon"]  # the other 237 test folders are empty
    assert source.image_ids("fish") == ["fish/1.jpg", "fish/2.jpg", "fish/3.jpg"]
    for image_id, expected in fixture.masks.items():
        cls = image_id.split("/")[0]
        np.testing.assert_array_equal(source.load_mask(image_id, cls), expected)
        assert not source.load_mask(image_id, "bus" if cls != "bus" else "fish").any()
    assert source.load_image("bus/2.jpg").shape == (*HW, 3)
    with pytest.raises(ValueError, match="not an image of fss1000"):
        source.load_image("bus/9.jpg")


@pytest.mark.parametrize(("hw_in", "hw_out"), [((480, 960), (224, 224)), ((48, 96), (16, 20)), ((7, 13), (16, 20)), ((500, 333), (224, 224))])
def test_fss_resize_is_torch_nearest(hw_in, hw_out):
    """The defective mask is resized as HSNet resizes every mask (F.interpolate, mode='nearest')."""
    import torch

    from sansa_probe.data.fss import resize_nearest

    mask = np.random.default_rng(0).random(hw_in) > 0.5
    expected = torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None].float(), hw_out, mode="nearest")[0, 0].numpy() > 0.5
    np.testing.assert_array_equal(resize_nearest(mask, hw_out), expected)


def test_fss_split_files_and_missing_folders(tmp_path):
    write_fss(tmp_path, {"bus": 2, "ab_wheel": 2, "abacus": 2},
              split_lists={"trn": ["ab_wheel"], "val": ["abacus"], "test": ["bus"]})
    mine = tmp_path / "FSS-1000" / "splits"
    assert get_dataset("fss1000", split="train", root=tmp_path, splits_dir=mine).class_ids() == ["ab_wheel"]
    assert fold_classes("fss1000", 0, "val", root=tmp_path, splits_dir=mine) == ["abacus"]
    with pytest.raises(DatasetNotFoundError, match=r"520 class folder\(s\) of split 'train' are missing"):
        get_dataset("fss1000", split="train", root=tmp_path)  # the shipped lists name all 520 classes
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "test.txt").write_text("bus\nghost\n")
    with pytest.raises(DatasetNotFoundError, match=r"1 class folder\(s\) of split 'test' are missing .*ghost"):
        get_dataset("fss1000", split="test", root=tmp_path, splits_dir=lists)
    (tmp_path / "FSS-1000" / "bus" / "2.png").unlink()
    source = get_dataset("fss1000", split="test", root=tmp_path, splits_dir=mine)
    with pytest.raises(DatasetNotFoundError, match=r"bus/2\.png does not exist"):
        source.load_mask("bus/2.jpg", "bus")
    with pytest.raises(DatasetNotFoundError, match=r"class list .*val\.txt does not exist"):
        get_dataset("fss1000", split="val", root=tmp_path, splits_dir=tmp_path)


# ----------------------------------------------------------------------------- Pascal-5i


def test_pascal_folds_and_shipped_lists():
    for f in range(4):
        assert fold_classes("pascal5i", f) == list(range(5 * f + 1, 5 * f + 6))
        assert fold_classes("pascal5i", f, "train") == [c for c in range(1, 21) if not 5 * f < c <= 5 * f + 5]
    shipped = Path(pascal.__file__).with_name("splits") / "pascal" / "val"
    counts = [len(pascal._read_pairs(shipped / f"fold{f}.txt")) for f in range(4)]
    assert counts == [346, 451, 725, 346]
    for f in range(4):
        assert {c for _, c in pascal._read_pairs(shipped / f"fold{f}.txt")} == set(range(5 * f + 1, 5 * f + 6))


def test_pascal_masks_and_boundary_ignore(tmp_path):
    fixture = write_voc(tmp_path)
    source = get_dataset("pascal5i", fold=0, split="test", root=tmp_path, splits_dir=fixture.folder / "splits")
    assert source.class_ids() == [1, 2] and source.class_name(2) == "bicycle"
    assert source.image_ids(2) == ["2008_000003", "2008_000004", "2008_000005"]
    for (image_id, cls), expected in fixture.masks.items():
        if cls in (1, 2) and image_id in source.image_ids(cls):
            mask = source.load_mask(image_id, cls)
            np.testing.assert_array_equal(mask, expected)
            ignore = source.load_ignore(image_id)
            np.testing.assert_array_equal(ignore, fixture.ignore[image_id])
            assert ignore.any() and not (mask & ignore).any()


def test_pascal_shipped_val_list_and_missing_image(tmp_path):
    write_voc(tmp_path)  # the fixture's own lists under splits/ are not read without splits_dir=
    source = get_dataset("pascal5i", fold=0, split="val", root=tmp_path)
    assert source.class_ids() == [1, 2, 3, 4, 5] and len(source.image_ids(1)) > 50
    assert source.episode_pairs() == [(c, image) for image, c in pascal.shipped_val_pairs(0)]  # file order, not sorted
    assert source.episode_pairs()[:3] == [(1, "2007_000033"), (4, "2007_000061"), (2, "2007_000129")]
    assert source.load_mask("2007_000033", 1).sum() == 10 * 13
    with pytest.raises(DatasetNotFoundError, match=r"JPEGImages/2007_000061\.jpg does not exist"):
        source.load_image("2007_000061")  # listed by the benchmark, absent from this tree


def test_pascal_training_pairs_shipped_listed_or_derived(tmp_path):
    write_voc(tmp_path)
    shipped = get_dataset("pascal5i", fold=0, split="train", root=tmp_path)  # HSNet's lists of folds 1, 2, 3
    expected_pairs = {p for f in (1, 2, 3) for p in pascal.shipped_train_pairs(f)}
    assert {(image, c) for c in shipped.class_ids() for image in shipped.image_ids(c)} == expected_pairs
    assert shipped.class_ids() == list(range(6, 21))
    cache = tmp_path / "cache" / "pascal_trn.json"
    with pytest.warns(UserWarning, match="lists='derived' trains on every SegmentationClassAug image"):
        derived = get_dataset("pascal5i", fold=0, split="train", root=tmp_path, lists="derived", index_cache=cache)
        expected = {6: ["2009_000001", "2009_000002", "2009_000004"], 7: ["2009_000001", "2009_000003"]}
        assert {c: derived.image_ids(c) for c in derived.class_ids()} == expected  # class 1 of 2009_000003 is a test class
    assert cache.is_file()
    with pytest.warns(UserWarning, match="lists='derived'"):
        cached = get_dataset("pascal5i", fold=0, split="train", root=tmp_path, lists="derived", index_cache=cache)
        assert {c: cached.image_ids(c) for c in cached.class_ids()} == expected
    other = tmp_path / "other"
    listed_fixture = write_voc(other, trn_lists=True)
    listed = get_dataset("pascal5i", fold=1, split="train", root=other, splits_dir=listed_fixture.folder / "splits")
    assert listed.class_ids() == [1]  # the fixture's trn lists of folds 0, 2, 3: only class 1 has training pairs
    assert listed.image_ids(1) == ["2009_000003"]
    assert listed_fixture.masks[("2009_000003", 1)].sum() == listed.load_mask("2009_000003", 1).sum()
    with pytest.raises(ValueError, match="lists 'sbd'"):
        get_dataset("pascal5i", fold=0, split="train", root=tmp_path, lists="sbd")


def test_pascal_bad_split_files(tmp_path):
    fixture = write_voc(tmp_path)
    mine = fixture.folder / "splits"
    (mine / "val" / "fold1.txt").write_text("2008_000001__15\n")
    with pytest.raises(ValueError, match=r"fold1\.txt pairs .* not a test class of fold 1"):
        get_dataset("pascal5i", fold=1, split="val", root=tmp_path, splits_dir=mine)
    (mine / "val" / "fold3.txt").write_text("2008_000001_16\n")
    with pytest.raises(ValueError, match=r"fold3\.txt, line 1"):
        get_dataset("pascal5i", fold=3, split="val", root=tmp_path, splits_dir=mine)
    (mine / "val" / "fold2.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"split file .*val/fold2\.txt does not exist"):
        get_dataset("pascal5i", fold=2, split="val", root=tmp_path, splits_dir=mine)
    with pytest.raises(DatasetNotFoundError, match="SegmentationClassAug"):
        get_dataset("pascal5i", fold=0, root=tmp_path / "VOC2012" / "JPEGImages")
