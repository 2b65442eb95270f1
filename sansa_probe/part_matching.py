"""``python -m sansa_probe.part_matching``: part-level clusters matched across image pairs (paper fig. 4c).

    python -m sansa_probe.part_matching --dataset pascal_part --fold 0 --data-root /data --checkpoint sansa.pt --out results/fig4c
    python -m sansa_probe.part_matching --dataset synthetic

Pairs: for each class of the split (seeded order), two of its images; in each, the largest
instance of that class (else the largest instance: Pascal-Part classes are ``object+PART`` while
its instances are objects). Each object's dense features (inside its mask at feature resolution,
coverage >= 0.5) are clustered with K-means and the clusters matched across the pair by the
Hungarian algorithm (:class:`~sansa_probe.probes.PartMatching`), for frozen SAM2 and SANSA (the
same model, adapters off / on). Where instances carry part masks (``pascal_part``,
``paco_part``), each cluster is named by its majority part and ``part_agreement`` is the fraction
of matched pairs whose names agree; elsewhere it is NaN. A pair whose object covers fewer feature
cells than ``--clusters`` is skipped (counted in the summary): raise ``--feature-size``.

Writes into ``--out``: ``part_matching.{csv,json}`` (model, layer, pair, class_id, class_name, image_a, image_b,
cluster, part_a, part_b, metric, value), ``pixels.{csv,json}`` (cluster id per feature cell,
the figure's input), ``summary.{csv,json}``, ``part_matching.{png,pdf}``, ``config.json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.cli import model_from_args
from sansa_probe.data import Instance, SegmentationSource
from sansa_probe.features import FeatureExtractor, masks_to_grid
from sansa_probe.probes import PartMatching, plot_part_matching
from sansa_probe.cli import positive_int
from sansa_probe.probes.cli import ProbeRun, probe_parser, run_probe

__all__ = ["main", "build_parser", "ObjectPair", "dataset_pairs", "compute", "figures"]

PROG = "sansa_probe.part_matching"


@dataclass
class ObjectPair:
    """Two images of one class and the object chosen in each (``parts`` may be ``None``)."""

    class_id: object
    class_name: str
    image_ids: tuple[str, str]
    images: tuple[np.ndarray, np.ndarray]
    objects: tuple[Instance, Instance]


def _largest(instances: Sequence[Instance], class_id: object) -> Instance | None:
    own = [i for i in instances if i.class_id == class_id] or list(instances)
    own = [i for i in own if np.asarray(i.mask).any()]
    return max(own, key=lambda i: int(np.asarray(i.mask).sum()), default=None)


def dataset_pairs(source: SegmentationSource, *, max_pairs: int = 8, pairs_per_class: int = 1, seed: int = 0) -> list[ObjectPair]:
    """Up to ``max_pairs`` image pairs, ``pairs_per_class`` per class (seeded), each image
    used once per class; duplicates (same two images) are dropped."""
    rng = np.random.default_rng(seed)
    pairs, seen = [], set()
    classes = source.class_ids()
    for class_index in rng.permutation(len(classes)):
        class_id = classes[int(class_index)]
        ids = source.image_ids(class_id)
        order = [ids[int(k)] for k in rng.permutation(len(ids))]
        made = 0
        for a, b in zip(order[0::2], order[1::2]):
            if made >= pairs_per_class or len(pairs) >= max_pairs:
                break
            if frozenset((a, b)) in seen:
                continue
            objects = (_largest(source.load_instances(a), class_id), _largest(source.load_instances(b), class_id))
            if objects[0] is None or objects[1] is None:
                continue
            seen.add(frozenset((a, b)))
            pairs.append(ObjectPair(class_id, source.class_name(class_id), (a, b), (source.load_image(a), source.load_image(b)), objects))
            made += 1
        if len(pairs) >= max_pairs:
            break
    if not pairs:
        raise ValueError(f"{source!r}: no class has two images with an object; nothing to match")
    return pairs


def _grid_parts(instance: Instance, object_mask: np.ndarray) -> dict[str, np.ndarray] | None:
    if not instance.parts:
        return None
    names = sorted(instance.parts)
    grids = masks_to_grid([instance.parts[n] for n in names], object_mask.shape)
    return {n: g & object_mask for n, g in zip(names, grids)}


def compute(
    extractor: FeatureExtractor,
    pairs: Sequence[ObjectPair],
    *,
    models: Mapping[str, bool],
    layer: str | None = None,
    feature_size: int | None = None,
    n_clusters: int = 5,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """``part_matching`` (matched clusters and scores per pair), ``pixels`` and ``summary`` tables."""
    layer = layer or extractor.default_layer()
    images = [image for pair in pairs for image in pair.images]
    results, pixels, summary = [], [], []
    for name, adapters in models.items():
        X = extractor.dense_features(images, layer=layer, adapters=adapters, size=feature_size)
        grid = tuple(X.shape[-2:])
        skipped = 0
        for p, pair in enumerate(pairs):
            masks = masks_to_grid([o.mask for o in pair.objects], grid)
            if min(int(m.sum()) for m in masks) < n_clusters:
                skipped += 1
                continue
            parts = [_grid_parts(o, m) for o, m in zip(pair.objects, masks)]
            if parts[0] is None or parts[1] is None:
                parts = [None, None]
            matcher = PartMatching(n_clusters=n_clusters, random_state=seed)
            matcher.fit(X[2 * p], X[2 * p + 1], mask_a=masks[0], mask_b=masks[1], parts_a=parts[0], parts_b=parts[1])
            labels = dict(model=name, layer=layer, pair=p, class_id=str(pair.class_id), class_name=pair.class_name, image_a=pair.image_ids[0], image_b=pair.image_ids[1])
            results.append(matcher.to_frame(**labels))
            pixels.append(matcher.pixel_frame(model=name, pair=p))
        scored = pd.concat([r for r in results if r["model"].iloc[0] == name], ignore_index=True) if results else pd.DataFrame()
        for metric in ("mean_matched_cosine", "part_agreement"):
            values = scored.loc[scored["metric"] == metric, "value"] if len(scored) else pd.Series(dtype=float)
            summary.append({"model": name, "layer": layer, "metric": metric, "value": float(values.mean()) if values.notna().any() else float("nan")})
        summary += [{"model": name, "layer": layer, "metric": "n_pairs", "value": float(len(pairs) - skipped)},
                    {"model": name, "layer": layer, "metric": "n_skipped", "value": float(skipped)}]
    if not results:
        raise ValueError(f"every pair's object covers fewer than {n_clusters} feature cells; raise --feature-size or lower --clusters")
    return {"part_matching": pd.concat(results, ignore_index=True), "pixels": pd.concat(pixels, ignore_index=True), "summary": pd.DataFrame(summary)}


def figures(tables: Mapping[str, pd.DataFrame], pairs: Sequence[ObjectPair], *, max_rows: int = 4) -> dict[str, Figure]:
    """One row per pair (at most ``max_rows``): for each model, both images with matched clusters in shared colours."""
    pixels = tables["pixels"]
    names = list(dict.fromkeys(pixels["model"]))
    shown = sorted(set(pixels["pair"]))[:max_rows]
    figure = Figure(figsize=(2.4 * 2 * len(names), 2.4 * len(shown)), layout="constrained")
    grid = np.asarray(figure.subplots(len(shown), 2 * len(names), squeeze=False), dtype=object)
    for r, p in enumerate(shown):
        for k, name in enumerate(names):
            part = pixels[(pixels["model"] == name) & (pixels["pair"] == p)]
            axes = grid[r, 2 * k : 2 * k + 2]
            if part.empty:
                for ax in axes:
                    ax.set_axis_off()
                continue
            plot_part_matching(part, images=list(pairs[p].images), axes=axes)
            axes[0].set_title(f"{name}: {pairs[p].class_name}", loc="left", fontsize="small")
    return {"part_matching": figure}


def build_parser() -> argparse.ArgumentParser:
    parser = probe_parser(PROG, __doc__)
    probe = parser.add_argument_group("probe")
    probe.add_argument("--split", default="val", choices=["train", "val", "test"], help="split to read (default val)")
    probe.add_argument("--max-pairs", type=positive_int, default=8, help="image pairs (default 8)")
    probe.add_argument("--pairs-per-class", type=positive_int, default=1, help="pairs per class (default 1)")
    probe.add_argument("--clusters", type=positive_int, default=5, help="K-means clusters (parts) per object (default 5)")
    probe.add_argument("--feature-size", type=positive_int, default=None, help="bilinearly resize feature maps to this grid (default: the layer's)")
    probe.add_argument("--figure-pairs", type=positive_int, default=4, help="pairs drawn in the figure (default 4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)


def _body(run: ProbeRun) -> None:
    args = run.args
    pairs = dataset_pairs(run.dataset(args.split), max_pairs=args.max_pairs, pairs_per_class=args.pairs_per_class, seed=args.seed)
    tables = compute(run.extractor(), pairs, models=run.models, layer=args.layer, feature_size=args.feature_size, n_clusters=args.clusters,
                     seed=args.seed)
    run.write(tables, lambda t: figures(t, pairs, max_rows=args.figure_pairs), pairs=[list(p.image_ids) for p in pairs])
    for row in tables["summary"].query("metric in ['mean_matched_cosine', 'part_agreement']").itertuples():
        print(f"{row.model}: {row.metric} {row.value:.3f}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
