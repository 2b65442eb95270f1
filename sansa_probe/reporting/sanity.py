"""Sanity checks that say in words when a result looks degenerate.

A plausible-looking number can hide a broken measurement: a linear probe that collapsed to
"background everywhere", a PCA-concentration curve normalised by a chance-level accuracy, a
part-matching study that skipped most of its pairs, an evaluation whose masks are all empty.
Each check here returns a list of messages (empty when healthy); commands print them and store
them under ``"warnings"`` in their summary files, so they travel with the results.

    messages = check_mask_areas(episodes["pred_area"], episodes["image_area"])
    report(messages)                      # "warning: ..." lines on stderr
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, Mapping, Sequence, TextIO

import numpy as np

__all__ = [
    "check_chance_accuracy",
    "check_single_class",
    "check_class_counts",
    "check_skipped",
    "check_mask_areas",
    "check_identical",
    "report",
]


def check_chance_accuracy(accuracy: float, *, n_classes: int, what: str, margin: float = 0.1) -> list[str]:
    """Warn when ``accuracy`` (a fraction in [0, 1]) is within ``margin`` (relative) of chance, 1 / n_classes.

    For relative curves (e.g. PCA concentration: accuracy in k dimensions / accuracy in full
    dimension), a chance-level denominator makes the curve meaningless, and values above 1 common.
    """
    if n_classes < 2:
        return [f"{what}: only {n_classes} class, accuracy is trivially {accuracy:.3f}"]
    chance = 1.0 / n_classes
    if not np.isfinite(accuracy):
        return [f"{what}: accuracy is not a finite number ({accuracy})"]
    if accuracy <= chance * (1.0 + margin):
        return [
            f"{what}: accuracy {accuracy:.3f} is at chance level (1/{n_classes} = {chance:.3f}); "
            f"the features barely separate the classes, so curves normalised by it mean little"
        ]
    return []


def check_single_class(predictions: np.ndarray | Sequence[int], *, what: str, dominant: float = 0.99, names: dict | None = None) -> list[str]:
    """Warn when a classifier predicts (almost) one class for every sample or pixel."""
    values = np.asarray(predictions).ravel()
    labels, counts = np.unique(values, return_counts=True)
    return check_class_counts(dict(zip(labels.tolist(), counts.tolist())), what=what, dominant=dominant, names=names)


def check_class_counts(counts: Mapping[Any, float], *, what: str, dominant: float = 0.99, names: dict | None = None) -> list[str]:
    """:func:`check_single_class` from the number of predictions of each class (``{class: count}``)."""
    total = float(sum(counts.values()))
    if total <= 0:
        return [f"{what}: no prediction at all"]
    label, top = max(counts.items(), key=lambda item: item[1])
    share = top / total
    if share >= dominant:
        name = (names or {}).get(label, label)
        return [
            f"{what}: predicts one class ({name!s}) for {100 * share:.1f}% of the samples; the classifier has "
            f"collapsed (e.g. to background), its score says nothing about the features"
        ]
    return []


def check_skipped(n_skipped: int, n_total: int, *, what: str, reason: str = "", tolerated: float = 0.0) -> list[str]:
    """Warn when some of ``n_total`` items were skipped (more than the ``tolerated`` fraction)."""
    if n_total <= 0:
        return [f"{what}: nothing was measured (0 items)"]
    if n_skipped > tolerated * n_total:
        because = f" ({reason})" if reason else ""
        return [f"{what}: {n_skipped} of {n_total} were skipped{because}; the result covers only {n_total - n_skipped}"]
    return []


def check_mask_areas(
    pred_area: Iterable[float],
    image_area: Iterable[float],
    *,
    what: str = "predictions",
    empty: float = 0.001,
    full: float = 0.95,
    fraction: float = 0.5,
) -> list[str]:
    """Warn when more than ``fraction`` of the predicted masks are empty or cover (almost) the whole image."""
    pred = np.asarray(list(pred_area), dtype=np.float64)
    total = np.asarray(list(image_area), dtype=np.float64)
    if pred.shape != total.shape:
        raise ValueError(f"pred_area and image_area: {pred.shape} vs {total.shape}; expected one area per prediction")
    if pred.size == 0:
        return []
    share = pred / np.maximum(total, 1.0)
    messages = []
    n_empty, n_full = int(np.sum(share < empty)), int(np.sum(share > full))
    if n_empty > fraction * pred.size:
        messages.append(f"{what}: {n_empty} of {pred.size} masks are empty; the model predicts nothing for most targets")
    if n_full > fraction * pred.size:
        messages.append(f"{what}: {n_full} of {pred.size} masks cover more than {100 * full:.0f}% of the image")
    return messages


def check_identical(a: float, b: float, *, what: str, tol: float = 1e-9) -> list[str]:
    """Warn when two models' numbers are identical: usually both measured the same thing (e.g. no adapters loaded)."""
    if np.isfinite(a) and np.isfinite(b) and abs(a - b) <= tol * max(1.0, abs(a)):
        return [f"{what}: frozen SAM2 and SANSA give the same value ({a:.6g}); were trained adapters loaded?"]
    return []


def report(messages: Iterable[str], *, stream: TextIO | None = None) -> list[str]:
    """Print each message as ``warning: ...`` on stderr (or ``stream``); returns them as a list."""
    messages = list(messages)
    for message in messages:
        print(f"warning: {message}", file=stream or sys.stderr)
    return messages
