"""Appendix C's large-scale annotation study (table 6): annotate a fold's images from one
reference per class, time it, and score the annotations against the ground truth.

    references = class_references(source)                 # first image of each class, its mask
    result = annotation_study(model, source, references, n_targets=10_000, out="runs/table6")
    result["miou"], result["minutes_per_10k"]

The targets are the fold's other images (a seeded sample), written as PNG files and annotated by
:func:`sansa_probe.annotation.run.annotate` for every class at once (each target encoded once).
mIoU (percent, HSNet's: per class, summed intersections over summed unions, then the mean) is
computed over the (target, class) pairs whose class is in the target's ground truth, the
prediction being the union of that class's annotations on the image (empty when none).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sansa_probe.annotation.references import ClassReferences
from sansa_probe.annotation.run import AnnotateOptions, annotate
from sansa_probe.annotation.targets import TargetTable
from sansa_probe.data.base import SegmentationSource
from sansa_probe.evaluation.metrics import FewShotSegmentationMetric
from sansa_probe.model import SansaModel
from sansa_probe.prompts.types import Mask
from sansa_probe.io.masks import decode_rle, save_png

__all__ = ["class_references", "annotation_miou", "annotation_study"]


def class_references(source: SegmentationSource) -> tuple[list[ClassReferences], dict[int, Any]]:
    """One reference per class of ``source`` (its first image, the class's mask as the prompt).

    Returns ``(references, category_to_class)``: category ids are ``1..C`` in class order."""
    references, category_to_class = [], {}
    for index, class_id in enumerate(sorted(source.class_ids())):
        images = sorted(source.image_ids(class_id))
        if not images:
            continue
        image_id = images[0]
        category = index + 1
        references.append(ClassReferences(name=str(source.class_name(class_id)), category_id=category,
                                          images=(source.load_image(image_id),), prompts=(Mask(source.load_mask(image_id, class_id)),)))  # fmt: skip
        category_to_class[category] = class_id
    if not references:
        raise ValueError("source: no class has an image to take a reference from")
    return references, category_to_class


def annotation_miou(annotations: str | os.PathLike | dict, source: SegmentationSource, image_of_file: dict[str, str],
                    category_to_class: dict[int, Any]) -> FewShotSegmentationMetric:
    """Score COCO-format ``annotations`` (a path or the loaded dict) against ``source``'s ground truth.

    ``image_of_file`` maps each annotated ``file_name`` to its image id in ``source``. Every class
    of ``category_to_class`` present in an image's ground truth is one update of the metric."""
    data = json.loads(Path(annotations).read_text()) if not isinstance(annotations, dict) else annotations
    file_of_image = {image["id"]: image["file_name"] for image in data["images"]}
    predicted: dict[tuple[str, int], np.ndarray] = {}
    for annotation in data["annotations"]:
        key = (file_of_image[annotation["image_id"]], annotation["category_id"])
        mask = decode_rle(annotation["segmentation"])
        predicted[key] = predicted[key] | mask if key in predicted else mask
    metric = FewShotSegmentationMetric(sorted(category_to_class.values()))
    for file_name, image_id in sorted(image_of_file.items()):
        ignore = source.load_ignore(image_id)
        for category, class_id in category_to_class.items():
            truth = source.load_mask(image_id, class_id)
            if not truth.any():
                continue
            pred = predicted.get((file_name, category), np.zeros_like(truth))
            if pred.shape != truth.shape:
                raise ValueError(f"annotations: mask of {file_name!r} is {pred.shape}, the image is {truth.shape}")
            metric.update(class_id, pred, truth, ignore)
    return metric


def annotation_study(model: SansaModel, source: SegmentationSource, *, n_targets: int | None, out: str | os.PathLike,
                     seed: int = 0, batch_size: int = 8, num_workers: int = 0, progress: bool = False,
                     references: Sequence[ClassReferences] | None = None, category_to_class: dict[int, Any] | None = None) -> dict[str, float]:
    """Annotate ``n_targets`` images of ``source`` (all when ``None``) for every class; returns
    ``miou`` (percent), ``seconds`` (annotation wall time, references excluded), ``targets`` and
    ``minutes_per_10k`` (the time scaled to the paper's 10,000 targets)."""
    if references is None:
        references, category_to_class = class_references(source)
    elif category_to_class is None:
        raise ValueError("category_to_class: needed with references")
    taken = set()
    for class_id in category_to_class.values():  # the images the references came from are not targets
        ids = sorted(source.image_ids(class_id))
        if ids:
            taken.add(ids[0])
    pool = [i for i in sorted(source.image_ids()) if i not in taken]
    if not pool:
        raise ValueError("source: no image left for targets after taking one reference per class")
    rng = np.random.default_rng(seed)
    chosen = pool if n_targets is None or n_targets >= len(pool) else [pool[i] for i in sorted(rng.choice(len(pool), n_targets, replace=False))]
    out = Path(out)
    image_of_file = {}
    for k, image_id in enumerate(chosen):
        name = f"{k:06d}.png"
        path = out / "targets" / name
        if not path.is_file():
            save_png(path, source.load_image(image_id))
        image_of_file[name] = image_id
    table = TargetTable.from_paths([out / "targets" / name for name in image_of_file])
    options = AnnotateOptions(batch_size=batch_size, num_workers=num_workers, progress=progress, overwrite=True)
    result = annotate(model, references, table, out / "annotations", options=options)
    metric = annotation_miou(out / "annotations" / "annotations.json", source, image_of_file, category_to_class)
    seconds = float(result.seconds)
    processed = max(1, int(result.processed))
    return {"miou": float(metric.compute()["miou"]), "seconds": seconds, "targets": float(len(chosen)),
            "minutes_per_10k": seconds / processed * 10_000 / 60}  # fmt: skip
