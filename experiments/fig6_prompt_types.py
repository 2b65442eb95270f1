"""Paper figure 6 (top): the reference annotated by a point, scribble, box or mask (1-shot, strict COCO-20i).

    python experiments/fig6_prompt_types.py                                    # offline: the shipped miniature
    python experiments/fig6_prompt_types.py --data-root /data --checkpoints ckpt   # the paper's setting

Prompts are generated from the ground truth as the paper does (1-20 points or scribbles, the
box of the mask); SANSA and frozen SAM2 beside the paper's SANSA and VRP-SAM.
"""

from __future__ import annotations

from sansa_probe.paper.script import run_experiment
from sansa_probe.paper.tables import fig6


def main(argv: list[str] | None = None) -> int:
    return run_experiment("fig6", fig6, argv)


if __name__ == "__main__":
    raise SystemExit(main())
