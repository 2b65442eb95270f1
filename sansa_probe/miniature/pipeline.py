"""The whole miniature from scratch: pretrain SAM2 in stages, train SANSA adapters per fold, measure, ship.

Stages (each resumable: a finished stage is skipped on a rerun with the same ``out``):

1. ``pretrain/<stage>/``: the pretraining stages of :mod:`~sansa_probe.miniature.stages` (image,
   memory, appearance, recolour), each from the previous one's weights; ``weights/sam2.pt`` is the
   last one's state in float16 (what ships, and what every later stage uses).
2. ``fold<f>/``: SANSA adapters on fold f's base classes of the procedural benchmark at 128 px
   (:class:`~sansa_probe.training.trainer.Trainer`, the paper's objective: one reference and J
   targets, BCE + Dice), SAM2 frozen; ``weights/fold<f>.pt``.
3. ``results.csv``: the tracker's numbers after every pretraining stage (``model`` =
   ``<stage>_stage``) and of the shipped float16 tracker (``pretrained``; ``random_init`` beside
   it): tracking with its own / another clip's prompt, on clips as they are and mirrored, one
   click own / another clip's; per fold, 1-shot mIoU on novel classes (frozen vs adapted, each
   also with references of another class), linear-probe mIoU and PCA-concentration area (frozen
   vs adapted), and what the stride-16 features hold of an object (held-out accuracy of a logistic
   probe on shape, texture, colour and class; frozen, adapted, the object's RGB, the majority label).
   The "other" rows say whether the model uses its prompt / reference at all.

``ship=True`` copies ``weights/`` and ``results.csv`` into the package
(:data:`~sansa_probe.miniature.weights.WEIGHTS_DIR`) with a fresh SHA-256 manifest.

``out`` follows the output rule (:mod:`sansa_probe.io.manifest`): it is opened before the first
stage and refused in one line when it holds files no miniature run wrote (or that changed since),
another command's run, or lies inside the package's weights folder; the run claims
:data:`OUTPUTS` in its ``sansa-manifest.json``, so a rerun (which resumes and skips what is done)
replaces only those. A folder an earlier version of the pipeline wrote (no manifest) is
recognised by its ``pretrain/<stage>/`` files and taken over.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sansa_probe.data.episodes import TrainingEpisodeSampler
from sansa_probe.data.registry import get_dataset
from sansa_probe.io.atomic import atomic_torch_save, atomic_write_json, atomic_write_text
from sansa_probe.io.manifest import OutputFolderError, RunFolder
from sansa_probe.miniature.architecture import BACKBONE, IMAGE_SIZE, SAM2_OVERRIDES, SAM2_VERSION, build_miniature_sam2, miniature_config
from sansa_probe.data.synthetic.source import DEFAULT_BENCHMARK
from sansa_probe.miniature.measure import attribute_rows, every_object_miou, few_shot_miou, probe_rows, tracker_rows, tracking_miou
from sansa_probe.miniature.stages import DEFAULT_STAGES, StageConfig, run_stages, tracker_model
from sansa_probe.miniature.weights import FOLDS, WEIGHTS_DIR, write_manifest
from sansa_probe.model.build import load_sansa
from sansa_probe.training.data import ClipDataset
from sansa_probe.training.trainer import TrainConfig, Trainer

__all__ = ["AdapterRecipe", "COMMAND", "MeasureConfig", "OUTPUTS", "open_output", "run", "ship_run"]

COMMAND = "sansa_probe.miniature"  # the command recorded in the output folder's manifest
# what a run writes into ``out`` (folders end in "/"): claimed before the first stage
OUTPUTS = ("pretrain/", "weights/", *(f"fold{f}/" for f in FOLDS), "results.csv", "run.json")


@dataclass(frozen=True)
class AdapterRecipe:
    """SANSA adapter training on one fold (paper eq. 7 with J targets), scaled to the miniature."""

    steps: int = 150
    batch: int = 4
    targets: int = 3
    lr: float = 2e-3
    loss: str = "bce_dice"
    seed: int = 0
    benchmark: str = DEFAULT_BENCHMARK


@dataclass(frozen=True)
class MeasureConfig:
    episodes: int = 100
    tracking_clips: int = 32
    probe_images_per_class: int = 12
    attribute_images_per_class: int = 10
    folds: tuple[int, ...] = FOLDS
    benchmark: str = DEFAULT_BENCHMARK


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
    record = out / f"fold{fold}" / "recipe.json"
    if target.is_file():
        if record.is_file() and json.loads(record.read_text()) != asdict(recipe):
            raise ValueError(f"{target} was trained with another adapter recipe ({record}); use another --out")
        return target
    torch.set_num_threads(1)
    model = load_model(weights, fold=None)
    config = TrainConfig(epochs=1, steps_per_epoch=recipe.steps, global_batch=recipe.batch, micro_batch=recipe.batch,
                         targets=recipe.targets, lr=recipe.lr, loss=recipe.loss, precision="fp32", seed=recipe.seed,
                         save_every=25, finetune="adapters")
    source = get_dataset("synthetic", fold=fold, split="train", image_size=IMAGE_SIZE, benchmark=recipe.benchmark)
    clips = TrainingEpisodeSampler(source, targets=recipe.targets, n_episodes=config.total_steps * config.global_batch, seed=recipe.seed)
    dataset = ClipDataset(clips, image_size=IMAGE_SIZE, prompt="mask", seed=recipe.seed)
    run_dir = out / f"fold{fold}"
    trainer = Trainer(model=model, dataset=dataset, config=config, out=run_dir, device=torch.device("cpu"), num_workers=loader_workers, progress=progress)
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        trainer.resume(last)
    trainer.fit()
    atomic_write_json(record, asdict(recipe))
    shutil.copyfile(run_dir / "adapters.pt", target)
    return target


def measure_tracking(weights: Path, config: MeasureConfig, *, seed: int = 0) -> list[dict[str, Any]]:
    """The gate's numbers of the shipped (float16) pretrained miniature, and tracking of a random-init one."""
    torch.set_num_threads(1)
    pretrained = load_model(weights, fold=None)
    with pretrained.adapters(False):
        rows = tracker_rows(pretrained, n_clips=config.tracking_clips, stage="pretrained")
    random_init = tracker_model(build_miniature_sam2(seed=seed + 1))
    value = tracking_miou(random_init, n_clips=config.tracking_clips)
    return rows + [{"fold": "all", "model": "random_init", "metric": "tracking_miou", "value": value}]


