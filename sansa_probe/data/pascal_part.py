"""Pascal-Part one-shot part segmentation, the construction of Matcher (ICLR 2024).

Images are PASCAL VOC 2010; part masks come from Chen et al. (CVPR 2014), merged into
coarse part classes (``FACE``, ``LEG``, ``WHEEL``, ...) and released by Matcher as one json
per image plus an index ``all_obj_part_to_image.json``::

    {super_category: {"object": {object: {"part": {PART: {"train": [voc_id, ...],
                                                          "val":   [voc_id, ...]}}}}}}

Folds (paper section 4.2, appendix H.3): fold ``i`` is the super-category
``("animals", "indoor", "person", "vehicles")[i]``. A class is an ``(object, part)`` pair,
with class id ``"<object>+<PART>"`` (e.g. ``"bird+FACE"``), kept when both its train and
val image lists are non-empty; ``aeroplane+TAIL`` is dropped as in Matcher. The paper
counts 56 part classes over 15 object classes. ``split="test"``/``"val"``: the fold's
classes on the ``val`` images; ``split="train"``: the classes of the other three
super-categories on the ``train`` images (disjoint from the fold's classes).

Box crop (Matcher's default, ``box_crop=True``): an episode image is one object cropped to
its box, ``image[ymin:ymax, xmin:xmax]`` exactly as Matcher slices it, and the target is the
union of that object's parts of the class. Image ids are therefore ``"<voc_id>/<k>"`` with
``k`` the object's index in the image's annotation json; :meth:`PascalPartDataset.source_image_id`
gives the VOC id back, so a sampler can keep the reference and the target on different photos
as Matcher does. With ``box_crop=False`` image ids are VOC ids and a class mask is the union
over every object of that class in the photo.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sansa_probe.data.base import ClassId, Instance
from sansa_probe.data.files import read_image_size, read_rgb
from sansa_probe.data.parts import PartCropSource
from sansa_probe.data.registry import DatasetNotFoundError, DatasetSpec, source_builder
from sansa_probe.io.masks import decode_segmentation

__all__ = ["SPECS", "PascalPartDataset", "load_fold_spec", "part_classes"]

LAYOUT = """\
  <root>/Pascal-Part/                    (Matcher's release: VOC2010 images + its pascal.zip)
    VOCdevkit/VOC2010/
      JPEGImages/<voc_id>.jpg
      Annotations_Part_json_merged_part_classes/<voc_id>.json
          {"object": [{"name": "bird", "bndbox": {"xmin", "ymin", "xmax", "ymax"},
                       "parts": [{"name": "FACE", "mask": [COCO RLE, ...]}, ...]}, ...]}
      all_obj_part_to_image.json
          {super_category: {"object": {object: {"part": {PART: {"train": [voc_id], "val": [voc_id]}}}}}}"""

INDEX_NAME = "all_obj_part_to_image.json"
ANNOTATION_DIR = "Annotations_Part_json_merged_part_classes"
MAX_TEST_EPISODES = 2500  # Matcher: min(len(img_metadata), 2500)


def load_fold_spec() -> dict[str, Any]:
    """The shipped fold definition (``splits/pascal_part/folds.json``): super-categories, exclusions."""
    text = resources.files("sansa_probe.data").joinpath("splits/pascal_part/folds.json").read_text(encoding="utf-8")
    return json.loads(text)


def _voc_dir(root: Path) -> Path:
    for candidate in (root / "VOCdevkit" / "VOC2010", root / "Pascal-Part" / "VOCdevkit" / "VOC2010", root):
        if (candidate / INDEX_NAME).is_file():
            return candidate
    raise DatasetNotFoundError(
        f"dataset 'pascal_part': file {root / 'VOCdevkit' / 'VOC2010' / INDEX_NAME} does not exist.\n"
        f"Expected layout:\n{LAYOUT}"
    )


def _read_index(path: Path, super_categories: list[str]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            index = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid json ({exc})") from None
    for name in super_categories:
        entry = index.get(name) if isinstance(index, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("object"), dict):
            raise ValueError(f"{path}: expected a super-category {name!r} with an 'object' map (keys: {', '.join(super_categories)})")
    return index


def _split_super_categories(fold: int, split: str, folds: list[str]) -> tuple[list[str], str]:
    """The super-categories whose classes a (fold, split) uses, and the image list key."""
    if split == "train":
        return [name for i, name in enumerate(folds) if i != fold], "train"
    return [folds[fold]], "val"


def part_classes(
    index: Mapping[str, Any], super_categories: list[str], *, excluded: list[str]
) -> dict[str, tuple[str, str, dict[str, list[str]]]]:
    """``{"<object>+<PART>": (object, PART, {"train": ids, "val": ids})}`` of the kept classes."""
    classes: dict[str, tuple[str, str, dict[str, list[str]]]] = {}
    for name in super_categories:
        for obj, obj_entry in index[name]["object"].items():
            for part, lists in obj_entry.get("part", {}).items():
                class_id = f"{obj}+{part}"
                if class_id in excluded or not lists.get("train") or not lists.get("val"):
                    continue
                classes[class_id] = (obj, part, {"train": list(lists["train"]), "val": list(lists["val"])})
    return classes


def _box(bndbox: Any, *, where: str) -> tuple[int, int, int, int]:
    """``(xmin, ymin, xmax, ymax)`` ints from a VOC ``bndbox`` (dict or 4-list)."""
    if isinstance(bndbox, Mapping):
        if all(k in bndbox for k in ("xmin", "ymin", "xmax", "ymax")):
            values = [bndbox[k] for k in ("xmin", "ymin", "xmax", "ymax")]
        else:  # Matcher reads the values in their stored order as x0, y0, x1, y1
            values = list(bndbox.values())
    else:
        values = list(bndbox) if isinstance(bndbox, (list, tuple)) else []
    if len(values) != 4:
        raise ValueError(f"{where}: bndbox {bndbox!r} is not (xmin, ymin, xmax, ymax)")
    x0, y0, x1, y1 = (int(float(v)) for v in values)
    return x0, y0, x1, y1


def listed_pairs(index: Mapping[str, Any], super_categories: list[str], list_key: str) -> int:
    """Matcher's ``len(img_metadata)``: the length of every ``(object, part)`` image list of the
    super-categories (classes or not, repeats counted), the base of its episode count."""
    return sum(
        len(lists.get(list_key, []))
        for name in super_categories
        for obj_entry in index[name]["object"].values()
        for lists in obj_entry.get("part", {}).values()
    )


class PascalPartDataset(PartCropSource):
    """Pascal-Part part classes of one fold and split (see the module docstring).

    ``class_ids()`` are ``"<object>+<PART>"`` strings; ``image_ids(c)`` the object crops
    (``"<voc_id>/<k>"``) whose object has part ``PART`` and a non-empty box.
    """

    class_hint = "expected '<object>+<PART>', one of {classes}"
    name = "pascal_part"

    def __init__(self, *, root: str | os.PathLike, fold: int, split: str = "test", box_crop: bool = True) -> None:
        spec = load_fold_spec()
        folds = list(spec["folds"])
        if not isinstance(fold, int) or not 0 <= fold < len(folds):
            raise ValueError(f"fold {fold!r} is out of range for pascal_part: expected 0..{len(folds) - 1}")
        self.fold = fold
        self.split = split
        self.box_crop = box_crop
        self.voc_dir = _voc_dir(Path(root))
        for sub in ("JPEGImages", ANNOTATION_DIR):
            if not (self.voc_dir / sub).is_dir():
                raise DatasetNotFoundError(
                    f"dataset 'pascal_part': folder {self.voc_dir / sub} does not exist.\nExpected layout:\n{LAYOUT}"
                )
        self.super_categories, self.list_key = _split_super_categories(fold, split, folds)
        self._excluded = list(spec.get("excluded_classes", []))
        self._classes: dict[str, tuple[str, str, dict[str, list[str]]]] | None = None
        self._images: dict[str, list[str]] | None = None
        self._meta: dict[str, list[tuple[str, tuple[int, int, int, int], frozenset[str]]]] = {}

    # ------------------------------------------------------------------ index

    def _annotation_path(self, voc_id: str) -> Path:
        return self.voc_dir / ANNOTATION_DIR / f"{voc_id}.json"

    def _jpeg_path(self, voc_id: str) -> Path:
        return self.voc_dir / "JPEGImages" / f"{voc_id}.jpg"

    def _annotation(self, voc_id: str) -> dict[str, Any]:
        path = self._annotation_path(voc_id)
        if not path.is_file():
            raise DatasetNotFoundError(
                f"dataset 'pascal_part': {self.voc_dir / INDEX_NAME} lists image {voc_id}, but its annotation {path} "
                f"does not exist.\nExpected layout:\n{LAYOUT}"
            )
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except json.JSONDecodeError as exc:
            raise ValueError(f"annotation {path} is not valid json ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("object"), list):
            raise ValueError(f"annotation {path}: expected {{'object': [{{'name', 'bndbox', 'parts'}}, ...]}}")
        return data

    def _objects(self, voc_id: str) -> list[tuple[str, tuple[int, int, int, int], frozenset[str]]]:
        """``[(object name, box, part names)]`` of one photo, cached (masks are decoded on demand)."""
        if voc_id not in self._meta:
            path = self._annotation_path(voc_id)
            self._meta[voc_id] = [
                (
                    str(obj.get("name")),
                    _box(obj.get("bndbox"), where=f"{path}, object {k}"),
                    frozenset(str(p.get("name")) for p in obj.get("parts", [])),
                )
                for k, obj in enumerate(self._annotation(voc_id)["object"])
            ]
        return self._meta[voc_id]

    def _index(self) -> None:
        if self._images is not None:
            return
        index = _read_index(self.voc_dir / INDEX_NAME, self.super_categories)
        self._listed_pairs = listed_pairs(index, self.super_categories, self.list_key)
        classes = part_classes(index, self.super_categories, excluded=self._excluded)
        images: dict[str, list[str]] = {}
        checked: set[str] = set()
        for class_id, (obj, part, lists) in classes.items():
            ids: list[str] = []
            for voc_id in sorted(set(map(str, lists[self.list_key]))):
                if voc_id not in checked:
                    if not self._jpeg_path(voc_id).is_file():
                        raise DatasetNotFoundError(
                            f"dataset 'pascal_part': {self.voc_dir / INDEX_NAME} lists image {voc_id} under {class_id}, "
                            f"but {self._jpeg_path(voc_id)} does not exist.\nExpected layout:\n{LAYOUT}"
                        )
                    checked.add(voc_id)
                objects = self._objects(voc_id)
                same_class = [k for k, (name, _box_, _parts) in enumerate(objects) if name == obj]
                if not same_class:
                    raise ValueError(
                        f"{self.voc_dir / INDEX_NAME} lists image {voc_id} under {class_id}, but "
                        f"{self._annotation_path(voc_id)} has no {obj!r} object"
                    )
                with_part = [k for k in same_class if part in objects[k][2] and _nonempty(objects[k][1])]
                if self.box_crop:
                    ids.extend(f"{voc_id}/{k}" for k in with_part)
                elif with_part:
                    ids.append(voc_id)
            if ids:
                images[class_id] = sorted(ids)
        self._classes = {c: classes[c] for c in images}
        self._images = images

    # ------------------------------------------------------------------ interface

    def benchmark_episodes(self) -> int | None:
        """Matcher's test episode count, ``min(val pairs, 2500)`` (:func:`listed_pairs`);
        None for the train split (one clip per image there)."""
        if self.split == "train":
            return None
        self._index()
        return min(self._listed_pairs, MAX_TEST_EPISODES)

    def class_name(self, class_id: ClassId) -> str:
        obj, _, part = str(class_id).partition("+")
        return f"{obj} {part.lower().replace('_', ' ')}"


    def _parse_id(self, image_id: str) -> tuple[str, int | None]:
        voc_id, _, k = str(image_id).partition("/")
        if self.box_crop != bool(k) or (k and not k.isdigit()):
            expected = "'<voc_id>/<object index>'" if self.box_crop else "'<voc_id>'"
            raise ValueError(f"image id {image_id!r}: expected {expected} (box_crop={self.box_crop})")
        if k and int(k) >= len(self._objects(voc_id)):
            raise ValueError(f"image id {image_id!r}: {self._annotation_path(voc_id)} has only {len(self._objects(voc_id))} objects")
        return voc_id, (int(k) if k else None)

    def _crop(self, array: np.ndarray, voc_id: str, k: int | None) -> np.ndarray:
        if k is None:
            return array
        x0, y0, x1, y1 = self._objects(voc_id)[k][1]
        out = array[max(y0, 0) : y1, max(x0, 0) : x1]
        if out.shape[0] == 0 or out.shape[1] == 0:
            raise ValueError(f"object {k} of {self._annotation_path(voc_id)}: box {(x0, y0, x1, y1)} is empty inside the image")
        return out

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8: the object crop (or the whole photo with ``box_crop=False``)."""
        voc_id, k = self._parse_id(image_id)
        return self._crop(read_rgb(self._jpeg_path(voc_id)), voc_id, k)

    def _part_mask(self, obj: Mapping[str, Any], part: str, hw: tuple[int, int], where: str) -> np.ndarray:
        mask = np.zeros(hw, dtype=bool)
        for p in obj.get("parts", []):
            if str(p.get("name")) == part:
                mask |= decode_segmentation(p.get("mask", []), height=hw[0], width=hw[1], where=f"{where}, part {part}")
        return mask

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool (crop size): the object's parts of the class (all objects' without crop)."""
        voc_id, k = self._parse_id(image_id)
        class_id = self._check_class(class_id)
        obj_name, part, _ = self._classes[class_id]
        hw = read_image_size(self._jpeg_path(voc_id))
        objects = self._annotation(voc_id)["object"]
        chosen = [k] if k is not None else range(len(objects))
        mask = np.zeros(hw, dtype=bool)
        for i in chosen:
            if str(objects[i].get("name")) == obj_name:
                mask |= self._part_mask(objects[i], part, hw, f"{self._annotation_path(voc_id)}, object {i}")
        return self._crop(mask, voc_id, k)

    def load_instances(self, image_id: str) -> list[Instance]:
        """Objects with their parts: ``class_id`` is the object name (``"bird"``), ``parts`` maps
        every annotated part name (``"FACE"``) to its mask, and ``mask`` is the object's own mask
        when the json has one, else the union of its parts. Crop ids give one instance."""
        voc_id, k = self._parse_id(image_id)
        hw = read_image_size(self._jpeg_path(voc_id))
        objects = self._annotation(voc_id)["object"]
        instances = []
        for i in [k] if k is not None else range(len(objects)):
            obj = objects[i]
            where = f"{self._annotation_path(voc_id)}, object {i}"
            names = sorted({str(p.get("name")) for p in obj.get("parts", [])})
            if not names and k is None:
                continue
            parts = {name: self._part_mask(obj, name, hw, where) for name in names}
            if obj.get("mask"):
                whole = decode_segmentation(obj["mask"], height=hw[0], width=hw[1], where=where)
            else:
                whole = np.logical_or.reduce(list(parts.values())) if parts else np.zeros(hw, dtype=bool)
            instances.append(
                Instance(
                    class_id=str(obj.get("name")),
                    instance_id=i,
                    mask=self._crop(whole, voc_id, k),
                    parts={name: self._crop(m, voc_id, k) for name, m in parts.items()},
                )
            )
        return instances


def _nonempty(box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    return x1 > max(x0, 0) and y1 > max(y0, 0)


def _fold_classes(fold: int, split: str, root: Path | None) -> list[ClassId]:
    if root is None:
        raise ValueError(f"dataset 'pascal_part': its classes are read from {INDEX_NAME}; pass root= or set SANSA_DATA")
    spec = load_fold_spec()
    voc = _voc_dir(Path(root))
    super_categories, _ = _split_super_categories(fold, split, list(spec["folds"]))
    index = _read_index(voc / INDEX_NAME, super_categories)
    return sorted(part_classes(index, super_categories, excluded=list(spec.get("excluded_classes", []))))


_build = source_builder(PascalPartDataset, name="pascal_part")


SPECS: list[DatasetSpec] = [
    DatasetSpec(
        name="pascal_part",
        folds=4,
        fold_classes=_fold_classes,
        build=_build,
        default_episodes=2500,
        layout=LAYOUT,
        folder="Pascal-Part",
        episode_policy="cycle_classes",
        release_square=518,  # the public release's image size for pascal_part
        extra={
            "classes_need_root": True,
            "fold_names": ("animals", "indoor", "person", "vehicles"),
            "image_group": "source_image_id",
        },
    ),
]
