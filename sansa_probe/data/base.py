"""The one interface every benchmark implements (real layouts and the procedural one).

A :class:`SegmentationSource` is one split of one dataset, restricted to a class
set (for a few-shot benchmark: the training classes of a fold, or its test
classes). Everything downstream -- episode samplers, training, evaluation,
feature probes, annotation -- only talks to this interface.

Ids: ``image_id`` is a stable string (a relative path, a COCO image id as text,
a procedural seed); ``class_id`` is the dataset's own id (COCO category ids
1..90, VOC ids 1..20, FSS-1000 folder names, LVIS category ids, ...).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Union

import numpy as np

ClassId = Union[int, str]

__all__ = ["ClassId", "Instance", "SegmentationSource"]


@dataclass(frozen=True, eq=False)
class Instance:
    """One object instance of an image: its class, an id unique within the image, its mask.

    ``parts`` optionally maps part names to ``HxW`` bool masks (Pascal-Part, PACO-Part).
    """

    class_id: ClassId
    instance_id: int
    mask: np.ndarray
    parts: dict[str, np.ndarray] | None = None


class SegmentationSource(ABC):
    """One split of a dataset, restricted to a class set.

    Subclasses set ``name`` (the dataset name, e.g. ``"coco20i"``) and ``split``
    (``"train"``, ``"val"`` or ``"test"``). Two optional methods tell the episode samplers
    what the literature does with the data: ``benchmark_episodes() -> int | None`` (the test
    episode count when it depends on the data, e.g. Pascal-Part's ``min(val pairs, 2500)``)
    and ``episode_pairs() -> [(class_id, image_id), ...]`` (a published episode order, e.g.
    HSNet's Pascal-5i val lists, walked by the ``list_order`` policy).
    """

    name: str = "dataset"
    split: str = "test"

    @abstractmethod
    def class_ids(self) -> list[ClassId]:
        """Sorted class ids of this source that have at least one image."""

    def class_name(self, class_id: ClassId) -> str:
        return str(class_id)

    @abstractmethod
    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        """Sorted image ids of this split; with ``class_id``, only images that contain it."""

    @abstractmethod
    def load_image(self, image_id: str) -> np.ndarray:
        """The image as an ``HxWx3`` uint8 RGB array."""

    @abstractmethod
    def load_mask(self, image_id: str, class_id: ClassId) -> np.ndarray:
        """``HxW`` bool: the union of all instances of ``class_id`` in the image."""

    def load_ignore(self, image_id: str) -> np.ndarray | None:
        """``HxW`` bool of pixels excluded from evaluation (e.g. VOC boundaries), or None."""
        return None

    def load_instances(self, image_id: str) -> list[Instance]:
        """Per-instance masks of the classes of this source (object-level probes)."""
        return [
            Instance(class_id=c, instance_id=i, mask=self.load_mask(image_id, c))
            for i, c in enumerate(c for c in self.class_ids() if image_id in set(self.image_ids(c)))
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, classes={len(self.class_ids())})"
