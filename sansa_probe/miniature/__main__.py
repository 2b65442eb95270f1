"""``python -m sansa_probe.miniature``: regenerate the miniature's weights and results table from scratch.

    python -m sansa_probe.miniature --out runs/miniature            # everything, into runs/miniature
    python -m sansa_probe.miniature --out runs/miniature --ship     # ... and install it into the package

Deterministic by seed (on one machine and thread count: pretraining uses ``--threads``, the
per-fold stages one thread per process). Each stage resumes where an interrupted run stopped,
a finished one is skipped. ``--out`` holds only a miniature run's files (its ``sansa-manifest.json``
lists them): a folder with anything else is refused before the first stage. See
:mod:`sansa_probe.miniature.pipeline`.
"""

from __future__ import annotations

import argparse
import sys

from sansa_probe.commands.grammar import command_parser, non_negative_int, positive_int, run_command
from dataclasses import replace

from sansa_probe.data.synthetic.source import BENCHMARKS, DEFAULT_BENCHMARK
from sansa_probe.miniature.pipeline import AdapterRecipe, MeasureConfig, run
from sansa_probe.miniature.stages import DEFAULT_STAGES

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.miniature"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    group = parser.add_argument_group("pipeline")
    group.add_argument("--out", default="runs/miniature", help="working folder: new, empty, or an earlier miniature run's (resumed; default runs/miniature)")
    group.add_argument("--ship", action="store_true", help="copy the weights and results into the package, with a SHA-256 manifest")
    group.add_argument("--seed", type=non_negative_int, default=0, help="seed of pretraining, adapter training and measurements")
    group.add_argument("--stage-steps", action="append", default=[], metavar="STAGE=STEPS", type=_stage_steps,
                       help="steps of one pretraining stage (repeatable; stages: " + ", ".join(f"{s.name} {s.steps}" for s in DEFAULT_STAGES) + ")")
    group.add_argument("--adapter-steps", type=positive_int, default=AdapterRecipe.steps)
    group.add_argument("--benchmark", choices=sorted(BENCHMARKS), default=DEFAULT_BENCHMARK,
                       help=f"scene version of the procedural benchmark for adapters and measurements (default {DEFAULT_BENCHMARK})")
    group.add_argument("--episodes", type=positive_int, default=MeasureConfig.episodes, help="1-shot test episodes per fold and model")
    group.add_argument("--jobs", type=positive_int, default=4, help="processes for the independent per-fold stages (results do not depend on it)")
    group.add_argument("--threads", type=positive_int, default=2, help="torch threads of pretraining (its results depend on it; default 2)")
    group.add_argument("--no-progress", action="store_true")
    return parser


def _stage_steps(text: str) -> tuple[str, int]:
    names = [s.name for s in DEFAULT_STAGES]
    name, _, steps = text.partition("=")
    if name not in names or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected STAGE=STEPS with STAGE one of {', '.join(names)} and STEPS >= 1, got {text!r}")
    return name, int(steps)


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, _run, prog=PROG)


def _run(args: argparse.Namespace) -> int:
    steps = dict(args.stage_steps)
    stages = tuple(replace(s, seed=args.seed, steps=steps.get(s.name, s.steps)) for s in DEFAULT_STAGES)
    table = run(
        args.out,
        stages=stages,
        threads=args.threads,
        recipe=AdapterRecipe(steps=args.adapter_steps, seed=args.seed, benchmark=args.benchmark),
        measure_config=MeasureConfig(episodes=args.episodes, benchmark=args.benchmark),
        ship=args.ship,
        jobs=args.jobs,
        progress=not args.no_progress,
    )
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
