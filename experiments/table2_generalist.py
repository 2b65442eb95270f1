"""Paper table 2: the generalist in-context setting, one model for every benchmark (incl. part segmentation).

    python experiments/table2_generalist.py                                            # offline: the shipped miniature
    python experiments/table2_generalist.py --data-root /data --checkpoint gen.pt --variant "generalist +LVIS"

One generalist model (``--checkpoint``, default ``<checkpoints>/generalist/model.pt``), 1/5-shot on
LVIS-92i, COCO-20i, FSS-1000 and 1-shot Pascal-Part and PACO-Part, every fold; ``--variant`` names
the paper row it stands beside (its training datasets). On the procedural benchmark a generalist
model (bottleneck 0.8, every class) is trained here.
"""

from __future__ import annotations

from sansa_probe.paper.script import experiment_parser, run_experiment
from sansa_probe.paper.tables import GENERALIST_VARIANTS, table2


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser("table2", __doc__)
    parser.add_argument("--checkpoint", default=None, help="the generalist adapters (.pt)")
    parser.add_argument("--variant", choices=GENERALIST_VARIANTS, default="generalist", help="the paper row this model stands beside")
    return run_experiment("table2", table2, argv, parser=parser, options=lambda a: {"variant": a.variant, "checkpoint": a.checkpoint})


if __name__ == "__main__":
    raise SystemExit(main())
