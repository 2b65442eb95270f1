"""LVIS-92i: Matcher's few-shot benchmark on LVIS v1 (10 interleaved folds of ~92 classes).

The construction (Matcher, kept by SANSA), for ``k`` shots:

1. From the LVIS *val* annotations, in category order, keep the categories with more than
   ``k`` images (an episode needs a target plus ``k`` distinct references). With ``k = 1``
   this is the paper's 920 classes "that appear in at least two images"; the eligible set,
   and so every fold, depends on ``k``.
2. Fold ``f`` tests ``eligible[f + 10 * v]`` for ``v = 0 .. len(eligible) // 10 - 1``.
3. Its training classes are the LVIS *train* categories with more than ``k`` images
   (SANSA's filter) that are not test classes of the fold.

Class ids are LVIS category ids. Two on-disk layouts under ``<root>/LVIS``:

* ``pkl``  -- Matcher's ``lvis_{train,val}.pkl`` (``{category id: {'<folder>/<image>.jpg':
  {'annotations': [...]}}}``); the category order of step 1 is the pickle's key order. They
  are read with the allow-list unpickler of :mod:`sansa_probe.data.safe_pickle`.
* ``json`` -- the official ``lvis_v1_{train,val}.json`` (also under ``annotations/``); the
  category order is ascending category id (Matcher's pickles are not published with their
  build script, so this order is our reconstruction -- prefer the pickles for exact folds).

Images live in ``coco/{train2017,val2017}/`` (COCO 2017). Splits: ``train`` uses the LVIS
train annotations and the fold's training classes; ``val`` and ``test`` are the same
evaluation split (LVIS val annotations, the fold's test classes).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.files import read_image_size, read_rgb
from sansa_probe.data.registry import DatasetNotFoundError, DatasetSpec, source_builder
from sansa_probe.data.safe_pickle import load_data_pickle
from sansa_probe.io.masks import decode_segmentation

__all__ = ["LVIS_LAYOUT", "Lvis92iSource", "SPECS", "lvis_fold_classes"]

N_FOLDS = 10

LVIS_LAYOUT = """\
LVIS/
  coco/train2017/<12 digits>.jpg         (COCO 2017 images)
  coco/val2017/<12 digits>.jpg
  either (Matcher):
    lvis_train.pkl                       ({category id: {'train2017/<name>.jpg': {'annotations': [...]}}})
    lvis_val.pkl
  or (official LVIS v1):
    lvis_v1_train.json                   (or annotations/lvis_v1_train.json)
    lvis_v1_val.json"""


@dataclass
class _SplitIndex:
    """One LVIS annotation file: ``classwise[category][image path] -> segmentations`` (ordered)."""

    path: Path
    classwise: dict[int, dict[str, list[Any]]]
    names: dict[int, str]
    sizes: dict[str, tuple[int, int]]  # image path -> (height, width); empty for the pickles

    def eligible(self, shots: int) -> list[int]:
        """Categories (in file order) with more than ``shots`` images."""
        return [c for c, images in self.classwise.items() if len(images) > shots]


def _check_fold(fold: int) -> None:
    if not isinstance(fold, int) or isinstance(fold, bool) or not 0 <= fold < N_FOLDS:
        raise ValueError(f"fold {fold!r} is out of range for lvis92i: expected 0..{N_FOLDS - 1}")


def _check_shots(shots: int) -> None:
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
        raise ValueError(f"shots {shots!r}: expected an integer >= 1")


def _annotation_file(root: Path, split: str, layout: str) -> tuple[str, Path]:
    """``(layout, path)`` of the annotation file for ``split`` ("train"/"val")."""
    if not root.is_dir():
        raise DatasetNotFoundError(f"lvis92i: folder {root} does not exist.\nExpected layout:\n{LVIS_LAYOUT}")
    pkl = root / f"lvis_{split}.pkl"
    jsons = [root / f"lvis_v1_{split}.json", root / "annotations" / f"lvis_v1_{split}.json"]
    if layout == "pkl" or (layout == "auto" and (pkl.is_file() or (root / "lvis_val.pkl").is_file())):
        if not pkl.is_file():
            raise DatasetNotFoundError(f"lvis92i: annotation file {pkl} does not exist (pkl layout).\nExpected layout:\n{LVIS_LAYOUT}")
        return "pkl", pkl
    for path in jsons:
        if path.is_file():
            return "json", path
    raise DatasetNotFoundError(
        f"lvis92i: found neither {pkl} (Matcher layout) nor {jsons[0]} (official layout).\nExpected layout:\n{LVIS_LAYOUT}"
    )


def _load_index(root: Path, split: str, layout: str) -> _SplitIndex:
    kind, path = _annotation_file(root, split, layout)
    return _load_pickle(path) if kind == "pkl" else _load_json(path)


def _load_pickle(path: Path) -> _SplitIndex:
    table = load_data_pickle(path, what="Matcher's LVIS-92i annotation pickle {category id: {image: {'annotations': [...]}}}")
    if not isinstance(table, dict):
        raise ValueError(f"{path} holds a {type(table).__name__}; expected a dict category id -> {{image: {{'annotations': [...]}}}}")
    classwise: dict[int, dict[str, list[Any]]] = {}
    for cid, images in table.items():
        if not isinstance(images, dict):
            raise ValueError(f"{path}: category {cid!r} maps to a {type(images).__name__}; expected a dict image -> info")
        classwise[int(cid)] = {
            str(name): [ann["segmentation"] for ann in info.get("annotations", [])] for name, info in images.items()
        }
    return _SplitIndex(path=path, classwise=classwise, names={}, sizes={})


def _image_path(image: dict[str, Any]) -> str:
    """``'<folder>/<file>'`` of an LVIS image record (from ``coco_url``, else ``file_name``)."""
    url = image.get("coco_url")
    if url:
        parts = str(url).rstrip("/").split("/")
        return f"{parts[-2]}/{parts[-1]}"
    return str(image["file_name"])


def _load_json(path: Path) -> _SplitIndex:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read LVIS annotations {path}: {exc}") from exc
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"{path} has no {key!r} list; expected an LVIS v1 annotation file")
    images = {img["id"]: img for img in data["images"]}
    names = {int(cat["id"]): str(cat.get("name", cat["id"])) for cat in data["categories"]}
    classwise: dict[int, dict[str, list[Any]]] = {cid: {} for cid in sorted(names)}
    sizes: dict[str, tuple[int, int]] = {}
    for ann in data["annotations"]:
        image = images.get(ann["image_id"])
        if image is None:
            raise ValueError(
                f"{path}: annotation {ann.get('id')} refers to image id {ann['image_id']}, which is not listed under 'images'"
            )
        if ann["category_id"] not in classwise:
            raise ValueError(f"{path}: annotation {ann.get('id')} has category {ann['category_id']}, which is not under 'categories'")
        name = _image_path(image)
        sizes[name] = (int(image["height"]), int(image["width"]))
        classwise[ann["category_id"]].setdefault(name, []).append(ann["segmentation"])
    return _SplitIndex(path=path, classwise={c: v for c, v in classwise.items() if v}, names=names, sizes=sizes)


def _test_classes(val: _SplitIndex, fold: int, shots: int) -> list[int]:
    eligible = val.eligible(shots)
    per_fold = len(eligible) // N_FOLDS
    return [eligible[fold + N_FOLDS * v] for v in range(per_fold)]


def lvis_fold_classes(
    fold: int, split: str = "test", root: Path | None = None, *, shots: int = 1, layout: str = "auto"
) -> list[int]:
    """LVIS category ids of ``fold`` (test classes, or with ``split="train"`` its training classes).

    Needs the annotation files under ``root`` (the ``LVIS`` folder); ``shots`` sets the
    eligibility threshold (more than ``shots`` images).
    """
    _check_fold(fold)
    _check_shots(shots)
    if root is None:
        raise DatasetNotFoundError(f"lvis92i: the folds are built from the annotations; pass root=.\nExpected layout:\n{LVIS_LAYOUT}")
    root = Path(root)
    test = _test_classes(_load_index(root, "val", layout), fold, shots)
    if split != "train":
        return sorted(test)
    excluded = set(test)
    return sorted(c for c in _load_index(root, "train", layout).eligible(shots) if c not in excluded)


class Lvis92iSource(SegmentationSource):
    """One fold and split of LVIS-92i (see the module docstring for the construction).

    Image ids are paths relative to the image folder (``val2017/000000000139.jpg``). The
    annotation file is read on first use; masks are decoded per call.

    Args:
        root: the ``LVIS`` folder.
        fold: 0..9.
        split: ``"train"`` or ``"val"``/``"test"``.
        shots: the shot count the folds are built for (eligibility: more than ``shots`` images).
        layout: ``"auto"``, ``"pkl"`` (Matcher) or ``"json"`` (LVIS v1).
    """

    name = "lvis92i"

    def __init__(
        self, *, root: str | os.PathLike, fold: int, split: str, shots: int = 1, layout: str = "auto"
    ) -> None:
        _check_fold(fold)
        _check_shots(shots)
        if split not in ("train", "val", "test"):
            raise ValueError(f"split {split!r}: expected 'train', 'val' or 'test'")
        if layout not in ("auto", "pkl", "json"):
            raise ValueError(f"layout {layout!r}: expected 'auto', 'pkl' or 'json'")
        self.root = Path(root)
        self.fold = fold
        self.split = split
        self.shots = shots
        self.layout, self.annotation_path = _annotation_file(self.root, "train" if split == "train" else "val", layout)
        _annotation_file(self.root, "val", layout)  # the test classes always come from the val file
        self.image_root = self.root / "coco" if (self.root / "coco").is_dir() else self.root
        self._index: _SplitIndex | None = None
        self._classes: list[int] | None = None
        self._per_image: dict[str, list[int]] | None = None

    def _load(self) -> tuple[_SplitIndex, list[int]]:
        if self._index is None or self._classes is None:
            layout = self.layout
            val = _load_index(self.root, "val", layout)
            test = _test_classes(val, self.fold, self.shots)
            if self.split == "train":
                index = _load_index(self.root, "train", layout)
                excluded = set(test)
                classes = [c for c in index.eligible(self.shots) if c not in excluded]
            else:
                index, classes = val, test
            self._index, self._classes = index, sorted(classes)
        return self._index, self._classes

    def _images_of(self) -> dict[str, list[int]]:
        if self._per_image is None:
            index, classes = self._load()
            per_image: dict[str, list[int]] = {}
            for cid in classes:
                for name in index.classwise[cid]:
                    per_image.setdefault(name, []).append(cid)
            self._per_image = per_image
        return self._per_image

    def _check_image(self, image_id: str) -> None:
        if image_id not in self._images_of():
            raise ValueError(f"image id {image_id!r} has no annotation of the lvis92i fold {self.fold} {self.split!r} classes")

    def _size(self, image_id: str) -> tuple[int, int]:
        index, _ = self._load()
        if image_id in index.sizes:
            return index.sizes[image_id]
        return read_image_size(self.image_root / image_id, what="lvis92i image")

    # --------------------------------------------------------------- interface

    def class_ids(self) -> list[ClassId]:
        return list(self._load()[1])

    def class_name(self, class_id: ClassId) -> str:
        index, _ = self._load()
        return index.names.get(int(class_id), str(class_id))

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        index, classes = self._load()
        if class_id is None:
            return sorted(self._images_of())
        if class_id not in classes:
            raise ValueError(f"class {class_id!r} is not a class of lvis92i fold {self.fold} split {self.split!r}")
        return sorted(index.classwise[int(class_id)])

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8."""
        self._check_image(image_id)
        return read_rgb(self.image_root / image_id, what="lvis92i image")

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool: the union of every annotation of ``class_id`` in the image."""
        self._check_image(image_id)
        index, classes = self._load()
        if class_id not in classes:
            raise ValueError(f"class {class_id!r} is not a class of lvis92i fold {self.fold} split {self.split!r}")
        height, width = self._size(image_id)
        mask = np.zeros((height, width), dtype=bool)
        for segmentation in index.classwise[int(class_id)].get(image_id, []):
            mask |= decode_segmentation(segmentation, height=height, width=width, where=f"{index.path}: {image_id}")
        return mask

    def load_instances(self, image_id: str) -> list[Instance]:
        """One :class:`Instance` per annotation of this source's classes, numbered in file order."""
        self._check_image(image_id)
        index, _ = self._load()
        height, width = self._size(image_id)
        instances = []
        for cid in self._images_of()[image_id]:
            for segmentation in index.classwise[cid][image_id]:
                mask = decode_segmentation(segmentation, height=height, width=width, where=f"{index.path}: {image_id}")
                instances.append(Instance(class_id=cid, instance_id=len(instances), mask=mask))
        return instances


_build = source_builder(Lvis92iSource, name="lvis92i")


SPECS = [
    DatasetSpec(
        name="lvis92i",
        folds=N_FOLDS,
        fold_classes=lvis_fold_classes,
        build=_build,
        default_episodes=2300,
        layout=LVIS_LAYOUT,
        folder="LVIS",
        episode_policy="cycle_classes",
        release_square=640,  # the public release's image size for lvis92i
        extra={"classes_need_root": True, "build_takes_shots": True},
    )
]
