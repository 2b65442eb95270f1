"""COCO-20i: the 80 COCO categories in four interleaved folds, on COCO 2014.

Folds follow FWB / HSNet / Matcher / SANSA, not PFENet's consecutive blocks: sort the 80
category ids, number them ``0..79``; fold ``f`` tests the categories whose number ``n``
has ``n % 4 == f`` (20 classes) and trains on the other 60. Fold 0 tests
``person, airplane, boat, parking meter, dog, ...`` = COCO ids ``1, 5, 9, 14, 18, ...``.
Class ids are COCO's own category ids (1..90, with gaps).

Which images make the benchmark (``lists``): HSNet's per-class image lists, the filtered
lists of the literature (PFENet's rule: small objects removed), are shipped in the package
(``splits/coco/{trn,val}_fold{0-3}.json.gz``, HSNet's pickles converted to gzipped JSON) and
used by default, whatever the layout. ``splits_dir=`` reads a copy of HSNet's pickles
(``{trn,val}/fold{k}.pkl``, through the allow-list unpickler) or of the shipped files instead.
``lists="annotations"`` takes every image with an instance of the class from the official
json (not the benchmark: crowd-only and tiny objects included; it warns).

Masks (``layout``), both under ``<root>/COCO2014`` (see ``docs/DATASETS.md``):

* ``json``  -- the official release: ``{train,val}2014/*.jpg`` and
  ``annotations/instances_{train,val}2014.json``, read with pycocotools.
* ``hsnet`` -- HSNet / Matcher: ``annotations/{train,val}2014/*.png`` semantic masks whose
  pixel value is ``n + 1`` (``n`` the category number above).

Splits: ``train`` is train2014 restricted to the fold's 60 training classes; ``val`` and
``test`` are the same evaluation split, val2014 restricted to the fold's 20 test classes
(the literature evaluates on val2014).

File reading goes through the readers shared by every loader (``sansa_probe.data.custom``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.files import read_label_png, read_rgb
from sansa_probe.data.registry import DatasetNotFoundError, DatasetSpec, source_builder
from sansa_probe.data.safe_pickle import load_data_pickle
from sansa_probe.io.masks import decode_segmentation

__all__ = [
    "COCO_LAYOUT",
    "LISTS",
    "Coco20iSource",
    "SPECS",
    "coco_categories",
    "coco_fold_classes",
    "read_image_lists",
    "shipped_image_lists",
]

N_FOLDS = 4

COCO_LAYOUT = """\
COCO2014/
  train2014/COCO_train2014_<12 digits>.jpg
  val2014/COCO_val2014_<12 digits>.jpg
  either (official, read with pycocotools):
    annotations/instances_train2014.json
    annotations/instances_val2014.json
  or (HSNet / Matcher):
    annotations/train2014/<image name>.png   (pixel = class number + 1, 0 = background)
    annotations/val2014/<image name>.png
  The per-class image lists (HSNet's) are shipped; splits_dir= may name a folder with
  {trn,val}/fold{0,1,2,3}.pkl ({class number 0..79: ['train2014/<name>.jpg', ...]})."""


# ----------------------------------------------------------------------------- classes and folds


def coco_categories() -> dict[int, str]:
    """The 80 COCO category ids (sorted) and their names, from the shipped ``splits/coco/classes.tsv``."""
    path = Path(__file__).with_name("splits") / "coco" / "classes.tsv"
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    categories = {int(cid): name for cid, name in (row.split("\t") for row in rows if row.strip())}
    if len(categories) != 80:  # pragma: no cover - package data check
        raise ValueError(f"{path} lists {len(categories)} categories; expected 80")
    return dict(sorted(categories.items()))


def coco_fold_classes(fold: int, split: str = "test", root: Path | None = None) -> list[int]:
    """COCO category ids of ``fold``: 20 test classes (``split`` val/test) or 60 training classes."""
    _check_fold(fold)
    ids = list(coco_categories())
    test = [ids[n] for n in range(fold, len(ids), N_FOLDS)]
    if split == "train":
        return [c for c in ids if c not in test]
    return test


def _check_fold(fold: int) -> None:
    if not isinstance(fold, int) or isinstance(fold, bool) or not 0 <= fold < N_FOLDS:
        raise ValueError(f"fold {fold!r} is out of range for coco20i: expected 0..{N_FOLDS - 1}")


def _check_split(split: str) -> None:
    if split not in ("train", "val", "test"):
        raise ValueError(f"split {split!r}: expected 'train', 'val' or 'test'")


# ----------------------------------------------------------------------------- source


LISTS = ("hsnet", "annotations")


def shipped_image_lists(fold: int, split: str) -> Path:
    """The shipped HSNet image lists of ``fold`` (``split`` "train": ``trn_fold{f}``, else ``val_fold{f}``)."""
    _check_fold(fold)
    name = f"{'trn' if split == 'train' else 'val'}_fold{fold}.json.gz"
    return Path(str(resources.files("sansa_probe.data").joinpath(f"splits/coco/{name}")))


def read_image_lists(path: str | os.PathLike) -> dict[int, list[str]]:
    """``{class number 0..79: [image path, ...]}`` from HSNet's pickle or the shipped gzipped JSON."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"coco20i: split file {path} does not exist.\nExpected layout:\n{COCO_LAYOUT}")
    what = "HSNet's COCO-20i split pickle {class number 0..79: [image path, ...]}"
    if path.suffix == ".pkl":
        table = load_data_pickle(path, what=what)
    else:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                table = json.load(handle).get("classes")
        except (OSError, ValueError, AttributeError) as exc:
            raise ValueError(f"cannot read split file {path} ({exc}); expected gzipped JSON {{'classes': {{k: [image, ...]}}}}") from None
    if not isinstance(table, dict):
        raise ValueError(f"split file {path} holds a {type(table).__name__}; expected a dict class number -> image list")
    try:
        return {int(k): [str(name) for name in names] for k, names in table.items()}
    except (TypeError, ValueError):
        raise ValueError(f"split file {path}: keys {sorted(map(str, table))[:5]} ...; expected class numbers 0..79 -> image lists") from None


class Coco20iSource(SegmentationSource):
    """One fold and split of COCO-20i (see the module docstring for folds, lists and layouts).

    Image ids are paths relative to the dataset folder (``val2014/COCO_val2014_<id>.jpg``),
    the same in both layouts. Nothing is read at construction except file existence checks;
    the image lists (and with the json layout the annotations) are read on first use.

    Args:
        root: the ``COCO2014`` folder.
        fold: 0..3.
        split: ``"train"`` (train2014, 60 classes) or ``"val"``/``"test"`` (val2014, 20 classes).
        layout: where masks come from: ``"auto"`` (HSNet's PNGs when ``annotations/<folder>/``
            exists, else the official json), ``"json"`` or ``"hsnet"``.
        lists: ``"hsnet"`` (default: HSNet's filtered per-class image lists, shipped) or
            ``"annotations"`` (every image with an instance in the json; warns).
        splits_dir: a folder with HSNet's ``{trn,val}/fold{k}.pkl`` (or the shipped
            ``{trn,val}_fold{k}.json.gz``) replacing the shipped lists.
        include_crowd: json layout only: whether ``iscrowd`` regions count as instances.
    """

    name = "coco20i"

    def __init__(
        self,
        *,
        root: str | os.PathLike,
        fold: int,
        split: str,
        layout: str = "auto",
        lists: str = "hsnet",
        splits_dir: str | os.PathLike | None = None,
        include_crowd: bool = True,
    ) -> None:
        _check_fold(fold)
        _check_split(split)
        if layout not in ("auto", "json", "hsnet"):
            raise ValueError(f"layout {layout!r}: expected 'auto', 'json' or 'hsnet'")
        if lists not in LISTS:
            raise ValueError(f"lists {lists!r}: expected one of {', '.join(LISTS)}")
        if lists == "annotations" and splits_dir is not None:
            raise ValueError("splits_dir= gives HSNet-style image lists; it cannot be combined with lists='annotations'")
        self.root = Path(root)
        self.fold = fold
        self.split = split
        self.include_crowd = include_crowd
        self.lists = lists
        evaluation = split in ("val", "test")
        self.image_folder = "val2014" if evaluation else "train2014"
        self._classes = coco_fold_classes(fold, "test" if evaluation else "train")
        self._numbers = {cid: n for n, cid in enumerate(coco_categories())}
        self._names = coco_categories()
        self.json_path = self.root / "annotations" / f"instances_{self.image_folder}.json"
        self.png_dir = self.root / "annotations" / self.image_folder
        self.lists_path = self._lists_path(splits_dir, evaluation) if lists == "hsnet" else None
        self.layout = self._resolve_layout(layout)
        self._per_class: dict[ClassId, list[str]] | None = None
        self._coco: Any = None  # pycocotools.coco.COCO, json layout
        self._coco_ids: dict[str, int] = {}
        self._listed: set[str] | None = None

    # --------------------------------------------------------------- layout and index

    def _lists_path(self, splits_dir: str | os.PathLike | None, evaluation: bool) -> Path:
        if splits_dir is None:
            return shipped_image_lists(self.fold, self.split)
        folder, kind = Path(splits_dir), "val" if evaluation else "trn"
        candidates = [folder / kind / f"fold{self.fold}.pkl", folder / f"{kind}_fold{self.fold}.json.gz"]
        found = [path for path in candidates if path.is_file()]
        if not found:
            raise DatasetNotFoundError(
                f"coco20i: split file {candidates[0]} (or {candidates[1].name}) does not exist in splits_dir.\n"
                f"Expected layout:\n{COCO_LAYOUT}"
            )
        return found[0]

    def _resolve_layout(self, layout: str) -> str:
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"coco20i: folder {self.root} does not exist.\nExpected layout:\n{COCO_LAYOUT}")
        if self.lists == "annotations" and layout == "hsnet":
            raise ValueError("lists='annotations' reads the official json; it needs layout='json' (or 'auto')")
        if layout == "hsnet" or (layout == "auto" and self.lists == "hsnet" and self.png_dir.is_dir()):
            if not self.png_dir.is_dir():
                raise DatasetNotFoundError(
                    f"coco20i: mask folder {self.png_dir} does not exist (hsnet layout).\nExpected layout:\n{COCO_LAYOUT}"
                )
            return "hsnet"
        if not self.json_path.is_file():
            raise DatasetNotFoundError(
                f"coco20i: found neither {self.json_path} (official json layout) nor {self.png_dir} "
                f"(HSNet layout).\nExpected layout:\n{COCO_LAYOUT}"
            )
        return "json"

    def _index(self) -> dict[ClassId, list[str]]:
        if self._per_class is None:
            if self.layout == "json":
                self._load_json()
            self._per_class = self._annotated_images() if self.lists == "annotations" else self._listed_images()
        return self._per_class

    def _load_json(self) -> None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                coco = COCO(str(self.json_path))
        except (ValueError, KeyError, TypeError, AssertionError) as exc:  # pycocotools asserts the top level is a dict
            raise ValueError(f"cannot read COCO annotations {self.json_path}: {exc!r}; expected a COCO instances json") from exc
        for ann in coco.dataset.get("annotations", []):
            if ann["image_id"] not in coco.imgs:
                raise ValueError(
                    f"{self.json_path}: annotation {ann.get('id')} refers to image id {ann['image_id']}, "
                    f"which is not listed under 'images'"
                )
        self._coco = coco
        self._coco_ids = {f"{self.image_folder}/{img['file_name']}": img_id for img_id, img in coco.imgs.items()}

    def _annotated_images(self) -> dict[ClassId, list[str]]:
        """Every image with an instance of each class (crowd per ``include_crowd``): not the benchmark."""
        warnings.warn(
            f"coco20i fold {self.fold} {self.split}: lists='annotations' takes every image with an instance of the class "
            f"from {self.json_path}; the benchmark's lists (HSNet's, the default) are filtered, so results are not comparable",
            stacklevel=4,
        )
        coco = self._coco
        wanted: dict[int, set[int]] = {int(cid): set() for cid in self._classes}
        for ann in coco.dataset.get("annotations", []):  # one pass: getAnnIds(catIds=...) rescans per class
            images = wanted.get(ann["category_id"])
            if images is not None and (self.include_crowd or not ann.get("iscrowd", 0)):
                images.add(ann["image_id"])
        return {
            cid: sorted(f"{self.image_folder}/{coco.imgs[i]['file_name']}" for i in images)
            for cid, images in wanted.items()
            if images
        }

    def _listed_images(self) -> dict[ClassId, list[str]]:
        table = read_image_lists(self.lists_path)
        per_class: dict[ClassId, list[str]] = {}
        for cid in self._classes:
            names = table.get(self._numbers[cid], [])
            if names:
                per_class[cid] = sorted(set(names))
        if not per_class and table:
            raise ValueError(
                f"split file {self.lists_path} has no images for the classes of fold {self.fold} "
                f"(keys {sorted(table)[:5]} ...); expected class numbers 0..{len(self._numbers) - 1}"
            )
        return per_class

    def _check_image(self, image_id: str) -> None:
        if self._listed is None:
            self._listed = {image for images in self._index().values() for image in images}
        if image_id not in self._listed:
            where = self.lists_path if self.lists == "hsnet" else self.json_path
            raise ValueError(f"image id {image_id!r} is not an image of coco20i fold {self.fold} split {self.split!r} ({where})")
        if self.layout == "json" and image_id not in self._coco_ids:
            raise ValueError(f"image id {image_id!r} is listed in {self.lists_path} but not in {self.json_path}")

    # --------------------------------------------------------------- interface

    def class_ids(self) -> list[ClassId]:
        return sorted(self._index())

    def class_name(self, class_id: ClassId) -> str:
        return self._names.get(int(class_id), str(class_id))

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        index = self._index()
        if class_id is not None:
            if class_id not in self._classes:
                raise ValueError(f"class {class_id!r} is not a class of coco20i fold {self.fold} split {self.split!r}")
            return list(index.get(class_id, []))
        return sorted({image for images in index.values() for image in images})

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8."""
        self._check_image(image_id)
        return read_rgb(self.root / image_id, what="coco20i image")

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool: every instance of ``class_id`` (crowd regions per ``include_crowd``)."""
        self._check_image(image_id)
        if class_id not in self._classes:
            raise ValueError(f"class {class_id!r} is not a class of coco20i fold {self.fold} split {self.split!r}")
        if self.layout == "hsnet":
            return read_label_png(self._mask_path(image_id), what="coco20i mask") == self._numbers[int(class_id)] + 1
        masks = [inst.mask for inst in self._json_instances(image_id, [class_id])]
        img = self._coco.imgs[self._coco_ids[image_id]]
        union = np.zeros((img["height"], img["width"]), dtype=bool)
        for mask in masks:
            union |= mask
        return union

    def load_instances(self, image_id: str) -> list[Instance]:
        """Json layout: one :class:`Instance` per annotation (``instance_id`` = COCO annotation id).
        HSNet layout (semantic PNGs): one per class present."""
        self._check_image(image_id)
        if self.layout == "json":
            return self._json_instances(image_id, self._classes)
        labels = read_label_png(self._mask_path(image_id), what="coco20i mask")
        return [
            Instance(class_id=cid, instance_id=i, mask=labels == self._numbers[cid] + 1)
            for i, cid in enumerate(c for c in self._classes if np.any(labels == self._numbers[c] + 1))
        ]

    def _mask_path(self, image_id: str) -> Path:
        return (self.root / "annotations" / image_id).with_suffix(".png")

    def _json_instances(self, image_id: str, classes: list[ClassId]) -> list[Instance]:
        img_id = self._coco_ids[image_id]
        img = self._coco.imgs[img_id]
        wanted = {int(c) for c in classes}
        anns = [ann for ann in self._coco.imgToAnns.get(img_id, []) if ann["category_id"] in wanted]
        return [
            Instance(
                class_id=ann["category_id"],
                instance_id=int(ann["id"]),
                mask=decode_segmentation(
                    ann["segmentation"], height=img["height"], width=img["width"], where=f"{self.json_path} annotation {ann['id']}"
                ),
            )
            for ann in sorted(anns, key=lambda a: a["id"])
            if self.include_crowd or not ann.get("iscrowd", 0)
        ]


_build = source_builder(Coco20iSource, name="coco20i")


SPECS = [
    DatasetSpec(
        name="coco20i",
        folds=N_FOLDS,
        fold_classes=coco_fold_classes,
        build=_build,
        default_episodes=1000,
        layout=COCO_LAYOUT,
        folder="COCO2014",
        episode_policy="random_class",
        release_square=640,  # the public release's image size for coco20i
    )
]
