"""Your own data: a folder of images with one mask per image and class, or any COCO-format json.

Two datasets, one fold each (``fold=0``); every class is both a ``"test"`` and a
``"train"`` class (and ``"val"``), so the same folder serves few-shot evaluation,
annotation and training on your own data:

* ``folder`` -- ``images/<image>.<ext>`` and ``masks/<image>_<class>.png`` (the layout of
  a folder of demo photos, one mask per image and class). Image ids are the image file stems, class ids the class
  names (strings).
* ``coco_json`` -- a COCO "instances" json (``images``, ``annotations`` with polygon or RLE
  ``segmentation``, ``categories``) beside an image folder. Image ids are the COCO image ids
  as text, class ids the COCO category ids (ints).

A mask file is read by the one rule of :func:`sansa_probe.io.masks.load_binary_png` (0/1 or
0/255 grey; a palette or colour file by colour, the brighter of its two colours the object).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.files import check_same_size, read_image_size, read_rgb
from sansa_probe.data.registry import DatasetNotFoundError, DatasetSpec, source_builder
from sansa_probe.io.images import IMAGE_SUFFIXES
from sansa_probe.io.masks import decode_segmentation, load_binary_png

__all__ = ["SPECS", "FolderDataset", "CocoJsonDataset"]

FOLDER_LAYOUT = """\
  <root>/
    images/<image>.jpg          (or .jpeg/.png/.bmp/.tif/.webp; <image> is the image id)
    masks/<image>_<class>.png   (one binary mask per image and class, same size as the image:
                                 0/255 or 0/1 grey, or two colours (palette or RGB) of which
                                 the brighter is the class)
  An image without a mask for a class does not contain it; <class> may contain '_'."""

COCO_JSON_LAYOUT = """\
  <root>/
    annotations.json            (COCO instances format: images[id, file_name, height, width],
                                 annotations[id, image_id, category_id, segmentation, iscrowd],
                                 categories[id, name]; or the only *.json in <root> or
                                 <root>/annotations/; or annotation_file=...)
    images/<file_name>          (file_name as in the json; without images/ the paths are
                                 relative to <root>; or image_dir=...)"""


def _require_dir(path: Path, *, dataset: str, layout: str) -> Path:
    if not path.is_dir():
        raise DatasetNotFoundError(f"dataset {dataset!r}: folder {path} does not exist.\nExpected layout:\n{layout}")
    return path


def _require_file(path: Path, *, dataset: str, layout: str) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(f"dataset {dataset!r}: file {path} does not exist.\nExpected layout:\n{layout}")
    return path


def _check_single_fold(dataset: str, fold: int) -> None:
    if fold != 0:
        raise ValueError(f"fold {fold!r} is out of range for {dataset}: it has a single fold 0")


# --------------------------------------------------------------------------- folder


def _scan_folder(root: Path) -> tuple[dict[str, Path], dict[tuple[str, str], Path]]:
    """``({image_id: image path}, {(image_id, class): mask path})`` of a ``folder`` tree."""
    image_dir = _require_dir(root / "images", dataset="folder", layout=FOLDER_LAYOUT)
    mask_dir = _require_dir(root / "masks", dataset="folder", layout=FOLDER_LAYOUT)
    images: dict[str, Path] = {}
    for path in sorted(image_dir.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in images:
            raise ValueError(f"images {images[path.stem].name} and {path.name} in {image_dir} share the image id {path.stem!r}")
        images[path.stem] = path
    if not images:
        raise DatasetNotFoundError(
            f"dataset 'folder': no image files ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}.\nExpected layout:\n{FOLDER_LAYOUT}"
        )
    masks: dict[tuple[str, str], Path] = {}
    for path in sorted(mask_dir.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() != ".png":
            raise ValueError(f"mask file {path}: expected masks/<image>_<class>.png (a PNG file)")
        stem = path.stem
        # the longest known image id followed by '_' wins: image 'a_b' + class 'c' over image 'a' + class 'b_c'
        image_id = None
        cut = stem.rfind("_")
        while cut > 0:
            if stem[:cut] in images:
                image_id = stem[:cut]
                break
            cut = stem.rfind("_", 0, cut)
        if image_id is None:
            raise DatasetNotFoundError(
                f"mask {path} names no image of {image_dir}: expected masks/<image>_<class>.png with "
                f"images/<image>.<ext> present.\nExpected layout:\n{FOLDER_LAYOUT}"
            )
        masks[(image_id, stem[cut + 1 :])] = path
    return images, masks


class FolderDataset(SegmentationSource):
    """A folder of images with one binary mask PNG per image and class (single fold 0).

    ``image_ids()`` lists every image (also those without masks: targets to annotate);
    ``image_ids(c)`` the images that have a mask file for class ``c``. ``load_mask`` of an
    image without a mask for ``c`` is all False.
    """

    name = "folder"

    def __init__(self, *, root: str | os.PathLike, fold: int = 0, split: str = "test") -> None:
        _check_single_fold(self.name, fold)
        self.root = Path(root)
        self.fold = fold
        self.split = split
        _require_dir(self.root / "images", dataset=self.name, layout=FOLDER_LAYOUT)
        _require_dir(self.root / "masks", dataset=self.name, layout=FOLDER_LAYOUT)
        self._images: dict[str, Path] | None = None
        self._masks: dict[tuple[str, str], Path] | None = None
        self._by_class: dict[str, list[str]] | None = None

    def _index(self) -> None:
        if self._by_class is not None:
            return
        images, masks = _scan_folder(self.root)
        by_class: dict[str, list[str]] = {}
        for image_id, class_id in sorted(masks):
            by_class.setdefault(class_id, []).append(image_id)
        self._images, self._masks, self._by_class = images, masks, by_class

    def class_ids(self) -> list[ClassId]:
        self._index()
        return sorted(self._by_class)

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        self._index()
        if class_id is None:
            return sorted(self._images)
        return list(self._by_class[self._check_class(class_id)])

    def _check_class(self, class_id: ClassId) -> str:
        if class_id not in self._by_class:
            raise ValueError(f"class {class_id!r} is not a class of {self.root} (classes: {', '.join(sorted(self._by_class))})")
        return str(class_id)

    def _image_path(self, image_id: str) -> Path:
        self._index()
        if image_id not in self._images:
            raise ValueError(f"image id {image_id!r}: no images/{image_id}.<ext> in {self.root}")
        return self._images[image_id]

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8."""
        return read_rgb(self._image_path(image_id))

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool; all False when the image has no mask file for ``class_id``."""
        image_path = self._image_path(image_id)
        class_id = self._check_class(class_id)
        image_hw = read_image_size(image_path)
        mask_path = self._masks.get((image_id, class_id))
        if mask_path is None:
            return np.zeros(image_hw, dtype=bool)
        mask = load_binary_png(mask_path, name="mask")
        check_same_size(mask.shape, image_hw, mask_what=f"mask {mask_path}", image_what=f"image {image_path}")
        return mask

    def load_instances(self, image_id: str) -> list[Instance]:
        """One :class:`Instance` per mask file of the image (a class mask: no instance split)."""
        self._index()
        classes = [c for c in sorted(self._by_class) if (image_id, c) in self._masks]
        return [Instance(class_id=c, instance_id=i, mask=self.load_mask(image_id, c)) for i, c in enumerate(classes)]


def _folder_fold_classes(fold: int, split: str, root: Path | None) -> list[ClassId]:
    _check_single_fold("folder", fold)
    if root is None:
        raise ValueError("dataset 'folder': its classes come from the mask file names; pass root=<folder>")
    _images, masks = _scan_folder(Path(root))
    return sorted({class_id for _image, class_id in masks})


_build_folder = source_builder(FolderDataset, name="folder", root_hint="<folder with images/ and masks/>")


# --------------------------------------------------------------------------- coco_json


def _find_annotation_file(root: Path, annotation_file: str | os.PathLike | None) -> Path:
    if annotation_file is not None:
        path = Path(annotation_file)
        path = path if path.is_absolute() else root / path
        return _require_file(path, dataset="coco_json", layout=COCO_JSON_LAYOUT)
    default = root / "annotations.json"
    if default.is_file():
        return default
    for folder in (root, root / "annotations"):
        candidates = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise ValueError(
                f"dataset 'coco_json': {len(candidates)} json files in {folder} "
                f"({', '.join(p.name for p in candidates[:5])}); pass annotation_file=... to pick one"
            )
    raise DatasetNotFoundError(f"dataset 'coco_json': no annotation file {default}.\nExpected layout:\n{COCO_JSON_LAYOUT}")


def _load_coco_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"annotation file {path} is not valid json ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"annotation file {path}: expected a COCO json object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"annotation file {path}: missing the COCO list {key!r} (expected images, annotations, categories)")
    return data


def _usable_annotations(data: Mapping[str, Any], path: Path, *, include_crowd: bool) -> list[dict[str, Any]]:
    """The annotations with a non-empty segmentation, checked against images and categories."""
    image_ids = {img.get("id") for img in data["images"]}
    category_ids = {cat.get("id") for cat in data["categories"]}
    usable = []
    for ann in data["annotations"]:
        ann_id = ann.get("id")
        if ann.get("image_id") not in image_ids:
            raise ValueError(
                f"annotation file {path}: annotation {ann_id} names image_id {ann.get('image_id')!r}, which is not in 'images'"
            )
        if ann.get("category_id") not in category_ids:
            raise ValueError(
                f"annotation file {path}: annotation {ann_id} names category_id {ann.get('category_id')!r}, which is not in 'categories'"
            )
        if "segmentation" not in ann:
            raise ValueError(f"annotation file {path}: annotation {ann_id} has no 'segmentation' (expected polygons or RLE)")
        if not ann["segmentation"] or (ann.get("iscrowd", 0) and not include_crowd):
            continue
        usable.append(ann)
    return usable


class CocoJsonDataset(SegmentationSource):
    """Any COCO-format instances json plus its image folder (single fold 0).

    ``image_ids()`` lists every image of the json; ``image_ids(c)`` the images with at least
    one annotation of category ``c``. ``include_crowd`` (default True) keeps ``iscrowd``
    regions in the class masks, as COCO-20i does.
    """

    name = "coco_json"

    def __init__(
        self,
        *,
        root: str | os.PathLike,
        fold: int = 0,
        split: str = "test",
        annotation_file: str | os.PathLike | None = None,
        image_dir: str | os.PathLike | None = None,
        include_crowd: bool = True,
    ) -> None:
        _check_single_fold(self.name, fold)
        self.root = Path(root)
        self.fold = fold
        self.split = split
        self.include_crowd = include_crowd
        self.annotation_file = _find_annotation_file(self.root, annotation_file)
        if image_dir is not None:
            image_dir = Path(image_dir)
            image_dir = image_dir if image_dir.is_absolute() else self.root / image_dir
            self.image_dir = _require_dir(image_dir, dataset=self.name, layout=COCO_JSON_LAYOUT)
        else:
            self.image_dir = self.root / "images" if (self.root / "images").is_dir() else self.root
        self._images: dict[str, dict[str, Any]] | None = None
        self._names: dict[int, str] = {}
        self._anns: dict[str, list[dict[str, Any]]] = {}
        self._by_class: dict[int, list[str]] = {}

    def _index(self) -> None:
        if self._images is not None:
            return
        data = _load_coco_json(self.annotation_file)
        images: dict[str, dict[str, Any]] = {}
        for img in data["images"]:
            if "id" not in img or "file_name" not in img:
                raise ValueError(f"annotation file {self.annotation_file}: image entry {img!r:.80} needs 'id' and 'file_name'")
            path = self.image_dir / img["file_name"]
            if not path.is_file():
                raise DatasetNotFoundError(
                    f"annotation file {self.annotation_file} names image {img['file_name']!r} (id {img['id']}), "
                    f"but {path} does not exist.\nExpected layout:\n{COCO_JSON_LAYOUT}"
                )
            images[str(img["id"])] = {"path": path, "height": img.get("height"), "width": img.get("width")}
        anns: dict[str, list[dict[str, Any]]] = {}
        by_class: dict[int, set[str]] = {}
        for ann in _usable_annotations(data, self.annotation_file, include_crowd=self.include_crowd):
            image_id = str(ann["image_id"])
            anns.setdefault(image_id, []).append(ann)
            by_class.setdefault(int(ann["category_id"]), set()).add(image_id)
        self._names = {int(cat["id"]): str(cat.get("name", cat["id"])) for cat in data["categories"]}
        self._anns = anns
        self._by_class = {c: sorted(ids) for c, ids in by_class.items()}
        self._images = images

    def class_ids(self) -> list[ClassId]:
        self._index()
        return sorted(self._by_class)

    def class_name(self, class_id: ClassId) -> str:
        self._index()
        return self._names.get(int(class_id), str(class_id))

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        self._index()
        if class_id is None:
            return sorted(self._images)
        return list(self._by_class[self._check_class(class_id)])

    def _check_class(self, class_id: ClassId) -> int:
        if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) or int(class_id) not in self._by_class:
            raise ValueError(
                f"class {class_id!r} is not an annotated category id of {self.annotation_file} (ids: {sorted(self._by_class)[:20]})"
            )
        return int(class_id)

    def _image_entry(self, image_id: str) -> dict[str, Any]:
        self._index()
        if image_id not in self._images:
            raise ValueError(f"image id {image_id!r} is not in {self.annotation_file}")
        return self._images[image_id]

    def _image_hw(self, image_id: str) -> tuple[int, int]:
        entry = self._image_entry(image_id)
        actual = read_image_size(entry["path"])
        if entry["height"] is not None and entry["width"] is not None:
            check_same_size(
                (int(entry["height"]), int(entry["width"])),
                actual,
                mask_what=f"the annotation of image {image_id} in {self.annotation_file} (height/width)",
                image_what=f"image {entry['path']}",
            )
        return actual

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8; ``ValueError`` if it disagrees with the json's height/width."""
        self._image_hw(image_id)
        return read_rgb(self._image_entry(image_id)["path"])

    def _decode(self, ann: Mapping[str, Any], hw: tuple[int, int]) -> np.ndarray:
        where = f"{self.annotation_file}, annotation {ann.get('id')}"
        return decode_segmentation(ann["segmentation"], height=hw[0], width=hw[1], where=where)

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool: the union of the image's annotations of category ``class_id``."""
        hw = self._image_hw(image_id)
        class_id = self._check_class(class_id)
        mask = np.zeros(hw, dtype=bool)
        for ann in self._anns.get(image_id, []):
            if int(ann["category_id"]) == class_id:
                mask |= self._decode(ann, hw)
        return mask

    def load_instances(self, image_id: str) -> list[Instance]:
        """One :class:`Instance` per annotation (``instance_id`` = the COCO annotation id)."""
        hw = self._image_hw(image_id)
        return [
            Instance(class_id=int(ann["category_id"]), instance_id=int(ann.get("id", i)), mask=self._decode(ann, hw))
            for i, ann in enumerate(self._anns.get(image_id, []))
        ]


