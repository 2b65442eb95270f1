"""``python -m sansa_probe.part_matching``: part-level clusters matched across image pairs (paper fig. 4c).

    python -m sansa_probe.part_matching --dataset pascal_part --fold 0 --data-root /data --checkpoint sansa.pt --out results/fig4c
    python -m sansa_probe.part_matching --dataset synthetic

Pairs: for each class of the split (seeded order), two of its images; in each, the largest
instance of that class (else the largest instance: Pascal-Part classes are ``object+PART`` while
its instances are objects). Each object's dense features (inside its mask at feature resolution,
coverage >= 0.5) are clustered with K-means and the clusters matched across the pair by the
Hungarian algorithm (:func:`~sansa_probe.probes.match_parts`), for frozen SAM2 and SANSA (the
same model, adapters off / on). Where instances carry part masks (``pascal_part``,
``paco_part``), each cluster is named by its majority part and ``part_agreement`` is the fraction
of matched pairs whose names agree; elsewhere it is NaN. A pair whose object covers fewer feature
cells than ``--clusters`` is skipped (counted in the summary): raise ``--feature-size``.

Writes into ``--out``: ``part_matching.{csv,json}`` (model, layer, pair, class_id, class_name, image_a, image_b,
cluster, part_a, part_b, metric, value), ``pixels.{csv,json}`` (cluster id per feature cell,
the figure's input), ``summary.{csv,json}``, ``skipped.{csv,json}`` (pairs left out and why),
``part_matching.{png,pdf}``, ``config.json`` (with the model's identity and the warnings).
"""

from __future__ import annotations

import argparse

from sansa_probe.commands.grammar import model_from_args, positive_int, say
from sansa_probe.commands.probe import ProbeRun, probe_parser, run_probe
from sansa_probe.pipelines.part_matching import compute, figures
from sansa_probe.probes.object_pairs import dataset_pairs

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.part_matching"


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
    tables = compute(run.encoders(), pairs, layer=args.layer, feature_size=args.feature_size, n_clusters=args.clusters,
                     seed=args.seed)
    images = {image_id: image for pair in pairs for image_id, image in zip(pair.image_ids, pair.images)}
    run.write(tables, lambda t, i: figures(t, i, max_rows=args.figure_pairs), images=images, pairs=[list(p.image_ids) for p in pairs])
    for row in tables["summary"].query("metric in ['mean_matched_cosine', 'part_agreement']").itertuples():
        say(f"{row.model}: {row.metric} {row.value:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
