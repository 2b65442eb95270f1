"""Pascal-Part, PACO-Part, ADE20K and the two custom datasets on tiny trees in their real formats."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sansa_probe.data import DatasetNotFoundError, fold_classes, get_dataset, get_spec
from sansa_probe.data.files import read_rgb

try:  # tests/ on sys.path (pytest's default) or the repository root (python -m pytest)
    from fixtures import datasets_extra as fx
    from fixtures.datasets import find_shared
except ImportError:  # pragma: no cover
    from tests.fixtures import datasets_extra as fx
    from tests.fixtures.datasets import find_shared

SANSA_DEMO = (find_shared() or Path("shared-absent")) / "data" / "sansa_demo"


def crop(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Matcher's VOC crop: ``array[ymin:ymax, xmin:xmax]``."""
    x0, y0, x1, y1 = box
    return array[y0:y1, x0:x1]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("name", "folds", "episodes", "policy"),
    [
        ("pascal_part", 4, 2500, "cycle_classes"),
        ("paco_part", 4, 2500, "random_class"),
        ("ade20k", 1, 1000, "random_class"),
        ("folder", 1, None, "every_image"),
        ("coco_json", 1, None, "every_image"),
    ],
)
def test_specs_are_registered(name: str, folds: int, episodes: int | None, policy: str) -> None:
    spec = get_spec(name)
    assert (spec.name, spec.folds, spec.default_episodes, spec.episode_policy) == (name, folds, episodes, policy)
    assert spec.layout.strip()


@pytest.mark.parametrize("name", ["pascal_part", "paco_part", "ade20k", "folder", "coco_json"])
def test_missing_root_folder_names_path_and_layout(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist") as info:
        get_dataset(name, root=tmp_path / "absent")
    assert str(tmp_path / "absent") in str(info.value) and "Expected layout" in str(info.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pascal_part", "all_obj_part_to_image.json"),
        ("paco_part", "paco_part_train.pkl"),
        ("ade20k", "images/validation"),
        ("folder", "images"),
        ("coco_json", "annotations.json"),
    ],
)
def test_empty_root_names_the_missing_file(tmp_path: Path, name: str, expected: str) -> None:
    with pytest.raises(DatasetNotFoundError, match="Expected layout") as info:
        get_dataset(name, root=tmp_path)
    assert expected in str(info.value)


# --------------------------------------------------------------------------- Pascal-Part


def test_pascal_part_folds_are_super_categories(tmp_path: Path) -> None:
    fx.write_pascal_part(tmp_path)
    assert fold_classes("pascal_part", 0, root=tmp_path) == ["bird+FACE", "bird+TAIL", "cat+FACE"]  # WINGS: no train image
    assert fold_classes("pascal_part", 1, root=tmp_path) == ["pottedplant+PLANT", "pottedplant+POT"]
    assert fold_classes("pascal_part", 2, root=tmp_path) == ["person+ARMHAND", "person+FACE"]
    assert fold_classes("pascal_part", 3, root=tmp_path) == ["aeroplane+BODY"]  # aeroplane+TAIL dropped as in Matcher
    train = fold_classes("pascal_part", 0, "train", root=tmp_path)
    assert train == ["aeroplane+BODY", "person+ARMHAND", "person+FACE", "pottedplant+PLANT", "pottedplant+POT"]
    source = get_dataset("pascal_part", fold=0, root=tmp_path)
    assert source.class_ids() == fold_classes("pascal_part", 0, root=tmp_path)
    assert source.class_name("cat+FACE") == "cat face"


