"""Benchmarks, folds, episodes: every dataset of the paper in its published layout, plus a procedural one.

The interface and the registry are imported eagerly; dataset modules and the episode
samplers (which import torch) on first access, so ``fold_classes`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from sansa_probe.data.base import ClassId, Instance, SegmentationSource
from sansa_probe.data.registry import (
    DatasetNotFoundError,
    DatasetSpec,
    fold_classes,
    get_dataset,
    get_spec,
    list_datasets,
    resolve_root,
)

# public name -> module under sansa_probe.data that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "Episode": "episodes",
    "EpisodeData": "episodes",
    "EpisodeDataset": "episodes",
    "EpisodeSampler": "episodes",
    "TrainingEpisode": "episodes",
    "TrainingEpisodeData": "episodes",
    "TrainingEpisodeSampler": "episodes",
    "collate_episodes": "episodes",
    "Coco20iSource": "coco",
    "coco_categories": "coco",
    "Lvis92iSource": "lvis",
    "Fss1000Source": "fss",
    "Pascal5iSource": "pascal",
    "voc_classes": "pascal",
}

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
    "resolve_root",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sansa_probe.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sansa_probe.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
