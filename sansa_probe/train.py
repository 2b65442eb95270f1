"""``python -m sansa_probe.train``: episodic SANSA training (paper section 3.3, appendix H).

    # strict setting: COCO-20i fold 0, trained on the other folds' classes (the paper's recipe)
    python -m sansa_probe.train --dataset coco20i --fold 0 --data-root /data --out runs/coco_f0

    # generalist setting: several datasets mixed with weights
    python -m sansa_probe.train --setting generalist --datasets coco20i ade20k lvis92i paco_part \\
        --weights 0.45 0.1 0.4 0.05 --data-root /data --out runs/generalist

    # the embedded default: the procedural benchmark, minutes on a laptop CPU
    python -m sansa_probe.train --dataset synthetic --backbone hiera_t --image-size 256 \\
        --sam2-checkpoint none --epochs 1 --episodes-per-epoch 64 --batch-size 4

    # many GPUs or machines: the same command under torchrun
    torchrun --nproc_per_node 8 -m sansa_probe.train --dataset coco20i --fold 0 ...

Paper recipe by default: one reference and J=3 targets per clip (eq. 7), BCE + Dice (1:1),
AdamW lr 1e-4, gradient clipping 1.0, global batch 32, 5 epochs (strict) or 20 (generalist),
bf16 on GPU and fp32 on CPU, only the adapters train. The public release's recipe differs
(focal + Dice, clipping 0.1, a single target): ``--loss focal_dice --clip 0.1 --targets 1``.
``--resume`` continues from ``<out>/checkpoints/last.pt`` exactly; it refuses settings that
differ from the run's (``<out>/run.json``) and names the first that does. A new run refuses an
``--out`` holding another run unless ``--overwrite``. A non-finite loss stops training with an
error before the step is applied (nothing NaN is saved); Ctrl-C stops at the end of the current
step, saves ``checkpoints/last.pt`` and exits with one line (``--resume`` then continues it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sansa_probe.commands.grammar import (
    UsageError,
    add_data_group,
    add_model_group,
    add_output_group,
    add_run_group,
    check_model_args,
    command_parser,
    data_inputs,
    dataset_name,
    dataset_options,
    episode_count,
    model_from_args,
    non_negative_float,
    non_negative_int,
    number_in,
    positive_float,
    positive_int,
    run_command,
    say,
)
from sansa_probe.data import list_datasets
from sansa_probe.inference.protocol import PROTOCOLS
from sansa_probe.model.sansa import SansaModel
from sansa_probe.reporting.identity import identity_line, model_identity, said_in_words
from sansa_probe.reporting.sanity import report
from sansa_probe.training.run import GENERALIST_DATASETS, check_run_folder, clip_sources, clips_per_epoch, train_clips
from sansa_probe.training.trainer import TrainConfig, TrainingInterrupted
from sansa_probe.utils.distributed import DistInfo, distributed

__all__ = ["main", "build_parser", "run_settings"]

PROG = "sansa_probe.train"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    add_data_group(parser)
    clips = parser.add_argument_group("clips")
    clips.add_argument("--datasets", type=dataset_name, nargs="+", choices=list_datasets(), default=None, metavar="NAME",
                       help="datasets mixed in the generalist setting (default: coco20i ade20k); --fold is the strict setting's")
    clips.add_argument("--weights", nargs="+", type=non_negative_float, default=None,
                       help="sampling weight per --datasets entry (default equal; the public release used "
                            "lvis92i 0.4, coco20i 0.45, ade20k 0.1, paco_part 0.05)")
    clips.add_argument("--prompt", default="mask", choices=["mask", "point", "box", "scribble", "multi"], help="reference prompt during training")
    clips.add_argument("--protocol", choices=list(PROTOCOLS), default="release",
                       help="how clip images and reference prompts enter the model: 'release' (default; the public SANSA release's "
                            "per-dataset square, then the model size) or 'hsnet' (straight to the model size); recorded in the checkpoint")
    clips.add_argument("--num-workers", type=non_negative_int, default=2, help="data-loader worker processes")
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--epochs", type=positive_int, default=None, help="default 5 (strict) or 20 (generalist)")
    recipe.add_argument("--episodes-per-epoch", type=episode_count, default=None, help="clips per epoch (default: one per training image)")
    recipe.add_argument("--batch-size", type=positive_int, default=32, help="global batch of clips per optimizer step (paper: 32)")
    recipe.add_argument("--micro-batch", type=positive_int, default=4, help="clips per forward on each process (gradient accumulation fills the rest)")
    recipe.add_argument("--targets", type=positive_int, default=3, help="J, unlabeled targets per clip (paper: 3; the release: 1)")
    recipe.add_argument("--lr", type=positive_float, default=1e-4)
    recipe.add_argument("--weight-decay", type=non_negative_float, default=0.0)
    recipe.add_argument("--clip", type=non_negative_float, default=1.0, help="gradient clipping max norm (paper 1.0, release 0.1; 0 disables)")
    recipe.add_argument("--loss", choices=["bce_dice", "focal_dice"], default="bce_dice")
    recipe.add_argument("--loss-weights", nargs=2, type=non_negative_float, default=None, metavar=("PIXEL", "DICE"),
                        help="weights of the pixel term and Dice (default 1 1 for bce_dice, 20 1 for focal_dice)")
    recipe.add_argument("--scheduler", choices=["constant", "cosine"], default="constant")
    recipe.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto", help="auto: bf16 on GPU, fp32 on CPU")
    recipe.add_argument("--seed", type=non_negative_int, default=0)
    ablation = parser.add_argument_group("ablations (paper Tables 3, 4, 9)")
    ablation.add_argument("--adapter", choices=["adaptformer", "houlsby", "lora", "mona"], default="adaptformer")
    ablation.add_argument("--ratio", type=number_in(0, 8, low_open=True), default=None, help="adapter bottleneck ratio (default by --setting: 0.3 / 0.8)")
    ablation.add_argument("--stages", type=int, choices=range(4), nargs="+", default=[2, 3], help="Hiera stages with adapters (default: the last two)")
    ablation.add_argument("--finetune", choices=["decoder", "qkv", "backbone", "full"], default=None,
                          help="fine-tuning baseline instead of adapters (no adapters are built)")
    ablation.add_argument("--from-scratch", action="store_true", help="train every SAM2 weight from random initialisation")
    saving = parser.add_argument_group("checkpoints")
    saving.add_argument("--resume", nargs="?", const="auto", default=None,
                        help="continue from <--out>/checkpoints/last.pt (give --out), or from the given checkpoint")
    saving.add_argument("--overwrite", action="store_true", help="replace the training run already in --out (default: refuse)")
    saving.add_argument("--save-every", type=positive_int, default=200, help="write checkpoints/last.pt every N optimizer steps (and at each epoch)")
    saving.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many optimizer steps of the schedule (smoke tests)")
    add_model_group(parser, checkpoint_help="training starts from these weights")
    add_output_group(parser, writes="checkpoints/, log.csv, adapters.pt and final.pt")
    add_run_group(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, _run, prog=PROG, needs_out=_needs_out)


def _needs_out(args: argparse.Namespace) -> bool:
    """A new output folder for a new run; ``--resume`` without a checkpoint path continues one, so it needs ``--out``."""
    if args.resume == "auto":
        raise UsageError("--resume: give --out, the folder of the run to continue")
    return True


def _path_setting(value: str | None) -> str | None:
    if value is None or str(value).lower() in ("none", "auto"):
        return None if value is None else str(value).lower()
    return str(Path(value).expanduser().resolve())


def run_settings(args: argparse.Namespace) -> dict:
    """Every setting that changes the data or the model, under its option name (``<out>/run.json``).

    Not included, so they may change on ``--resume``: ``--out``, ``--data-root`` (the same data
    elsewhere), ``--device``, ``--num-workers``, ``--save-every``, ``--max-steps``, progress;
    ``--epochs`` only matters to a cosine schedule.
    """
    generalist = args.setting == "generalist"
    settings = {
        "--setting": args.setting,
        "--dataset": None if generalist else args.dataset,
        "--fold": None if generalist else args.fold,
        "--datasets": (args.datasets or list(GENERALIST_DATASETS)) if generalist else None,
        "--weights": args.weights,
        "--dataset-option": sorted(f"{k}={v}" for k, v in dataset_options(args).items()),
        "--prompt": args.prompt,
        "--episodes-per-epoch": args.episodes_per_epoch,
        "--batch-size": args.batch_size,
        "--micro-batch": args.micro_batch,
        "--targets": args.targets,
        "--lr": args.lr,
        "--weight-decay": args.weight_decay,
        "--clip": args.clip,
        "--loss": args.loss,
        "--loss-weights": args.loss_weights,
        "--scheduler": args.scheduler,
        "--epochs": args.epochs if args.scheduler == "cosine" else None,
        "--precision": args.precision,
        "--seed": args.seed,
        "--adapter": args.adapter,
        "--ratio": args.ratio,
        "--stages": args.stages,
        "--finetune": args.finetune,
        "--from-scratch": args.from_scratch,
        "--backbone": args.backbone,
        "--sam2-version": args.sam2_version,
        "--sam2-checkpoint": _path_setting(args.sam2_checkpoint),
        "--image-size": args.image_size,
        "--checkpoint": _path_setting(args.checkpoint),
    }
    return settings


def _run(args: argparse.Namespace) -> int:
    if args.adapters == "off":
        raise ValueError("--adapters off: training updates adapters or SAM2 weights; use --finetune for baselines")
    check_model_args(args)
    settings = run_settings(args)
    folder = check_run_folder(args.out, resume=args.resume, overwrite=args.overwrite, settings=settings, inputs=data_inputs(args))
    sources, weights = clip_sources(setting=args.setting, dataset=args.dataset, fold=args.fold, datasets=args.datasets,
                                    weights=args.weights, root=args.data_root, options=dataset_options(args))  # fmt: skip
    per_epoch = clips_per_epoch(sources, targets=args.targets, seed=args.seed)  # also checks every source can give clips
    per_epoch = args.episodes_per_epoch or per_epoch
    with distributed(args.device) as (info, device):
        config = _train_config(args, per_epoch, settings)
        config.accumulation(info.world_size)  # fail early on an indivisible batch
        model, identity = _model(args, config.finetune, device, info)
        try:
            trainer = train_clips(model, sources, weights, config, folder, prompt=args.prompt, seed=args.seed, settings=settings,
                                  identity=identity, command=PROG, info=info, device=device, resume=args.resume,
                                  overwrite=args.overwrite, num_workers=args.num_workers, progress=not args.no_progress,
                                  max_steps=args.max_steps)  # fmt: skip
        except TrainingInterrupted:
            if not info.is_main:
                return 130  # rank 0 says it, once
            raise
        if info.is_main:
            summary = {"step": trainer.step, "total_steps": config.total_steps, "out": str(args.out), "finetune": config.finetune,
                       "trainable_parameters": sum(p.numel() for p in trainer.parameters)}
            say(json.dumps(summary))
    return 0


def _train_config(args: argparse.Namespace, per_epoch: int, settings: dict) -> TrainConfig:
    """The recipe the options describe (epochs by setting: 5 strict, 20 generalist)."""
    return TrainConfig(
        epochs=args.epochs or (20 if args.setting == "generalist" else 5),
        steps_per_epoch=max(1, -(-per_epoch // args.batch_size)),
        global_batch=args.batch_size,
        micro_batch=args.micro_batch,
        targets=args.targets,
        lr=args.lr,
        weight_decay=args.weight_decay,
        clip=args.clip,
        loss=args.loss,
        loss_weights=tuple(args.loss_weights) if args.loss_weights else None,
        scheduler=args.scheduler,
        precision=args.precision,
        save_every=args.save_every,
        seed=args.seed,
        finetune="full" if args.from_scratch else (args.finetune or "adapters"),
        protocol=args.protocol,
        extra={"run": settings},
    )


def _model(args: argparse.Namespace, finetune: str, device: torch.device, info: DistInfo) -> tuple[SansaModel, dict]:
    """The model training starts from, and its identity (printed by rank 0)."""
    overrides = {"device": device, "adapter": args.adapter, "stages": tuple(args.stages) if finetune == "adapters" else ()}
    if args.ratio is not None:
        overrides["ratio"] = args.ratio
    if args.from_scratch:
        overrides["sam2_checkpoint"] = None
    torch.manual_seed(args.seed)
    with said_in_words():
        model = model_from_args(args, **overrides)
    precision = args.precision if args.precision != "auto" else ("bf16" if torch.device(device).type == "cuda" else "fp32")
    identity = model_identity(model, precision=precision, protocol=args.protocol)
    if args.from_scratch:  # random SAM2 weights are the recipe here, not a mistake
        identity["warnings"] = [w for w in identity["warnings"] if "RANDOM" not in w]
    identity["warnings"] = [w for w in identity["warnings"] if "FRESH" not in w]  # training starts from fresh adapters
    if info.is_main:
        say(identity_line(identity).replace("model: ", "model (before training): ", 1))
        report(identity["warnings"])
    return model, identity


if __name__ == "__main__":
    raise SystemExit(main())
