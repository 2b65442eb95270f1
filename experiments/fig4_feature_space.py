"""Paper figure 4: (a) 2-D PCA of object features, (b) PCA to RGB across images, (c) matched part clusters.

    python experiments/fig4_feature_space.py                      # offline: the shipped miniature
    python experiments/fig4_feature_space.py --data-root /data --checkpoint sansa_coco_fold0.pt

Three commands, frozen SAM2 and SANSA in each: (a) ``python -m sansa_probe.projection`` and
(b) ``python -m sansa_probe.pca_rgb`` on COCO-20i fold 0 (val, classes unseen by the fold's strict
SANSA), (c) ``python -m sansa_probe.part_matching`` on Pascal-Part fold 0 (part annotations give
the part agreement). The extra options given here (``--data-root``, ``--checkpoint``, model options)
go to all three that take them (without ``--checkpoint`` SANSA's adapters are fresh, i.e. it is frozen SAM2;
offline: the shipped miniature with its fold-0 adapters). The paper prints no numbers for this figure.
Results land in ``--out`` (default ``results/fig4``) under ``a/``, ``b/``, ``c/``.
"""

from __future__ import annotations

import sys

from sansa_probe import part_matching, pca_rgb, projection
from sansa_probe.paper.probes import run_probe_script

PANELS = [
    (projection, ["--dataset", "coco20i", "--fold", "0", "--split", "val"], "a", "probe"),
    (pca_rgb, ["--dataset", "coco20i", "--fold", "0", "--split", "val", "--n-images", "3"], "b", "probe"),
    (part_matching, ["--dataset", "pascal_part", "--fold", "0", "--split", "val", "--max-pairs", "8"], "c", "probe"),
]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    panels = PANELS
    if "--small" in argv:  # objects of a few feature cells: upsample the features, fewer clusters
        command, paper, folder, kind = PANELS[2]
        panels = [*PANELS[:2], (command, [*paper, "--max-pairs", "2", "--feature-size", "32", "--clusters", "3"], folder, kind)]
    return run_probe_script("fig4", panels, argv)


if __name__ == "__main__":
    raise SystemExit(main())
