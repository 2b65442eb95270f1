"""ADE20K SceneParsing (ADEChallengeData2016): 150 classes, used for generalist training.

SANSA's generalist (in-context) models train on COCO + ADE20K (paper section 4.2,
appendix H.3). ADE20K has no few-shot benchmark of its own, so it has a single fold 0
holding all 150 classes: ``split="train"`` reads ``training`` (20,210 images),
``split="val"``/``"test"`` read ``validation`` (2,000 images). Class ids are the label
values 1..150 of the annotation PNGs (``objectInfo150.txt`` order); 0 is "other objects".

A class mask is ``label == class_id``. Value 0 is background for every class by default;
``ignore_unlabeled=True`` reports it through :meth:`ADE20KDataset.load_ignore` instead, as
the challenge's own evaluation ignores it.

Finding which classes each image holds needs one pass over the annotation PNGs (a minute
or so for ``training``); ``index_cache=<file.json>`` stores that index and reuses it while
the annotation file list is unchanged.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.files import check_same_size, read_image_size, read_label_png, read_rgb
from sansa_probe.data.registry import DatasetNotFoundError, DatasetSpec, source_builder
from sansa_probe.io.atomic import atomic_write_json

__all__ = ["SPECS", "ADE20KDataset", "load_class_table"]

LAYOUT = """\
  <root>/ADEChallengeData2016/           (SceneParsing release, sceneparsing.csail.mit.edu)
    images/training/ADE_train_00000001.jpg ...         (20,210 images)
    images/validation/ADE_val_00000001.jpg ...         (2,000 images)
    annotations/training/ADE_train_00000001.png ...    (8-bit: 0 = other objects, 1..150 = classes)
    annotations/validation/ADE_val_00000001.png ...
    objectInfo150.txt                                  (optional: the names ship with sansa-probe)"""

NUM_CLASSES = 150
_INDEX_VERSION = 1


def load_class_table() -> list[dict[str, Any]]:
    """The 150 classes of ``objectInfo150.txt`` (``splits/ade20k/classes150.json``): dicts with
    ``id`` (1..150), ``name`` (all synonyms, e.g. ``"building, edifice"``), ``pixel_ratio``,
    ``train_images``, ``val_images``."""
    text = resources.files("sansa_probe.data").joinpath("splits/ade20k/classes150.json").read_text(encoding="utf-8")
    table = json.loads(text)
    return [dict(zip(table["columns"], row)) for row in table["classes"]]


def _split_folder(split: str) -> str:
    return "training" if split == "train" else "validation"


class ADE20KDataset(SegmentationSource):
    """One split of ADE20K SceneParsing with all 150 classes (single fold 0)."""

    name = "ade20k"

    def __init__(
        self,
        *,
        root: str | os.PathLike,
        fold: int = 0,
        split: str = "test",
        ignore_unlabeled: bool = False,
        index_cache: str | os.PathLike | None = None,
    ) -> None:
        if fold != 0:
            raise ValueError(f"fold {fold!r} is out of range for ade20k: it has a single fold 0")
        self.root = Path(root)
        if not (self.root / "images").is_dir() and (self.root / "ADEChallengeData2016" / "images").is_dir():
            self.root = self.root / "ADEChallengeData2016"
        self.fold = fold
        self.split = split
        self.ignore_unlabeled = ignore_unlabeled
        self.index_cache = Path(index_cache) if index_cache is not None else None
        sub = _split_folder(split)
        self.image_dir = self.root / "images" / sub
        self.annotation_dir = self.root / "annotations" / sub
        for folder in (self.image_dir, self.annotation_dir):
            if not folder.is_dir():
                raise DatasetNotFoundError(f"dataset 'ade20k': folder {folder} does not exist.\nExpected layout:\n{LAYOUT}")
        self._names = {row["id"]: str(row["name"]) for row in load_class_table()}
        self._by_class: dict[int, list[str]] | None = None
        self._ids: list[str] = []

    # ------------------------------------------------------------------ index

    def _list_ids(self) -> list[str]:
        images = {p.stem for p in self.image_dir.iterdir() if p.suffix.lower() == ".jpg" and not p.name.startswith(".")}
        labels = {p.stem for p in self.annotation_dir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")}
        orphans = sorted(labels - images)
        if orphans:
            raise DatasetNotFoundError(
                f"dataset 'ade20k': annotation {self.annotation_dir / (orphans[0] + '.png')} has no image "
                f"{self.image_dir / (orphans[0] + '.jpg')} ({len(orphans)} such).\nExpected layout:\n{LAYOUT}"
            )
        unlabelled = sorted(images - labels)
        if unlabelled:
            raise DatasetNotFoundError(
                f"dataset 'ade20k': image {self.image_dir / (unlabelled[0] + '.jpg')} has no annotation "
                f"{self.annotation_dir / (unlabelled[0] + '.png')} ({len(unlabelled)} such).\nExpected layout:\n{LAYOUT}"
            )
        if not images:
            raise DatasetNotFoundError(f"dataset 'ade20k': no images in {self.image_dir}.\nExpected layout:\n{LAYOUT}")
        return sorted(images)

    def _read_cache(self, ids: list[str]) -> dict[int, list[str]] | None:
        if self.index_cache is None or not self.index_cache.is_file():
            return None
        try:
            cached = json.loads(self.index_cache.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            return None
        if cached.get("version") != _INDEX_VERSION or cached.get("split") != self.split or cached.get("ids") != ids:
            return None
        return {int(c): list(v) for c, v in cached["classes"].items()}

    def _index(self) -> None:
        if self._by_class is not None:
            return
        ids = self._list_ids()
        by_class = self._read_cache(ids)
        if by_class is None:
            found: dict[int, list[str]] = {}
            for image_id in ids:
                for class_id in np.flatnonzero(np.bincount(self._labels(image_id).ravel(), minlength=NUM_CLASSES + 1)[1:]) + 1:
                    found.setdefault(int(class_id), []).append(image_id)
            by_class = found
            if self.index_cache is not None:
                atomic_write_json(
                    self.index_cache,
                    {
                        "version": _INDEX_VERSION,
                        "split": self.split,
                        "ids": ids,
                        "classes": {str(c): v for c, v in sorted(by_class.items())},
                    },
                    indent=None,
                )
        self._ids = ids
        self._by_class = by_class

    def _labels(self, image_id: str) -> np.ndarray:
        path = self.annotation_dir / f"{image_id}.png"
        labels = read_label_png(path, what="annotation")
        if labels.max(initial=0) > NUM_CLASSES:
            raise ValueError(f"annotation {path} has label {int(labels.max())}; expected 0 (other objects) or 1..{NUM_CLASSES}")
        return labels

    def _checked_labels(self, image_id: str) -> np.ndarray:
        """``HxW`` label map, checked to have the size of its image."""
        image_path = self._image_path(image_id)
        labels = self._labels(image_id)
        check_same_size(
            labels.shape,
            read_image_size(image_path),
            mask_what=f"annotation {self.annotation_dir / (image_id + '.png')}",
            image_what=f"image {image_path}",
        )
        return labels

    def _image_path(self, image_id: str) -> Path:
        path = self.image_dir / f"{image_id}.jpg"
        if "/" in image_id or not path.is_file():
            raise ValueError(f"image id {image_id!r}: expected the stem of a file in {self.image_dir} (e.g. 'ADE_val_00000001')")
        return path

    # ------------------------------------------------------------------ interface

    def class_ids(self) -> list[ClassId]:
        self._index()
        return sorted(self._by_class)

    def class_name(self, class_id: ClassId) -> str:
        """The first name of ``objectInfo150.txt`` (``2`` -> ``"building"``)."""
        return self._names.get(int(class_id), str(class_id)).split(",")[0].strip()

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        self._index()
        if class_id is None:
            return list(self._ids)
        if class_id not in self._by_class:
            raise ValueError(f"class {class_id!r} is not a class of ade20k split {self.split!r} with images (expected 1..{NUM_CLASSES})")
        return list(self._by_class[class_id])

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8."""
        return read_rgb(self._image_path(image_id))

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool: ``label == class_id``."""
        if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) or not 1 <= int(class_id) <= NUM_CLASSES:
            raise ValueError(f"class_id {class_id!r}: expected an ADE20K class id 1..{NUM_CLASSES}")
        return self._checked_labels(image_id) == int(class_id)

    def load_ignore(self, image_id: str) -> np.ndarray | None:
        """``HxW`` bool of label 0 with ``ignore_unlabeled=True``, else None."""
        if not self.ignore_unlabeled:
            return None
        return self._checked_labels(image_id) == 0

    def load_instances(self, image_id: str) -> list[Instance]:
        """One :class:`Instance` per class present (SceneParsing labels have no instances)."""
        labels = self._checked_labels(image_id)
        present = [int(c) for c in np.unique(labels) if c != 0]
        return [Instance(class_id=c, instance_id=i, mask=labels == c) for i, c in enumerate(present)]


def _fold_classes(fold: int, split: str, root: Path | None) -> list[ClassId]:
    return list(range(1, NUM_CLASSES + 1))


_build = source_builder(ADE20KDataset, name="ade20k")


SPECS: list[DatasetSpec] = [
    DatasetSpec(
        name="ade20k",
        folds=1,
        fold_classes=_fold_classes,
        build=_build,
        default_episodes=1000,
        layout=LAYOUT,
        folder="ADEChallengeData2016",
        episode_policy="random_class",
        release_square=640,  # the public release's image size for ade20k
        extra={"splits": "one fold, all 150 classes: train = training, val = test = validation"},
    ),
]
