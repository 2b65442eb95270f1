"""What the part benchmarks (Pascal-Part, PACO-Part) share: a lazy class -> object-crop index.

Their image ids are ``"<photo id>/<object>"`` (one object crop of a photo); an episode must not
take a reference from the target's photo, hence :meth:`source_image_id`.
"""

from __future__ import annotations

from sansa_probe.data.base import ClassId, SegmentationSource

__all__ = ["PartCropSource"]


class PartCropSource(SegmentationSource):
    """Subclasses fill ``self._images`` (class id -> sorted image ids) in ``_index()`` and set
    ``class_hint``, quoted when an unknown class is asked for."""

    class_hint: str = "a part class"
    _images: dict[ClassId, list[str]]

    def _index(self) -> None:  # pragma: no cover - always overridden
        raise NotImplementedError

    def class_ids(self) -> list[ClassId]:
        self._index()
        return sorted(self._images)

    def image_ids(self, class_id: ClassId | None = None) -> list[str]:
        self._index()
        if class_id is None:
            return sorted({i for ids in self._images.values() for i in ids})
        return list(self._images[self._check_class(class_id)])

    def source_image_id(self, image_id: str) -> str:
        """The photo of an object crop (``"2008_000123/1"`` -> ``"2008_000123"``)."""
        return str(image_id).split("/", 1)[0]

    def _check_class(self, class_id: ClassId) -> ClassId:
        self._index()
        if class_id not in self._images:
            raise ValueError(
                f"class {class_id!r} is not a {self.name} class of fold {self.fold} split {self.split!r} "
                f"({self.class_hint.format(classes=sorted(self._images), n=len(self._images))})"
            )
        return class_id
