"""Paper table 9: training sequence length J (J = 1 is the standard few-shot objective).

    python experiments/table9_sequence_length.py                              # offline: the shipped miniature
    python experiments/table9_sequence_length.py --data-root /data --lengths 1 2 3 4 5 7   # the paper's setting

Trains SANSA with each J (``python -m sansa_probe.train --targets J``) and evaluates it 1-shot on
COCO-20i and LVIS-92i, every fold; prints the paper's number beside ours.
"""

from __future__ import annotations

from sansa_probe.paper.script import experiment_parser, run_experiment
from sansa_probe.paper.tables import table9


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser("table9", __doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="values of J (default 1 2 3 4 5 7; 1 2 with --small)")
    return run_experiment("table9", table9, argv, parser=parser, options=lambda a: {"lengths": a.lengths})


if __name__ == "__main__":
    raise SystemExit(main())