def stage_rows(config: StageConfig, state: dict[str, torch.Tensor], folder: Path, measure_config: MeasureConfig) -> list[dict[str, Any]]:
    """:func:`~sansa_probe.miniature.measure.tracker_rows` of a finished stage (cached in ``folder/measures.json``)."""
    path = folder / "measures.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("tracking_clips") == measure_config.tracking_clips:
            return saved["rows"]
    sam = build_miniature_sam2()
    sam.load_state_dict(state)
    rows = tracker_rows(tracker_model(sam), n_clips=measure_config.tracking_clips, stage=f"{config.name}_stage")
    atomic_write_json(path, {"tracking_clips": measure_config.tracking_clips, "rows": rows})
    return rows


def measure_fold(weights: Path, config: MeasureConfig, fold: int, *, progress: bool = False) -> list[dict[str, Any]]:
    """1-shot mIoU (frozen, adapted), linear probe and PCA concentration on fold ``fold``'s novel classes;
    the attribute probe on the objects of all its classes."""
    torch.set_num_threads(1)
    model = load_model(weights, fold=fold)
    rows = [{"fold": fold, "model": "every_object_oracle", "metric": "few_shot_1shot_miou",
             "value": every_object_miou(fold=fold, episodes=config.episodes, benchmark=config.benchmark)}]
    for name, adapters in (("frozen", False), ("adapted", True)):
        for references, metric in (("own", "few_shot_1shot_miou"), ("other_class", "few_shot_1shot_miou_other_class_reference")):
            value = few_shot_miou(model, fold=fold, adapters=adapters, episodes=config.episodes, references=references,
                                  benchmark=config.benchmark, progress=progress and references == "own")
            rows.append({"fold": fold, "model": name, "metric": metric, "value": value})
    rows += probe_rows(model, fold=fold, images_per_class=config.probe_images_per_class, benchmark=config.benchmark, progress=progress)
    return rows + attribute_rows(model, fold=fold, images_per_class=config.attribute_images_per_class, benchmark=config.benchmark)


def _parallel(jobs: int, calls: list[tuple[Any, tuple, dict]]) -> list[Any]:
    """Run independent deterministic calls, in ``jobs`` processes when ``jobs > 1`` (same results either way)."""
    if jobs <= 1:
        return [function(*args, **kwargs) for function, args, kwargs in calls]

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(function, *args, **kwargs) for function, args, kwargs in calls]
        return [f.result() for f in futures]


def measure(weights: Path, config: MeasureConfig, *, seed: int = 0, jobs: int = 1, progress: bool = True,
            before: list[dict[str, Any]] = ()) -> pd.DataFrame:
    """The results table (see the module docstring); ``before``: rows to put first (the stages')."""
    calls = [(measure_tracking, (weights, config), {"seed": seed})]
    calls += [(measure_fold, (weights, config, fold), {"progress": progress and jobs <= 1}) for fold in config.folds]
    rows = [*before, *(row for part in _parallel(jobs, calls) for row in part)]
    table = pd.DataFrame(rows)
    table["benchmark"] = [config.benchmark if str(fold) != "all" else "" for fold in table["fold"]]
    return table


def legacy_outputs(out: Path) -> dict[str, None] | None:
    """The entries of a folder an earlier version of the pipeline wrote (no manifest): recognised by
    a ``pretrain/<stage>/`` holding a stage's files; ``None`` for anything else."""
    stages = {s.name for s in DEFAULT_STAGES}
    pretrain = out / "pretrain"
    if not pretrain.is_dir() or not any(
        (folder / name).is_file() for folder in pretrain.iterdir() if folder.name in stages for name in ("last.pt", "sam2.pt", "log.jsonl")
    ):
        return None
    return {name: None for name in OUTPUTS if (out / name.rstrip("/")).exists()}


