"""PACO-Part one-shot part segmentation, the construction of Matcher (ICLR 2024), as used by SANSA.

Images are COCO 2017; part masks come from PACO-LVIS (Ramanathan et al., CVPR 2023),
regrouped by Matcher into two pickles, each ``{"cid2img": {part_category_id: [{image_id:
file_name}, ...]}, "img2anno": {image_id: [annotation, ...]}}`` where an annotation is a
PACO part annotation (``category_id``, ``segmentation`` as polygons / RLE / array,
``obj_ann_id`` = the annotation id of its object, ``obj_bbox`` = the object box ``[x, y, w, h]``).

Folds (paper appendix H.3): the part classes, in the order of ``paco_part_train.pkl``'s
``cid2img`` (448 classes), are dealt round-robin into 4 folds: position ``p`` goes to fold
``p % 4``. A fold's test classes are its slot classes that the val pickle shows in more
than ``shots`` distinct images (Matcher's ``> shot`` filter; ``min_samples`` overrides the
count, default ``shots + 1``), 303 classes in all per the paper at 1 shot; an
:class:`~sansa_probe.data.EpisodeSampler` passes its shot count. ``split="train"``: every class
outside the fold's slots, on the train pickle. Class ids are the PACO part category ids (ints).

Episodes (Matcher and the SANSA release): 2,500 per fold, each with a uniformly random class
(the ``random_class`` policy); mIoU averages over the classes that can be drawn.

Box crop (Matcher's default, ``box_crop=True``): an episode image is one object cropped to
its ``obj_bbox`` (``image[int(y):int(y+h), int(x):int(x+w)]``, Matcher's slicing) and the
target is the union of that object's annotations of the class. Image ids are
``"<coco image id>/<obj_ann_id>"``; :meth:`PacoPartDataset.source_image_id` returns the COCO id
so that a sampler can keep reference and target on different photos, as Matcher does.

The pickles are read with the allow-list unpickler of :mod:`sansa_probe.data.safe_pickle`
(plain containers and numpy arrays only).
"""

from __future__ import annotations

import json
import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sansa_probe.data.base import ClassId, Instance
from sansa_probe.data.files import read_image_size, read_rgb
from sansa_probe.data.parts import PartCropSource
from sansa_probe.data.registry import DatasetNotFoundError, DatasetSpec, source_builder
from sansa_probe.data.safe_pickle import load_data_pickle
from sansa_probe.io.masks import decode_segmentation

__all__ = ["SPECS", "PacoPartDataset", "load_fold_spec", "load_paco_pickle", "fold_class_list"]

LAYOUT = """\
  <root>/PACO-Part/                      (Matcher's release: COCO 2017 images + its paco.zip)
    coco/train2017/<file>.jpg
    coco/val2017/<file>.jpg
    paco/paco_part_train.pkl             {"cid2img": {cid: [{image_id: ".../train2017/<file>.jpg"}]},
    paco/paco_part_val.pkl                "img2anno": {image_id: [{"category_id", "segmentation",
                                                                   "obj_ann_id", "obj_bbox"}, ...]}}"""

