"""The benchmark as a :class:`~sansa_probe.data.base.SegmentationSource`: ids, rendering, the registry's spec.

Every image is a pure function of ``(seed, split, fold, class, index, n_classes)`` and
``image_size``; :func:`contact_sheet` draws a labelled grid of a source for a visual check.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.registry import DatasetSpec
from sansa_probe.data.synthetic.classes import (
    DEFAULT_CLASSES,
    MAX_CLASSES,
    N_FOLDS,
    SPLIT_CODES,
    check_class,
    check_ints,
    synthetic_class_name,
    synthetic_fold_classes,
)
from sansa_probe.data.synthetic.scenes import clutter_background, compose, crowded_scene, random_scene

__all__ = ["SyntheticSource", "build", "SPECS", "contact_sheet", "BENCHMARKS", "DEFAULT_BENCHMARK"]

_OPTIONS = ("image_size", "images_per_class", "seed", "n_classes", "cache_size", "benchmark")
BENCHMARKS = {"v1": random_scene, "v2": crowded_scene}
"""Scene versions: ``"v1"`` 1-3 instances of the class and 1-3 distractors, random colours;
``"v2"`` 1-2 instances among 3-5 distractors, colours from a shared palette (see
:mod:`~sansa_probe.data.synthetic.scenes`). Numbers of different versions are never comparable."""
DEFAULT_BENCHMARK = "v1"


class SyntheticSource(SegmentationSource):
    """One split of one fold of the procedural benchmark (see the module docstring).

    Args:
        fold: 0..3; class ``c`` is a test class of fold ``c % 4``.
        split: ``"train"`` (the fold's training classes only), ``"val"`` or ``"test"``.
        image_size: side of the square images, 64..512.
        images_per_class: images per class in this split (ids ``<split>-f<fold>-c<class>-<index>``).
        seed: the benchmark's seed; every image is a pure function of it and its id.
        n_classes: number of classes, 8..80 (default 64).
        cache_size: how many rendered images to keep (LRU); 0 disables the cache.
        benchmark: the scene version, one of :data:`BENCHMARKS` (default :data:`DEFAULT_BENCHMARK`).
    """

    name = "synthetic"

    def __init__(
        self,
        *,
        fold: int = 0,
        split: str = "test",
        image_size: int = 256,
        images_per_class: int = 50,
        seed: int = 0,
        n_classes: int = DEFAULT_CLASSES,
        cache_size: int = 32,
        benchmark: str = DEFAULT_BENCHMARK,
    ) -> None:
        if benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark: expected one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
        self._classes = synthetic_fold_classes(fold, split, n_classes=n_classes)
        check_ints(image_size=(image_size, 64, 512), images_per_class=(images_per_class, 1, 99_999), seed=(seed, 0, 2**63 - 1),
                   cache_size=(cache_size, 0, 100_000))  # fmt: skip
        self.fold = fold
        self.split = split
        self.image_size = image_size
        self.images_per_class = images_per_class
        self.seed = seed
        self.n_classes = n_classes
        self.cache_size = cache_size
        self.benchmark = benchmark
        self._cache: OrderedDict[str, tuple[np.ndarray, list[Instance]]] = OrderedDict()

    # -- class set
    def class_ids(self) -> list[ClassId]:
        return list(self._classes)

    def class_name(self, class_id: ClassId) -> str:
        return synthetic_class_name(check_class(class_id, self.n_classes))

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        """``images_per_class`` ids per class, sorted; with ``class_id``, the images drawn for it.

        An image drawn for one class may also show another class as a distractor; it is listed
        under the class it was drawn for only (so every class has exactly ``images_per_class``).
        """
        if class_id is None:
            classes = self._classes
        else:
            c = check_class(class_id, self.n_classes)
            classes = [c] if c in self._classes else []
        return [self._image_id(c, k) for c in classes for k in range(self.images_per_class)]

    def _image_id(self, class_id: int, index: int) -> str:
        return f"{self.split}-f{self.fold}-c{class_id:02d}-{index:05d}"

    def _parse(self, image_id: str) -> tuple[int, int]:
        parts = image_id.split("-") if isinstance(image_id, str) else []
        try:
            split, fold, class_id, index = parts[0], int(parts[1][1:]), int(parts[2][1:]), int(parts[3])
            valid = (
                len(parts) == 4 and parts[1][0] == "f" and parts[2][0] == "c"
                and split == self.split and fold == self.fold and class_id in self._classes
                and 0 <= index < self.images_per_class and image_id == self._image_id(class_id, index)
            )  # fmt: skip
        except (IndexError, ValueError):
            valid = False
        if not valid:
            raise ValueError(
                f"image_id: {image_id!r} is not an image of {self!r}; expected an id from image_ids(), "
                f"such as {self._image_id(self._classes[0], 0)!r}"
            )
        return class_id, index

    # -- rendering
    def _render(self, image_id: str) -> tuple[np.ndarray, list[Instance]]:
        if image_id in self._cache:
            self._cache.move_to_end(image_id)
            return self._cache[image_id]
        class_id, index = self._parse(image_id)
        key = [self.seed, SPLIT_CODES[self.split], self.fold, self.n_classes, class_id, index]
        layout = np.random.default_rng(key + [0])
        # train images: distractors from the fold's training classes only; val/test: any class
        pool = self._classes if self.split == "train" else list(range(self.n_classes))
        background = clutter_background(layout, self.image_size)
        objects = BENCHMARKS[self.benchmark](layout, primary=class_id, pool=pool)
        image, masks = compose(background, objects, self.image_size, np.random.default_rng(key + [1]))
        instances = [
            Instance(class_id=spec.class_id, instance_id=i, mask=mask)
            for i, (spec, mask) in enumerate(zip(objects, masks))
            if mask.any()
        ]
        image.setflags(write=False)
        for instance in instances:
            instance.mask.setflags(write=False)
        if self.cache_size:
            self._cache[image_id] = (image, instances)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image, instances

    def load_image(self, image_id: str) -> np.ndarray:
        """``HxWx3`` uint8 RGB, ``H = W = image_size``."""
        return self._render(image_id)[0].copy()

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool: the union of the visible instances of ``class_id`` (any of the ``n_classes``)."""
        c = check_class(class_id, self.n_classes)
        mask = np.zeros((self.image_size, self.image_size), dtype=bool)
        for instance in self._render(image_id)[1]:
            if instance.class_id == c:
                mask |= instance.mask
        return mask

    def load_instances(self, image_id: str, *, all_classes: bool = False) -> list[Instance]:
        """Visible per-instance ``HxW`` bool masks in paint order.

        By default only instances of this source's classes (the contract of
        :class:`SegmentationSource`); ``all_classes=True`` adds the distractors of other classes.
        """
        return [
            Instance(class_id=i.class_id, instance_id=i.instance_id, mask=i.mask.copy())
            for i in self._render(image_id)[1]
            if all_classes or i.class_id in self._classes
        ]


def build(root: Any = None, fold: int = 0, split: str = "test", **options: Any) -> SyntheticSource:
    """The registry's constructor; ``root`` is ignored (nothing on disk).

    Options: ``image_size`` (256), ``images_per_class`` (50), ``seed`` (0), ``n_classes`` (64),
    ``cache_size`` (32), ``benchmark`` (``"v1"``; see :data:`BENCHMARKS`).
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(
            f"options: unknown option(s) {', '.join(unknown)} for dataset 'synthetic'; expected {', '.join(_OPTIONS)}"
        )
    return SyntheticSource(fold=fold, split=split, **options)


def _spec_fold_classes(fold: int, split: str, root: Any = None, *, n_classes: int = DEFAULT_CLASSES) -> list[ClassId]:
    return list(synthetic_fold_classes(fold, split, n_classes=n_classes))


SPECS = [
    DatasetSpec(
        name="synthetic",
        folds=N_FOLDS,
        fold_classes=_spec_fold_classes,
        build=build,
        default_episodes=1000,
        layout="(generated on the fly; nothing on disk)",
        folder="synthetic",
        needs_root=False,
        episode_policy="random_class",
        release_square=None,  # square already: the release's protocol keeps the image's own size
        extra={"n_classes": DEFAULT_CLASSES, "max_classes": MAX_CLASSES},
    )
]


def contact_sheet(source: SegmentationSource, n: int = 16, *, columns: int | None = None) -> np.ndarray:
    """A labelled grid of ``n`` images, one per class (cycling), class mask outlined in magenta.

    Tile ``i`` shows the ``i // len(classes)``-th image of class ``classes[i % len(classes)]``
    with its class name. Returns an ``HxWx3`` uint8 array (``H = rows * tile``).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    classes = source.class_ids()
    if not classes:
        raise ValueError(f"source: {source!r} has no class to show")
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    tiles = []
    for i in range(n):
        class_id = classes[i % len(classes)]
        ids = source.image_ids(class_id)
        image_id = ids[(i // len(classes)) % len(ids)]
        image = source.load_image(image_id).copy()
        mask = source.load_mask(image_id, class_id)
        image[mask & ~ndimage.binary_erosion(mask, iterations=2)] = (255, 0, 255)
        tile = Image.fromarray(image)
        draw = ImageDraw.Draw(tile)
        label = f"{class_id}: {source.class_name(class_id)}"
        draw.rectangle((0, 0, 7 * len(label) + 4, 13), fill=(0, 0, 0))
        draw.text((2, 1), label, fill=(255, 255, 255))
        tiles.append(np.asarray(tile))
    height, width = tiles[0].shape[:2]
    sheet = np.full((rows * (height + 2), columns * (width + 2), 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * (height + 2) : r * (height + 2) + height, c * (width + 2) : c * (width + 2) + width] = tile
    return sheet
