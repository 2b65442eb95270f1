"""Dataset registry: one :class:`DatasetSpec` per benchmark, found by name.

Each dataset module (``sansa_probe/data/<module>.py``) defines ``SPECS``, a list of
:class:`DatasetSpec`. The registry imports those modules lazily, so a missing optional
piece of one dataset never breaks another.

The data root is ``--data-root`` (the ``root=`` argument) or the ``SANSA_DATA``
environment variable; each dataset lives in ``<root>/<spec.folder>`` unless ``root``
already points at the dataset folder itself.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sansa_probe.data.base import ClassId, SegmentationSource

__all__ = ["DEFAULT_RELEASE_SQUARE", "DatasetSpec", "DatasetNotFoundError", "source_builder", "list_datasets", "get_spec", "fold_classes", "get_dataset", "resolve_root"]

# dataset name -> module under sansa_probe.data that defines its SPECS
_MODULES: dict[str, str] = {
    "coco20i": "coco",
    "lvis92i": "lvis",
    "fss1000": "fss",
    "pascal5i": "pascal",
    "pascal_part": "pascal_part",
    "paco_part": "paco_part",
    "ade20k": "ade20k",
    "folder": "custom",
    "coco_json": "custom",
    "synthetic": "synthetic",
}


# The public SANSA release's square side for images it names no size for (its demo's): see release_square.
DEFAULT_RELEASE_SQUARE = 640


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder or file is missing; the message names the path and the expected layout."""


@dataclass(frozen=True)
class DatasetSpec:
    """What the rest of sansa-probe needs to know about one benchmark.

    ``fold_classes(fold, split, root)`` returns the fold's sorted class ids in the dataset's own
    id space (``split="train"``: the training classes of that fold). ``build(root=..., fold=...,
    split=..., **options)`` returns the :class:`SegmentationSource` of that fold and split.
    ``default_episodes``: the literature's number of test episodes per fold (``None`` means
    every test image once; a source's ``benchmark_episodes()`` takes precedence when the
    count depends on the data). ``layout`` documents the expected on-disk tree, quoted in errors.
    ``release_square``: the side of the square the public SANSA release resizes this dataset's
    images to first (its dataset classes' image size; :class:`sansa_probe.inference.ReleaseProtocol`),
    :data:`DEFAULT_RELEASE_SQUARE` for a dataset the release does not have, ``None`` for the
    image's own size.
    """

    name: str
    folds: int
    fold_classes: Callable[..., list[ClassId]]
    build: Callable[..., SegmentationSource]
    default_episodes: int | None
    layout: str
    folder: str
    needs_root: bool = True
    episode_policy: str = "random_class"  # "random_class" | "cycle_classes" | "every_image" | "list_order"
    release_square: int | None = DEFAULT_RELEASE_SQUARE
    extra: dict[str, Any] = field(default_factory=dict)


def source_builder(source_class: Callable[..., Any], *, name: str, root_hint: str = "<data root>") -> Callable[..., Any]:
    """The ``build`` of a :class:`DatasetSpec` whose source class takes ``root, fold, split, **options``."""

    def build(*, root: Path | None, fold: int = 0, split: str = "test", **options: Any) -> Any:
        if root is None:
            raise ValueError(f"dataset {name!r} needs root={root_hint}")
        return source_class(root=root, fold=fold, split=split, **options)

    build.__name__ = f"build_{name}"
    return build


def list_datasets() -> list[str]:
    return sorted(_MODULES)


def get_spec(name: str) -> DatasetSpec:
    key = str(name).lower().replace("-", "_")
    if key not in _MODULES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(list_datasets())}")
    module = importlib.import_module(f"sansa_probe.data.{_MODULES[key]}")
    for spec in module.SPECS:
        if spec.name == key:
            return spec
    raise ValueError(f"dataset module sansa_probe.data.{_MODULES[key]} does not define {key!r}")  # pragma: no cover


def resolve_root(spec: DatasetSpec, root: str | os.PathLike | None) -> Path:
    """The dataset folder from ``root`` or ``$SANSA_DATA``; a clear error when it is missing."""
    if root is None:
        env = os.environ.get("SANSA_DATA")
        if not env:
            raise DatasetNotFoundError(
                f"no data root for dataset {spec.name!r}: pass --data-root (root=...) or set SANSA_DATA.\n"
                f"Expected layout under <root>/{spec.folder}:\n{spec.layout}\n"
                f"No data on this machine? Run the same command with --dataset synthetic (the procedural benchmark)."
            )
        root = env
    root = Path(root).expanduser()
    candidate = root / spec.folder
    if candidate.is_dir():
        return candidate
    if root.is_dir() and root.name == spec.folder:
        return root
    if root.is_dir():
        # the user may point straight at the dataset folder under another name
        return root
    raise DatasetNotFoundError(
        f"dataset {spec.name!r}: folder {candidate} does not exist.\n"
        f"Expected layout under <root>/{spec.folder}:\n{spec.layout}\n"
        f"No data on this machine? Run the same command with --dataset synthetic (the procedural benchmark)."
    )


def _check_fold(spec: DatasetSpec, fold: int) -> int:
    if not isinstance(fold, int) or isinstance(fold, bool) or not 0 <= fold < spec.folds:
        raise ValueError(f"fold {fold!r} is out of range for {spec.name}: expected 0..{spec.folds - 1}")
    return fold


def _check_split(split: str) -> str:
    if split not in ("train", "val", "test"):
        raise ValueError(f"split {split!r}: expected 'train', 'val' or 'test'")
    return split


def fold_classes(
    dataset: str, fold: int, split: str = "test", *, root: str | os.PathLike | None = None, **options: Any
) -> list[ClassId]:
    """Sorted class ids of ``fold`` in the dataset's own id space; ``split="train"``: its training classes.

    ``options`` go to the dataset's rule (e.g. ``shots=5`` for LVIS-92i, whose eligible classes
    depend on the shot count).
    """
    spec = get_spec(dataset)
    _check_fold(spec, fold)
    _check_split(split)
    resolved = resolve_root(spec, root) if (root is not None or (spec.needs_root and spec.extra.get("classes_need_root"))) else None
    try:
        return sorted(spec.fold_classes(fold, split, resolved, **options))
    except TypeError as exc:
        if options:
            raise ValueError(f"fold_classes({spec.name!r}) does not take the option(s) {sorted(options)} ({exc})") from None
        raise


def get_dataset(
    dataset: str,
    *,
    fold: int = 0,
    split: str = "test",
    root: str | os.PathLike | None = None,
    **options: Any,
) -> SegmentationSource:
    """The :class:`SegmentationSource` of ``dataset``'s ``fold`` and ``split``."""
    spec = get_spec(dataset)
    _check_fold(spec, fold)
    _check_split(split)
    resolved = resolve_root(spec, root) if spec.needs_root else (Path(root) if root is not None else None)
    return spec.build(root=resolved, fold=fold, split=split, **options)
