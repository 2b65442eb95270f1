"""``python -m sansa_probe.miniature``: regenerate the miniature's weights and results table from scratch.

    python -m sansa_probe.miniature --out runs/miniature            # everything, into runs/miniature
    python -m sansa_probe.miniature --out runs/miniature --ship     # ... and install it into the package

Deterministic by seed (on one machine and thread count; the run uses one thread). Each stage
resumes where an interrupted run stopped. See :mod:`sansa_probe.miniature.pipeline`.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from sansa_probe.miniature.pipeline import AdapterRecipe, MeasureConfig
    from sansa_probe.miniature.pretrain import PretrainConfig

    parser = argparse.ArgumentParser(prog="python -m sansa_probe.miniature", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/miniature", help="working folder (resumable)")
    parser.add_argument("--ship", action="store_true", help="copy the weights and results into the package, with a SHA-256 manifest")
    parser.add_argument("--seed", type=int, default=0, help="seed of pretraining, adapter training and measurements")
    parser.add_argument("--pretrain-steps", type=int, default=PretrainConfig.steps)
    parser.add_argument("--adapter-steps", type=int, default=AdapterRecipe.steps)
    parser.add_argument("--episodes", type=int, default=MeasureConfig.episodes, help="1-shot test episodes per fold and model")
    parser.add_argument("--jobs", type=int, default=4, help="processes for the independent per-fold stages (results do not depend on it)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    from sansa_probe.miniature.pipeline import AdapterRecipe, MeasureConfig, run
    from sansa_probe.miniature.pretrain import PretrainConfig

    args = build_parser().parse_args(argv)
    for name in ("pretrain_steps", "adapter_steps", "episodes", "jobs"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}: expected an int >= 1, got {getattr(args, name)}")
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
