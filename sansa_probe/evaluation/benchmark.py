"""A benchmark run: the folds of one dataset, evaluated for one or more adapter states of one model.

    benchmark = Benchmark(dataset="synthetic", folds=(0,), episodes=100)
    results = evaluate_folds(model, benchmark, states=(False, True))   # frozen SAM2, then SANSA
    write_evaluation(out / "adapted", results[True], labels=benchmark.labels(adapters=True), summary=...)

Each state of the model (adapters off = frozen SAM2, on = SANSA) is evaluated on the same
episodes, seeds and prompts; a fold's adapter checkpoint is loaded once for all states. Under
torchrun each rank evaluates its shard and rank 0 merges them into the single-process result.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sansa_probe.data import get_spec
from sansa_probe.data.episodes import EpisodeSampler
from sansa_probe.evaluation.episodes import evaluate_episodes, merge_results
from sansa_probe.evaluation.metrics import unsampled_warnings
from sansa_probe.evaluation.tables import FoldResult, episodes_table, json_safe, results_table
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text
from sansa_probe.model.sansa import SansaModel
from sansa_probe.reporting.identity import package_versions
from sansa_probe.reporting.sanity import check_mask_areas
from sansa_probe.utils.distributed import DistInfo, all_gather_objects
from sansa_probe.utils.hashing import file_sha256

__all__ = ["Benchmark", "evaluate_folds", "evaluation_summary", "mask_warnings", "result_warnings", "write_evaluation", "EVALUATION_FILES"]

EVALUATION_FILES = ("results.csv", "episodes.csv", "summary.json")


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    """The episodes of an evaluation and how they are scored.

    ``dataset``/``folds``/``split``/``root``/``options``: the registered dataset's folds (options as
    :func:`sansa_probe.data.get_dataset` takes them); ``shots`` references per episode annotated
    with ``prompt``; ``episodes`` per fold (``None``: the dataset's literature default); ``seed`` of
    episodes, prompts and semantic negatives; ``threshold``, ``negative_clicks``,
    ``semantic_negatives``, ``protocol`` as :func:`~sansa_probe.evaluation.episodes.evaluate_episodes`
    takes them; ``num_workers`` DataLoader processes loading episodes.
    """

    dataset: str
    folds: tuple[int, ...]
    split: str = "test"
    shots: int = 1
    prompt: str = "mask"
    episodes: int | None = None
    seed: int = 0
    root: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    threshold: float = 0.0
    negative_clicks: int = 0
    semantic_negatives: int = 0
    num_workers: int = 2
    protocol: str = "release"

    def __post_init__(self) -> None:
        spec = get_spec(self.dataset)
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold {self.threshold}: expected a finite number")
        if not self.folds or any(not 0 <= fold < spec.folds for fold in self.folds):
            raise ValueError(f"folds {list(self.folds)} are out of range for {spec.name}: expected 0..{spec.folds - 1}")

    def sampler(self, fold: int) -> EpisodeSampler:
        """The test episodes of ``fold``."""
        try:
            return EpisodeSampler(self.dataset, fold=fold, split=self.split, shots=self.shots, n_episodes=self.episodes,
                                  seed=self.seed, root=self.root, **self.options)  # fmt: skip
        except TypeError as exc:  # a builder that does not take one of the options
            raise ValueError(f"--dataset-option: dataset {self.dataset!r} does not accept {sorted(self.options)} ({exc})") from None

    def labels(self, *, adapters: bool) -> dict[str, Any]:
        """The columns naming what was measured, in front of every row of the result tables."""
        return {"dataset": get_spec(self.dataset).name, "shots": self.shots, "prompt": self.prompt, "adapters": "on" if adapters else "off",
                "protocol": self.protocol, "negative_clicks": self.negative_clicks, "semantic_negatives": self.semantic_negatives}  # fmt: skip


def evaluate_folds(model: SansaModel, benchmark: Benchmark, *, checkpoints: Sequence[str | None], states: Sequence[bool] = (True,),
                   info: DistInfo | None = None, progress: bool = False,
                   first_sampler: EpisodeSampler | None = None) -> dict[bool, list[FoldResult]]:  # fmt: skip
    """Evaluate every fold of ``benchmark`` with the model's adapters in each of ``states``.

    ``checkpoints[i]`` is fold ``i``'s adapter file: the model arrives holding ``checkpoints[0]``
    (``None``: whatever adapters it has) and a later fold's differing file is loaded before its
    states run. ``first_sampler``: the first fold's episodes, when the caller built them already
    (to report data errors before building the model). Returns ``{state: [FoldResult per fold]}``
    on rank 0 (``info``), and empty lists on the other ranks.
    """
    info = info or DistInfo()
    results: dict[bool, list[FoldResult]] = {state: [] for state in states}
    loaded = checkpoints[0]
    for i, (fold, checkpoint) in enumerate(zip(benchmark.folds, checkpoints, strict=True)):
        if checkpoint != loaded and checkpoint is not None:
            model.load_adapters(checkpoint)
        loaded = checkpoint
        sampler = first_sampler if i == 0 and first_sampler is not None else benchmark.sampler(fold)  # one fold in memory at a time
        for state in states:
            with model.adapters(state):
                metric, rows = evaluate_episodes(
                    model, sampler, prompt=benchmark.prompt, seed=benchmark.seed, threshold=benchmark.threshold,
                    negative_clicks=benchmark.negative_clicks, semantic_negatives=benchmark.semantic_negatives,
                    rank=info.rank, world_size=info.world_size, num_workers=benchmark.num_workers, protocol=benchmark.protocol,
                    progress=info.is_main and progress, description=f"{get_spec(benchmark.dataset).name} fold {fold}",
                )  # fmt: skip
            parts = all_gather_objects((metric.state_dict(), rows))
            if info.is_main:
                metric, rows = merge_results(parts)
                names = {c: sampler.source.class_name(c) for c in metric.class_ids}
                results[state].append(FoldResult(fold=fold, metric=metric, rows=rows, class_names=names, checkpoint=checkpoint))
    return results


def mask_warnings(results: Sequence[FoldResult]) -> list[str]:
    """Sanity check in words: most predicted masks empty, or most covering (almost) the whole target image."""
    rows = pd.concat([r.rows for r in results], ignore_index=True)
    return check_mask_areas(rows["pred_area"], rows["image_area"], what="evaluation masks")


def result_warnings(results: Sequence[FoldResult], *, dataset: str = "evaluation") -> list[str]:
    """Every sanity check of an evaluation in words: :func:`mask_warnings`, and per fold the classes
    never sampled (counted as IoU 0 in mIoU: :func:`~sansa_probe.evaluation.metrics.unsampled_warnings`)."""
    messages = [w for r in results for w in unsampled_warnings(r.scores, what=f"{dataset} fold {r.fold}")]
    return [*mask_warnings(results), *messages]


def evaluation_summary(benchmark: Benchmark, results: Sequence[FoldResult], model: SansaModel, labels: Mapping[str, Any], *,
                       device: torch.device, world_size: int = 1, **run: Any) -> dict[str, Any]:  # fmt: skip
    """``summary.json`` of an evaluation: ``run`` first (command, argv, config, started, seconds...),
    then the labels, split, folds, seed, episodes, adapter checkpoints with their SHA-256, the
    model's config, package versions, device and the results per fold (and their mean)."""
    checkpoints: dict[str, dict[str, Any]] = {}  # resolved path -> {"path", "sha256", "folds"}
    for result in results:
        if result.checkpoint is not None:
            path = str(Path(result.checkpoint).resolve())
            if path not in checkpoints:
                checkpoints[path] = {"path": path, "sha256": file_sha256(path), "folds": []}
            checkpoints[path]["folds"].append(result.fold)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    folds = {
        str(r.fold): {"miou": r.scores["miou"], "fb_iou": r.scores["fb_iou"], "n_episodes": r.scores["n_episodes"],
                      "unsampled": list(r.scores["unsampled"])}
        for r in results
    }  # fmt: skip
    timing = {key: run.pop(key) for key in ("started", "seconds") if key in run}
    summary: dict[str, Any] = {
        **run,
        **labels,
        "split": benchmark.split,
        "folds": [r.fold for r in results],
        "seed": benchmark.seed,
        "episodes": {str(r.fold): int(r.scores["n_episodes"]) for r in results},
        "checkpoints": list(checkpoints.values()),
        "model": model.config.to_dict(),
        "versions": package_versions(),
        "device": {"type": device.type, "name": str(device), "description": device_name, "world_size": world_size},
        **timing,
        "results": {"folds": folds},
        "files": {"results": "results.csv", "episodes": "episodes.csv"},
    }
    if len(results) > 1:
        summary["results"]["mean"] = {
            "miou": float(np.mean([r.scores["miou"] for r in results])),
            "fb_iou": float(np.mean([r.scores["fb_iou"] for r in results])),
        }
    return summary


def write_evaluation(out: str | Path, results: Sequence[FoldResult], *, labels: Mapping[str, Any], summary: Mapping[str, Any]) -> pd.DataFrame:
    """``results.csv`` (:func:`~sansa_probe.evaluation.tables.results_table`), ``episodes.csv`` and
    ``summary.json`` into ``out``, atomically; returns the results table."""
    out = Path(out)
    table = results_table(results, **labels)
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    atomic_write_text(out / "episodes.csv", episodes_table(results, **labels).to_csv(index=False))
    atomic_write_json(out / "summary.json", json_safe(dict(summary)))
    return table
