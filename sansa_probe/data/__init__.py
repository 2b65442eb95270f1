"""Benchmarks, folds, episodes: every dataset of the paper in its published layout, plus a procedural one."""

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.registry import (
    DatasetNotFoundError,
    DatasetSpec,
    fold_classes,
    get_dataset,
    get_spec,
    list_datasets,
)

__all__ = [
    "ClassId",
    "DatasetNotFoundError",
    "DatasetSpec",
    "Instance",
    "SegmentationSource",
    "fold_classes",
    "get_dataset",
    "get_spec",
    "list_datasets",
]
