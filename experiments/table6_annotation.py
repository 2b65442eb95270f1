"""Paper table 6 (appendix C): large-scale annotation -- mIoU on fold 0 and minutes for 10,000 targets.

    python experiments/table6_annotation.py                                     # offline: the shipped miniature
    python experiments/table6_annotation.py --data-root /data --checkpoints ckpt --device cuda   # the paper's setting

One reference per class of fold 0 (its first image and mask), then ``--targets`` other images of
the fold annotated for every class at once with ``sansa_probe.annotate``'s engine (each target
encoded once); mIoU of the annotations against the ground truth and the wall time scaled to the
paper's 10,000 targets (the paper's times are on an RTX 4090).
"""

from __future__ import annotations

from sansa_probe.paper.script import experiment_parser, run_experiment
from sansa_probe.paper.tables import table6


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser("table6", __doc__)
    parser.add_argument("--targets", type=int, default=None, help="target images per dataset (default 10,000; 48 synthetic, 6 with --small)")
    parser.add_argument("--batch-size", type=int, default=8, help="targets per image-encoder forward (default 8)")
    return run_experiment("table6", table6, argv, parser=parser, options=lambda a: {"targets": a.targets, "batch_size": a.batch_size})


if __name__ == "__main__":
    raise SystemExit(main())
