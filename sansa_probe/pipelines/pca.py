"""Fig. 8 (appendix B.1): is class information concentrated in the leading principal components?

Object features of the fold's *evaluation* classes (unseen by the fold's strict SANSA), training
embeddings from training images of those classes (:func:`sansa_probe.features.probe_splits`),
test embeddings from the fold's val split. For each encoder (frozen SAM2 and SANSA: the same
model, adapters off / on; any other encoder beside them, each pooled on its own feature grid)
:func:`compute` fits :class:`~sansa_probe.probes.PCAConcentration` (nearest class centroid vs
number of principal components) and a 2-D PCA of the test objects; :func:`figures` draws fig. 8
from the tables alone; :func:`check` warns in words when a model's full-dimension accuracy is
near chance (its relative-accuracy curve then means little).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.features import ProbeSplits, as_encoders, encoder_layers
from sansa_probe.features.encoders import Encoder, Encoders, Layers
from sansa_probe.probes import PCAConcentration, Projection2D, encoder_colours, plot_pca_concentration, plot_projection
from sansa_probe.reporting.sanity import check_chance_accuracy

__all__ = ["TABLES", "check", "compute", "figures"]

TABLES = ("pca_concentration", "projection", "summary", "objects_train", "objects_test")


def compute(
    extractor: Encoders,
    splits: ProbeSplits,
    *,
    models: Mapping[str, Encoder] | None = None,
    layer: Layers = None,
    images_per_class: int | None = 50,
    max_images: int | None = None,
    seed: int = 0,
    pooling: str = "mask_mean",
    n_grid: int | None = None,
    variance: float = 0.99,
    centroids: str = "mean",
    average: str = "macro",
) -> dict[str, pd.DataFrame]:
    """Fig. 8 tables for each encoder (:func:`~sansa_probe.features.as_encoders`: ``models`` name ->
    adapters on, or another encoder; ``layer`` as :func:`~sansa_probe.features.encoder_layers`):
    ``pca_concentration``, ``projection``, ``summary``, ``objects_train``, ``objects_test``."""
    encoders = as_encoders(extractor, models)
    layers = encoder_layers(encoders, layer)
    curves, projections, summary, objects = [], [], [], {"train": [], "test": []}
    for name, fx in encoders.items():
        layer = layers[name]
        common = dict(layer=layer, classes=splits.classes, images_per_class=images_per_class, max_images=max_images, seed=seed, pooling=pooling)
        train, X_train = fx.dataset_object_features(splits.train, **common)
        test, X_test = fx.dataset_object_features(splits.test, **common)
        estimator = PCAConcentration(n_grid=n_grid, variance=variance, centroids=centroids, average=average, random_state=seed)
        estimator.fit(X_train, train["class_id"].to_numpy())
        curves.append(estimator.accuracy_curve(X_test, test["class_id"].to_numpy(), model=name, layer=layer))
        full = curves[-1].query("metric == 'full_accuracy'")["value"].iloc[0]
        for metric, value in (("auc_relative_accuracy", estimator.score(X_test, test["class_id"].to_numpy())), ("full_accuracy", full),
                              ("n_components_variance", estimator.n_components_variance_), ("n_train_objects", len(train)),
                              ("n_test_objects", len(test)), ("n_classes", train["class_id"].nunique())):
            summary.append({"model": name, "layer": layer, "metric": metric, "value": float(value)})
        projection = Projection2D(method="pca").fit(X_test, test["class_name"].to_numpy(), image_ids=test["image_id"].to_numpy(),
                                                    instance_ids=test["instance_id"].to_numpy())
        projections.append(projection.to_frame(model=name, layer=layer))
        summary.append({"model": name, "layer": layer, "metric": "silhouette_2d", "value": projection.score()})
        for key, table in (("train", train), ("test", test)):
            objects[key].append(table.assign(model=name))
    return {
        "pca_concentration": pd.concat(curves, ignore_index=True),
        "projection": pd.concat(projections, ignore_index=True),
        "summary": pd.DataFrame(summary),
        "objects_train": pd.concat(objects["train"], ignore_index=True),
        "objects_test": pd.concat(objects["test"], ignore_index=True),
    }


def check(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Sanity warnings from the ``summary`` table: a model whose nearest-centroid accuracy in the
    full dimension is within 10% of chance (1 / number of classes)."""
    summary = tables["summary"]
    messages = []
    for name, part in summary.groupby("model", sort=False):
        values = part.set_index("metric")["value"]
        if "full_accuracy" in values and "n_classes" in values:
            messages += check_chance_accuracy(float(values["full_accuracy"]), n_classes=int(values["n_classes"]),
                                              what=f"PCA concentration ({name}), full-dimension accuracy")
    return messages


def figures(tables: Mapping[str, pd.DataFrame], images: Mapping[str, object] | None = None) -> dict[str, Figure]:
    """Fig. 8: (a) relative accuracy vs components (one curve per encoder, in its colour:
    :func:`~sansa_probe.probes.encoder_colours`), then one 2-D PCA panel per encoder."""
    projection = tables["projection"]
    names = list(dict.fromkeys(projection["model"]))
    figure = Figure(figsize=(5.2 * (1 + len(names)), 3.8), layout="constrained")
    axes = figure.subplots(1, 1 + len(names), squeeze=False)[0]
    summary = tables["summary"]
    classes = summary.loc[summary["metric"] == "n_classes", "value"]
    chance = 1.0 / float(classes.max()) if len(classes) and float(classes.max()) > 0 else None
    plot_pca_concentration(tables["pca_concentration"], ax=axes[0], colors=encoder_colours(names), chance=chance)
    axes[0].set_title("(a) semantics across PCs")
    for ax, name, letter in zip(axes[1:], names, "bcdefg"):
        plot_projection(projection[projection["model"] == name], ax=ax)
        ax.set_title(f"({letter}) {name}: PC1 vs PC2")
    return {"fig8": figure}
