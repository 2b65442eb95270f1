"""Pascal-5i: PASCAL VOC 2012 + SBD augmented masks, 20 classes in 4 folds of 5.

Fold ``f`` tests VOC classes ``5f+1 .. 5f+5`` and trains on the other 15 (class ids are VOC's
1..20). Masks are ``SegmentationClassAug`` PNGs: pixel = class id, 0 background, 255 object
boundaries -- those are excluded from evaluation (:meth:`Pascal5iSource.load_ignore`) and
belong to no class mask.

Which (image, class) pairs make the benchmark (HSNet's lists, shipped in ``splits/pascal/``):

* ``val`` / ``test`` (one evaluation split): the OSLSM / PANet / HSNet lists
  ``val/fold{f}.txt`` (lines ``<image>__<class:02d>``, 346 / 451 / 725 / 346 pairs). HSNet
  walks the list in file order, wrapping around, for 1,000 episodes:
  :meth:`Pascal5iSource.episode_pairs` gives that order (the ``list_order`` episode policy).
* ``train``: HSNet's ``trn/fold{j}.txt`` of the other three folds (2,286 / 3,425 / 5,883 /
  2,086 pairs). ``lists="derived"`` (warns) instead pairs every ``SegmentationClassAug`` image
  outside ``ImageSets/Segmentation/val.txt`` with each training class it contains (~490
  images more than HSNet's lists), optionally cached in ``index_cache`` (JSON).

``splits_dir=`` names a folder with ``val/`` and/or ``trn/`` lists of the same format that
replace the shipped ones.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.files import read_label_png, read_rgb
from sansa_probe.data.registry import DatasetNotFoundError, DatasetSpec, source_builder
from sansa_probe.io.atomic import atomic_write_json

__all__ = [
    "LISTS",
    "PASCAL_LAYOUT",
    "Pascal5iSource",
    "SPECS",
    "pascal_fold_classes",
    "shipped_train_pairs",
    "shipped_val_pairs",
    "voc_classes",
]

N_FOLDS = 4
N_CLASSES = 20
IGNORE_VALUE = 255
LISTS = ("hsnet", "derived")
SHIPPED = Path(__file__).with_name("splits") / "pascal"

PASCAL_LAYOUT = """\
VOC2012/
  JPEGImages/<image>.jpg                 (e.g. 2007_000033.jpg)
  SegmentationClassAug/<image>.png       (pixel = VOC class id 1..20, 0 background, 255 boundary)
  ImageSets/Segmentation/val.txt         (VOC 2012 val images; only for lists='derived')
  HSNet's lists {trn,val}/fold{0-3}.txt (lines '<image>__<class:02d>') are shipped;
  splits_dir= may name a folder with other ones."""


def voc_classes() -> dict[int, str]:
    """VOC class ids 1..20 and their names (shipped ``splits/pascal/classes.tsv``)."""
    path = Path(__file__).with_name("splits") / "pascal" / "classes.tsv"
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return {int(cid): name for cid, name in (row.split("\t") for row in rows if row.strip())}


def _check_fold(fold: int) -> None:
    if not isinstance(fold, int) or isinstance(fold, bool) or not 0 <= fold < N_FOLDS:
        raise ValueError(f"fold {fold!r} is out of range for pascal5i: expected 0..{N_FOLDS - 1}")


def pascal_fold_classes(fold: int, split: str = "test", root: Path | None = None) -> list[int]:
    """VOC ids of ``fold``: ``5f+1..5f+5`` (val/test) or the other 15 (train)."""
    _check_fold(fold)
    test = list(range(5 * fold + 1, 5 * fold + 6))
    if split == "train":
        return [c for c in range(1, N_CLASSES + 1) if c not in test]
    return test


def _read_pairs(path: Path) -> list[tuple[str, int]]:
    if not path.is_file():
        raise DatasetNotFoundError(f"pascal5i: split file {path} does not exist.\nExpected layout:\n{PASCAL_LAYOUT}")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        image, sep, cls = line.rpartition("__")
        if not sep or not cls.isdigit() or not 1 <= int(cls) <= N_CLASSES:
            raise ValueError(f"{path}, line {number}: {line!r}; expected '<image>__<class id 01..20>'")
        pairs.append((image, int(cls)))
    return pairs


def shipped_val_pairs(fold: int) -> list[tuple[str, int]]:
    """HSNet's evaluation pairs ``(image, class id)`` of ``fold``, in file order."""
    _check_fold(fold)
    return _read_pairs(SHIPPED / "val" / f"fold{fold}.txt")


