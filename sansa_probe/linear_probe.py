"""``python -m sansa_probe.linear_probe``: how linearly decodable are the classes? (paper fig. 9 left, appendix B.2)

    python -m sansa_probe.linear_probe --dataset coco20i --fold 0 --data-root /data --checkpoint sansa_coco_fold0.pt --out results/fig9
    python -m sansa_probe.linear_probe --dataset synthetic --epochs 5

A 1x1 linear layer is trained on frozen dense features for semantic segmentation of the fold's
evaluation classes (unseen by the fold's strict SANSA) plus background, on training images of
those classes (:func:`sansa_probe.features.probe_splits`), and scored by mIoU on the fold's val
split (:class:`~sansa_probe.probes.LinearProbe`), for frozen SAM2 and SANSA (the same model,
adapters off / on). Label maps: 0 background (other classes included), ``k`` for the ``k``-th
class, 255 ignored, nearest-resized to ``--label-size`` (default 4x the feature grid, i.e. the
mask decoder's ``S/4``); the probe's logits are bilinearly upsampled to it.

Writes into ``--out``: ``linear_probe.{csv,json}`` (model, layer, class_id, class_name, metric
iou/miou, value), ``history.{csv,json}`` (training loss per epoch), ``summary.{csv,json}``
(mIoU per model, in %), ``linear_probe.{png,pdf}``, ``config.json``.
"""

from __future__ import annotations

import argparse

from sansa_probe.commands.grammar import model_from_args, non_negative_float, non_negative_int, positive_float, positive_int, say
from sansa_probe.commands.probe import ProbeRun, add_sample_arguments, probe_parser, run_probe
from sansa_probe.pipelines.linear_probe import compute, figures

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.linear_probe"


def build_parser() -> argparse.ArgumentParser:
    parser = probe_parser(PROG, __doc__)
    add_sample_arguments(parser)
    probe = parser.add_argument_group("probe")
    probe.add_argument("--train-fold", type=non_negative_int, default=None, help="fold whose training split gives the training images (default: the first that holds the classes)")
    probe.add_argument("--label-size", type=positive_int, default=None, help="side of the label maps (default: 4x the feature grid)")
    probe.add_argument("--epochs", type=positive_int, default=10, help="training epochs of the linear layer")
    probe.add_argument("--probe-batch-size", type=positive_int, default=8, help="images per optimisation step")
    probe.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    probe.add_argument("--weight-decay", type=non_negative_float, default=0.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)


def _body(run: ProbeRun) -> None:
    args = run.args
    splits = run.splits()
    tables = compute(run.encoders(), splits, layer=args.layer, images_per_class=args.images_per_class or None,
                     max_images=args.max_images, seed=args.seed, label_size=args.label_size, epochs=args.epochs,
                     batch_size=args.probe_batch_size, lr=args.lr, weight_decay=args.weight_decay)
    run.write(tables, figures, train_fold=splits.train_fold, classes=[str(c) for c in splits.classes])
    for row in tables["summary"].query("metric == 'miou_percent'").itertuples():
        say(f"{row.model}: linear-probe mIoU {row.value:.1f}%")


if __name__ == "__main__":
    raise SystemExit(main())