def _coco_json_fold_classes(fold: int, split: str, root: Path | None) -> list[ClassId]:
    _check_single_fold("coco_json", fold)
    if root is None:
        raise ValueError("dataset 'coco_json': its classes come from the json; pass root=<folder>")
    path = _find_annotation_file(Path(root), None)
    data = _load_coco_json(path)
    return sorted({int(ann["category_id"]) for ann in _usable_annotations(data, path, include_crowd=True)})


_build_coco_json = source_builder(CocoJsonDataset, name="coco_json", root_hint="<folder with annotations.json and images/>")


# every image of a user's folder is a target once; one fold holding every class in every split
_USER_DATA = dict(folds=1, default_episodes=None, episode_policy="every_image")
_USER_EXTRA = {"classes_need_root": True, "splits": "train = val = test: every class in every split"}

SPECS: list[DatasetSpec] = [
    DatasetSpec(name="folder", fold_classes=_folder_fold_classes, build=_build_folder, layout=FOLDER_LAYOUT, folder="custom",
                extra={**_USER_EXTRA, "class_id_type": "str"}, **_USER_DATA),
    DatasetSpec(name="coco_json", fold_classes=_coco_json_fold_classes, build=_build_coco_json, layout=COCO_JSON_LAYOUT,
                folder="coco_json", extra={**_USER_EXTRA, "class_id_type": "int"}, **_USER_DATA),
]
