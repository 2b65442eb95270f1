"""The embedded default of the commands: ``--dataset synthetic`` with no SAM2 given runs on the miniature.

With no download and no dataset, ``python -m sansa_probe.<command> --dataset synthetic`` (and the
commands whose dataset defaults to ``synthetic``) use the shipped miniature SAM2 and the SANSA
adapters of ``--fold``, unless any of ``--backbone``, ``--sam2-version``, ``--image-size``,
``--sam2-override``, a ``--sam2-checkpoint`` other than the default ``auto``, or ``--checkpoint``
is given: then the command builds exactly what those options say.
"""

from __future__ import annotations

import argparse
import sys

from sansa_probe.miniature.weights import FOLDS, load_miniature

__all__ = ["wants_miniature", "miniature_from_args", "describe"]


def wants_miniature(args: argparse.Namespace) -> bool:
    """Whether ``args`` (the shared model and data options) leave the model to the embedded default."""
    return (
        getattr(args, "dataset", None) == "synthetic"
        and getattr(args, "sam2_checkpoint", "auto") == "auto"
        and getattr(args, "backbone", None) is None
        and getattr(args, "sam2_version", None) is None
        and getattr(args, "image_size", None) is None
        and not getattr(args, "sam2_overrides", None)
        and getattr(args, "checkpoint", None) in (None, "none")
    )


def describe(fold: int | None) -> str:
    adapters = f"SANSA adapters of fold {fold}" if fold is not None else "fresh adapters"
    return (f"model: the miniature SAM2 pretrained here (128 px, shipped in sansa_probe/miniature/weights) + {adapters} "
            "[embedded default for --dataset synthetic: no SAM2 checkpoint given]")


def miniature_from_args(args: argparse.Namespace, *, device: str | None = None, announce: bool = True):
    """The shipped miniature with the adapters of ``args.fold`` (fresh adapters for a fold outside 0..3)."""
    fold = getattr(args, "fold", 0)
    fold = fold if fold in FOLDS else None
    if announce:
        print(describe(fold), file=sys.stderr, flush=True)
    return load_miniature(fold=fold, device=device or getattr(args, "device", "cpu"))
