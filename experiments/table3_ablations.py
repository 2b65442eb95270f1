"""Paper table 3: ablations on COCO-20i -- fine-tuning strategies, adapter kind and bottleneck, adapter placement.

    python experiments/table3_ablations.py                                     # offline: the shipped miniature
    python experiments/table3_ablations.py --data-root /data --checkpoints ckpt    # the paper's setting
    python experiments/table3_ablations.py --variants lora houlsby mona            # some rows only

Each variant is trained with the paper's recipe (``python -m sansa_probe.train`` with
``--finetune``, ``--from-scratch``, ``--adapter``, ``--ratio`` or ``--stages``) on each fold's base
classes and evaluated 1-shot on its novel classes, beside frozen SAM2 and SANSA. Trained
variants are kept under ``<out>/train`` and reused (``table4_adaptation.py`` with the same
``--out`` shares them). The paper's placement mIoUs are not in its text: ours only.
"""

from __future__ import annotations

from sansa_probe.paper.script import experiment_parser, run_experiment
from sansa_probe.paper.tables import ADAPTER_VARIANTS, FINETUNE_VARIANTS, PLACEMENT_VARIANTS, table3


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser("table3", __doc__)
    names = [*FINETUNE_VARIANTS, *ADAPTER_VARIANTS, *PLACEMENT_VARIANTS]
    parser.add_argument("--variants", nargs="+", choices=names, default=None, help="variants to train (default all; a few with --small)")
    return run_experiment("table3", table3, argv, parser=parser, options=lambda a: {"variants": a.variants})


if __name__ == "__main__":
    raise SystemExit(main())
