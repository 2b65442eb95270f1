"""Ablation rows of the behaviour options (ours vs the public release's default) on one benchmark.

    python experiments/ablation_release_options.py                          # CPU smoke: random Hiera-T, 256 px, synthetic
    python experiments/ablation_release_options.py --backbone hiera_l --sam2-version 2 \\
        --sam2-checkpoint auto --checkpoint sansa_release.pth --dataset coco --data-root data --episodes 1000

Prints and writes (``--out``, CSV) one row per option: mIoU with the release's behaviour, with
ours, and the paired difference on the same episodes (see :mod:`sansa_probe.ablation`).
All logic lives in the package; this script only parses arguments.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from sansa_probe.ablation import ablate_behaviour
from sansa_probe.cli import add_model_arguments, model_from_args
from sansa_probe.utils.io import atomic_write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic", help="benchmark name (default: the procedural 'synthetic')")
    parser.add_argument("--data-root", default=None, help="dataset root (not needed for synthetic)")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=40, help="episodes per row (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the table as CSV here")
    add_model_arguments(parser)
    parser.set_defaults(backbone="hiera_t", image_size=256, sam2_checkpoint="none", device="cpu")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights / unsampled classes in a smoke run
        model = model_from_args(args)
        options = {"root": args.data_root} if args.data_root else {}
        table = ablate_behaviour(model, dataset=args.dataset, fold=args.fold, episodes=args.episodes, seed=args.seed,
                                 dataset_options=options, progress=sys.stderr.isatty())
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.out:
        atomic_write_text(args.out, table.to_csv(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
