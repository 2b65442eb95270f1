"""All classes of a fold-based benchmark as one training source (the generalist setting).

The generalist models of the paper (section 4.2) train on every class of COCO, ADE20K, LVIS
and PACO. Our benchmarks are split in folds, so the union of the training splits of all folds
covers every class; each class is served by the first fold whose training split holds it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.registry import get_dataset, get_spec

__all__ = ["UnionSource", "all_classes_source"]


class UnionSource(SegmentationSource):
    """The classes of several sources of one dataset; images are read from the source owning the class."""

    def __init__(self, sources: Sequence[SegmentationSource]) -> None:
        if not sources:
            raise ValueError("sources: at least one source is needed")
        self.sources = list(sources)
        self.name = sources[0].name
        self.split = sources[0].split
        self._owner: dict[ClassId, SegmentationSource] = {}
        for source in self.sources:
            for class_id in source.class_ids():
                self._owner.setdefault(class_id, source)
        self._image_owner: dict[str, SegmentationSource] = {}

    def class_ids(self) -> list[ClassId]:
        return sorted(self._owner, key=lambda c: (str(type(c)), c))

    def class_name(self, class_id: ClassId) -> str:
        return self._owner[class_id].class_name(class_id)

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        if class_id is not None:
            ids = self._owner[class_id].image_ids(class_id)
            for image_id in ids:
                self._image_owner.setdefault(image_id, self._owner[class_id])
            return ids
        return sorted({i for c in self._owner for i in self.image_ids(c)})

    def _source_of(self, image_id: str) -> SegmentationSource:
        if image_id not in self._image_owner:
            self.image_ids()
        return self._image_owner[image_id]

    def load_image(self, image_id: str) -> np.ndarray:
        return self._source_of(image_id).load_image(image_id)

    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        return self._owner[class_id].load_mask(image_id, class_id)

    def load_ignore(self, image_id: str) -> np.ndarray | None:
        return self._source_of(image_id).load_ignore(image_id)

    def load_instances(self, image_id: str) -> list[Instance]:
        return self._source_of(image_id).load_instances(image_id)

    def source_image_id(self, image_id: str) -> str:
        of = getattr(self._source_of(image_id), "source_image_id", None)
        return str(of(image_id)) if callable(of) else image_id


def all_classes_source(dataset: str, *, root=None, **options) -> SegmentationSource:
    """The training images of every class of ``dataset``: the union of all folds' training splits."""
    spec = get_spec(dataset)
    sources = [get_dataset(dataset, fold=f, split="train", root=root, **options) for f in range(spec.folds)]
    return sources[0] if len(sources) == 1 else UnionSource(sources)
