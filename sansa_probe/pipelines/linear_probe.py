"""Fig. 9 left (appendix B.2): how linearly decodable are the classes?

A 1x1 linear layer is trained on frozen dense features for semantic segmentation of the fold's
evaluation classes plus background, on training images of those classes
(:func:`sansa_probe.features.probe_splits`), and scored by mIoU on the fold's val split
(:class:`~sansa_probe.probes.LinearProbe`), for each encoder (frozen SAM2 and SANSA; any other
encoder beside them, on its own feature grid). Label maps: 0 background (other classes included),
``k`` for the ``k``-th class, 255 ignored, nearest-resized to ``label_size`` (default 4x the
encoder's feature grid). The ``linear_probe`` table
also holds, per class, the share of test pixels predicted as it (``predicted_share``):
:func:`check` warns when one class takes (almost) all of them (a collapsed probe).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.features import ProbeSplits, as_encoders, encoder_layers, semantic_label_maps
from sansa_probe.features.encoders import Encoder, Encoders, Layers
from sansa_probe.probes import LinearProbe, encoder_colours, plot_linear_probe
from sansa_probe.reporting.sanity import check_class_counts

__all__ = ["TABLES", "check", "compute", "figures"]

TABLES = ("linear_probe", "history", "summary")


def compute(
    extractor: Encoders,
    splits: ProbeSplits,
    *,
    models: Mapping[str, Encoder] | None = None,
    layer: Layers = None,
    images_per_class: int | None = 50,
    max_images: int | None = None,
    seed: int = 0,
    label_size: int | None = None,
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
) -> dict[str, pd.DataFrame]:
    """``linear_probe`` (per-class IoU and mIoU), ``history`` and ``summary`` tables (encoders and
    layers as :func:`sansa_probe.pipelines.pca.compute`)."""
    encoders = as_encoders(extractor, models)
    layers = encoder_layers(encoders, layer)
    classes = splits.classes
    names = {k + 1: splits.test.class_name(c) for k, c in enumerate(classes)} | {0: "background"}
    results, histories, summary = [], [], []
    labels: dict[int, dict[str, object]] = {}  # label maps by size: they depend on the feature grid, not on the model
    for name, fx in encoders.items():
        layer = layers[name]
        common = dict(layer=layer, classes=classes, images_per_class=images_per_class, max_images=max_images, seed=seed)
        train_ids, X_train = fx.dataset_dense_features(splits.train, **common)
        test_ids, X_test = fx.dataset_dense_features(splits.test, **common)
        size = label_size or 4 * X_train.shape[-1]
        if size not in labels:
            labels[size] = {"train": semantic_label_maps(splits.train, train_ids, classes, size=size),
                            "test": semantic_label_maps(splits.test, test_ids, classes, size=size)}
        probe = LinearProbe(n_classes=len(classes) + 1, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                            seed=seed, device=fx.device)
        probe.fit(X_train, labels[size]["train"])
        table = probe.to_frame(X_test, labels[size]["test"], model=name, layer=layer)
        predicted = probe.confusion_matrix(X_test, labels[size]["test"]).sum(axis=0)  # test pixels predicted as each class
        shares = pd.DataFrame({"model": name, "layer": layer, "class_id": range(len(predicted)), "metric": "predicted_share",
                               "value": predicted / max(int(predicted.sum()), 1)})
        table = pd.concat([table, shares.astype({"class_id": table["class_id"].dtype})], ignore_index=True)
        table.insert(3, "class_name", [names.get(int(c)) if pd.notna(c) else None for c in table["class_id"]])
        results.append(table)
        histories.append(probe.history_frame(model=name, layer=layer))
        miou = float(table.query("metric == 'miou'")["value"].iloc[0])
        summary += [{"model": name, "layer": layer, "metric": "miou_percent", "value": 100.0 * miou},
                    {"model": name, "layer": layer, "metric": "n_train_images", "value": float(len(train_ids))},
                    {"model": name, "layer": layer, "metric": "n_test_images", "value": float(len(test_ids))}]
    return {"linear_probe": pd.concat(results, ignore_index=True), "history": pd.concat(histories, ignore_index=True),
            "summary": pd.DataFrame(summary)}


def check(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Sanity warnings from the ``linear_probe`` table: a model whose probe predicts one class for
    99% or more of the test pixels."""
    table = tables["linear_probe"]
    shares = table[table["metric"] == "predicted_share"]
    messages = []
    for name, part in shares.groupby("model", sort=False):
        names = dict(zip(part["class_id"], part["class_name"].fillna(part["class_id"].astype(str))))
        messages += check_class_counts(dict(zip(part["class_id"], part["value"])), what=f"linear probe ({name})", names=names)
    return messages


def figures(tables: Mapping[str, pd.DataFrame], images: Mapping[str, object] | None = None) -> dict[str, Figure]:
    """Fig. 9 left: mIoU bars per encoder, in its colour (:func:`~sansa_probe.probes.encoder_colours`),
    grouped by layer when every encoder is probed at one layer."""
    table = tables["linear_probe"]
    names = list(dict.fromkeys(table["model"]))
    figure = Figure(figsize=(max(4.0, 1.0 + 1.0 * len(names)), 3.6), layout="constrained")
    ax = plot_linear_probe(table, ax=figure.add_subplot(), x="layer" if table["layer"].nunique() == 1 else None, colors=encoder_colours(names))
    ax.set_title("linear probe (semantic segmentation)")
    return {"linear_probe": figure}
