"""Paper table 8 (appendix D.2): SAM2 encoder size (Tiny, Base, Large) vs parameters, img/s and mIoU.

    python experiments/table8_backbones.py                                     # offline: the shipped miniature
    python experiments/table8_backbones.py --data-root /data --checkpoints ckpt    # the paper's setting

Paper mode loads ``<checkpoints>/strict-hiera_t/coco20i/fold<f>.pt``, ``strict-hiera_b+/...`` and
``strict/...`` (Large). img/s: 1-shot episodes per second through the evaluation path (the paper
measures on an RTX 4090; ours on whatever ``--device`` is). Offline the shipped miniature (a
shrunk Hiera-T at 128 px) is the only backbone: one row, beside the paper's Tiny row, and the
output says so.
"""

from __future__ import annotations

from sansa_probe.paper.script import experiment_parser, run_experiment
from sansa_probe.paper.tables import BACKBONES, table8


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser("table8", __doc__)
    parser.add_argument("--sizes", nargs="+", choices=list(BACKBONES), default=None, help="encoder sizes (default all; Tiny with --small; offline only the miniature, as Tiny)")
    return run_experiment("table8", table8, argv, parser=parser, options=lambda a: {"sizes": a.sizes})


if __name__ == "__main__":
    raise SystemExit(main())