def shipped_train_pairs(fold: int) -> list[tuple[str, int]]:
    """HSNet's training pairs ``(image, class id)`` of ``fold``'s own five classes (``trn/fold{fold}.txt``),
    in file order; fold ``f`` trains on the lists of the other three folds."""
    _check_fold(fold)
    return _read_pairs(SHIPPED / "trn" / f"fold{fold}.txt")


class Pascal5iSource(SegmentationSource):
    """One fold and split of Pascal-5i (see the module docstring).

    Image ids are VOC image names (``'2007_000033'``). Construction reads only the split
    lists (evaluation) or nothing (training, whose pairs come from the lists or a mask scan
    on first use).

    Args:
        root: the ``VOC2012`` folder.
        fold: 0..3.
        split: ``"train"`` or ``"val"``/``"test"``.
        splits_dir: a folder with HSNet-style ``{trn,val}/fold{k}.txt`` lists replacing the shipped ones.
        lists: training pairs: ``"hsnet"`` (HSNet's lists, default) or ``"derived"`` (every
            SBD-aug mask outside VOC 2012 val; warns).
        index_cache: JSON file caching the derived training pairs (written atomically).
    """

    name = "pascal5i"

    def __init__(
        self,
        *,
        root: str | os.PathLike,
        fold: int,
        split: str,
        splits_dir: str | os.PathLike | None = None,
        lists: str = "hsnet",
        index_cache: str | os.PathLike | None = None,
    ) -> None:
        _check_fold(fold)
        if split not in ("train", "val", "test"):
            raise ValueError(f"split {split!r}: expected 'train', 'val' or 'test'")
        if lists not in LISTS:
            raise ValueError(f"lists {lists!r}: expected one of {', '.join(LISTS)}")
        self.lists = lists
        self.root = Path(root)
        self.fold = fold
        self.split = split
        for sub in ("JPEGImages", "SegmentationClassAug"):
            if not (self.root / sub).is_dir():
                raise DatasetNotFoundError(f"pascal5i: folder {self.root / sub} does not exist.\nExpected layout:\n{PASCAL_LAYOUT}")
        self._classes = pascal_fold_classes(fold, "train" if split == "train" else "test")
        self.index_cache = Path(index_cache) if index_cache is not None else None
        self.splits_dir = self._find_splits(splits_dir)
        self._pairs: dict[int, list[str]] | None = None
        self._listed: set[str] | None = None
        self._val_order: list[tuple[str, int]] = []
        if split != "train":
            self._val_order = self._read_val()
            self._pairs = self._group(self._val_order)

    def _find_splits(self, splits_dir: str | os.PathLike | None) -> Path | None:
        if splits_dir is None:
            return None
        path = Path(splits_dir)
        if not path.is_dir():
            raise DatasetNotFoundError(f"pascal5i: splits_dir {path} does not exist.\nExpected layout:\n{PASCAL_LAYOUT}")
        return path

    def _read_val(self) -> list[tuple[str, int]]:
        if self.splits_dir is not None and (self.splits_dir / "val").is_dir():
            path = self.splits_dir / "val" / f"fold{self.fold}.txt"
        else:
            path = SHIPPED / "val" / f"fold{self.fold}.txt"
        pairs = _read_pairs(path)
        wrong = [p for p in pairs if p[1] not in self._classes]
        if wrong:
            raise ValueError(f"{path} pairs {wrong[0]} with class {wrong[0][1]}, not a test class of fold {self.fold} ({self._classes})")
        return pairs

    def _group(self, pairs: list[tuple[str, int]]) -> dict[int, list[str]]:
        grouped: dict[int, set[str]] = {}
        for image, cls in pairs:
            if cls in self._classes:
                grouped.setdefault(cls, set()).add(image)
        return {cls: sorted(images) for cls, images in sorted(grouped.items())}

    def _index(self) -> dict[int, list[str]]:
        if self._pairs is None:
            self._pairs = self._group(self._train_pairs())
        return self._pairs

    def episode_pairs(self) -> list[tuple[int, str]]:
        """Evaluation splits: the ``(class id, image)`` pairs in the list's file order (HSNet's
        episode order: episode ``i`` is pair ``i mod len``)."""
        if self.split == "train":
            raise ValueError("pascal5i: episode_pairs() is the evaluation list's order; the train split has none")
        return [(cls, image) for image, cls in self._val_order]

    def _train_pairs(self) -> list[tuple[str, int]]:
        if self.lists == "hsnet":
            folder = self.splits_dir / "trn" if self.splits_dir is not None and (self.splits_dir / "trn").is_dir() else SHIPPED / "trn"
            return [pair for other in range(N_FOLDS) if other != self.fold for pair in _read_pairs(folder / f"fold{other}.txt")]
        warnings.warn(
            f"pascal5i fold {self.fold}: lists='derived' trains on every SegmentationClassAug image outside VOC 2012 val, "
            "not on HSNet's published training lists (the default)",
            stacklevel=4,
        )
        if self.index_cache is not None and self.index_cache.is_file():
            cached = json.loads(self.index_cache.read_text(encoding="utf-8"))
            return [(str(image), int(cls)) for image, cls in cached["pairs"]]
        pairs = self._scan_training_masks()
        if self.index_cache is not None:
            atomic_write_json(self.index_cache, {"source": str(self.root), "pairs": [list(p) for p in pairs]}, indent=None)
        return pairs

    def _scan_training_masks(self) -> list[tuple[str, int]]:
        """Every (image, class) of the augmented masks outside VOC 2012 val, all 20 classes."""
        val_list = self.root / "ImageSets" / "Segmentation" / "val.txt"
        if not val_list.is_file():
            raise DatasetNotFoundError(
                f"pascal5i: {val_list} does not exist; it is needed to keep VOC 2012 val images out of the derived "
                f"training pairs (or give splits_dir with HSNet's trn/fold*.txt).\nExpected layout:\n{PASCAL_LAYOUT}"
            )
        excluded = {line.strip() for line in val_list.read_text(encoding="utf-8").splitlines() if line.strip()}
        pairs = []
        for png in sorted((self.root / "SegmentationClassAug").glob("*.png")):
            if png.stem in excluded:
                continue
            values = np.unique(read_label_png(png, what="pascal5i mask"))
            pairs += [(png.stem, int(v)) for v in values if 1 <= v <= N_CLASSES]
        return pairs

    def _check_image(self, image_id: str) -> None:
        if self._listed is None:
            self._listed = {image for images in self._index().values() for image in images}
        if image_id not in self._listed:
            raise ValueError(f"image id {image_id!r} is not in pascal5i fold {self.fold} split {self.split!r}")

    def _labels(self, image_id: str) -> np.ndarray:
        return read_label_png(self.root / "SegmentationClassAug" / f"{image_id}.png", what="pascal5i mask")

    # --------------------------------------------------------------- interface

    def class_ids(self) -> list[ClassId]:
        return sorted(self._index())

    def class_name(self, class_id: ClassId) -> str:
        return voc_classes().get(int(class_id), str(class_id))

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        index = self._index()
        if class_id is None:
            return sorted({image for images in index.values() for image in images})
        if class_id not in self._classes:
            raise ValueError(f"class {class_id!r} is not a class of pascal5i fold {self.fold} split {self.split!r}")
        return list(index.get(int(class_id), []))

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8."""
        self._check_image(image_id)
        return read_rgb(self.root / "JPEGImages" / f"{image_id}.jpg", what="pascal5i image")

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool: pixels labelled ``class_id`` (boundaries, 255, are never part of it)."""
        self._check_image(image_id)
        return self._labels(image_id) == int(class_id)

    def load_ignore(self, image_id: str) -> np.ndarray:
        """``HxW`` bool: the 255 boundary pixels, excluded from evaluation."""
        self._check_image(image_id)
        return self._labels(image_id) == IGNORE_VALUE

    def load_instances(self, image_id: str) -> list[Instance]:
        """Semantic masks only: one :class:`Instance` per class of this source present in the image."""
        self._check_image(image_id)
        labels = self._labels(image_id)
        present = [c for c in self._classes if np.any(labels == c)]
        return [Instance(class_id=c, instance_id=i, mask=labels == c) for i, c in enumerate(present)]


_build = source_builder(Pascal5iSource, name="pascal5i")


SPECS = [
    DatasetSpec(
        name="pascal5i",
        folds=N_FOLDS,
        fold_classes=pascal_fold_classes,
        build=_build,
        default_episodes=1000,
        layout=PASCAL_LAYOUT,
        folder="VOC2012",
        episode_policy="list_order",
    )
]
