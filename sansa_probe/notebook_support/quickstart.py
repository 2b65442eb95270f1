"""Few-shot examples to segment: k annotated references and targets of one class, and their picture.

The quickstart notebook's data and figure (the segmentation itself is
:class:`~sansa_probe.inference.predictor.SansaPredictor`)::

    example = few_shot_example(fold=0, shots=2, targets=4, prompt="box")    # or few_shot_example("my_folder")
    predictor = SansaPredictor(model)
    predictor.set_references(example.reference_images, example.prompts)
    masks = {"SANSA": [p.mask for p in predictor.predict_batch(example.target_images)]}
    plot_few_shot(example, masks)
    target_table(example, {"SANSA": predictions})   # IoU per target; SAM2's score only where it says something

Any registered dataset works: ``"synthetic"`` (the procedural benchmark, nothing on disk) or
``"folder"`` with ``root`` a folder of your own images (``images/<image>.jpg`` and
``masks/<image>_<class>.png``). Prompts are generated from the reference masks
(:func:`~sansa_probe.prompts.make_prompt`) or given by hand (:func:`prompt_from_spec`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from sansa_probe.data import get_dataset
from sansa_probe.io.images import list_images, load_rgb
from sansa_probe.prompts.generate import make_prompt
from sansa_probe.prompts.types import Box, Mask, Points, Prompt, Scribble
from sansa_probe.io.masks import _erode, load_binary_png, overlay

__all__ = ["FewShotExample", "few_shot_example", "prompt_from_spec", "mask_iou", "plot_few_shot", "target_table"]

_SPEC_KINDS = ("mask", "points", "box", "scribble")


@dataclass
class FewShotExample:
    """k references of one class with their prompts, and targets (ground truth where known).

    Images are ``HxWx3`` uint8, masks ``HxW`` bool; ``target_masks[i]`` is ``None`` for a target
    without annotation.
    """

    class_name: str
    reference_ids: list[str]
    reference_images: list[np.ndarray]
    reference_masks: list[np.ndarray | None]
    prompts: list[Prompt]
    target_ids: list[str] = field(default_factory=list)
    target_images: list[np.ndarray] = field(default_factory=list)
    target_masks: list[np.ndarray | None] = field(default_factory=list)

    def summary(self) -> str:
        """One line: the class, the references with their prompt kinds, the targets."""
        kinds = ", ".join(type(p).__name__.lower() for p in self.prompts)
        known = sum(m is not None for m in self.target_masks)
        return (f"class {self.class_name!r}: {len(self.reference_ids)} reference(s) {self.reference_ids} prompted by ({kinds}); "
                f"{len(self.target_ids)} target(s), {known} with ground truth")


def prompt_from_spec(spec: Mapping[str, Any] | Prompt, *, name: str = "prompt") -> Prompt:
    """A prompt written by hand: ``{"points": [[x, y], ...]}`` (optionally ``"labels": [1, 0, ...]``),
    ``{"box": [x0, y0, x1, y1]}``, ``{"mask": "mask.png"}`` or ``{"scribble": "strokes.png"}`` (a
    binary PNG, or an ``HxW`` array). Prompt objects are returned as they are."""
    if isinstance(spec, (Mask, Points, Box, Scribble)):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"{name}: expected a dict such as {{'box': [x0, y0, x1, y1]}}, got {type(spec).__name__}")
    kinds = [k for k in _SPEC_KINDS if k in spec]
    unknown = sorted(set(spec) - set(_SPEC_KINDS) - {"labels"})
    if len(kinds) != 1 or unknown:
        raise ValueError(f"{name}: expected exactly one of {', '.join(_SPEC_KINDS)} (and 'labels' with points), got keys {sorted(spec)}")
    kind = kinds[0]
    value = spec[kind]
    if kind == "points":
        return Points(np.asarray(value, dtype=np.float64), None if spec.get("labels") is None else np.asarray(spec["labels"]))
    if kind == "box":
        return Box(tuple(value))
    if isinstance(value, (str, os.PathLike)):
        value = load_binary_png(value, name=f"{name} {kind}")
    return Mask(value) if kind == "mask" else Scribble(value)


def _choose_class(source, class_id: Any, need: int):
    classes = source.class_ids()
    if class_id is not None:
        chosen = [c for c in classes if str(c) == str(class_id) or source.class_name(c) == str(class_id)]
        if not chosen:
            names = ", ".join(f"{c} ({source.class_name(c)})" for c in classes[:20])
            raise ValueError(f"class_id {class_id!r}: not a class of {source!r}; classes: {names}{' ...' if len(classes) > 20 else ''}")
        if len(source.image_ids(chosen[0])) < need:
            raise ValueError(f"class_id {class_id!r}: {len(source.image_ids(chosen[0]))} annotated images, "
                             f"need at least {need} (the references and one target)")  # fmt: skip
        return chosen[0]
    for c in classes:
        if len(source.image_ids(c)) >= need:
            return c
    raise ValueError(f"{source!r}: no class has {need} annotated images (the references and one target)")


def few_shot_example(root: str | os.PathLike | None = None, *, dataset: str | None = None, fold: int = 0, class_id: Any = None,
                     shots: int = 1, targets: int = 4, prompt: str = "mask", prompts: Sequence[Any] | None = None,
                     extra_targets: str | os.PathLike | None = None, image_size: int = 128, seed: int = 0,
                     **options: Any) -> FewShotExample:
    """References and targets of one class of a dataset's ``fold`` (its test classes: the novel ones).

    Args:
        root: the dataset's folder; with ``dataset`` ``None``: a folder of your own images
            (the ``folder`` dataset: ``images/`` and ``masks/<image>_<class>.png``), or ``None`` for
            the procedural benchmark (``synthetic``, nothing on disk).
        dataset, options: a registered dataset and its options (:func:`~sansa_probe.data.get_dataset`).
        fold: the fold (a ``folder`` dataset has one: 0).
        image_size: the procedural benchmark's image size (only for ``synthetic``).
        class_id: the class (id or name); default the first with ``shots + 1`` annotated images.
        shots: k, the references (drawn at random with ``seed`` among the class's images).
        targets: annotated targets of the class to segment (at most the class's other images).
        prompt: the prompt generated from each reference's mask: mask, point, box or scribble.
        prompts: prompts by hand instead, one per reference (:func:`prompt_from_spec`).
        extra_targets: a folder of further images to segment (no ground truth).
    """
    if isinstance(shots, bool) or int(shots) != shots or shots < 1:
        raise ValueError(f"shots: expected an integer >= 1, got {shots!r}")
    if isinstance(targets, bool) or int(targets) != targets or targets < 0:
        raise ValueError(f"targets: expected an integer >= 0, got {targets!r}")
    if prompts is not None and len(prompts) != shots:
        raise ValueError(f"prompts: {len(prompts)} given for {shots} reference(s); expected one per reference")
    dataset = dataset or ("synthetic" if root is None else "folder")
    if dataset == "synthetic":
        options = {"image_size": image_size, **options}
    source = get_dataset(dataset, fold=0 if dataset == "folder" else fold, split="test", root=root, **options)
    chosen = _choose_class(source, class_id, shots + 1)
    ids = list(source.image_ids(chosen))
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    reference_ids, target_ids = order[:shots], order[shots : shots + targets]
    masks = [source.load_mask(i, chosen) for i in reference_ids]
    if prompts is None:
        made = [make_prompt(prompt, m, seed=[seed, j]) for j, m in enumerate(masks)]
    else:
        made = [prompt_from_spec(p, name=f"prompts[{j}]") for j, p in enumerate(prompts)]
    example = FewShotExample(
        class_name=source.class_name(chosen), reference_ids=reference_ids, reference_images=[source.load_image(i) for i in reference_ids],
        reference_masks=masks, prompts=made, target_ids=target_ids, target_images=[source.load_image(i) for i in target_ids],
        target_masks=[source.load_mask(i, chosen) for i in target_ids],
    )  # fmt: skip
    if extra_targets is not None:
        for path in list_images(extra_targets):
            example.target_ids.append(str(path))
            example.target_images.append(load_rgb(path, name=str(path)))
            example.target_masks.append(None)
    return example


def mask_iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """IoU (in %) of two ``HxW`` masks; 100 when both are empty."""
    prediction, truth = np.asarray(prediction, dtype=bool), np.asarray(truth, dtype=bool)
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and truth {truth.shape}: expected the same HxW")
    union = np.logical_or(prediction, truth).sum()
    return 100.0 if union == 0 else 100.0 * float(np.logical_and(prediction, truth).sum() / union)


def _draw_prompt(ax, image: np.ndarray, prompt: Prompt) -> None:
    if isinstance(prompt, (Mask, Scribble)):
        ax.imshow(overlay(image, prompt.mask, color=(255, 200, 0) if isinstance(prompt, Scribble) else None))
        return
    ax.imshow(image)
    if isinstance(prompt, Points):
        for label, colour in ((1, "lime"), (0, "red")):
            xy = prompt.coords[prompt.labels == label]
            ax.scatter(xy[:, 0], xy[:, 1], s=40, c=colour, marker="*", edgecolors="black", linewidths=0.5)
    else:
        x0, y0, x1, y1 = prompt.xyxy
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="lime", linewidth=1.5))


def plot_few_shot(example: FewShotExample, predictions: Mapping[str, Sequence[np.ndarray]], *, max_targets: int = 6, size: float = 2.0):
    """Row 0: the references with their prompts; then one row per model in ``predictions``
    (name -> one ``HxW`` mask per target): each target with the predicted mask (blue, or another
    tint on a blue-ish object: :func:`~sansa_probe.io.masks.contrasting_tint`) and the ground-truth
    outline (white), IoU in the title where the truth is known. Returns the Figure."""

    n_targets = min(len(example.target_images), max_targets)
    for name, masks in predictions.items():
        if len(masks) < n_targets:
            raise ValueError(f"predictions[{name!r}]: {len(masks)} masks for {n_targets} targets")
    cols = max(len(example.reference_images), n_targets, 1)
    rows = 1 + len(predictions)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.3), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for j, (image, prompt) in enumerate(zip(example.reference_images, example.prompts)):
        _draw_prompt(axes[0, j], image, prompt)
        axes[0, j].set_title(f"reference {j + 1}: {type(prompt).__name__.lower()}", fontsize=8)
    for r, (name, masks) in enumerate(predictions.items(), start=1):
        for t in range(n_targets):
            shown = overlay(example.target_images[t], np.asarray(masks[t], dtype=bool))
            truth = example.target_masks[t]
            title = name
            if truth is not None:
                shown[truth & ~_erode(truth)] = 255
                title += f": IoU {mask_iou(masks[t], truth):.1f} %"
            axes[r, t].imshow(shown)
            axes[r, t].set_title(title, fontsize=8)
    fig.suptitle(f"class {example.class_name!r}: {len(example.reference_images)} reference(s); predicted mask tinted blue "
                 "(yellow, magenta or green on a blue-ish object), ground truth outlined white", fontsize=9)  # fmt: skip
    return fig


def target_table(example: FewShotExample, predictions: Mapping[str, Sequence[Any]], *, constant: float = 1e-3) -> pd.DataFrame:
    """One row per target: the IoU (%) of each model's mask where the ground truth is known, and
    each model's ``score`` (SAM2's own IoU estimate) only where it varies across the targets: a
    score within ``constant`` of the same value for every target (the miniature's decoder gives
    0.23 everywhere) tells nothing about a target and is left out, said in ``table.attrs["notes"]``.
    ``predictions``: model name -> one prediction per target (with ``.mask`` and ``.score``)."""
    table = pd.DataFrame({"target": example.target_ids[: min(len(p) for p in predictions.values())] if predictions else []})
    notes = []
    for name, made in predictions.items():
        made = list(made)[: len(table)]
        table[f"IoU {name}"] = [None if truth is None else mask_iou(p.mask, truth) for p, truth in zip(made, example.target_masks)]
        scores = np.asarray([float(p.score) for p in made], dtype=np.float64)
        if len(scores) > 1 and np.ptp(scores) <= constant:
            notes.append(f"score {name}: {scores[0]:.3f} for every target (SAM2's IoU estimate does not vary here: left out, it says nothing)")
        else:
            table[f"score {name}"] = scores
    table.attrs["notes"] = notes
    return table
