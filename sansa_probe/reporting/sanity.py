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

from sansa_probe.reporting.figures import chance_reason, near_chance

__all__ = [
    "SanityWarning",
    "check_chance_accuracy",
    "check_unsampled",
    "check_small_groups",
    "check_against_paper",
    "check_single_class",
    "check_class_counts",
    "check_skipped",
    "check_mask_areas",
    "check_identical",
    "report",
]


class SanityWarning(UserWarning):
    """A sanity message raised as a Python warning by library code that has no summary of its own
    (e.g. one evaluation inside a paper table); callers that report in words catch it with
    ``warnings.catch_warnings(record=True)`` and print it, write it and draw it like any other."""


def check_chance_accuracy(accuracy: float, *, n_classes: int, what: str, factor: float = 2.0) -> list[str]:
    """Warn when ``accuracy`` (a fraction in [0, 1]) is below ``factor`` x chance (1 / n_classes).

    For relative curves (e.g. PCA concentration: accuracy in k dimensions / accuracy in full
    dimension), a denominator near chance makes the curve meaningless, and values above 1 common:
    a nearest-centroid accuracy of 8.3 % on 16 classes (chance 6.25 %) is noise. Twice chance is
    the bar (:func:`sansa_probe.reporting.figures.near_chance`, which the figures use too).
    """
    if n_classes < 2:
        return [f"{what}: only {n_classes} class, accuracy is trivially {accuracy:.3f}"]
    chance = 1.0 / n_classes
    if not np.isfinite(accuracy):
        return [f"{what}: accuracy is not a finite number ({accuracy})"]
    if near_chance(accuracy, chance, factor=factor):
        return [
            f"{what}: {chance_reason(accuracy, chance)} for {n_classes} classes (less than {factor:g}x chance); "
            f"the features barely separate the classes, so curves normalised by it mean nothing"
        ]
    return []


def check_unsampled(unsampled: Sequence[Any], n_classes: int, *, what: str, miou: float | None = None,
                    sampled_miou: float | None = None, episodes: int | None = None) -> list[str]:
    """Warn when classes of the benchmark were never sampled: HSNet's mIoU counts them as IoU 0, so
    with few episodes it says more about the episode count than about the model (e.g. 8 episodes over
    16 classes: mIoU 9.9 % where the sampled classes average 26.5 %). ``miou`` and ``sampled_miou``
    (percent; the mean over the sampled classes only) put both numbers into the message."""
    unsampled = list(unsampled)
    if not unsampled or n_classes <= 0:
        return []
    by = f" by {episodes} episodes" if episodes is not None else ""
    numbers = ""
    if miou is not None and sampled_miou is not None and np.isfinite(sampled_miou):
        numbers = f": mIoU {miou:.2f} % over all {n_classes} classes, {sampled_miou:.2f} % over the {n_classes - len(unsampled)} sampled ones"
    return [f"{what}: {len(unsampled)} of {n_classes} classes were never sampled{by} and count as IoU 0 (HSNet's rule){numbers}; "
            f"use more episodes (at least a few per class) before reading the mIoU"]


def check_small_groups(counts: Mapping[Any, int], *, what: str, minimum: int = 5) -> list[str]:
    """Warn when some groups (e.g. classes behind per-class intervals) hold fewer than ``minimum`` samples."""
    small = {name: int(n) for name, n in counts.items() if int(n) < minimum}
    if not small:
        return []
    listed = ", ".join(f"{name}: {n}" for name, n in sorted(small.items(), key=lambda item: item[1])[:5])
    more = " ..." if len(small) > 5 else ""
    return [f"{what}: {len(small)} of {len(counts)} have fewer than {minimum} episodes ({listed}{more}); "
            f"their intervals rest on too few targets to read (drawn grey)"]


def check_against_paper(*, what: str, miniature: bool = False, random_weights: bool = False, ours_dataset: str = "",
                        paper_dataset: str = "") -> list[str]:
    """Warn when our number stands beside the paper's but was measured on another model or data:
    the miniature, random SAM2 weights, or another benchmark than the paper's row."""
    reasons = []
    if random_weights:
        reasons.append("SAM2 has random weights")
    if miniature:
        reasons.append("ours ran on the shipped miniature (128 px), not the paper's SAM2")
    if ours_dataset and paper_dataset and ours_dataset != paper_dataset:
        reasons.append(f"ours measured on {ours_dataset}, the paper's on {paper_dataset}")
    if not reasons:
        return []
    return [f"{what}: not comparable with the paper ({'; '.join(reasons)}); the paper's column is context, and the difference means nothing"]


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
