"""FSS-1000: 1,000 classes of 10 images each, split 520 / 240 / 240 (train / val / test).

On disk (under ``<root>/FSS-1000``, optionally with the class folders under ``data/``):
``<class>/<n>.jpg`` with its mask ``<class>/<n>.png``; a pixel is foreground when its grey
value is ``>= 128`` (HSNet's rule, masks of any mode converted to 8-bit grey first). Class
ids are the folder names.

Class lists (``lists``). The 240 test classes are fixed by the dataset authors
(``splits/fss/test.txt``, from HKUSTCV/FSS-1000 ``fss_test_set.txt``); train / val are
HSNet's random 520 / 240 split of the other classes (``splits/fss/{trn,val}.txt``), the one
HSNet, Matcher and SANSA use. Both are shipped and used by default (``lists="hsnet"``);
``splits_dir=`` names a folder with other ``trn.txt`` / ``val.txt`` / ``test.txt``.
``lists="derived"`` (warns) splits the non-test class folders on disk instead: sorted,
shuffled by ``numpy.random.default_rng(DERIVED_SPLIT_SEED)``, the first
``round(n * 520 / 760)`` train and the rest val.

Known defect: ``peregine_falcon/8.png`` (a test class) is an RGB 480x960 mask for a 224x224
image. A mask whose size differs from its image is binarised by the rule above and resized
to the image with nearest-neighbour sampling (``floor(i * in / out)``, torch's ``nearest``,
as HSNet's loader effectively does when it resizes every mask to its image), with one
warning per file and source.

Splits: ``train`` (520 classes), ``val`` (240, model selection), ``test`` (240, the
benchmark). There is one "fold" (fold 0). The benchmark evaluates every test image once
(2,400 episodes), references drawn from the other images of the class.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.files import read_image_size, read_rgb
from sansa_probe.data.registry import DatasetNotFoundError, DatasetSpec, source_builder
from sansa_probe.io.images import open_image_raw

__all__ = [
    "DERIVED_SPLIT_SEED",
    "FSS_LAYOUT",
    "LISTS",
    "Fss1000Source",
    "SPECS",
    "fss_classes",
    "fss_fold_classes",
    "read_grey_mask",
    "resize_nearest",
    "shipped_classes",
    "shipped_test_classes",
]

DERIVED_SPLIT_SEED = 0
N_TRAIN, N_VAL, N_TEST = 520, 240, 240
LISTS = ("hsnet", "derived")

FSS_LAYOUT = """\
FSS-1000/
  [data/]<class>/<n>.jpg          (n = 1..10; the class folders, optionally under data/)
  [data/]<class>/<n>.png          (mask: grey >= 128 is foreground)
  (the class lists, HSNet's trn.txt / val.txt / test.txt, are shipped with sansa-probe)"""

_SPLIT_FILES = {"train": "trn.txt", "val": "val.txt", "test": "test.txt"}


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetNotFoundError(f"fss1000: class list {path} does not exist.\nExpected layout:\n{FSS_LAYOUT}")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [name for name in names if name]


def shipped_classes(split: str) -> list[str]:
    """The shipped class list of ``split`` ("train", "val", "test"), in the order of the published file."""
    if split not in _SPLIT_FILES:
        raise ValueError(f"split {split!r}: expected 'train', 'val' or 'test'")
    return _read_list(Path(__file__).with_name("splits") / "fss" / _SPLIT_FILES[split])


def shipped_test_classes() -> list[str]:
    """The 240 official test classes, in the order of the published file."""
    return shipped_classes("test")


def read_grey_mask(path: Path) -> np.ndarray:
    """``HxW`` bool: the mask file converted to 8-bit grey (any mode), ``>= 128`` is foreground."""
    if not path.is_file():
        raise DatasetNotFoundError(f"fss1000 mask {path} does not exist")
    grey = np.asarray(open_image_raw(path, name="fss1000 mask", expected="a PNG mask").convert("L"))
    return grey >= 128


def resize_nearest(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``mask`` (``hxw``) resampled to ``hw`` (``HxW``) by torch's ``nearest`` rule: output pixel
    ``(i, j)`` takes input ``(floor(i * h / H), floor(j * w / W))``, in float32 as torch computes it."""

    def source_indices(size_in: int, size_out: int) -> np.ndarray:
        scale = np.float32(size_in) / np.float32(size_out)
        return np.minimum(np.floor(np.arange(size_out, dtype=np.float32) * scale).astype(np.int64), size_in - 1)

    return mask[source_indices(mask.shape[0], hw[0])[:, None], source_indices(mask.shape[1], hw[1])[None, :]]


def _data_dir(root: Path) -> Path:
    return root / "data" if (root / "data").is_dir() else root


def fss_classes(
    split: str,
    root: str | os.PathLike | None = None,
    *,
    splits_dir: str | os.PathLike | None = None,
    lists: str = "hsnet",
) -> list[str]:
    """Sorted class names of ``split`` ("train", "val" or "test"); see the module docstring for the rule."""
    if split not in _SPLIT_FILES:
        raise ValueError(f"split {split!r}: expected 'train', 'val' or 'test'")
    if lists not in LISTS:
        raise ValueError(f"lists {lists!r}: expected one of {', '.join(LISTS)}")
    if splits_dir is not None:
        if lists != "hsnet":
            raise ValueError("splits_dir= gives the class lists; it cannot be combined with lists='derived'")
        return sorted(_read_list(Path(splits_dir) / _SPLIT_FILES[split]))
    if lists == "hsnet" or split == "test":
        return sorted(shipped_classes(split))
    if root is None:
        raise DatasetNotFoundError(
            f"fss1000: lists='derived' splits the class folders on disk: pass root=.\nExpected layout:\n{FSS_LAYOUT}"
        )
    data = _data_dir(Path(root))
    if not data.is_dir():
        raise DatasetNotFoundError(f"fss1000: folder {data} does not exist.\nExpected layout:\n{FSS_LAYOUT}")
    warnings.warn(
        f"fss1000: lists='derived': the {split!r} classes are a seeded split of the class folders in {data}, "
        "not HSNet's published train/val lists (the default)",
        stacklevel=3,
    )
    excluded = set(shipped_test_classes())
    others = sorted(p.name for p in data.iterdir() if p.is_dir() and p.name not in excluded and p.name != "splits")
    order = np.random.default_rng(DERIVED_SPLIT_SEED).permutation(len(others))
    n_train = round(len(others) * N_TRAIN / (N_TRAIN + N_VAL))
    chosen = order[:n_train] if split == "train" else order[n_train:]
    return sorted(others[i] for i in chosen)


def fss_fold_classes(fold: int, split: str = "test", root: Path | None = None, **options: Any) -> list[str]:
    """Registry hook: FSS-1000 has one fold (0); ``options``: ``splits_dir``, ``lists``."""
    if fold != 0:
        raise ValueError(f"fold {fold!r} is out of range for fss1000: expected 0")
    return fss_classes(split, root, **options)


class Fss1000Source(SegmentationSource):
    """One split of FSS-1000.

    Image ids are ``'<class>/<n>.jpg'`` (relative to the class-folder root). Construction
    checks that every class folder of the split exists; images are listed on first use.

    Args:
        root: the ``FSS-1000`` folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        fold: must be 0.
        splits_dir: a folder with ``trn.txt``/``val.txt``/``test.txt`` replacing the shipped lists.
        lists: ``"hsnet"`` (the shipped lists) or ``"derived"`` (train/val split of the folders on disk).
    """

    name = "fss1000"

    def __init__(
        self,
        *,
        root: str | os.PathLike,
        split: str,
        fold: int = 0,
        splits_dir: str | os.PathLike | None = None,
        lists: str = "hsnet",
    ) -> None:
        if fold != 0:
            raise ValueError(f"fold {fold!r} is out of range for fss1000: expected 0")
        self.root = Path(root)
        self.split = split
        self.data_dir = _data_dir(self.root)
        if not self.data_dir.is_dir():
            raise DatasetNotFoundError(f"fss1000: folder {self.data_dir} does not exist.\nExpected layout:\n{FSS_LAYOUT}")
        self._classes = fss_classes(split, self.root, splits_dir=splits_dir, lists=lists)
        missing = [c for c in self._classes if not (self.data_dir / c).is_dir()]
        if missing:
            raise DatasetNotFoundError(
                f"fss1000: {len(missing)} class folder(s) of split {split!r} are missing under {self.data_dir}, "
                f"e.g. {self.data_dir / missing[0]}.\nExpected layout:\n{FSS_LAYOUT}"
            )
        self._images: dict[str, list[str]] | None = None
        self._resized: set[Path] = set()  # defective masks already warned about

    def _index(self) -> dict[str, list[str]]:
        if self._images is None:
            images = {}
            for cls in self._classes:
                names = sorted(p.name for p in (self.data_dir / cls).iterdir() if p.suffix.lower() == ".jpg")
                if names:
                    images[cls] = [f"{cls}/{name}" for name in names]
            self._images = images
        return self._images

    def _class_of(self, image_id: str) -> str:
        cls = image_id.split("/", 1)[0]
        if "/" not in image_id or cls not in self._index() or image_id not in self._index()[cls]:
            raise ValueError(f"image id {image_id!r} is not an image of fss1000 split {self.split!r}; expected '<class>/<n>.jpg'")
        return cls

    def class_ids(self) -> list[ClassId]:
        return sorted(self._index())

    def class_name(self, class_id: ClassId) -> str:
        return str(class_id).replace("_", " ")

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        index = self._index()
        if class_id is None:
            return sorted(image for images in index.values() for image in images)
        if class_id not in self._classes:
            raise ValueError(f"class {class_id!r} is not a class of fss1000 split {self.split!r}")
        return list(index.get(str(class_id), []))

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8."""
        self._class_of(image_id)
        return read_rgb(self.data_dir / image_id, what="fss1000 image")

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool (the image's size): grey value ``>= 128``; all False for another class.

        A mask of another size than its image (a defect of the public files) is resized to it
        (nearest) with one warning naming the file."""
        cls = self._class_of(image_id)
        path = (self.data_dir / image_id).with_suffix(".png")
        mask = read_grey_mask(path)
        hw = read_image_size(self.data_dir / image_id, what="fss1000 image")
        if mask.shape != hw:
            if path not in self._resized:
                self._resized.add(path)
                warnings.warn(
                    f"fss1000: mask {path} is {mask.shape[0]}x{mask.shape[1]} but its image is {hw[0]}x{hw[1]} "
                    "(a known defect of the public files); it is binarised (grey >= 128) and resized to the image "
                    "(nearest), as HSNet's loader effectively does",
                    stacklevel=2,
                )
            mask = resize_nearest(mask, hw)
        return mask if class_id == cls else np.zeros_like(mask)

    def load_instances(self, image_id: str) -> list[Instance]:
        cls = self._class_of(image_id)
        return [Instance(class_id=cls, instance_id=0, mask=self.load_mask(image_id, cls))]


_build = source_builder(Fss1000Source, name="fss1000")


SPECS = [
    DatasetSpec(
        name="fss1000",
        folds=1,
        fold_classes=fss_fold_classes,
        build=_build,
        default_episodes=None,
        layout=FSS_LAYOUT,
        folder="FSS-1000",
        episode_policy="every_image",
        release_square=518,  # the public release's image size for fss1000
    )
]
