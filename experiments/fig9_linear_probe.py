"""Paper figure 9: linear probing (left) and few-shot segmentation (right) on COCO-20i fold 0.

    python experiments/fig9_linear_probe.py                       # offline: the shipped miniature
    python experiments/fig9_linear_probe.py --data-root /data --checkpoint sansa_coco_fold0.pt

Left: ``python -m sansa_probe.linear_probe`` (a 1x1 layer on frozen features, trained on training
images of fold 0's classes, mIoU on fold 0's val images), frozen SAM2 and SANSA in one run.
Right: ``python -m sansa_probe.evaluate`` on the same fold, 1-shot with mask prompts, with adapters
off and on. Give ``--checkpoint``, SANSA's strict fold-0 adapters (without it SANSA is frozen
SAM2; offline: the shipped miniature with its fold-0 adapters); the extra options given here go
to every call that takes them (``--episodes`` to evaluate, ``--images-per-class`` to the probe). Results land in ``--out`` (default ``results/fig9``):
``linear_probe/``, ``fss_sam2/``, ``fss_sansa/`` and ``fig9.csv`` (the paper's 65.8/69.2 and
28.9/57.5 beside ours).
"""

from __future__ import annotations

import sys

from sansa_probe import evaluate, linear_probe
from sansa_probe.paper.probes import fig9_ours, run_probe_script

FOLD = ["--dataset", "coco20i", "--fold", "0"]
FSS = [*FOLD, "--shots", "1", "--prompt", "mask"]


def main(argv: list[str] | None = None) -> int:
    steps = [(linear_probe, FOLD, "linear_probe", "probe"),
             (evaluate, [*FSS, "--adapters", "off"], "fss_sam2", "evaluate"),
             (evaluate, [*FSS, "--adapters", "on"], "fss_sansa", "evaluate")]  # fmt: skip
    return run_probe_script("fig9", steps, sys.argv[1:] if argv is None else argv,
                            ours=lambda out, on: fig9_ours(out / "linear_probe", out / "fss_sam2", out / "fss_sansa", ours_dataset=on or "coco20i"))


if __name__ == "__main__":
    raise SystemExit(main())
