"""Command-line pieces shared by every ``python -m sansa_probe.<command>``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

import torch

__all__ = ["add_model_arguments", "model_from_args", "default_device", "run_main"]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_model_arguments(parser: argparse.ArgumentParser, *, adapters_help: str | None = None) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--backbone", choices=["hiera_t", "hiera_s", "hiera_b+", "hiera_l"], default=None,
                       help="SAM2 image encoder (default: hiera_l, or the adapter checkpoint's)")
    group.add_argument("--sam2-version", choices=["2.1", "2"], default=None,
                       help="SAM2 release (default: 2.1, or the adapter checkpoint's)")
    group.add_argument("--sam2-checkpoint", default="auto",
                       help="'auto' (download Meta's weights into the torch hub cache), 'none' (random weights, "
                            "for smoke tests), or a path to Meta's .pt file (default: auto)")
    group.add_argument("--image-size", type=int, default=None, help="SAM2 input size (default 1024)")
    group.add_argument("--sam2-override", dest="sam2_overrides", action="append", default=None, metavar="OVERRIDE",
                       help="hydra override on sam2's shipped YAML, as sam2's build_sam2(hydra_overrides_extra=...) "
                            "applies it (repeatable; e.g. ++model.memory_attention.num_layers=2; default: none, "
                            "or the adapter checkpoint's)")
    group.add_argument("--setting", choices=["strict", "generalist"], default="strict",
                       help="adapter bottleneck ratio 0.3 (strict) or 0.8 (generalist)")
    group.add_argument("--checkpoint", default=None,
                       help=adapters_help or "trained checkpoint: adapters saved by sansa-probe (or a training checkpoint), "
                            "or a checkpoint of the public SANSA release; omit for fresh adapters")
    group.add_argument("--adapters", choices=["on", "off"], default="on",
                       help="'off' runs frozen SAM2 through the same code path (the paper's baseline)")
    group.add_argument("--device", default=default_device(), help="torch device (default: cuda if available, else cpu)")


def model_from_args(args: argparse.Namespace, **overrides):
    """Build the model the shared arguments describe (``overrides`` win over ``args``)."""
    from sansa_probe.model import load_sansa

    checkpoint = None if str(args.sam2_checkpoint).lower() == "none" else args.sam2_checkpoint
    kwargs = dict(
        backbone=args.backbone,
        sam2_version=args.sam2_version,
        sam2_checkpoint=checkpoint,
        image_size=args.image_size,
        setting=args.setting,
        sam2_overrides=getattr(args, "sam2_overrides", None),
        adapters=None if args.checkpoint in (None, "none") else args.checkpoint,
        device=args.device,
    )
    kwargs.update(overrides)
    model = load_sansa(**kwargs)
    model.adapters_enabled = getattr(args, "adapters", "on") != "off"
    return model


def run_main(body: Callable[[], int], *, prog: str) -> int:
    """Run a command body; expected user errors become one clear line on stderr and exit code 2."""
    try:
        return body()
    except (ValueError, FileNotFoundError) as exc:
        logging.getLogger(prog).debug("error", exc_info=True)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
