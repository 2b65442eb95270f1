"""Few-shot segmentation metrics: mIoU and FB-IoU exactly as the few-shot literature computes them.

The reference is HSNet's evaluation (Min et al., ICCV 2021; ``common/evaluation.py`` and
``AverageMeter`` in ``common/logger.py`` of github.com/juhongm999/hsnet), which PFENet-style
benchmarks (COCO-20^i, PASCAL-5^i, FSS-1000, LVIS-92^i) and later work (VRP-SAM, Matcher,
GF-SAM, SANSA) reuse. For every episode and each of background (0) and foreground (1) it
counts pixel intersection and union, adds them to per-class buffers (``index_add_`` by the
episode's class), and at the end:

* ``IoU_c = sum_episodes(I_fg) / max(sum_episodes(U_fg), 1)`` for every class ``c`` of the fold;
* ``mIoU = mean_c IoU_c * 100`` over **all** classes of the fold. A class never sampled has
  zero buffers, so its IoU is ``0 / max(0, 1) = 0`` and it counts as **0** in the mean (it is
  *not* excluded). We do the same, report it in ``compute()["unsampled"]`` (``per_class``
  shows ``NaN`` for it, since nothing was measured) and warn with :func:`warnings.warn`.
  A class that was sampled but whose union is 0 in every episode (empty target and empty
  prediction) also gets ``IoU = 0``, as in HSNet;
* ``FB-IoU = mean(IoU_bg, IoU_fg) * 100`` where ``IoU_fg = sum_c I_fg / sum_c U_fg`` and
  ``IoU_bg = sum_c I_bg / sum_c U_bg``: foreground and background intersections and unions
  are pooled over all episodes of all classes, not averaged per class or per episode.

Ignore pixels (PASCAL-5^i boundaries, following PFENet) are removed from prediction and
target before counting, so they enter neither intersection nor union of either background or
foreground. (HSNet additionally asserts that ignore pixels and target foreground are disjoint;
we simply exclude them, which is identical whenever that holds.)

All counts are ``int64``, so :meth:`FewShotSegmentationMetric.merge` of shards evaluated on
different ranks gives exactly the single-process result, in any order.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from sansa_probe.io.masks import as_bool_mask
from sansa_probe.reporting.sanity import check_unsampled

__all__ = ["FewShotSegmentationMetric", "unsampled_warnings"]

_EPISODE_COLUMNS = ["episode", "class_id", "intersection", "union", "iou", "bg_intersection", "bg_union"]


class FewShotSegmentationMetric:
    """Accumulates per-class intersections and unions over the episodes of one fold.

    Args:
        class_ids: every class of the fold (its test classes), e.g. the 20 COCO ids of fold 0.
            mIoU is the mean over all of them (unsampled ones count as 0, see the module doc).

    Example::

        metric = FewShotSegmentationMetric([1, 2, 3])
        metric.update(1, pred, target)            # pred, target: HxW bool
        metric.compute()["miou"]

    Sharded evaluation: each rank updates its own metric (passing ``episode=`` the sampler
    index so rows stay identifiable), gathers ``state_dict()`` (e.g. with
    ``torch.distributed.all_gather_object``) and merges them with
    :meth:`merge` / :meth:`from_state_dict`.
    """

    def __init__(self, class_ids: Iterable[Hashable]) -> None:
        ids = list(class_ids)
        if not ids:
            raise ValueError("class_ids: expected at least one class id, got none")
        if len(set(ids)) != len(ids):
            raise ValueError(f"class_ids: duplicate class ids in {ids}")
        self.class_ids: list[Hashable] = ids
        self._index = {c: i for i, c in enumerate(ids)}
        # [2, n_classes]: row 0 background, row 1 foreground (HSNet's layout).
        self._intersection = np.zeros((2, len(ids)), dtype=np.int64)
        self._union = np.zeros((2, len(ids)), dtype=np.int64)
        self._n_updates = np.zeros(len(ids), dtype=np.int64)
        self._rows: list[tuple] = []

    # ------------------------------------------------------------------ accumulation
    def update(self, class_id: Hashable, pred: Any, target: Any, ignore: Any | None = None, *, episode: int | None = None) -> None:
        """Add one episode.

        Args:
            class_id: the episode's class; must be one of ``class_ids``.
            pred: ``HxW`` predicted foreground (numpy or torch; bool, 0/1 or 0/255 numbers: the
                rule of :func:`~sansa_probe.io.masks.as_bool_mask`, as for prompts).
            target: ``HxW`` ground-truth foreground, same shape and rule.
            ignore: optional ``HxW`` mask, same rule; pixels where it is True are excluded from both
                background and foreground counts.
            episode: the episode's index (the sampler's ``i``); defaults to the number of
                episodes added so far to this metric.
        """
        if hasattr(class_id, "item") and getattr(class_id, "ndim", 0) == 0:  # numpy / torch scalar
            class_id = class_id.item()
        if class_id not in self._index:
            raise ValueError(f"class_id: {class_id!r} is not one of this metric's class_ids {self.class_ids}")
        pred_b = as_bool_mask(pred, name="pred")
        target_b = as_bool_mask(target, name="target")
        if pred_b.shape != target_b.shape:
            raise ValueError(f"pred: shape {pred_b.shape} does not match target shape {target_b.shape}")
        valid = np.ones_like(target_b)
        if ignore is not None:
            ignore_b = as_bool_mask(ignore, name="ignore")
            if ignore_b.shape != target_b.shape:
                raise ValueError(f"ignore: shape {ignore_b.shape} does not match target shape {target_b.shape}")
            valid = ~ignore_b
        fg_i = int(np.count_nonzero(pred_b & target_b & valid))
        fg_u = int(np.count_nonzero((pred_b | target_b) & valid))
        bg_i = int(np.count_nonzero(~pred_b & ~target_b & valid))
        bg_u = int(np.count_nonzero((~pred_b | ~target_b) & valid))
        k = self._index[class_id]
        self._intersection[:, k] += (bg_i, fg_i)
        self._union[:, k] += (bg_u, fg_u)
        self._n_updates[k] += 1
        index = len(self._rows) if episode is None else int(episode)
        iou = 100.0 * fg_i / max(fg_u, 1)
        self._rows.append((index, self.class_ids[k], fg_i, fg_u, iou, bg_i, bg_u))

    @property
    def n_episodes(self) -> int:
        return int(self._n_updates.sum())

    # ------------------------------------------------------------------ results
    def compute(self) -> dict[str, Any]:
        """Return ``{"miou", "fb_iou", "per_class", "n_episodes", "unsampled"}``.

        ``miou`` and ``fb_iou`` are in percent; ``per_class`` maps every class id to its IoU in
        percent (``NaN`` for a class never sampled); ``unsampled`` lists the classes never
        updated, which count as 0 in ``miou`` (HSNet) and trigger a ``UserWarning``. With no
        episode at all, ``miou`` and ``fb_iou`` are ``NaN``.
        """
        sampled = self._n_updates > 0
        unsampled = [c for c, s in zip(self.class_ids, sampled) if not s]
        if unsampled:
            warnings.warn(
                f"{len(unsampled)} of {len(self.class_ids)} classes were never sampled and count as IoU 0 "
                f"in mIoU (as in HSNet's evaluation): {unsampled}",
                UserWarning,
                stacklevel=2,
            )
        fg_iou = self._intersection[1] / np.maximum(self._union[1], 1)
        per_class = {c: (100.0 * float(v) if s else float("nan")) for c, v, s in zip(self.class_ids, fg_iou, sampled)}
        if self.n_episodes == 0:
            miou = fb_iou = float("nan")
        else:
            miou = 100.0 * float(fg_iou.mean())
            totals_i = self._intersection.sum(axis=1)
            totals_u = self._union.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                fb_iou = 100.0 * float(np.mean(totals_i / totals_u))
        return {
            "miou": miou,
            "fb_iou": fb_iou,
            "per_class": per_class,
            "n_episodes": self.n_episodes,
            "unsampled": unsampled,
        }

    def episode_rows(self) -> pd.DataFrame:
        """One row per update: ``episode, class_id, intersection, union, iou`` (foreground,
        ``iou`` in percent, ``I / max(U, 1)``) plus ``bg_intersection, bg_union``, sorted by
        ``episode`` (stable, so merged shards keep their order for equal indices)."""
        frame = pd.DataFrame(self._rows, columns=_EPISODE_COLUMNS)
        frame = frame.astype({"episode": "int64", "intersection": "int64", "union": "int64",
                              "bg_intersection": "int64", "bg_union": "int64", "iou": "float64"})
        return frame.sort_values("episode", kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ sharding
    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state (picklable, JSON-serialisable for int/str class ids)."""
        return {
            "class_ids": list(self.class_ids),
            "intersection": self._intersection.tolist(),
            "union": self._union.tolist(),
            "n_updates": self._n_updates.tolist(),
            "rows": [list(r) for r in self._rows],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace this metric's state with ``state`` (from :meth:`state_dict`)."""
        if list(state["class_ids"]) != self.class_ids:
            raise ValueError(f"state: class_ids {list(state['class_ids'])} differ from this metric's {self.class_ids}")
        self._intersection = np.asarray(state["intersection"], dtype=np.int64).reshape(2, len(self.class_ids))
        self._union = np.asarray(state["union"], dtype=np.int64).reshape(2, len(self.class_ids))
        self._n_updates = np.asarray(state["n_updates"], dtype=np.int64).reshape(len(self.class_ids))
        self._rows = [tuple(r) for r in state["rows"]]

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> FewShotSegmentationMetric:
        metric = cls(state["class_ids"])
        metric.load_state_dict(state)
        return metric

    def merge(self, other: FewShotSegmentationMetric | dict[str, Any]) -> FewShotSegmentationMetric:
        """Add the episodes of ``other`` (a metric or its ``state_dict()``) to this one; returns ``self``.

        Counts are integers, so merging shards is exact and order-independent.
        """
        if isinstance(other, dict):
            other = FewShotSegmentationMetric.from_state_dict(other)
        if not isinstance(other, FewShotSegmentationMetric):
            raise ValueError(f"other: expected a FewShotSegmentationMetric or its state_dict, got {type(other).__name__}")
        if other.class_ids != self.class_ids:
            raise ValueError(f"other: class_ids {other.class_ids} differ from this metric's {self.class_ids}")
        self._intersection += other._intersection
        self._union += other._union
        self._n_updates += other._n_updates
        self._rows.extend(other._rows)
        return self

    def reset(self) -> None:
        self._intersection[:] = 0
        self._union[:] = 0
        self._n_updates[:] = 0
        self._rows = []

    def __repr__(self) -> str:
        return f"FewShotSegmentationMetric(n_classes={len(self.class_ids)}, n_episodes={self.n_episodes})"


def unsampled_warnings(scores: dict[str, Any], *, what: str) -> list[str]:
    """The sanity warning (:func:`~sansa_probe.reporting.sanity.check_unsampled`) for a
    :meth:`FewShotSegmentationMetric.compute` result whose classes were not all sampled: both the
    mIoU over every class (unsampled ones as 0) and over the sampled ones, in words; for commands,
    which print it and write it into their summaries instead of Python's ``UserWarning``."""
    per_class = scores["per_class"]
    measured = [v for v in per_class.values() if np.isfinite(v)]
    return check_unsampled(scores["unsampled"], len(per_class), what=what, miou=scores["miou"],
                           sampled_miou=float(np.mean(measured)) if measured else float("nan"), episodes=scores["n_episodes"])