def test_pascal_part_object_crops_and_part_masks(tmp_path: Path) -> None:
    voc = fx.write_pascal_part(tmp_path) / "VOCdevkit" / "VOC2010"
    source = get_dataset("pascal_part", fold=0, split="test", root=tmp_path)
    assert source.image_ids("bird+FACE") == ["2008_000001/0", "2008_000002/0", "2008_000002/1"]
    assert source.image_ids("bird+TAIL") == ["2008_000001/0"]
    assert source.image_ids("cat+FACE") == ["2008_000001/1"]
    assert source.source_image_id("2008_000002/1") == "2008_000002"

    full = read_rgb(voc / "JPEGImages" / "2008_000001.jpg")
    (_, box, parts) = fx.PASCAL_OBJECTS["2008_000001"][0]
    image = source.load_image("2008_000001/0")
    assert image.dtype == np.uint8 and image.shape == (28, 32, 3)
    np.testing.assert_array_equal(image, crop(full, box))
    mask = source.load_mask("2008_000001/0", "bird+FACE")
    assert mask.dtype == bool and mask.shape == image.shape[:2]
    np.testing.assert_array_equal(mask, crop(fx.rect_mask(parts["FACE"]), box))
    # a crop of the cat holds no bird part
    assert not source.load_mask("2008_000001/1", "bird+FACE").any()
    # the second bird of photo 2 only has its own FACE, not the first bird's
    (_, box1, parts1), (_, box2, parts2) = fx.PASCAL_OBJECTS["2008_000002"]
    np.testing.assert_array_equal(source.load_mask("2008_000002/1", "bird+FACE"), crop(fx.rect_mask(parts2["FACE"]), box2))


def test_pascal_part_instances_carry_every_part(tmp_path: Path) -> None:
    fx.write_pascal_part(tmp_path)
    source = get_dataset("pascal_part", fold=0, root=tmp_path)
    (instance,) = source.load_instances("2008_000002/0")
    _, box, parts = fx.PASCAL_OBJECTS["2008_000002"][0]
    assert instance.class_id == "bird" and instance.instance_id == 0
    assert sorted(instance.parts) == ["FACE", "WINGS"]  # WINGS is no class, still a part label
    for name, rect in parts.items():
        np.testing.assert_array_equal(instance.parts[name], crop(fx.rect_mask(rect), box))
    np.testing.assert_array_equal(instance.mask, instance.parts["FACE"] | instance.parts["WINGS"])


def test_pascal_part_without_crop_and_train_split(tmp_path: Path) -> None:
    fx.write_pascal_part(tmp_path)
    whole = get_dataset("pascal_part", fold=0, root=tmp_path, box_crop=False)
    assert whole.image_ids("bird+FACE") == ["2008_000001", "2008_000002"]
    (_, _, p1), (_, _, p2) = fx.PASCAL_OBJECTS["2008_000002"]
    np.testing.assert_array_equal(whole.load_mask("2008_000002", "bird+FACE"), fx.rect_mask(p1["FACE"]) | fx.rect_mask(p2["FACE"]))
    assert whole.load_image("2008_000002").shape == (*fx.HW, 3)
    assert {i.class_id for i in whole.load_instances("2008_000001")} == {"bird", "cat"}
    with pytest.raises(ValueError, match="box_crop=False"):
        whole.load_image("2008_000002/0")

    train = get_dataset("pascal_part", fold=0, split="train", root=tmp_path)
    assert train.image_ids("person+FACE") == ["2008_000004/0"]
    assert train.image_ids("aeroplane+BODY") == ["2008_000005/0"]
    with pytest.raises(ValueError, match="not a pascal_part class"):
        train.image_ids("bird+FACE")


def test_pascal_part_errors(tmp_path: Path) -> None:
    voc = fx.write_pascal_part(tmp_path) / "VOCdevkit" / "VOC2010"
    (voc / "JPEGImages" / "2008_000002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="2008_000002.jpg does not exist"):
        get_dataset("pascal_part", fold=0, root=tmp_path).class_ids()
    fx.write_pascal_part(tmp_path)

    fx.corrupt(voc / "JPEGImages" / "2008_000001.jpg")
    source = get_dataset("pascal_part", fold=0, root=tmp_path)
    with pytest.raises(ValueError, match="2008_000001.jpg cannot be decoded"):
        source.load_image("2008_000001/0")
    fx.write_pascal_part(tmp_path)

    path = voc / "Annotations_Part_json_merged_part_classes" / "2008_000001.json"
    data = json.loads(path.read_text())
    data["object"][0]["parts"][0]["mask"] = [fx.rle(np.ones((20, 20), dtype=bool))]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="20x20 .* the image is 48x64"):
        get_dataset("pascal_part", fold=0, root=tmp_path).load_mask("2008_000001/0", "bird+FACE")


