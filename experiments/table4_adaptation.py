"""Paper table 4 (appendix B.3): adaptation strategies in-domain vs out-of-domain (COCO-20i, 1-shot).

    python experiments/table4_adaptation.py                                     # offline: the shipped miniature
    python experiments/table4_adaptation.py --data-root /data --checkpoints ckpt    # the paper's setting

Out-of-domain: trained on the other folds' classes, tested on the fold's (the strict setting).
In-domain: trained on every class (``--setting generalist --datasets <dataset> --ratio 0.3``),
tested on the same fold's classes. Decoder, QKV and backbone fine-tuning beside SANSA's adapters.
"""

from __future__ import annotations

from sansa_probe.paper.script import experiment_parser, run_experiment
from sansa_probe.paper.tables import table4


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser("table4", __doc__)
    parser.add_argument("--variants", nargs="+", choices=["decoder_ft", "qkv_ft", "backbone_ft", "sansa"], default=None,
                        help="strategies (default all; decoder_ft and sansa with --small)")
    return run_experiment("table4", table4, argv, parser=parser, options=lambda a: {"variants": a.variants})


if __name__ == "__main__":
    raise SystemExit(main())
