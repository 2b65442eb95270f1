"""Paper table 10 (appendix E.2): Pascal-5i per fold, and COCO->Pascal.

    python experiments/table10_pascal.py                                      # offline: the shipped miniature
    python experiments/table10_pascal.py --data-root /data --checkpoints ckpt     # the paper's setting

Pascal-5i with adapters trained on Pascal-5i (``strict/pascal5i/fold<f>.pt``); COCO->Pascal with
the COCO-20i adapters (``strict/coco20i/fold<f>.pt``) on Pascal-5i's own folds (the protocol's
class-overlap repurposing of the folds is not implemented: read those numbers with care).
"""

from __future__ import annotations

from sansa_probe.paper.script import run_experiment
from sansa_probe.paper.tables import table10


def main(argv: list[str] | None = None) -> int:
    return run_experiment("table10", table10, argv)


if __name__ == "__main__":
    raise SystemExit(main())