# --------------------------------------------------------------------------- PACO-Part


@pytest.fixture
def paco_root(tmp_path: Path) -> Path:
    fx.write_paco_part(tmp_path)
    return tmp_path


def test_paco_part_interleaved_folds_and_sample_filter(paco_root: Path) -> None:
    with pytest.warns(UserWarning, match="448"):
        assert fold_classes("paco_part", 0, root=paco_root) == [105]  # slot 102 has one val image only
    with pytest.warns(UserWarning, match="448"):
        assert fold_classes("paco_part", 1, root=paco_root) == [101]
    with pytest.warns(UserWarning, match="448"):
        assert fold_classes("paco_part", 3, root=paco_root) == []  # 103: one image; 106: none
    with pytest.warns(UserWarning, match="448"):
        assert fold_classes("paco_part", 0, "train", root=paco_root) == [101, 103, 104, 106, 107, 108]
    with pytest.warns(UserWarning, match="448"):
        assert get_dataset("paco_part", fold=3, root=paco_root, min_samples=1).class_ids() == [103]


@pytest.mark.filterwarnings("ignore:.*448:UserWarning")
def test_paco_part_object_crops_and_masks(paco_root: Path) -> None:
    source = get_dataset("paco_part", fold=0, root=paco_root)
    assert source.class_ids() == [105]
    assert source.image_ids(105) == ["1/10", "1/20", "2/30"]
    assert source.source_image_id("1/20") == "1"
    full = read_rgb(paco_root / "PACO-Part" / "coco" / "val2017" / "000000000001.jpg")
    image = source.load_image("1/10")  # obj_bbox [4, 6, 30, 20]
    np.testing.assert_array_equal(image, full[6:26, 4:34])
    np.testing.assert_array_equal(source.load_mask("1/10", 105), fx.rect_mask((8, 14, 6, 20))[6:26, 4:34])
    # numpy-array segmentation and a fractional box (x = 40.5 -> int 40 .. int(55.5) = 55)
    assert source.load_image("1/20").shape == (30, 15, 3)
    np.testing.assert_array_equal(source.load_mask("1/20", 105), fx.rect_mask((10, 20, 42, 52))[5:35, 40:55])

    whole = get_dataset("paco_part", fold=0, root=paco_root, box_crop=False)
    assert whole.image_ids(105) == ["1", "2"]
    np.testing.assert_array_equal(whole.load_mask("1", 105), fx.rect_mask((8, 14, 6, 20)) | fx.rect_mask((10, 20, 42, 52)))


@pytest.mark.filterwarnings("ignore:.*448:UserWarning")
def test_paco_part_instances_group_parts_by_object(paco_root: Path) -> None:
    source = get_dataset("paco_part", fold=0, root=paco_root)
    (obj,) = source.load_instances("1/10")
    assert obj.class_id == 7 and obj.instance_id == 10  # the object's own annotation (id == obj_ann_id)
    assert sorted(obj.parts) == ["101", "105"]  # every part of the object, any fold
    np.testing.assert_array_equal(obj.mask, fx.rect_mask((6, 26, 4, 34))[6:26, 4:34])
    polygon = obj.parts["101"]  # a polygon: rasterised by pycocotools
    assert iou(polygon, fx.rect_mask((16, 24, 20, 30))[6:26, 4:34]) > 0.75
    (other,) = source.load_instances("2/30")
    assert other.class_id == -1 and sorted(other.parts) == ["101", "102", "105"]
    np.testing.assert_array_equal(other.mask, np.logical_or.reduce(list(other.parts.values())))


