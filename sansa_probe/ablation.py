"""Ablation of the behaviour options: each of ours against the release's default, one row each.

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

writes ``ablation.csv`` (one row per option) and ``summary.json`` (with the model's identity).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from sansa_probe.commands.grammar import (
    add_data_group,
    add_model_group,
    add_output_group,
    add_run_group,
    command_parser,
    dataset_options,
    model_from_args,
    non_negative_int,
    positive_int,
    run_command,
)
from sansa_probe.data.episodes import EpisodeSampler
from sansa_probe.evaluation.episodes import evaluate_episodes
from sansa_probe.reporting.identity import identity_line, model_identity
from sansa_probe.inference import PROTOCOLS
from sansa_probe.model.config import BEHAVIOURS
from sansa_probe.model.sansa import SansaModel
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text

PROG = "sansa_probe.ablation"
__all__ = ["AblationRow", "ABLATION_ROWS", "ablate_behaviour", "build_parser", "main"]


@dataclass(frozen=True)
class AblationRow:
    """One option at our value, evaluated with ``prompt`` references and ``shots`` references per episode."""

    option: str
    value: str
    prompt: str
    shots: int


ABLATION_ROWS: tuple[AblationRow, ...] = (
    AblationRow("reference_memory", "exact", "mask", 1),
    AblationRow("reference_memory", "exact", "mask", 3),
    AblationRow("temporal_slots", "shared", "mask", 3),
    AblationRow("point_prompts", "multimask", "point", 1),
    AblationRow("point_prompts", "multimask", "box", 1),
    AblationRow("scribble", "thinned", "scribble", 1),
    AblationRow("precision", "bfloat16", "mask", 1),
    AblationRow("protocol", "hsnet", "mask", 1),
)
DEFAULT_PROTOCOL = "release"


def ablate_behaviour(
    model: SansaModel,
    *,
    dataset: Any = "synthetic",
    fold: int = 0,
    episodes: int = 40,
    seed: int = 0,
    rows: Sequence[AblationRow] = ABLATION_ROWS,
    dataset_options: dict[str, Any] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """mIoU with the release's behaviour and with each option of ``rows``, on the same episodes.

    ``model``'s other behaviour options are set to the release's for the run (and restored after).
    Returns one row per option: ``option, value, prompt, shots, episodes, miou_release, miou_option,
    delta`` (percent points).
    """
    release = {name: choices[0] for name, choices in BEHAVIOURS.items()}
    baselines: dict[tuple[str, int], float] = {}
    samplers: dict[int, EpisodeSampler] = {}
    table = []
    for row in rows:
        if row.option == "protocol":
            if row.value not in PROTOCOLS:
                raise ValueError(f"ablation row {row}: unknown protocol (expected one of {', '.join(PROTOCOLS)})")
        elif row.option not in BEHAVIOURS or row.value not in BEHAVIOURS[row.option]:
            raise ValueError(f"ablation row {row}: unknown option or value (see BEHAVIOURS)")
        if row.shots not in samplers:  # one set of episodes per k, shared by every row with that k
            samplers[row.shots] = EpisodeSampler(dataset, fold=fold, shots=row.shots, n_episodes=episodes, seed=seed, **(dataset_options or {}))
        sampler = samplers[row.shots]

        def miou(options: dict[str, str], protocol: str = DEFAULT_PROTOCOL) -> float:
            what = f"{row.option}={protocol if row.option == 'protocol' else options[row.option]}"
            with model.behaviour(**options):
                metric, _ = evaluate_episodes(model, sampler, prompt=row.prompt, seed=seed, progress=progress, protocol=protocol,
                                              description=f"{what} {row.prompt} k={row.shots}")
            return float(metric.compute()["miou"])

        key = (row.prompt, row.shots)
        if key not in baselines:
            baselines[key] = miou(release)
        ours = miou(release, row.value) if row.option == "protocol" else miou({**release, row.option: row.value})
        table.append({
            "option": row.option, "value": row.value, "prompt": row.prompt, "shots": row.shots, "episodes": len(sampler),
            "miou_release": baselines[key], "miou_option": ours, "delta": ours - baselines[key],
        })  # fmt: skip
    return pd.DataFrame(table)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    add_data_group(parser)
    group = parser.add_argument_group("ablation")
    group.add_argument("--episodes", type=positive_int, default=40, help="episodes per row (default 40)")
    group.add_argument("--seed", type=non_negative_int, default=0, help="seed of episodes and prompts (default 0)")
    add_model_group(parser)
    add_output_group(parser, writes="ablation.csv and summary.json")
    add_run_group(parser)
    return parser


def _run(args: argparse.Namespace) -> int:
    model = model_from_args(args)
    identity = model_identity(model)
    print(identity_line(identity), file=sys.stderr)
    table = ablate_behaviour(model, dataset=args.dataset, fold=args.fold, episodes=args.episodes, seed=args.seed,
                             dataset_options={**({"root": args.data_root} if args.data_root else {}), **dataset_options(args)},
                             progress=not args.no_progress)  # fmt: skip
    table.insert(0, "model", identity_line(identity).removeprefix("model: "))
    out = Path(args.out)
    atomic_write_text(out / "ablation.csv", table.to_csv(index=False))
    atomic_write_json(out / "summary.json", {"command": PROG, "config": vars(args), "identity": identity,
                                             "warnings": identity["warnings"], "rows": table.to_dict(orient="records")})
    print(table.drop(columns="model").to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"wrote {out / 'ablation.csv'} and {out / 'summary.json'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, _run, prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
