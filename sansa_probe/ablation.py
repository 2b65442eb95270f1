"""``python -m sansa_probe.ablation``: each behaviour option of ours against the release's default, one row each.

Each option only matters for some episodes, so each row evaluates it where it acts:

=====================  ===================  =========================================
option                 value (ours)         episodes
=====================  ===================  =========================================
reference_memory       exact                mask references, every k
temporal_slots         shared               mask references, k > 1
point_prompts          multimask            one-click references (``point``), and boxes
scribble               thinned              scribble references
precision              bfloat16             mask references (CUDA only; float32 on CPU)
protocol               hsnet                mask references (preprocessing and scoring)
=====================  ===================  =========================================

The default (all options at the release's value, the ``release`` protocol) is evaluated on the
same episodes, so every row has a paired ``delta`` (ours - release) in mIoU points.

    python -m sansa_probe.ablation --dataset synthetic --fold 0 --episodes 40
    python -m sansa_probe.ablation --dataset coco20i --backbone hiera_l --sam2-version 2 \
        --sam2-checkpoint auto --checkpoint sansa_release.pth --episodes 1000

writes ``ablation.csv`` (one row per option) and ``summary.json`` (with the model's identity);
the rows and their evaluation: :mod:`sansa_probe.evaluation.ablation`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sansa_probe.commands.grammar import (
    add_data_group,
    add_model_group,
    add_output_group,
    add_run_group,
    command_parser,
    data_inputs,
    dataset_options,
    episode_count,
    model_from_args,
    non_negative_int,
    positive_int,
    run_command,
    say,
)
from sansa_probe.evaluation.ablation import ablate_behaviour
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text
from sansa_probe.io.manifest import RunFolder
from sansa_probe.reporting.identity import identity_line, model_identity

PROG = "sansa_probe.ablation"
__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    add_data_group(parser)
    group = parser.add_argument_group("ablation")
    group.add_argument("--episodes", type=episode_count, default=40, help="episodes per row (default 40)")
    group.add_argument("--seed", type=non_negative_int, default=0, help="seed of episodes and prompts (default 0)")
    add_model_group(parser)
    add_output_group(parser, writes="ablation.csv and summary.json")
    add_run_group(parser)
    return parser


def _run(args: argparse.Namespace) -> int:
    folder = RunFolder.open(args.out, command=PROG, inputs=data_inputs(args))  # before the model: refuses what no ablation run wrote
    model = model_from_args(args)
    identity = model_identity(model)
    say(identity_line(identity))
    table = ablate_behaviour(model, dataset=args.dataset, fold=args.fold, episodes=args.episodes, seed=args.seed,
                             dataset_options={**({"root": args.data_root} if args.data_root else {}), **dataset_options(args)},
                             progress=not args.no_progress)  # fmt: skip
    table.insert(0, "model", identity_line(identity).removeprefix("model: "))
    out = Path(args.out)
    folder.claim("ablation.csv", "summary.json")
    atomic_write_text(out / "ablation.csv", table.to_csv(index=False))
    atomic_write_json(out / "summary.json", {"command": PROG, "config": vars(args), "identity": identity,
                                             "warnings": identity["warnings"], "rows": table.to_dict(orient="records")})
    folder.finish()
    print(table.drop(columns="model").to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    say(f"wrote {out / 'ablation.csv'} and {out / 'summary.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, _run, prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
