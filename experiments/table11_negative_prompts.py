"""Paper table 11 (appendix F): negative prompts on COCO-20i, 1-shot.

    python experiments/table11_negative_prompts.py                                    # offline: the shipped miniature
    python experiments/table11_negative_prompts.py --data-root /data --checkpoints ckpt   # the paper's setting

Geometric negatives: 1, 3, 5 simulated negative clicks on the target (largest false-positive
region, most interior pixel). Semantic negatives, training-free: one image of another class of
the fold written to memory with an empty mask. The training-based variant is not implemented.
"""

from __future__ import annotations

from sansa_probe.paper.script import run_experiment
from sansa_probe.paper.tables import table11


def main(argv: list[str] | None = None) -> int:
    return run_experiment("table11", table11, argv)


if __name__ == "__main__":
    raise SystemExit(main())