def open_output(out: str | Path) -> RunFolder:
    """Open ``out`` for a run (before any work; nothing is written): see the module docstring."""
    target, package = Path(out).expanduser().resolve(), WEIGHTS_DIR.resolve()
    if target == package or package in target.parents:
        raise OutputFolderError(
            f"--out {out} is inside the package's weights folder {WEIGHTS_DIR}, which only --ship writes (under its manifest); "
            "give an output folder outside it"
        )
    return RunFolder.open(out, command=COMMAND, legacy=legacy_outputs)


def run(out: str | Path, *, stages: tuple[StageConfig, ...] = DEFAULT_STAGES, recipe: AdapterRecipe = AdapterRecipe(),
        measure_config: MeasureConfig = MeasureConfig(), ship: bool = False, jobs: int = 1, threads: int = 2,
        progress: bool = True) -> pd.DataFrame:
    """Every stage into ``out`` (see the module docstring); returns the results table.

    Pretraining runs in this process with ``threads`` torch threads (its results are
    deterministic for a given thread count) and draws its clips in ``threads`` processes; the
    per-fold stages run in ``jobs`` processes of one thread each (results do not depend on it).
    """
    if recipe.benchmark != measure_config.benchmark:
        raise ValueError(f"benchmark: adapters trained on {recipe.benchmark!r} would be measured on {measure_config.benchmark!r}; use one version")
    folder = open_output(out)  # before any work: a folder holding the user's files is refused here
    folder.claim(*OUTPUTS)
    torch.set_num_threads(threads)
    out = folder.path
    weights = out / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    started = time.perf_counter()
    _say("pretraining the miniature SAM2 in stages: " + ", ".join(f"{s.name} ({s.steps} steps of {s.batch})" for s in stages))
    trained = run_stages(stages, out=out / "pretrain", processes=threads, progress=progress)
    if not (weights / "sam2.pt").is_file():
        sam = build_miniature_sam2()
        sam.load_state_dict(trained[-1][1])
        export_sam2(sam, weights / "sam2.pt")
    times["pretrain_s"] = time.perf_counter() - started
    _say("measuring every pretraining stage")
    staged = [row for config, state in trained for row in stage_rows(config, state, out / "pretrain" / config.name, measure_config)]
    times["stage_measures_s"] = time.perf_counter() - started - times["pretrain_s"]
    _say(f"training SANSA adapters on each fold's base classes ({recipe.steps} steps; {jobs} process(es))")
    parallel = jobs > 1
    _parallel(jobs, [(train_fold, (weights, out, fold, recipe), {"progress": progress and not parallel, "loader_workers": 0 if parallel else 1})
                     for fold in FOLDS])
    times["adapters_s"] = time.perf_counter() - started - sum(times.values())
    info = {
        "backbone": BACKBONE, "sam2_version": SAM2_VERSION, "image_size": IMAGE_SIZE, "sam2_overrides": list(SAM2_OVERRIDES),
        "adapter_config": miniature_config().to_dict(), "pretrain": {"stages": [s.to_dict() for s in stages]},
        "adapters": asdict(recipe), "measure": {**asdict(measure_config), "folds": list(measure_config.folds)},
        "torch": torch.__version__, "pretrain_threads": threads, "threads_per_process": 1,
    }
    previous = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    if (out / "results.csv").is_file() and all(previous.get(k) == v for k, v in info.items() if k != "torch"):
        _say(f"measured already: {out / 'results.csv'}")
        table = pd.read_csv(out / "results.csv", keep_default_na=False)
        info = previous
    else:
        _say("measuring")
        table = measure(weights, measure_config, seed=stages[0].seed, jobs=jobs, progress=progress, before=staged)
        _say(f"results:\n{table.to_string(index=False)}")
        times["measure_s"] = time.perf_counter() - started - sum(times.values())
        atomic_write_text(out / "results.csv", table.to_csv(index=False))
        info |= {"wall_time_s": times, "processes": jobs}
        atomic_write_json(out / "run.json", info)
    folder.finish()
    if ship:
        ship_run(out)
    return table


def ship_run(out: str | Path) -> Path:
    """Install a finished run's ``weights/`` and ``results.csv`` into the package with a fresh manifest
    (its ``run.json`` as the manifest's record); returns the package's weights folder."""
    out = Path(out)
    info = json.loads((out / "run.json").read_text())
    names = ["sam2.pt", *(f"fold{f}.pt" for f in FOLDS)]
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(out / "weights" / name, WEIGHTS_DIR / name)
    shutil.copyfile(out / "results.csv", WEIGHTS_DIR / "results.csv")
    write_manifest(WEIGHTS_DIR, names + ["results.csv"], **info)
    _say(f"shipped into {WEIGHTS_DIR}")
    return WEIGHTS_DIR
