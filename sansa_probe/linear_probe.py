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
import sys
from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.cli import model_from_args
from sansa_probe.features import FeatureExtractor, ProbeSplits, semantic_label_maps
from sansa_probe.probes import LinearProbe, plot_linear_probe
from sansa_probe.cli import non_negative_int, positive_int
from sansa_probe.probes.cli import ProbeRun, add_sample_arguments, probe_parser, run_probe

__all__ = ["main", "build_parser", "compute", "figures"]

PROG = "sansa_probe.linear_probe"


def compute(
    extractor: FeatureExtractor,
    splits: ProbeSplits,
    *,
    models: Mapping[str, bool],
    layer: str | None = None,
    images_per_class: int | None = 50,
    max_images: int | None = None,
    seed: int = 0,
    label_size: int | None = None,
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
) -> dict[str, pd.DataFrame]:
    """``linear_probe`` (per-class IoU and mIoU), ``history`` and ``summary`` tables."""
    layer = layer or extractor.default_layer()
    classes = splits.classes
    names = {k + 1: splits.test.class_name(c) for k, c in enumerate(classes)} | {0: "background"}
    results, histories, summary = [], [], []
    labels: dict[str, object] = {}
    for name, adapters in models.items():
        common = dict(layer=layer, adapters=adapters, classes=classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        train_ids, X_train = extractor.dataset_dense_features(splits.train, **common)
        test_ids, X_test = extractor.dataset_dense_features(splits.test, **common)
        size = label_size or 4 * X_train.shape[-1]
        if "train" not in labels:  # label maps do not depend on the model
            labels["train"] = semantic_label_maps(splits.train, train_ids, classes, size=size)
            labels["test"] = semantic_label_maps(splits.test, test_ids, classes, size=size)
        probe = LinearProbe(n_classes=len(classes) + 1, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                            seed=seed, device=extractor.model.device)
        probe.fit(X_train, labels["train"])
        table = probe.to_frame(X_test, labels["test"], model=name, layer=layer)
        table.insert(3, "class_name", [names.get(int(c)) if pd.notna(c) else None for c in table["class_id"]])
        results.append(table)
        histories.append(probe.history_frame(model=name, layer=layer))
        miou = float(table.query("metric == 'miou'")["value"].iloc[0])
        summary += [{"model": name, "layer": layer, "metric": "miou_percent", "value": 100.0 * miou},
                    {"model": name, "layer": layer, "metric": "n_train_images", "value": float(len(train_ids))},
                    {"model": name, "layer": layer, "metric": "n_test_images", "value": float(len(test_ids))}]
    return {"linear_probe": pd.concat(results, ignore_index=True), "history": pd.concat(histories, ignore_index=True),
            "summary": pd.DataFrame(summary)}


def figures(tables: Mapping[str, pd.DataFrame]) -> dict[str, Figure]:
    """Fig. 9 left: mIoU bars per model."""
    figure = Figure(figsize=(4.0, 3.6), layout="constrained")
    ax = plot_linear_probe(tables["linear_probe"], ax=figure.add_subplot())
    ax.set_title("linear probe (semantic segmentation)")
    return {"linear_probe": figure}


def build_parser() -> argparse.ArgumentParser:
    parser = probe_parser(PROG, __doc__)
    add_sample_arguments(parser)
    probe = parser.add_argument_group("probe")
    probe.add_argument("--train-fold", type=non_negative_int, default=None, help="fold whose training split gives the training images (default: the first that holds the classes)")
    probe.add_argument("--label-size", type=positive_int, default=None, help="side of the label maps (default: 4x the feature grid)")
    probe.add_argument("--epochs", type=positive_int, default=10, help="training epochs of the linear layer")
    probe.add_argument("--probe-batch-size", type=positive_int, default=8, help="images per optimisation step")
    probe.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    probe.add_argument("--weight-decay", type=float, default=0.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)


def _body(run: ProbeRun) -> None:
    args = run.args
    splits = run.splits()
    tables = compute(run.extractor(), splits, models=run.models, layer=args.layer, images_per_class=args.images_per_class or None,
                     max_images=args.max_images, seed=args.seed, label_size=args.label_size, epochs=args.epochs,
                     batch_size=args.probe_batch_size, lr=args.lr, weight_decay=args.weight_decay)
    run.write(tables, figures, train_fold=splits.train_fold, classes=[str(c) for c in splits.classes])
    for row in tables["summary"].query("metric == 'miou_percent'").itertuples():
        print(f"{row.model}: linear-probe mIoU {row.value:.1f}%", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