@pytest.mark.filterwarnings("ignore:.*448:UserWarning")
def test_paco_part_errors(paco_root: Path, tmp_path: Path) -> None:
    base = paco_root / "PACO-Part"
    (base / "coco" / "val2017" / "000000000002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="000000000002.jpg does not exist"):
        get_dataset("paco_part", fold=0, root=paco_root).class_ids()
    fx.write_paco_part(paco_root)

    fx.corrupt(base / "coco" / "val2017" / "000000000001.jpg")
    with pytest.raises(ValueError, match="000000000001.jpg cannot be decoded"):
        get_dataset("paco_part", fold=0, root=paco_root).load_image("1/10")
    fx.write_paco_part(paco_root)

    val_path = base / "paco" / "paco_part_val.pkl"
    with open(val_path, "rb") as handle:
        val = pickle.load(handle)
    val["img2anno"][1][1]["segmentation"] = fx.rle(np.ones((10, 10), dtype=bool))
    with open(val_path, "wb") as handle:
        pickle.dump(val, handle)
    with pytest.raises(ValueError, match="10x10 .* the image is 48x64"):
        get_dataset("paco_part", fold=0, root=paco_root).load_mask("1/10", 105)

    val["img2anno"][1][1]["segmentation"] = Path("not/allowed")  # a global outside the allow-list
    with open(val_path, "wb") as handle:
        pickle.dump(val, handle)
    with pytest.raises(ValueError, match=r"paco_part_val\.pkl was not loaded: it names global pathlib\.\w*Path"):
        get_dataset("paco_part", fold=0, root=paco_root).class_ids()

    (base / "paco" / "paco_part_train.pkl").unlink()
    with pytest.raises(DatasetNotFoundError, match="paco_part_train.pkl does not exist"):
        get_dataset("paco_part", fold=0, root=paco_root)


# --------------------------------------------------------------------------- ADE20K


def test_ade20k_single_fold_all_classes(tmp_path: Path) -> None:
    assert fold_classes("ade20k", 0) == list(range(1, 151))
    assert fold_classes("ade20k", 0, "train") == list(range(1, 151))
    with pytest.raises(ValueError, match="fold 1"):
        fold_classes("ade20k", 1)
    base = fx.write_ade20k(tmp_path)
    val = get_dataset("ade20k", root=tmp_path)
    assert val.class_ids() == [1, 3, 150]
    assert val.class_name(2) == "building" and val.class_name(150) == "flag"
    assert val.image_ids() == ["ADE_val_00000001", "ADE_val_00000002"]
    assert val.image_ids(3) == ["ADE_val_00000001", "ADE_val_00000002"]
    assert val.image_ids(150) == ["ADE_val_00000002"]
    labels = fx.ade_label_map(fx.ADE_LABELS["validation"]["ADE_val_00000002"])
    for class_id in (3, 150, 1):
        mask = val.load_mask("ADE_val_00000002", class_id)
        assert mask.dtype == bool
        np.testing.assert_array_equal(mask, labels == class_id)
    assert val.load_image("ADE_val_00000002").shape == (*fx.HW, 3)
    assert val.load_ignore("ADE_val_00000002") is None
    assert [(i.class_id, int(i.mask.sum())) for i in val.load_instances("ADE_val_00000002")] == [
        (c, int((labels == c).sum())) for c in (3, 150)
    ]
    train = get_dataset("ade20k", split="train", root=base, ignore_unlabeled=True)
    assert train.class_ids() == [1, 5, 13]
    train_labels = fx.ade_label_map(fx.ADE_LABELS["training"]["ADE_train_00000001"])
    np.testing.assert_array_equal(train.load_ignore("ADE_train_00000001"), train_labels == 0)


def test_ade20k_index_cache_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sansa_probe.data.ade20k import ADE20KDataset

    fx.write_ade20k(tmp_path)
    cache = tmp_path / "cache" / "ade_val.json"
    assert get_dataset("ade20k", root=tmp_path, index_cache=cache).class_ids() == [1, 3, 150]
    assert cache.is_file()

    def no_decoding(self, image_id):  # the second build must not read any annotation PNG
        raise AssertionError("index rebuilt despite the cache")

    monkeypatch.setattr(ADE20KDataset, "_labels", no_decoding)
    assert get_dataset("ade20k", root=tmp_path, index_cache=cache).image_ids(150) == ["ADE_val_00000002"]


def test_ade20k_errors(tmp_path: Path) -> None:
    base = fx.write_ade20k(tmp_path)
    (base / "images" / "validation" / "ADE_val_00000002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="ADE_val_00000002.png has no image"):
        get_dataset("ade20k", root=tmp_path).class_ids()
    fx.write_ade20k(tmp_path)

    fx.corrupt(base / "images" / "validation" / "ADE_val_00000001.jpg")
    with pytest.raises(ValueError, match="ADE_val_00000001.jpg cannot be decoded"):
        get_dataset("ade20k", root=tmp_path).load_image("ADE_val_00000001")
    fx.write_ade20k(tmp_path)

    Image.fromarray(np.ones((20, 30), dtype=np.uint8), mode="L").save(base / "annotations" / "validation" / "ADE_val_00000001.png")
    with pytest.raises(ValueError, match="20x30 .* is 48x64"):
        get_dataset("ade20k", root=tmp_path).load_mask("ADE_val_00000001", 1)

    Image.fromarray(np.full(fx.HW, 200, dtype=np.uint8), mode="L").save(base / "annotations" / "validation" / "ADE_val_00000001.png")
    with pytest.raises(ValueError, match="label 200"):
        get_dataset("ade20k", root=tmp_path).class_ids()


# --------------------------------------------------------------------------- folder


def test_folder_classes_masks_and_instances(tmp_path: Path) -> None:
    base = fx.write_folder(tmp_path)
    for split in ("test", "train", "val"):
        assert fold_classes("folder", 0, split, root=base) == ["dog", "traffic_light"]
    source = get_dataset("folder", root=base)
    assert source.class_ids() == ["dog", "traffic_light"]
    assert source.image_ids() == ["img_1", "img_2", "img_3"]  # img_3 has no mask: a target to annotate
    assert source.image_ids("dog") == ["img_1", "img_2"]
    assert source.image_ids("traffic_light") == ["img_1"]
    for file, masks in fx.FOLDER_MASKS.items():
        image_id = Path(file).stem
        assert source.load_image(image_id).shape == (*fx.HW, 3)
        for class_id in source.class_ids():
            expected = fx.rect_mask(masks[class_id]) if class_id in masks else np.zeros(fx.HW, dtype=bool)
            mask = source.load_mask(image_id, class_id)
            assert mask.dtype == bool
            np.testing.assert_array_equal(mask, expected)  # 0/255 gray and 0/1 palette masks alike
    assert [i.class_id for i in source.load_instances("img_1")] == ["dog", "traffic_light"]
    assert source.load_instances("img_3") == []
    assert get_dataset("folder", split="train", root=base).class_ids() == ["dog", "traffic_light"]
    with pytest.raises(ValueError, match="fold 1 is out of range"):
        get_dataset("folder", fold=1, root=base)


def test_folder_errors(tmp_path: Path) -> None:
    base = fx.write_folder(tmp_path)
    Image.fromarray(np.zeros(fx.HW, dtype=np.uint8), mode="L").save(base / "masks" / "ghost_dog.png")
    with pytest.raises(DatasetNotFoundError, match="ghost_dog.png names no image"):
        get_dataset("folder", root=base).class_ids()
    (base / "masks" / "ghost_dog.png").unlink()

    Image.fromarray(np.zeros((10, 12), dtype=np.uint8), mode="L").save(base / "masks" / "img_2_dog.png")
    with pytest.raises(ValueError, match="img_2_dog.png has size 10x12 .*img_2.png is 48x64"):
        get_dataset("folder", root=base).load_mask("img_2", "dog")

    fx.corrupt(base / "images" / "img_1.jpg")
    with pytest.raises(ValueError, match="img_1.jpg cannot be decoded"):
        get_dataset("folder", root=base).load_image("img_1")

    (base / "masks").rename(base / "labels")
    with pytest.raises(DatasetNotFoundError, match="masks does not exist"):
        get_dataset("folder", root=base)


@pytest.mark.realdata
def test_folder_on_sansa_demo() -> None:
    if not SANSA_DEMO.is_dir():
        pytest.skip(f"{SANSA_DEMO} is absent")
    source = get_dataset("folder", root=SANSA_DEMO)
    assert source.class_ids() == ["dog", "frisbee"]
    assert len(source.image_ids()) == 13
    assert len(source.image_ids("dog")) == 13 and len(source.image_ids("frisbee")) == 13  # every image has both masks
    image = source.load_image("image001")
    dog, frisbee = source.load_mask("image001", "dog"), source.load_mask("image001", "frisbee")
    assert image.shape == (427, 640, 3) and dog.shape == frisbee.shape == (427, 640)
    assert dog.sum() == 3830 and frisbee.sum() == 463 and not (dog & frisbee).all()


# --------------------------------------------------------------------------- coco_json


def test_coco_json_classes_masks_and_instances(tmp_path: Path) -> None:
    base = fx.write_coco_json(tmp_path)
    assert fold_classes("coco_json", 0, root=base) == [1, 3]  # category 5 has no annotation
    source = get_dataset("coco_json", root=base)
    assert source.class_ids() == [1, 3]
    assert source.class_name(3) == "dog"
    assert source.image_ids() == ["1", "2", "3"]
    assert source.image_ids(3) == ["1", "2"]
    np.testing.assert_array_equal(source.load_mask("1", 1), fx.rect_mask((4, 20, 4, 24)))  # compressed RLE
    crowd = fx.rect_mask((0, 10, 0, 10)) | fx.rect_mask((30, 40, 30, 40))  # + uncompressed crowd RLE
    np.testing.assert_array_equal(source.load_mask("2", 3), crowd)
    assert iou(source.load_mask("1", 3), fx.rect_mask((25, 45, 30, 60))) > 0.85  # polygon
    assert not source.load_mask("3", 3).any()
    assert [(i.class_id, i.instance_id) for i in source.load_instances("2")] == [(3, 103), (3, 104)]
    assert source.load_image("2").shape == (*fx.HW, 3)
    no_crowd = get_dataset("coco_json", root=base, include_crowd=False)
    np.testing.assert_array_equal(no_crowd.load_mask("2", 3), fx.rect_mask((0, 10, 0, 10)))


def test_coco_json_finds_its_files(tmp_path: Path) -> None:
    base = fx.write_coco_json(tmp_path)
    (base / "annotations").mkdir()
    (base / "annotations.json").rename(base / "annotations" / "instances_val.json")
    assert get_dataset("coco_json", root=base).class_ids() == [1, 3]
    (base / "annotations" / "instances_train.json").write_text("{}")
    with pytest.raises(ValueError, match="annotation_file"):
        get_dataset("coco_json", root=base)
    source = get_dataset("coco_json", root=base, annotation_file="annotations/instances_val.json", image_dir=base / "images")
    assert source.image_ids(1) == ["1"]


def test_coco_json_errors(tmp_path: Path) -> None:
    base = fx.write_coco_json(tmp_path)
    path = base / "annotations.json"
    original = json.loads(path.read_text())

    (base / "images" / "sub" / "b.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="names image 'sub/b.jpg'"):
        get_dataset("coco_json", root=base).class_ids()
    fx.write_coco_json(tmp_path)

    fx.corrupt(base / "images" / "a.jpg")
    with pytest.raises(ValueError, match="a.jpg cannot be decoded"):
        get_dataset("coco_json", root=base).load_image("1")
    fx.write_coco_json(tmp_path)

    data = json.loads(json.dumps(original))
    data["images"][0]["height"] = 50
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="size 50x64 .* is 48x64"):
        get_dataset("coco_json", root=base).load_mask("1", 1)

    data = json.loads(json.dumps(original))
    data["annotations"][0]["image_id"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="annotation 101 names image_id 99"):
        get_dataset("coco_json", root=base).class_ids()

    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid json"):
        get_dataset("coco_json", root=base).class_ids()
