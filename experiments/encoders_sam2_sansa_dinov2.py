"""SAM2, SANSA and DINOv2 side by side on the paper's probes (figs. 2, 4, 8, 9 left and table 12).

    python experiments/encoders_sam2_sansa_dinov2.py --small          # offline: the shipped miniature + DINOv2 with RANDOM weights
    python experiments/encoders_sam2_sansa_dinov2.py --data-root /data --checkpoint sansa_coco_fold0.pt   # COCO-20i fold 0, Meta's DINOv2
    python experiments/encoders_sam2_sansa_dinov2.py --encoders sam2,sansa,hub:facebookresearch/dinov2:dinov2_vitb14,timm:vit_base_patch16_clip_224.openai

The six probe commands with ``--encoders`` (default ``sam2,sansa,timm:vit_small_patch14_dinov2.lvd142m``),
each encoder on its own feature grid at its own default layer (``--layer ENCODER=LAYER`` picks
others). Offline, DINOv2's architecture runs with RANDOM weights (said in every output). Results
land in ``--out`` (default ``results/encoders``): each command's files under its name, and
``encoders.csv``: each probe's headline numbers per encoder (printed with one column per
encoder). The paper prints no numbers for DINOv2 on these probes. Body:
:func:`sansa_probe.paper.encoders.compare_encoders`.
"""

from __future__ import annotations

import sys

from sansa_probe.paper.encoders import compare_encoders


def main(argv: list[str] | None = None) -> int:
    return compare_encoders(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
