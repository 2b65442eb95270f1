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
=====================  ===================  =========================================

The default (all options at the release's value) is evaluated on the same episodes, so every
row has a paired ``delta`` (ours - release) in mIoU points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from sansa_probe.data.episodes import EpisodeSampler
from sansa_probe.evaluate import evaluate_episodes
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
)


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
    table = []
    for row in rows:
        if row.option not in BEHAVIOURS or row.value not in BEHAVIOURS[row.option]:
            raise ValueError(f"ablation row {row}: unknown option or value (see BEHAVIOURS)")
        sampler = EpisodeSampler(dataset, fold=fold, shots=row.shots, n_episodes=episodes, seed=seed, **(dataset_options or {}))

        def miou(options: dict[str, str]) -> float:
            with model.behaviour(**options):
                metric, _ = evaluate_episodes(model, sampler, prompt=row.prompt, seed=seed, progress=progress,
                                              description=f"{row.option}={options[row.option]} {row.prompt} k={row.shots}")
            return float(metric.compute()["miou"])

        key = (row.prompt, row.shots)
        if key not in baselines:
            baselines[key] = miou(release)
        ours = miou({**release, row.option: row.value})
        table.append({
            "option": row.option, "value": row.value, "prompt": row.prompt, "shots": row.shots, "episodes": len(sampler),
            "miou_release": baselines[key], "miou_option": ours, "delta": ours - baselines[key],
        })  # fmt: skip
    return pd.DataFrame(table)
