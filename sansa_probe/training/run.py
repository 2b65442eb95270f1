"""A training run in an output folder: the clip sources of a setting, the run's folder checks, the run itself.

The library side of ``python -m sansa_probe.train``::

    sources, weights = clip_sources(setting="strict", dataset="coco20i", fold=0, root="/data")
    folder = check_run_folder(out, resume=None, overwrite=False, settings=settings)
    trainer = train_clips(model, sources, weights, config, folder, prompt="mask", seed=0, settings=settings)

``settings`` are the options that change the data or the model (``<out>/run.json``): a resume must
match them (:mod:`sansa_probe.training.run_dir`). The folder's ``sansa-manifest.json`` names every
file a training run wrote there; nothing else is ever removed (:mod:`sansa_probe.io.manifest`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from sansa_probe.data.base import SegmentationSource
from sansa_probe.data.episodes import TrainingEpisodeSampler
from sansa_probe.data.registry import get_dataset
from sansa_probe.data.union import all_classes_source
from sansa_probe.model.sam2_weights import existing_checkpoint_file
from sansa_probe.model.sansa import SansaModel
from sansa_probe.training.data import ClipDataset, MixedClips
from sansa_probe.io.manifest import RunFolder
from sansa_probe.training.run_dir import RUN_CLAIMS, check_new_run, check_resume_settings, legacy_outputs, read_run_file, write_run_file
from sansa_probe.training.trainer import TrainConfig, Trainer
from sansa_probe.utils.distributed import DistInfo

__all__ = ["GENERALIST_DATASETS", "check_run_folder", "clip_sources", "clips_per_epoch", "train_clips"]

GENERALIST_DATASETS = ("coco20i", "ade20k")  # the generalist setting's mix when none is given


def clip_sources(*, setting: str = "strict", dataset: str = "synthetic", fold: int = 0, datasets: Sequence[str] | None = None,
                 weights: Sequence[float] | None = None, root: str | None = None,
                 options: Mapping[str, Any] | None = None) -> tuple[list[SegmentationSource], list[float]]:  # fmt: skip
    """The training sources and their sampling weights: ``strict``, the training split of
    ``dataset``'s ``fold``; ``generalist``, every class of each of ``datasets`` (default
    :data:`GENERALIST_DATASETS`) mixed by ``weights`` (default equal). ``options`` go to every dataset."""
    options = dict(options or {})
    if setting == "generalist":
        names = list(datasets or GENERALIST_DATASETS)
        return [all_classes_source(name, root=root, **options) for name in names], list(weights or [1.0] * len(names))
    if datasets or weights:
        raise ValueError("--datasets/--weights belong to --setting generalist; use --dataset for the strict setting")
    return [get_dataset(dataset, fold=fold, split="train", root=root, **options)], [1.0]


def clips_per_epoch(sources: Sequence[SegmentationSource], *, targets: int, seed: int = 0) -> int:
    """One clip per training image: the default length of an epoch."""
    return sum(len(TrainingEpisodeSampler(source, targets=targets, seed=seed)) for source in sources)


COMMAND = "sansa_probe.train"  # the command recorded in the output folder's manifest


def check_run_folder(out: str | Path, *, resume: str | None, overwrite: bool, settings: Mapping[str, Any],
                     inputs: Mapping[str, Sequence[str]] | None = None) -> RunFolder:  # fmt: skip
    """Refuse to mix runs, before any data is read or the model is built; returns the opened folder.

    A new run (``resume`` ``None``) needs a folder without another run unless ``overwrite``; a
    resume (``"auto"``: the folder's ``checkpoints/last.pt``, or a checkpoint file) needs that
    checkpoint and must match the folder's settings. Either way a folder holding files no training
    run wrote, or lying inside one of ``inputs`` (option -> folders), is refused."""
    out = Path(out)
    if resume is not None and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: --resume continues the run in --out, --overwrite replaces it")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected the folder of the run{' to resume' if resume is not None else ''}")
    if resume == "auto":
        last = out / "checkpoints" / "last.pt"
        if not last.is_file():
            state = "does not exist" if not out.exists() else ("holds no training run" if read_run_file(out) is None else "holds a run without it")
            raise FileNotFoundError(
                f"--resume: {last} does not exist, so there is nothing to resume (--out {out} {state}); check --out, "
                "or start a new run without --resume (--overwrite to replace a run there)"
            )
    elif resume is not None:
        existing_checkpoint_file(resume, name="--resume")  # a folder or a missing file: said now
    folder = RunFolder.open(out, command=COMMAND, overwrite=overwrite, inputs=inputs, legacy=legacy_outputs)
    if resume is None:
        check_new_run(folder, overwrite=overwrite)
        return folder
    recorded = read_run_file(out)
    if recorded is not None:
        check_resume_settings(recorded["settings"], settings, source=str(out))
    return folder


def train_clips(model: SansaModel, sources: Sequence[SegmentationSource], weights: Sequence[float], config: TrainConfig,
                out: str | Path | RunFolder, *, prompt: str = "mask", seed: int = 0, settings: Mapping[str, Any],
                identity: Mapping[str, Any] | None = None, command: str = "sansa_probe.train", info: DistInfo | None = None,
                device: torch.device | str = "cpu", resume: str | None = None, overwrite: bool = False, num_workers: int = 0,
                progress: bool = True, max_steps: int | None = None) -> Trainer:  # fmt: skip
    """Train ``model`` on clips of ``sources`` (mixed by ``weights``) for ``config``'s schedule into ``out``.

    ``out``: the folder :func:`check_run_folder` opened (or a path, checked here). Resumes from
    ``resume`` (``"auto"``: ``<out>/checkpoints/last.pt``), removes the folder's previous run when
    ``overwrite`` (only the files its manifest lists, once the run has started), records ``run.json``
    (``command``, ``settings``, the starting model's ``identity``) and fits until ``max_steps``.
    Raises :class:`~sansa_probe.training.trainer.TrainingInterrupted` on Ctrl-C (``last.pt`` saved).
    """
    info = info or DistInfo()
    folder = out if isinstance(out, RunFolder) else check_run_folder(out, resume=resume, overwrite=overwrite, settings=settings)
    folder.writer = info.is_main
    out = folder.path
    total_clips = config.total_steps * config.global_batch
    samplers = [TrainingEpisodeSampler(s, targets=config.targets, n_episodes=total_clips, seed=seed) for s in sources]
    clips = samplers[0] if len(samplers) == 1 else MixedClips(samplers, list(weights), seed=seed)
    dataset = ClipDataset(clips, image_size=model.image_size, prompt=prompt, seed=seed, protocol=config.protocol)
    trainer = Trainer(model=model, dataset=dataset, config=config, out=out, device=torch.device(device), dist=info,
                      num_workers=num_workers, progress=progress)  # fmt: skip
    if resume is not None:
        path = out / "checkpoints" / "last.pt" if resume == "auto" else Path(resume)
        trainer.resume(path)
        if info.is_main:
            print(f"resumed from {path} at step {trainer.step}", file=sys.stderr)
    if info.is_main:
        if overwrite:
            folder.remove_previous()  # only now: a run that fails to start loses nothing
        folder.claim(*RUN_CLAIMS)
        write_run_file(out, command=command, settings=settings, identity=identity)
    trainer.fit(until=max_steps)
    if info.is_main and trainer.step == config.total_steps:
        folder.finish()
    return trainer
