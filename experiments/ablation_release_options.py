"""Ablation rows of the behaviour options (ours vs the public release's default) on one benchmark.

    python experiments/ablation_release_options.py --dataset synthetic --fold 0 --episodes 40
    python experiments/ablation_release_options.py --dataset coco20i --backbone hiera_l --sam2-version 2 \\
        --sam2-checkpoint auto --checkpoint sansa_release.pth --episodes 1000

The same as ``python -m sansa_probe.ablation`` (all logic lives in :mod:`sansa_probe.ablation`).
"""

from sansa_probe.ablation import main

if __name__ == "__main__":
    raise SystemExit(main())