def load_paco_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """One of Matcher's PACO-Part pickles (read by the allow-list unpickler), checked to hold
    ``cid2img`` and ``img2anno`` maps."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"dataset 'paco_part': file {path} does not exist.\nExpected layout:\n{LAYOUT}")
    data = load_data_pickle(path, what="Matcher's PACO-Part pickle")
    if not isinstance(data, Mapping) or not isinstance(data.get("cid2img"), Mapping) or not isinstance(data.get("img2anno"), Mapping):
        raise ValueError(f"{path}: expected a dict with 'cid2img' and 'img2anno' maps (Matcher's PACO-Part pickle)")
    return dict(data)


def load_fold_spec() -> dict[str, Any]:
    """The shipped fold definition (``splits/paco_part/folds.json``)."""
    text = resources.files("sansa_probe.data").joinpath("splits/paco_part/folds.json").read_text(encoding="utf-8")
    return json.loads(text)


def _entries(cid2img: Mapping[Any, Any], class_id: Any, where: Path) -> list[tuple[Any, str]]:
    """``[(image_id, file_name)]`` of a class, duplicates of an image removed (first kept)."""
    out: list[tuple[Any, str]] = []
    seen: set[Any] = set()
    for entry in cid2img[class_id]:
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise ValueError(f"{where}: cid2img[{class_id!r}] holds {entry!r:.80}; expected {{image_id: file_name}}")
        ((image_id, file_name),) = entry.items()
        if image_id not in seen:
            seen.add(image_id)
            out.append((image_id, str(file_name)))
    return out


def fold_class_list(
    train: Mapping[str, Any],
    val: Mapping[str, Any] | None,
    *,
    fold: int,
    split: str,
    folds: int,
    min_samples: int,
    where: Path,
) -> list[ClassId]:
    """The fold's classes (unsorted, in pickle order): see the module docstring."""
    order = list(train["cid2img"])
    slots = [order[fold + folds * v] for v in range(len(order) // folds)]
    if split == "train":
        slot_set = set(slots)
        return [c for c in order if c not in slot_set]
    if val is None:  # pragma: no cover - guarded by the callers
        raise ValueError("the val pickle is needed for the test classes")
    return [c for c in slots if c in val["cid2img"] and len(_entries(val["cid2img"], c, where)) >= min_samples]


def _paths(root: Path) -> tuple[Path, Path, Path]:
    base = root
    if not (base / "paco").is_dir() and (base / "PACO-Part" / "paco").is_dir():
        base = base / "PACO-Part"
    return base / "paco" / "paco_part_train.pkl", base / "paco" / "paco_part_val.pkl", base / "coco"


def _check_count(train: Mapping[str, Any], expected: int, path: Path) -> None:
    if len(train["cid2img"]) != expected:
        warnings.warn(
            f"{path} lists {len(train['cid2img'])} part classes; Matcher's PACO-Part has {expected}: "
            "the folds will not match the published benchmark",
            stacklevel=3,
        )


def _crop_slices(bbox: Any, *, where: str) -> tuple[slice, slice]:
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: obj_bbox {bbox!r} is not [x, y, w, h]") from None
    return slice(max(int(y), 0), int(y + h)), slice(max(int(x), 0), int(x + w))


class PacoPartDataset(PartCropSource):
    """PACO-Part part classes of one fold and split (see the module docstring)."""

    class_hint = "a PACO part category id; {n} classes"

    name = "paco_part"

    def __init__(
        self,
        *,
        root: str | os.PathLike,
        fold: int,
        split: str = "test",
        box_crop: bool = True,
        shots: int = 1,
        min_samples: int | None = None,
    ) -> None:
        spec = load_fold_spec()
        self.folds = int(spec["folds"])
        if not isinstance(fold, int) or not 0 <= fold < self.folds:
            raise ValueError(f"fold {fold!r} is out of range for paco_part: expected 0..{self.folds - 1}")
        min_samples = _min_samples(shots, min_samples)
        self.fold = fold
        self.split = split
        self.box_crop = box_crop
        self.min_samples = min_samples
        self._expected_classes = int(spec["train_pickle_classes"])
        self.train_pickle, self.val_pickle, self.image_root = _paths(Path(root))
        needed = [self.train_pickle] if split == "train" else [self.train_pickle, self.val_pickle]
        for path in needed:
            if not path.is_file():
                raise DatasetNotFoundError(f"dataset 'paco_part': file {path} does not exist.\nExpected layout:\n{LAYOUT}")
        if not self.image_root.is_dir():
            raise DatasetNotFoundError(f"dataset 'paco_part': folder {self.image_root} does not exist.\nExpected layout:\n{LAYOUT}")
        self._data: dict[str, Any] | None = None
        self._images: dict[ClassId, list[str]] = {}
        self._files: dict[str, Path] = {}
        self._keys: dict[str, Any] = {}
        self._boxes: dict[str, Any] = {}

    # ------------------------------------------------------------------ index

    def _index(self) -> None:
        if self._data is not None:
            return
        train = load_paco_pickle(self.train_pickle)
        _check_count(train, self._expected_classes, self.train_pickle)
        val = None if self.split == "train" else load_paco_pickle(self.val_pickle)
        classes = fold_class_list(
            train, val, fold=self.fold, split=self.split, folds=self.folds, min_samples=self.min_samples, where=self.train_pickle
        )
        data, source = (train, self.train_pickle) if val is None else (val, self.val_pickle)
        del train
        images: dict[ClassId, list[str]] = {}
        for class_id in classes:
            ids: list[str] = []
            for image_key, file_name in _entries(data["cid2img"], class_id, source):
                key = str(image_key)
                if key not in self._files:
                    path = self.image_root / "/".join(file_name.replace("\\", "/").split("/")[-2:])
                    if not path.is_file():
                        raise DatasetNotFoundError(
                            f"dataset 'paco_part': {source} names image {file_name!r} (id {image_key}), but {path} does not exist.\n"
                            f"Expected layout:\n{LAYOUT}"
                        )
                    if image_key not in data["img2anno"]:
                        raise ValueError(f"{source}: image {image_key} is listed in cid2img but has no img2anno entry")
                    self._files[key] = path
                    self._keys[key] = image_key
                objects: list[Any] = []
                for ann in data["img2anno"][image_key]:
                    if ann.get("category_id") != class_id:
                        continue
                    if ann.get("obj_ann_id") is None or (self.box_crop and ann.get("obj_bbox") is None):
                        raise ValueError(
                            f"{source}: an annotation of class {class_id} in image {image_key} has no 'obj_ann_id'/'obj_bbox' "
                            "(expected Matcher's PACO-Part annotations)"
                        )
                    if ann.get("obj_ann_id") not in objects:
                        objects.append(ann.get("obj_ann_id"))
                        crop_id = f"{key}/{ann.get('obj_ann_id')}"
                        if crop_id not in self._boxes:
                            self._boxes[crop_id] = ann.get("obj_bbox")
                if self.box_crop:
                    for obj in objects:
                        rows, cols = _crop_slices(self._boxes[f"{key}/{obj}"], where=f"{source}, image {image_key}, object {obj}")
                        if rows.stop > rows.start and cols.stop > cols.start:
                            ids.append(f"{key}/{obj}")
                elif objects:
                    ids.append(key)
            if ids:
                images[class_id] = sorted(ids)
        self._images = images
        self._source = source
        self._data = data

    # ------------------------------------------------------------------ interface


    def _parse_id(self, image_id: str) -> tuple[str, str | None]:
        self._index()
        key, _, obj = str(image_id).partition("/")
        if key not in self._files or self.box_crop != bool(obj):
            expected = "'<coco image id>/<obj_ann_id>'" if self.box_crop else "'<coco image id>'"
            raise ValueError(f"image id {image_id!r} is not an image of this source: expected {expected} (box_crop={self.box_crop})")
        if obj and f"{key}/{obj}" not in self._boxes:
            raise ValueError(f"image id {image_id!r}: {self._source} has no object {obj} in image {key}")
        return key, (obj or None)

    def _crop(self, array: np.ndarray, key: str, obj: str | None) -> np.ndarray:
        if obj is None:
            return array
        rows, cols = _crop_slices(self._boxes[f"{key}/{obj}"], where=f"{self._source}, image {key}, object {obj}")
        out = array[rows, cols]
        if out.shape[0] == 0 or out.shape[1] == 0:
            raise ValueError(f"{self._source}, image {key}, object {obj}: obj_bbox is empty inside the image")
        return out

    def _annotations(self, key: str, obj: str | None) -> list[Mapping[str, Any]]:
        anns = self._data["img2anno"][self._keys[key]]
        return [a for a in anns if obj is None or str(a.get("obj_ann_id")) == obj]

    def _decode(self, ann: Mapping[str, Any], hw: tuple[int, int], key: str) -> np.ndarray:
        where = f"{self._source}, image {key}, annotation {ann.get('id', '?')}"
        return decode_segmentation(ann.get("segmentation"), height=hw[0], width=hw[1], where=where)

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8: the object crop (or the whole photo with ``box_crop=False``)."""
        key, obj = self._parse_id(image_id)
        return self._crop(read_rgb(self._files[key]), key, obj)

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool (crop size): the object's annotations of the part class."""
        key, obj = self._parse_id(image_id)
        class_id = self._check_class(class_id)
        hw = read_image_size(self._files[key])
        mask = np.zeros(hw, dtype=bool)
        for ann in self._annotations(key, obj):
            if ann.get("category_id") == class_id:
                mask |= self._decode(ann, hw, key)
        return self._crop(mask, key, obj)

    def load_instances(self, image_id: str) -> list[Instance]:
        """Objects with their parts. ``parts`` maps every annotated part category of the object
        (any fold; key ``str(category_id)``) to its mask. When the pickle also holds the object's
        own annotation (``id == obj_ann_id``, PACO's convention) it gives ``class_id`` and
        ``mask``; otherwise ``class_id`` is -1 (unknown object category) and ``mask`` the union
        of the parts. A crop id gives one instance."""
        key, obj = self._parse_id(image_id)
        hw = read_image_size(self._files[key])
        groups: dict[Any, list[Mapping[str, Any]]] = {}
        for ann in self._annotations(key, obj):
            groups.setdefault(ann.get("obj_ann_id"), []).append(ann)
        instances = []
        for obj_ann_id, anns in groups.items():
            parts: dict[str, np.ndarray] = {}
            whole, class_id = None, -1
            for ann in anns:
                mask = self._decode(ann, hw, key)
                if ann.get("id") is not None and ann.get("id") == obj_ann_id:
                    whole, class_id = mask, ann.get("category_id", -1)
                    continue
                name = str(ann.get("category_id"))
                parts[name] = parts[name] | mask if name in parts else mask
            if whole is None:
                whole = np.logical_or.reduce(list(parts.values())) if parts else np.zeros(hw, dtype=bool)
            instances.append(
                Instance(
                    class_id=class_id,
                    instance_id=int(obj_ann_id) if isinstance(obj_ann_id, (int, np.integer)) else len(instances),
                    mask=self._crop(whole, key, obj),
                    parts={name: self._crop(m, key, obj) for name, m in sorted(parts.items())},
                )
            )
        return instances


def _min_samples(shots: int, min_samples: int | None) -> int:
    """Distinct val images a test class needs: ``shots + 1`` (Matcher's ``> shot``) unless given."""
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
        raise ValueError(f"shots={shots!r}: expected an int >= 1")
    if min_samples is None:
        return shots + 1
    if not isinstance(min_samples, int) or isinstance(min_samples, bool) or min_samples < 1:
        raise ValueError(f"min_samples={min_samples!r}: expected an int >= 1 (2 = one reference + one target)")
    return min_samples


def _fold_classes(fold: int, split: str, root: Path | None, *, shots: int = 1, min_samples: int | None = None) -> list[ClassId]:
    if root is None:
        raise ValueError("dataset 'paco_part': its classes are read from Matcher's pickles; pass root= or set SANSA_DATA")
    spec = load_fold_spec()
    train_path, val_path, _ = _paths(Path(root))
    train = load_paco_pickle(train_path)
    _check_count(train, int(spec["train_pickle_classes"]), train_path)
    val = None if split == "train" else load_paco_pickle(val_path)
    classes = fold_class_list(
        train, val, fold=fold, split=split, folds=int(spec["folds"]), min_samples=_min_samples(shots, min_samples), where=train_path
    )
    return sorted(classes)


_build = source_builder(PacoPartDataset, name="paco_part")


SPECS: list[DatasetSpec] = [
    DatasetSpec(
        name="paco_part",
        folds=4,
        fold_classes=_fold_classes,
        build=_build,
        default_episodes=2500,
        layout=LAYOUT,
        folder="PACO-Part",
        episode_policy="random_class",
        release_square=640,  # the public release's image size for paco_part
        extra={"classes_need_root": True, "image_group": "source_image_id", "build_takes_shots": True},
    ),
]
