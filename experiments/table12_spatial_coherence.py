"""Paper table 12 (appendix G): spatial coherence of feature matches as continuity breaks.

    python experiments/table12_spatial_coherence.py \\
        --frames /data/DAVIS/JPEGImages/480p/bear --masks /data/DAVIS/Annotations/480p/bear \\
        --frames /data/DAVIS/JPEGImages/480p/car-shadow --masks /data/DAVIS/Annotations/480p/car-shadow \\
        --independent /data/TSS/pairs
    python experiments/table12_spatial_coherence.py --frames ../shared/data/bedroom   # 30 real frames, no masks

Runs ``python -m sansa_probe.spatial_coherence`` (consecutive frames, flipped frames, independent
image pairs), frozen SAM2 and SANSA in one run, with the strict COCO-20i fold-0 checkpoint by
default (``$SANSA_CHECKPOINTS/strict/coco20i/fold0.pt``). Without ``--frames`` it runs on synthetic
pseudo-videos. Options of the command override these; results (``table12.csv`` in the paper's
layout) land in ``results/table12``.
"""

from __future__ import annotations

import sys

from sansa_probe import spatial_coherence

PAPER = ["--checkpoint-dataset", "coco20i", "--checkpoint-fold", "0", "--out", "results/table12"]


def main(argv: list[str] | None = None) -> int:
    return spatial_coherence.main([*PAPER, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
