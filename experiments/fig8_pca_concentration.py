"""Paper figure 8 (appendix B.1): semantic information across principal components, COCO-20i fold 0.

    python experiments/fig8_pca_concentration.py --data-root /data
    python experiments/fig8_pca_concentration.py --data-root /data --checkpoint sansa_coco_fold0.pt --images-per-class 0

Runs ``python -m sansa_probe.pca`` with the paper's setting: COCO-20i fold 0 (its 20 classes are
unseen by the fold's strict SANSA), frozen SAM2 and SANSA in one run, the strict checkpoint of
fold 0 (default ``$SANSA_CHECKPOINTS/strict/coco20i/fold0.pt``), Hiera-L at 1024 px unless the
checkpoint says otherwise. Any option of the command can be added (they override these);
results land in ``results/fig8`` (``fig8.png``/``.pdf``, ``pca_concentration.csv``, ...).
"""

from __future__ import annotations

import sys

from sansa_probe import pca

PAPER = ["--dataset", "coco20i", "--fold", "0", "--out", "results/fig8"]


def main(argv: list[str] | None = None) -> int:
    return pca.main([*PAPER, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
