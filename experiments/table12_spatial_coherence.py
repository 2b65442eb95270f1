"""Paper table 12 (appendix G): spatial coherence of feature matches as continuity breaks.

    python experiments/table12_spatial_coherence.py               # offline: the shipped miniature, synthetic pseudo-videos
    python experiments/table12_spatial_coherence.py \\
        --frames /data/DAVIS/JPEGImages/480p/bear --masks /data/DAVIS/Annotations/480p/bear \\
        --frames /data/DAVIS/JPEGImages/480p/car-shadow --masks /data/DAVIS/Annotations/480p/car-shadow \\
        --independent /data/TSS/pairs --checkpoint sansa_coco_fold0.pt
    python experiments/table12_spatial_coherence.py --frames bedroom/ --checkpoint sansa_coco_fold0.pt   # frames, no masks

Runs ``python -m sansa_probe.spatial_coherence`` (consecutive frames, flipped frames, independent
image pairs), frozen SAM2 and SANSA in one run; give ``--checkpoint``, the strict COCO-20i fold-0
adapters (without it SANSA is frozen SAM2). Without ``--frames`` it runs on synthetic
pseudo-videos with the shipped miniature (its SAM2 and fold-0 adapters). Options of the command override these. Results land in ``--out`` (default
``results/table12``): the command's files under ``spatial_coherence/`` and ``table12.csv``, the
paper's numbers beside ours.
"""

from __future__ import annotations

import sys

from sansa_probe import spatial_coherence
from sansa_probe.paper.probes import run_probe_script, table12_ours

PAPER: list[str] = []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    small = ["--videos", "2", "--frames-per-video", "3", "--video-size", "64"] if "--small" in argv else []
    return run_probe_script("table12", [(spatial_coherence, [*PAPER, *small], "spatial_coherence", "frames")], argv,
                            ours=lambda out, on: table12_ours(out / "spatial_coherence", ours_dataset=on and on.replace("synthetic", "synthetic videos")))


if __name__ == "__main__":
    raise SystemExit(main())
