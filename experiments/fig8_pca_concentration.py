"""Paper figure 8 (appendix B.1): semantic information across principal components, COCO-20i fold 0.

    python experiments/fig8_pca_concentration.py                  # offline: the shipped miniature
    python experiments/fig8_pca_concentration.py --data-root /data --checkpoint sansa_coco_fold0.pt --images-per-class 0

Runs ``python -m sansa_probe.pca`` with the paper's setting: COCO-20i fold 0 (its 20 classes are
unseen by the fold's strict SANSA), frozen SAM2 and SANSA in one run, the strict checkpoint of
fold 0 given by ``--checkpoint`` (without it SANSA is frozen SAM2), Hiera-L at 1024 px unless the
checkpoint says otherwise; offline: the shipped miniature with its fold-0 adapters. Any option of the command can be added (they override these).
Results land in ``--out`` (default ``results/fig8``): the command's files under ``pca/``, and
``fig8.csv``: the paper's one printed number (450 components keep 99% of the variance) beside
ours, with our area under each model's relative-accuracy curve.
"""

from __future__ import annotations

import sys

from sansa_probe import pca
from sansa_probe.paper.probes import fig8_ours, run_probe_script

PAPER = ["--dataset", "coco20i", "--fold", "0"]


def main(argv: list[str] | None = None) -> int:
    return run_probe_script("fig8", [(pca, PAPER, "pca", "probe")], sys.argv[1:] if argv is None else argv,
                            ours=lambda out, on: fig8_ours(out / "pca", ours_dataset=on or "coco20i"))


if __name__ == "__main__":
    raise SystemExit(main())
