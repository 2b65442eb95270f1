"""``python -m sansa_probe.projection``: 2-D PCA / UMAP of object features coloured by class (paper figs. 4a, 8b-c).

    python -m sansa_probe.projection --dataset coco20i --fold 0 --data-root /data --checkpoint sansa_coco_fold0.pt --out results/fig4a
    python -m sansa_probe.projection --dataset synthetic --method umap

Object features of one split (default: the fold's val split, i.e. classes unseen by the fold's
strict SANSA), for frozen SAM2 and SANSA (the same model, adapters off / on), each projected to
2-D on its own (:class:`~sansa_probe.probes.Projection2D`).

Writes into ``--out``: ``projection.{csv,json}`` (model, layer, x, y, class, image_id,
instance_id), ``scores.{csv,json}`` (silhouette of the classes in 2-D, object counts),
``projection.{png,pdf}`` (one panel per model) and ``projection_<model>.html`` (plotly, image
id / class / instance on hover), ``config.json``.
"""

from __future__ import annotations

import argparse

from sansa_probe.commands.grammar import model_from_args, number_in, positive_int, say
from sansa_probe.commands.probe import ProbeRun, add_sample_arguments, probe_parser, run_probe
from sansa_probe.pipelines.projection import compute, figures, write_html

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.projection"


def build_parser() -> argparse.ArgumentParser:
    parser = probe_parser(PROG, __doc__)
    add_sample_arguments(parser)
    probe = parser.add_argument_group("probe")
    probe.add_argument("--split", default="val", choices=["train", "val", "test"], help="split to read (default val)")
    probe.add_argument("--method", choices=["pca", "umap"], default="pca", help="2-D projection (default pca, as the paper)")
    probe.add_argument("--pooling", choices=["mask_mean", "mask_threshold", "mask_max"], default="mask_mean", help="object pooling on the feature grid")
    probe.add_argument("--n-neighbors", type=positive_int, default=15, help="UMAP neighbourhood size")
    probe.add_argument("--min-dist", type=number_in(0, 1), default=0.1, help="UMAP minimum distance")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)


def _body(run: ProbeRun) -> None:
    args = run.args
    source = run.dataset(args.split)
    tables = compute(run.encoders(), source, layer=args.layer, method=args.method, images_per_class=args.images_per_class or None,
                     max_images=args.max_images, seed=args.seed, pooling=args.pooling, n_neighbors=args.n_neighbors, min_dist=args.min_dist)
    run.write(tables, figures)
    write_html(tables, run.out)
    for row in tables["scores"].query("metric == 'silhouette_2d'").itertuples():
        say(f"{row.model}: silhouette of the classes in 2-D {row.value:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
