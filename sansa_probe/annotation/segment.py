"""Segment a list of target images from one set of references and write the results, complete or absent.

The library side of ``python -m sansa_probe.segment``: every target through
:class:`~sansa_probe.inference.predictor.SansaPredictor` (its references set), then into ``out``:
``masks/<target>.png``, ``overlays/<target>.png``, ``predictions.json`` (COCO results, RLE),
``preview.{png,pdf}`` and ``summary.json``. ``<target>`` is the target's path in the folder it came
from with its suffix (``sub/a.jpg`` -> ``masks/sub/a.jpg.png``). Everything is written into a
staging folder and replaces the previous outputs only when every target succeeded; only files an
earlier segment run recorded in the folder's manifest are replaced (:mod:`sansa_probe.io.manifest`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sansa_probe.inference.predictor import SansaPredictor
from sansa_probe.io.atomic import atomic_write_json
from sansa_probe.io.manifest import RunFolder
from sansa_probe.io.images import load_rgb
from sansa_probe.probes.plots import add_footnote, save_figure
from sansa_probe.prompts import Prompt
from sansa_probe.reporting.identity import identity_footnote, identity_line
from sansa_probe.reporting.preview import plot_segmentation
from sansa_probe.reporting.sanity import check_mask_areas, report
from sansa_probe.io.masks import encode_rle, mask_bbox, overlay, save_png

__all__ = ["COMMAND", "OUTPUTS", "output_stem", "segment_targets", "unique_output_name"]

COMMAND = "sansa_probe.segment"  # the command recorded in the output folder's manifest
OUTPUTS = ("masks", "overlays", "predictions.json", "preview.png", "preview.pdf", "summary.json")
PREVIEW_TARGETS = 4  # targets drawn in preview.png


def output_stem(path: Path, roots: Sequence[Path]) -> str:
    """A target's output file name: its path relative to the folder it came from, suffix kept
    (``sub/a.jpg`` -> ``sub/a.jpg.png``), or its file name when it was given as a file."""
    for root in roots:
        if root.is_dir():
            try:
                return path.relative_to(root).as_posix() + ".png"
            except ValueError:
                continue
    return path.name + ".png"


def unique_output_name(name: str, used: set[str]) -> str:
    """``name``, or ``<name without .png>~2.png``, ``~3``... : the first not in ``used`` (which it joins)."""
    candidate, n = name, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{name[:-4]}~{n}.png"
    used.add(candidate.lower())
    return candidate


def segment_targets(predictor: SansaPredictor, targets: Sequence[Path], out: str | Path | RunFolder, *, roots: Sequence[Path],
                    references: Sequence[np.ndarray], prompts: Sequence[Prompt], identity: Mapping[str, Any],
                    record: Mapping[str, Any] | None = None, category_id: int = 1, overlays: bool = True,
                    progress: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """Segment ``targets`` (files; ``roots``: the folders and files they were collected from, for
    their output names) with ``predictor``'s references and write every output into ``out``.

    ``references``/``prompts``: the reference images and their prompts, drawn in the preview;
    ``identity``: the model's (:func:`~sansa_probe.reporting.identity.model_identity`), written in
    the summary with its warnings and the masks' sanity checks; ``record``: what else the summary
    holds (the command, the references' files, the threshold...). ``out``: a folder, or the
    :class:`~sansa_probe.io.manifest.RunFolder` the command opened: a folder holding anything an
    earlier segment run did not write, or lying inside a target folder, is refused. Returns the
    predictions.
    """
    folder = out if isinstance(out, RunFolder) else RunFolder.open(out, command=COMMAND, inputs={"--target": [r for r in roots if r.is_dir()]})
    with folder.staged(OUTPUTS) as staging:  # complete or absent: moved into place only when every target is done
        results, image_areas, shown = _segment_all(predictor, targets, staging, roots=roots, category_id=category_id,
                                                   overlays=overlays, progress=progress)  # fmt: skip
        atomic_write_json(staging / "predictions.json", results)
        measured = report(check_mask_areas([r["area"] for r in results], image_areas, what="segment masks"))
        axes = plot_segmentation(references, prompts, [image for _, image, _ in shown], [mask for _, _, mask in shown],
                                 target_names=[name for name, _, _ in shown], max_targets=PREVIEW_TARGETS)  # fmt: skip
        save_figure(add_footnote(axes[0, 0].figure, identity_footnote(identity), warnings=[*identity["warnings"], *measured]),
                    staging / "preview", dpi=120)
        atomic_write_json(staging / "summary.json", {
            **(record or {}),
            "identity": identity,
            "model": identity_line(identity).removeprefix("model: "),
            "warnings": [*identity["warnings"], *measured],
            "n_targets": len(results),
            "files": {"predictions": "predictions.json", "masks": "masks/", "overlays": "overlays/" if overlays else None,
                      "preview": "preview.png"},
        })  # fmt: skip
    folder.finish()
    return results


def _segment_all(predictor: SansaPredictor, targets: Sequence[Path], staging: Path, *, roots: Sequence[Path], category_id: int,
                 overlays: bool, progress: bool) -> tuple[list[dict[str, Any]], list[int], list[tuple[str, np.ndarray, np.ndarray]]]:  # fmt: skip
    """Masks (and overlays) into ``staging``; returns the COCO results, the targets' pixel counts
    and the preview's first targets ``(name, image, mask)``."""
    results: list[dict[str, Any]] = []
    image_areas: list[int] = []
    shown: list[tuple[str, np.ndarray, np.ndarray]] = []
    names: set[str] = set()
    with tqdm(total=len(targets), desc="segment", unit="img", file=sys.stderr, disable=not progress) as bar:
        for start in range(0, len(targets), predictor.batch_size):
            chunk = targets[start : start + predictor.batch_size]
            images = [load_rgb(path, name=f"--target {path}") for path in chunk]
            for offset, (path, image, prediction) in enumerate(zip(chunk, images, predictor.predict_batch(images))):
                name = unique_output_name(output_stem(path, roots), names)
                save_png(staging / "masks" / name, prediction.mask)
                if overlays:
                    save_png(staging / "overlays" / name, overlay(image, prediction.mask))
                if len(shown) < PREVIEW_TARGETS:
                    shown.append((name.removesuffix(".png"), image, prediction.mask))
                results.append({
                    "image_id": start + offset + 1,
                    "file_name": str(path),
                    "mask_file": f"masks/{name}",
                    "category_id": category_id,
                    "segmentation": encode_rle(prediction.mask),
                    "bbox": mask_bbox(prediction.mask),
                    "area": int(prediction.mask.sum()),
                    "score": prediction.score,
                })  # fmt: skip
                image_areas.append(int(prediction.mask.size))
            bar.update(len(chunk))
    return results, image_areas, shown
