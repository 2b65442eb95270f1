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
from pathlib import Path

from sansa_probe.commands.grammar import model_from_args, number_in, positive_int
from sansa_probe.commands.probe import ProbeRun, probe_parser, run_probe
from sansa_probe.features import dataset_images
from sansa_probe.io.images import load_rgb
from sansa_probe.pipelines.pca_rgb import compute, figures
from sansa_probe.io.masks import load_binary_png

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.pca_rgb"


def build_parser() -> argparse.ArgumentParser:
    parser = probe_parser(PROG, __doc__)
    probe = parser.add_argument_group("probe")
    probe.add_argument("--split", default="val", choices=["train", "val", "test"], help="split to read (default val)")
    probe.add_argument("--n-images", type=positive_int, default=3, help="images of the split in dataset mode (default 3)")
    probe.add_argument("--image", action="append", default=[], help="file mode: an image (repeat)")
    probe.add_argument("--mask", action="append", default=[], help="file mode: an object mask PNG per --image (optional; all or none)")
    probe.add_argument("--feature-size", type=positive_int, default=None, help="bilinearly resize feature maps to this grid (default: the layer's)")
    probe.add_argument("--quantile", type=number_in(0, 0.5, high_open=True), default=0.01, help="robust colour normalisation quantile (0 = min-max)")
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
    tables = compute(run.encoders(), images, masks, image_ids=ids, layer=args.layer, feature_size=args.feature_size,
                     quantile=args.quantile)
    run.write(tables, figures, images=dict(zip(ids, images)), image_ids=list(ids))


if __name__ == "__main__":
    raise SystemExit(main())
