"""Paper figure 9: linear probing (left) and few-shot segmentation (right) on COCO-20i fold 0.

    python experiments/fig9_linear_probe.py --data-root /data
    python experiments/fig9_linear_probe.py --data-root /data --checkpoint sansa_coco_fold0.pt

Left: ``python -m sansa_probe.linear_probe`` (a 1x1 layer on frozen features, trained on training
images of fold 0's classes, mIoU on fold 0's val images), frozen SAM2 and SANSA in one run.
Right: ``python -m sansa_probe.evaluate`` on the same fold, 1-shot with mask prompts, with adapters
off and on. The checkpoint defaults to ``$SANSA_CHECKPOINTS/strict/coco20i/fold0.pt``; the extra
options given here go to every call. Results land in ``results/fig9/{linear_probe,fss_sam2,fss_sansa}``.
"""

from __future__ import annotations

import sys

from sansa_probe import evaluate, linear_probe
from sansa_probe.probes.cli import default_checkpoint

FOLD = ["--dataset", "coco20i", "--fold", "0"]
CHECKPOINT = ["--checkpoint", str(default_checkpoint("coco20i", 0))]


def main(argv: list[str] | None = None) -> int:
    extra = sys.argv[1:] if argv is None else argv
    codes = [
        linear_probe.main([*FOLD, "--out", "results/fig9/linear_probe", *extra]),
        evaluate.main([*FOLD, "--shots", "1", "--prompt", "mask", "--adapters", "off", "--out", "results/fig9/fss_sam2", *extra]),
        evaluate.main([*FOLD, "--shots", "1", "--prompt", "mask", *CHECKPOINT, "--adapters", "on", "--out", "results/fig9/fss_sansa", *extra]),
    ]
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
