"""``python -m sansa_probe.pca_rgb``: dense features as colours, 3 principal components -> RGB (paper figs. 2, 4b).

    python -m sansa_probe.pca_rgb --dataset coco20i --fold 0 --data-root /data --n-images 3 --checkpoint sansa.pt --out results/fig4b
    python -m sansa_probe.pca_rgb --image a.jpg --mask a.png --image b.jpg --mask b.png --checkpoint sansa.pt --out results/rgb
    python -m sansa_probe.pca_rgb --dataset synthetic

One PCA is fitted jointly on the pixels of all images (inside the object masks), per model
(frozen SAM2 and SANSA, the same model with adapters off / on), so one colour means one
feature direction in every image (:class:`~sansa_probe.probes.PCARGB`). Dataset mode takes
``--n-images`` images of one split (seeded) with the union of their objects as the mask; file
mode takes ``--image`` files with optional ``--mask`` PNGs (without masks every pixel is used).
Masks are brought to the feature grid by coverage >= 0.5 (:func:`sansa_probe.features.masks_to_grid`).

Writes into ``--out``: ``pca_rgb.{csv,json}`` (model, layer, image, image_id, row, col, r, g, b,
in_mask), ``scores.{csv,json}`` (variance captured by the 3 components), ``pca_rgb.{png,pdf}``
(images, then one row of colour maps per model), ``config.json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.cli import model_from_args
from sansa_probe.features import FeatureExtractor, masks_to_grid, select_images
from sansa_probe.images import load_rgb
from sansa_probe.probes import PCARGB, plot_pca_rgb
from sansa_probe.cli import positive_int
from sansa_probe.probes.cli import ProbeRun, probe_parser, run_probe
from sansa_probe.utils.masks import load_binary_png

__all__ = ["main", "build_parser", "compute", "figures", "dataset_images"]

PROG = "sansa_probe.pca_rgb"


def dataset_images(source, *, n_images: int, seed: int = 0) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """``n_images`` images of a split (seeded, one per class first) with the union of their
    objects (``load_instances``) as mask: ``(ids, images HxWx3, masks HxW)``."""
    ids = select_images(source, images_per_class=1, max_images=n_images, seed=seed)
    images, masks = [], []
    for image_id in ids:
        image = source.load_image(image_id)
        mask = np.zeros(image.shape[:2], dtype=bool)
        for instance in source.load_instances(image_id):
            mask |= np.asarray(instance.mask, dtype=bool)
        images.append(image)
        masks.append(mask)
    return ids, images, masks


def compute(
    extractor: FeatureExtractor,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray] | None,
    *,
    models: Mapping[str, bool],
    image_ids: Sequence[str] | None = None,
    layer: str | None = None,
    feature_size: int | None = None,
    quantile: float = 0.01,
) -> dict[str, pd.DataFrame]:
    """``pca_rgb`` (one row per feature cell, image and model) and ``scores`` tables."""
    layer = layer or extractor.default_layer()
    ids = list(image_ids) if image_ids is not None else [str(i) for i in range(len(images))]
    frames, scores = [], []
    for name, adapters in models.items():
        X = extractor.dense_features(images, layer=layer, adapters=adapters, size=feature_size)
        grid = masks_to_grid(masks, tuple(X.shape[-2:])) if masks is not None else None
        if grid is not None and not any(m.any() for m in grid):
            raise ValueError("masks: no mask covers half of a feature cell; pass larger objects, --feature-size, or no masks")
        estimator = PCARGB(fit_on_masks=grid is not None, quantile=quantile).fit(X, grid)
        frame = estimator.to_frame(X, grid, model=name, layer=layer)
        frame.insert(3, "image_id", [ids[i] for i in frame["image"]])
        frames.append(frame)
        scores.append({"model": name, "layer": layer, "metric": "variance_captured_3pc", "value": estimator.score(X, grid)})
    return {"pca_rgb": pd.concat(frames, ignore_index=True), "scores": pd.DataFrame(scores)}


def figures(tables: Mapping[str, pd.DataFrame], images: Sequence[np.ndarray]) -> dict[str, Figure]:
    """The images on the first row, then one row of colour maps per model."""
    table = tables["pca_rgb"]
    names = list(dict.fromkeys(table["model"]))
    figure = Figure(figsize=(2.6 * len(images), 2.6 * (1 + len(names))), layout="constrained")
    grid = np.asarray(figure.subplots(1 + len(names), len(images), squeeze=False), dtype=object)
    for k, name in enumerate(names):
        part = table[table["model"] == name]
        if k == 0:
            plot_pca_rgb(part, images=images, axes=grid[0:2])
        else:
            plot_pca_rgb(part, axes=grid[k + 1 : k + 2])
        grid[k + 1, 0].set_title(name, loc="left", fontsize="medium")
    return {"pca_rgb": figure}


def build_parser() -> argparse.ArgumentParser:
    parser = probe_parser(PROG, __doc__)
    probe = parser.add_argument_group("probe")
    probe.add_argument("--split", default="val", choices=["train", "val", "test"], help="split to read (default val)")
    probe.add_argument("--n-images", type=positive_int, default=3, help="images of the split in dataset mode (default 3)")
    probe.add_argument("--image", action="append", default=[], help="file mode: an image (repeat)")
    probe.add_argument("--mask", action="append", default=[], help="file mode: an object mask PNG per --image (optional; all or none)")
    probe.add_argument("--feature-size", type=positive_int, default=None, help="bilinearly resize feature maps to this grid (default: the layer's)")
    probe.add_argument("--quantile", type=float, default=0.01, help="robust colour normalisation quantile (0 = min-max)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)


def _body(run: ProbeRun) -> None:
    args = run.args
    if args.image:
        if args.mask and len(args.mask) != len(args.image):
            raise ValueError(f"--mask: {len(args.mask)} masks for {len(args.image)} --image files (give one per image, or none)")
        images = [load_rgb(path, name=f"--image {path}") for path in args.image]
        masks = [load_binary_png(path, name=f"--mask {path}") for path in args.mask] or None
        if masks is not None:
            for path, image, mask in zip(args.mask, images, masks):
                if mask.shape != image.shape[:2]:
                    raise ValueError(f"--mask {path}: size {mask.shape} does not match its image {image.shape[:2]} (HxW)")
        ids = [Path(p).stem for p in args.image]
    else:
        ids, images, masks = dataset_images(run.dataset(args.split), n_images=args.n_images, seed=args.seed)
    tables = compute(run.extractor(), images, masks, models=run.models, image_ids=ids, layer=args.layer, feature_size=args.feature_size,
                     quantile=args.quantile)
    run.write(tables, lambda t: figures(t, images), image_ids=list(ids))


if __name__ == "__main__":
    raise SystemExit(main())
