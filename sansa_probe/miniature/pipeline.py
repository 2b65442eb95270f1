"""The whole miniature from scratch: pretrain SAM2, train SANSA adapters per fold, measure, ship.

Stages (each resumable: a finished stage is skipped on a rerun with the same ``out``):

1. ``pretrain/``: :func:`~sansa_probe.miniature.pretrain.pretrain`; ``weights/sam2.pt`` is its final
   state in float16 (what ships, and what every later stage uses).
2. ``fold<f>/``: SANSA adapters on fold f's base classes of the procedural benchmark at 128 px
   (:class:`~sansa_probe.training.trainer.Trainer`, the paper's objective: one reference and J
   targets, BCE + Dice), SAM2 frozen; ``weights/fold<f>.pt``.
3. ``results.csv``: per fold, tracking mIoU (pretrained vs random init, and the pretrained model
   given another clip's prompt), 1-shot mIoU on novel classes (frozen vs adapted, each also with
   references of another class), linear-probe mIoU and PCA-concentration area (frozen vs adapted).
   The two "other" rows say whether the model uses its prompt / reference at all.

``ship=True`` copies ``weights/`` and ``results.csv`` into the package
(:data:`~sansa_probe.miniature.weights.WEIGHTS_DIR`) with a fresh SHA-256 manifest.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sansa_probe.data.episodes import TrainingEpisodeSampler
from sansa_probe.data.registry import get_dataset
from sansa_probe.io.atomic import atomic_torch_save, atomic_write_json, atomic_write_text
from sansa_probe.miniature.architecture import BACKBONE, IMAGE_SIZE, SAM2_OVERRIDES, SAM2_VERSION, build_miniature_sam2, miniature_config
from sansa_probe.miniature.measure import few_shot_miou, probe_rows, tracking_miou
from sansa_probe.miniature.pretrain import PretrainConfig, pretrain, tracker_model
from sansa_probe.miniature.weights import FOLDS, WEIGHTS_DIR, write_manifest
from sansa_probe.model.build import load_sansa
from sansa_probe.training.data import ClipDataset
from sansa_probe.training.trainer import TrainConfig, Trainer

__all__ = ["AdapterRecipe", "MeasureConfig", "run"]


@dataclass(frozen=True)
class AdapterRecipe:
    """SANSA adapter training on one fold (paper eq. 7 with J targets), scaled to the miniature."""

    steps: int = 150
    batch: int = 4
    targets: int = 3
    lr: float = 2e-3
    loss: str = "bce_dice"
    seed: int = 0


@dataclass(frozen=True)
class MeasureConfig:
    episodes: int = 100
    tracking_clips: int = 32
    probe_images_per_class: int = 12
    folds: tuple[int, ...] = FOLDS


def _say(message: str) -> None:
    print(f"[miniature {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def export_sam2(sam: torch.nn.Module, path: Path) -> Path:
    """sam2's checkpoint layout ``{"model": state dict}`` in float16 (floating tensors only)."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in sam.state_dict().items()}
    return atomic_torch_save(path, {"model": state})


def load_model(weights: Path, *, fold: int | None, device: torch.device | str = "cpu"):
    adapters = None if fold is None else weights / f"fold{fold}.pt"
    return load_sansa(BACKBONE, sam2_version=SAM2_VERSION, image_size=IMAGE_SIZE, sam2_checkpoint=weights / "sam2.pt",
                      sam2_overrides=list(SAM2_OVERRIDES), adapters=adapters, device=device)


def train_fold(weights: Path, out: Path, fold: int, recipe: AdapterRecipe, *, progress: bool = True, loader_workers: int = 1) -> Path:
    """Train fold ``fold``'s adapters on the float16-exported SAM2; returns ``weights/fold<f>.pt``."""
    target = weights / f"fold{fold}.pt"
    if target.is_file():
        return target
    torch.set_num_threads(1)
    model = load_model(weights, fold=None)
    config = TrainConfig(epochs=1, steps_per_epoch=recipe.steps, global_batch=recipe.batch, micro_batch=recipe.batch,
                         targets=recipe.targets, lr=recipe.lr, loss=recipe.loss, precision="fp32", seed=recipe.seed,
                         save_every=25, finetune="adapters")
    source = get_dataset("synthetic", fold=fold, split="train", image_size=IMAGE_SIZE)
    clips = TrainingEpisodeSampler(source, targets=recipe.targets, n_episodes=config.total_steps * config.global_batch, seed=recipe.seed)
    dataset = ClipDataset(clips, image_size=IMAGE_SIZE, prompt="mask", seed=recipe.seed)
    run_dir = out / f"fold{fold}"
    trainer = Trainer(model=model, dataset=dataset, config=config, out=run_dir, device=torch.device("cpu"), num_workers=loader_workers, progress=progress)
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        trainer.resume(last)
    trainer.fit()
    shutil.copyfile(run_dir / "adapters.pt", target)
    return target


