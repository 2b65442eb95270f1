"""``python -m sansa_probe.miniature``: regenerate the miniature's weights and results table from scratch.

    python -m sansa_probe.miniature --out runs/miniature            # everything, into runs/miniature
    python -m sansa_probe.miniature --out runs/miniature --ship     # ... and install it into the package

Deterministic by seed (on one machine and thread count; the run uses one thread). Each stage
resumes where an interrupted run stopped. See :mod:`sansa_probe.miniature.pipeline`.
"""

from __future__ import annotations

import argparse
import sys

from sansa_probe.commands.grammar import command_parser, non_negative_int, positive_int, run_command
from sansa_probe.miniature.pipeline import AdapterRecipe, MeasureConfig, run
from sansa_probe.miniature.pretrain import PretrainConfig

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.miniature"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    group = parser.add_argument_group("pipeline")
    group.add_argument("--out", default="runs/miniature", help="working folder (resumable; default runs/miniature)")
    group.add_argument("--ship", action="store_true", help="copy the weights and results into the package, with a SHA-256 manifest")
    group.add_argument("--seed", type=non_negative_int, default=0, help="seed of pretraining, adapter training and measurements")
    group.add_argument("--pretrain-steps", type=positive_int, default=PretrainConfig.steps)
    group.add_argument("--adapter-steps", type=positive_int, default=AdapterRecipe.steps)
    group.add_argument("--episodes", type=positive_int, default=MeasureConfig.episodes, help="1-shot test episodes per fold and model")
    group.add_argument("--jobs", type=positive_int, default=4, help="processes for the independent per-fold stages (results do not depend on it)")
    group.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, _run, prog=PROG)


def _run(args: argparse.Namespace) -> int:
    table = run(
        args.out,
        pretrain_config=PretrainConfig(steps=args.pretrain_steps, seed=args.seed),
        recipe=AdapterRecipe(steps=args.adapter_steps, seed=args.seed),
        measure_config=MeasureConfig(episodes=args.episodes),
        ship=args.ship,
        jobs=args.jobs,
        progress=not args.no_progress,
    )
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
