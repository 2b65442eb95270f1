"""The tables of an evaluation: one fold's merged result, tidy results (one row per measurement), episode rows."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sansa_probe.evaluation.episodes import EPISODE_COLUMNS
from sansa_probe.evaluation.metrics import FewShotSegmentationMetric

__all__ = ["FoldResult", "results_table", "episodes_table", "json_safe"]


@dataclass
class FoldResult:
    """The merged result of one fold: the metric, its ``compute()``, the episode rows, class names."""

    fold: int
    metric: FewShotSegmentationMetric
    rows: pd.DataFrame
    class_names: dict[Hashable, str] = field(default_factory=dict)
    checkpoint: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.scores:
            self.scores = self.metric.compute()  # warns once about unsampled classes


def results_table(results: Sequence[FoldResult], **labels: Any) -> pd.DataFrame:
    """Tidy results: one row per measurement.

    Columns: the ``labels`` (e.g. ``dataset, shots, prompt, adapters``), ``fold``, ``metric``
    (``miou``, ``fb_iou``, ``n_episodes``, ``n_unsampled``, or ``iou`` for a class), ``class_id``,
    ``class_name`` (empty unless ``metric == "iou"``), ``value`` (IoUs in percent). With several
    folds, ``fold == "mean"`` rows hold the mean mIoU and FB-IoU over folds (the papers' "Mean").
    """
    records: list[dict[str, Any]] = []

    def add(fold: Any, metric: str, value: float, class_id: Any = "", class_name: str = "") -> None:
        records.append({**labels, "fold": fold, "metric": metric, "class_id": class_id, "class_name": class_name, "value": value})

    for result in results:
        scores = result.scores
        add(result.fold, "miou", scores["miou"])
        add(result.fold, "fb_iou", scores["fb_iou"])
        add(result.fold, "n_episodes", float(scores["n_episodes"]))
        add(result.fold, "n_unsampled", float(len(scores["unsampled"])))
        for class_id, value in scores["per_class"].items():
            add(result.fold, "iou", value, class_id, result.class_names.get(class_id, ""))
    if len(results) > 1:
        add("mean", "miou", float(np.mean([r.scores["miou"] for r in results])))
        add("mean", "fb_iou", float(np.mean([r.scores["fb_iou"] for r in results])))
    columns = [*labels, "fold", "metric", "class_id", "class_name", "value"]
    return pd.DataFrame.from_records(records, columns=columns)


def episodes_table(results: Sequence[FoldResult], **labels: Any) -> pd.DataFrame:
    """Every fold's episode rows with the ``labels`` and ``fold`` columns in front."""
    frames = [r.rows.assign(fold=r.fold) for r in results]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["fold", *EPISODE_COLUMNS])
    for i, (name, value) in enumerate(labels.items()):
        table.insert(i, name, value)
    return table[[*labels, "fold", *EPISODE_COLUMNS]]


def json_safe(value: Any) -> Any:
    """``value`` as JSON can hold it: NaN -> ``None``, numpy scalars -> Python numbers, paths -> text, recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return json_safe(value.item())
    if isinstance(value, Path):
        return str(value)
    return value
