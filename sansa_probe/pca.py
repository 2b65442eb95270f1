"""``python -m sansa_probe.pca``: is class information concentrated in the leading principal components? (paper fig. 8)

    python -m sansa_probe.pca --dataset coco20i --fold 0 --data-root /data --checkpoint sansa_coco_fold0.pt --out results/fig8
    python -m sansa_probe.pca --dataset synthetic     # offline: the procedural benchmark, output in a new runs/pca-* folder

Appendix B.1: object features of the fold's *evaluation* classes (unseen by the fold's strict
SANSA), training embeddings from training images of those classes (see
:func:`sansa_probe.features.probe_splits`), test embeddings from the fold's val split. For frozen
SAM2 and SANSA (the same model, adapters off / on) it fits :class:`~sansa_probe.probes.PCAConcentration`
(nearest class centroid vs number of principal components) and a 2-D PCA of the test objects.

Writes into ``--out``: ``pca_concentration.{csv,json}`` (fig. 8a curve: model, layer,
n_components, metric, value), ``projection.{csv,json}`` (figs. 8b-c: one row per test object),
``summary.{csv,json}`` (area under the relative-accuracy curve, full-dimension accuracy,
components for 99% variance, object counts), ``objects_<split>.csv``, ``fig8.{png,pdf}``,
``config.json``.
"""

from __future__ import annotations

import argparse

from sansa_probe.commands.grammar import model_from_args, non_negative_int, number_in, positive_int, say
from sansa_probe.commands.probe import ProbeRun, add_sample_arguments, probe_parser, run_probe
from sansa_probe.pipelines.pca import compute, figures

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.pca"


def build_parser() -> argparse.ArgumentParser:
    parser = probe_parser(PROG, __doc__)
    add_sample_arguments(parser)
    probe = parser.add_argument_group("probe")
    probe.add_argument("--pooling", choices=["mask_mean", "mask_threshold", "mask_max"], default="mask_mean", help="object pooling on the feature grid")
    probe.add_argument("--train-fold", type=non_negative_int, default=None, help="fold whose training split gives the training images (default: the first that holds the classes)")
    probe.add_argument("--n-grid", type=positive_int, default=None, help="at most this many component counts on the curve (default: every count)")
    probe.add_argument("--variance", type=number_in(0, 1, low_open=True), default=0.99, help="variance fraction fixing the top of the component grid (0.99)")
    probe.add_argument("--centroids", choices=["mean", "kmeans"], default="mean", help="class centroids: class means or matched k-means")
    probe.add_argument("--average", choices=["macro", "micro"], default="macro", help="per-class (macro) or overall (micro) accuracy")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)


def _body(run: ProbeRun) -> None:
    args = run.args
    splits = run.splits()
    tables = compute(run.encoders(), splits, layer=args.layer, images_per_class=args.images_per_class or None,
                     max_images=args.max_images, seed=args.seed, pooling=args.pooling, n_grid=args.n_grid, variance=args.variance,
                     centroids=args.centroids, average=args.average)
    run.write(tables, figures, train_fold=splits.train_fold, classes=[str(c) for c in splits.classes])
    for row in tables["summary"].query("metric == 'auc_relative_accuracy'").itertuples():
        say(f"{row.model}: area under the relative-accuracy curve {row.value:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
