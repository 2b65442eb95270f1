"""Paper figure 4: (a) 2-D PCA of object features, (b) PCA to RGB across images, (c) matched part clusters.

    python experiments/fig4_feature_space.py --data-root /data
    python experiments/fig4_feature_space.py --data-root /data --checkpoint sansa_coco_fold0.pt

Three commands, frozen SAM2 and SANSA in each: (a) ``python -m sansa_probe.projection`` and
(b) ``python -m sansa_probe.pca_rgb`` on COCO-20i fold 0 (val, classes unseen by the fold's strict
SANSA), (c) ``python -m sansa_probe.part_matching`` on Pascal-Part fold 0 (part annotations give
the part agreement). The extra options given here (``--data-root``, ``--checkpoint``, model options)
go to all three; the default checkpoint is each command's per-fold one
(``$SANSA_CHECKPOINTS/strict/<dataset>/fold0.pt``). Results land in ``results/fig4/{a,b,c}``.
"""

from __future__ import annotations

import sys

from sansa_probe import part_matching, pca_rgb, projection

PANELS = [
    (projection, ["--dataset", "coco20i", "--fold", "0", "--split", "val", "--out", "results/fig4/a"]),
    (pca_rgb, ["--dataset", "coco20i", "--fold", "0", "--split", "val", "--n-images", "3", "--out", "results/fig4/b"]),
    (part_matching, ["--dataset", "pascal_part", "--fold", "0", "--split", "val", "--max-pairs", "8", "--out", "results/fig4/c"]),
]


def main(argv: list[str] | None = None) -> int:
    extra = sys.argv[1:] if argv is None else argv
    return max(command.main([*panel, *extra]) for command, panel in PANELS)


if __name__ == "__main__":
    raise SystemExit(main())