def measure_tracking(weights: Path, config: MeasureConfig, *, seed: int = 0) -> list[dict[str, Any]]:
    """Tracking mIoU of the pretrained miniature and of a random-init one on held-out clips."""
    torch.set_num_threads(1)
    pretrained = load_model(weights, fold=None)
    with pretrained.adapters(False):
        value = tracking_miou(pretrained, n_clips=config.tracking_clips)
        other = tracking_miou(pretrained, n_clips=config.tracking_clips, prompts="other_clip")
    random_init = tracker_model(build_miniature_sam2(seed=seed + 1))
    return [
        {"fold": "all", "model": "pretrained", "metric": "tracking_miou", "value": value},
        {"fold": "all", "model": "pretrained", "metric": "tracking_miou_other_clip_prompt", "value": other},
        {"fold": "all", "model": "random_init", "metric": "tracking_miou", "value": tracking_miou(random_init, n_clips=config.tracking_clips)},
    ]


def measure_fold(weights: Path, config: MeasureConfig, fold: int, *, progress: bool = False) -> list[dict[str, Any]]:
    """1-shot mIoU (frozen, adapted), linear probe and PCA concentration on fold ``fold``'s novel classes."""
    torch.set_num_threads(1)
    model = load_model(weights, fold=fold)
    rows = []
    for name, adapters in (("frozen", False), ("adapted", True)):
        value = few_shot_miou(model, fold=fold, adapters=adapters, episodes=config.episodes, progress=progress)
        rows.append({"fold": fold, "model": name, "metric": "few_shot_1shot_miou", "value": value})
        value = few_shot_miou(model, fold=fold, adapters=adapters, episodes=config.episodes, references="other_class")
        rows.append({"fold": fold, "model": name, "metric": "few_shot_1shot_miou_other_class_reference", "value": value})
    return rows + probe_rows(model, fold=fold, images_per_class=config.probe_images_per_class, progress=progress)


def _parallel(jobs: int, calls: list[tuple[Any, tuple, dict]]) -> list[Any]:
    """Run independent deterministic calls, in ``jobs`` processes when ``jobs > 1`` (same results either way)."""
    if jobs <= 1:
        return [function(*args, **kwargs) for function, args, kwargs in calls]

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(function, *args, **kwargs) for function, args, kwargs in calls]
        return [f.result() for f in futures]


def measure(weights: Path, config: MeasureConfig, *, seed: int = 0, jobs: int = 1, progress: bool = True) -> pd.DataFrame:
    """The results table (see the module docstring)."""
    calls = [(measure_tracking, (weights, config), {"seed": seed})]
    calls += [(measure_fold, (weights, config, fold), {"progress": progress and jobs <= 1}) for fold in config.folds]
    rows = [row for part in _parallel(jobs, calls) for row in part]
    return pd.DataFrame(rows)


def run(out: str | Path, *, pretrain_config: PretrainConfig = PretrainConfig(), recipe: AdapterRecipe = AdapterRecipe(),
        measure_config: MeasureConfig = MeasureConfig(), ship: bool = False, jobs: int = 1, progress: bool = True) -> pd.DataFrame:
    """Every stage into ``out`` (see the module docstring); returns the results table."""
    torch.set_num_threads(1)
    out = Path(out)
    weights = out / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    started = time.perf_counter()
    if not (weights / "sam2.pt").is_file():
        _say(f"pretraining the miniature SAM2 ({pretrain_config.steps} steps of {pretrain_config.batch} clips)")
        model = pretrain(pretrain_config, out=out / "pretrain", progress=progress)
        export_sam2(model.sam, weights / "sam2.pt")
    times["pretrain_s"] = time.perf_counter() - started
    _say(f"training SANSA adapters on each fold's base classes ({recipe.steps} steps; {jobs} process(es))")
    parallel = jobs > 1
    _parallel(jobs, [(train_fold, (weights, out, fold, recipe), {"progress": progress and not parallel, "loader_workers": 0 if parallel else 1})
                     for fold in FOLDS])
    times["adapters_s"] = time.perf_counter() - started - times["pretrain_s"]
    _say("measuring")
    table = measure(weights, measure_config, seed=pretrain_config.seed, jobs=jobs, progress=progress)
    _say(f"results:\n{table.to_string(index=False)}")
    times["measure_s"] = time.perf_counter() - started - times["pretrain_s"] - times["adapters_s"]
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    info = {
        "backbone": BACKBONE, "sam2_version": SAM2_VERSION, "image_size": IMAGE_SIZE, "sam2_overrides": list(SAM2_OVERRIDES),
        "adapter_config": miniature_config().to_dict(), "pretrain": asdict(pretrain_config), "adapters": asdict(recipe),
        "measure": {**asdict(measure_config), "folds": list(measure_config.folds)}, "wall_time_s": times,
        "torch": torch.__version__, "threads_per_process": 1, "processes": jobs,
    }
    atomic_write_json(out / "run.json", info)
    if ship:
        WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
        names = ["sam2.pt", *(f"fold{f}.pt" for f in FOLDS)]
        for name in names:
            shutil.copyfile(weights / name, WEIGHTS_DIR / name)
        shutil.copyfile(out / "results.csv", WEIGHTS_DIR / "results.csv")
        write_manifest(WEIGHTS_DIR, names + ["results.csv"], **info)
        _say(f"shipped into {WEIGHTS_DIR}")
    return table
