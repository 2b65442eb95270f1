"""Paper table 1: strict few-shot segmentation, 1- and 5-shot, LVIS-92i, COCO-20i, FSS-1000.

    python experiments/table1_strict_fss.py                                    # offline: the shipped miniature
    python experiments/table1_strict_fss.py --data-root /data --checkpoints ckpt   # the paper's setting

SANSA (adapters of each fold, ``<checkpoints>/strict/<dataset>/fold<f>.pt``) and frozen SAM2 (the
same model, adapters off) on every fold's novel classes; the mean over folds beside the paper's.
"""

from __future__ import annotations

from sansa_probe.paper.script import experiment_parser, run_experiment
from sansa_probe.paper.tables import table1


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser("table1", __doc__)
    parser.add_argument("--shots", type=int, nargs="+", choices=[1, 5], default=[1, 5], help="1-shot, 5-shot or both (default both)")
    return run_experiment("table1", table1, argv, parser=parser, options=lambda a: {"shots": tuple(a.shots)})


if __name__ == "__main__":
    raise SystemExit(main())
