"""Ablation of the behaviour options: each of ours against the release's default, on the same episodes.

Each option only matters for some episodes, so each row (:data:`ABLATION_ROWS`) evaluates it
where it acts, and the default (all options at the release's value, the ``release`` protocol) is
evaluated on the same episodes: every row has a paired ``delta`` (ours - release) in mIoU points.
The command is ``python -m sansa_probe.ablation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from sansa_probe.data.episodes import EpisodeSampler
from sansa_probe.evaluation.episodes import evaluate_episodes
from sansa_probe.inference import PROTOCOLS
from sansa_probe.model.config import BEHAVIOURS
from sansa_probe.model.sansa import SansaModel

__all__ = ["AblationRow", "ABLATION_ROWS", "ablate_behaviour"]


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
