"""Paper figure 2: SAM2 vs SANSA object features as colours (3 principal components -> RGB).

    python experiments/fig2_pca_rgb.py                            # offline: the shipped miniature
    python experiments/fig2_pca_rgb.py --data-root /data --checkpoint sansa_coco_fold0.pt

Runs ``python -m sansa_probe.pca_rgb`` on six COCO-20i fold-0 val images, one PCA fitted jointly
on the pixels of every object instance (the union of their masks), for frozen SAM2 and SANSA in
one run, with the strict checkpoint of fold 0 given by ``--checkpoint`` (without it SANSA's
adapters are fresh, i.e. it is frozen SAM2; offline: the shipped miniature with its fold-0 adapters). Our reading of the figure: instances of one class
should share a colour across images after adaptation. The paper prints no numbers for it.
Options of the command override these; results land in ``--out`` (default ``results/fig2``).
"""

from __future__ import annotations

import sys

from sansa_probe import pca_rgb
from sansa_probe.paper.probes import run_probe_script

PAPER = ["--dataset", "coco20i", "--fold", "0", "--split", "val", "--n-images", "6"]


def main(argv: list[str] | None = None) -> int:
    return run_probe_script("fig2", [(pca_rgb, PAPER, "pca_rgb", "probe")], sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
