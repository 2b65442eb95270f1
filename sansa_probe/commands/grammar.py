"""The one command grammar shared by every ``python -m sansa_probe.<command>``.

Every command's parser is :func:`command_parser` plus the shared groups, each added by one
function so that an option added there reaches every command:

* ``model`` (:func:`add_model_group`): which SAM2 (``--model miniature|sam2``, ``--backbone``,
  ``--sam2-checkpoint``...) and which adapters (``--checkpoint PATH|none``); its help says what
  the default runs (the miniature for ``--dataset synthetic``);
* ``data`` (:func:`add_data_group`, commands that read a registered dataset): ``--dataset``,
  ``--fold``, ``--data-root``, repeatable ``--dataset-option KEY=VALUE``;
* ``output`` (:func:`add_output_group`): ``--out``, by default a new ``runs/<command>-<date>-<time>``
  folder (:func:`new_run_folder`);
* ``run`` (:func:`add_run_group`): ``--device``, ``--no-progress``, ``--max-image-pixels`` (the one
  size limit of every image reader, checked from the file's header before decoding).

The command's own options live in its own groups. ``main`` is :func:`run_command`, which parses
(a bad option is one line and exit code 2, before any model is built), resolves ``--out`` and
runs the body under :func:`run_main`, the single wrapper that turns expected errors into one line.

Results go to stdout (:func:`say`: the output folder, the model, scores and verdicts, the files
written), progress bars and warnings to stderr, so ``command > log.txt`` keeps what it found.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import math
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from sansa_probe.data import list_datasets
from sansa_probe.data.episodes import MAX_EPISODES
from sansa_probe.io.images import DEFAULT_MAX_IMAGE_PIXELS, image_pixel_limit
from sansa_probe.miniature.architecture import BACKBONE as MINIATURE_BACKBONE
from sansa_probe.miniature.architecture import IMAGE_SIZE as MINIATURE_IMAGE_SIZE
from sansa_probe.miniature.architecture import SAM2_OVERRIDES as MINIATURE_OVERRIDES
from sansa_probe.miniature.architecture import SAM2_VERSION as MINIATURE_SAM2_VERSION
from sansa_probe.miniature.default import miniature_from_args, wants_miniature
from sansa_probe.miniature.weights import FOLDS as MINIATURE_FOLDS
from sansa_probe.miniature.weights import verified_path
from sansa_probe.model import load_sansa
from sansa_probe.model.build import NO_CHECKPOINT  # the one spelling of "no checkpoint", for --checkpoint and --sam2-checkpoint
from sansa_probe.model.config import BEHAVIOURS

__all__ = [
    "BACKBONES",
    "MODEL_CHOICES",
    "NO_CHECKPOINT",
    "UsageError",
    "add_data_group",
    "add_model_group",
    "add_output_group",
    "add_overwrite_option",
    "add_run_group",
    "check_device",
    "check_model_args",
    "checkpoint_arg",
    "command_parser",
    "data_inputs",
    "dataset_name",
    "dataset_option",
    "dataset_options",
    "default_device",
    "episode_count",
    "finite_float",
    "non_negative_float",
    "number_in",
    "positive_float",
    "model_choice",
    "model_from_args",
    "model_record",
    "new_run_folder",
    "non_negative_int",
    "parse_behaviour",
    "positive_int",
    "run_command",
    "run_main",
    "say",
]

BACKBONES = ("hiera_t", "hiera_s", "hiera_b+", "hiera_l")
RUNS = Path("runs")
MODEL_CHOICES = ("miniature", "sam2")
_SAM2_OPTIONS = ("backbone", "sam2_version", "image_size", "sam2_overrides")  # options that describe a SAM2 build


def say(*lines: str) -> None:
    """Print a result line (output folder, model, scores, verdict, files written) on stdout, flushed;
    progress and warnings go to stderr."""
    for line in lines:
        print(line, flush=True)


class UsageError(ValueError):
    """A bad command line (unknown option, value outside its choices, ...)."""


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors raise :class:`UsageError` (one line from :func:`run_main`)
    instead of printing the usage and exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def command_parser(prog: str, description: str | None, *, invoked_as: str | None = None) -> CommandParser:
    """The parser of ``python -m <prog>`` (``prog`` is the module, e.g. ``sansa_probe.pca``), or of
    what ``invoked_as`` says (``python experiments/table1_strict_fss.py``)."""
    return CommandParser(prog=invoked_as or f"python -m {prog}", description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


# ============================================================================ value types


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def episode_count(text: str) -> int:
    """An episode count: an integer from 1 to :data:`~sansa_probe.data.episodes.MAX_EPISODES`."""
    value = positive_int(text)
    if value > MAX_EPISODES:
        raise argparse.ArgumentTypeError(f"{text}: expected at most {MAX_EPISODES:,} episodes (the paper's benchmarks use 1,000 per fold)")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A finite number (NaN and infinities refused while parsing)."""
    return _float(text)


def number_in(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
    """The type function of a finite number in the interval ``low .. high`` (open or closed ends),
    e.g. ``number_in(0, 1, low_open=True)`` for a fraction in ``(0, 1]``."""
    shown = f"{'(' if low_open else '['}{low:g}, {'inf)' if high == math.inf else f'{high:g}' + (')' if high_open else ']')}"

    def parse(text: str) -> float:
        value = _float(text)
        if value < low or value > high or (low_open and value == low) or (high_open and value == high):
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text!r}")
        return value

    parse.__name__ = f"number in {shown}"
    return parse


positive_float = number_in(0, low_open=True)
non_negative_float = number_in(0)


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def checkpoint_arg(text: str) -> str | None:
    """``none`` -> ``None``; otherwise an existing file (a ``{fold}`` template is checked per
    fold by the command that accepts one)."""
    if text == NO_CHECKPOINT:
        return None
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a checkpoint file or {NO_CHECKPOINT!r}, got an empty string")
    if "{fold}" not in text and Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; expected a checkpoint file (.pt)")
    if "{fold}" not in text and not Path(text).is_file():
        hint = f" ({NO_CHECKPOINT!r}, lower case, means no checkpoint)" if text.lower() in ("none", "null", "no") else ""
        raise argparse.ArgumentTypeError(f"file {text} does not exist{hint}")
    return text


def _sam2_checkpoint_arg(text: str) -> str | None:
    return "auto" if text == "auto" else checkpoint_arg(text)


def dataset_name(text: str) -> str:
    """Registered dataset names are lower case with underscores (``pascal-part`` -> ``pascal_part``)."""
    return text.strip().lower().replace("-", "_")


def dataset_option(text: str) -> tuple[str, Any]:
    """``"images_per_class=4"`` -> ``("images_per_class", 4)``: the value is read as JSON
    (numbers, ``true``/``false``, lists), else kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. images_per_class=20")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value.strip()


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--dataset-option`` pairs as keyword arguments of :func:`sansa_probe.data.get_dataset`."""
    return dict(getattr(args, "dataset_option", None) or [])


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# ============================================================================ the shared groups


def add_model_group(parser: argparse.ArgumentParser, *, compare: bool = False, checkpoint_help: str = "") -> argparse._ArgumentGroup:
    """``model``: the SAM2 build and the adapters. ``compare``: the command runs frozen SAM2 and
    SANSA (adapters off, then on, on one model object) unless ``--adapters on|off`` keeps one.
    The group's description says what the default runs: add the ``data`` group first, since
    with ``--dataset synthetic`` (its default) the default is the shipped miniature."""
    has_dataset = any(action.dest == "dataset" for action in parser._actions)
    group = parser.add_argument_group("model", description=_default_model_text(has_dataset))
    group.add_argument("--model", choices=MODEL_CHOICES, default=None,
                       help="'miniature': the miniature SAM2 shipped in the package (128 px, offline, no download) with the SANSA "
                            "adapters of " + ("--fold" if has_dataset else "fold 0") + " of the procedural benchmark (or --checkpoint's), "
                            "for any data, your own images included; 'sam2': SAM2 as the options below say (Meta's weights"
                            + ("), also on --dataset synthetic (default: miniature with --dataset synthetic and no SAM2 option, else sam2)"
                               if has_dataset else "; default)"))
    mini = "; with --model miniature: the miniature's own" if not has_dataset else "; the miniature's own when it runs"
    group.add_argument("--backbone", choices=BACKBONES, default=None, help=f"SAM2 image encoder (default: hiera_l or the checkpoint's{mini})")
    group.add_argument("--sam2-version", choices=["2.1", "2"], default=None, help=f"SAM2 release (default: 2.1 or the checkpoint's{mini})")
    group.add_argument("--sam2-checkpoint", type=_sam2_checkpoint_arg, default="auto", metavar="auto|none|PATH",
                       help="SAM2 weights: 'auto' downloads Meta's file into the torch hub cache, 'none' random weights "
                            "(smoke tests only: results mean nothing), or a path to Meta's .pt file (default: auto"
                            + ("; with --dataset synthetic and no other SAM2 option, the miniature's shipped file instead)" if has_dataset else ")"))
    group.add_argument("--image-size", type=positive_int, default=None,
                       help=f"SAM2 input size (default: 1024 or the checkpoint's{mini.replace('own', '128')})")
    group.add_argument("--sam2-override", dest="sam2_overrides", action="append", default=None, metavar="OVERRIDE",
                       help="hydra override on sam2's shipped YAML, as sam2's build_sam2(hydra_overrides_extra=...) "
                            "applies it (repeatable; e.g. ++model.memory_attention.num_layers=2; default: none, "
                            "or the adapter checkpoint's)")
    group.add_argument("--behaviour", dest="behaviour", action="append", default=None, metavar="NAME=VALUE",
                       help="where the public SANSA release and sam2 differ, run ours instead of the release's (repeatable): "
                            "reference_memory=exact, temporal_slots=shared, point_prompts=multimask, scribble=thinned, "
                            "precision=bfloat16 (default: the release's, or the adapter checkpoint's)")
    group.add_argument("--setting", choices=["strict", "generalist"], default="strict",
                       help="adapter bottleneck ratio 0.3 (strict) or 0.8 (generalist)")
    group.add_argument("--checkpoint", type=checkpoint_arg, default=NO_CHECKPOINT, metavar="PATH|none",
                       help="SANSA's trained adapters: saved by sansa-probe, a training checkpoint, or the public SANSA "
                            "release; 'none' (default): fresh adapters, which are exact no-ops, i.e. frozen SAM2"
                            + (" (the miniature brings its fold's adapters)" if has_dataset else " (--model miniature brings fold 0's)")
                            + (f"; {checkpoint_help}" if checkpoint_help else ""))
    if compare:
        group.add_argument("--adapters", choices=["both", "on", "off"], default="both",
                           help="'both' (default): frozen SAM2 (adapters off, model 'sam2') and SANSA (adapters on, model "
                                "'sansa') on one model object; 'on' or 'off' keeps one")
    else:
        group.add_argument("--adapters", choices=["on", "off"], default="on",
                           help="'off' runs frozen SAM2 through the same code path (the paper's baseline; default on)")
    return group


def _default_model_text(has_dataset: bool) -> str:
    """What the model options' defaults run, in words (the model group's description in --help)."""
    real = ("Meta's SAM2 2.1 Hiera-L at 1024 px (weights downloaded by --sam2-checkpoint auto) with --checkpoint's adapters "
            "(default none: frozen SAM2)")
    mini = "the miniature SAM2 shipped in the package (128 px, offline, no download) with the SANSA adapters of"
    if has_dataset:
        text = (f"What runs by default: with --dataset synthetic (the default) and no SAM2 option, {mini} --fold (not the "
                f"paper's model: a toy for running offline). With another dataset or any SAM2 option, {real}. "
                "--model miniature|sam2 chooses in one word.")
    else:
        text = f"What runs by default: {real}. --model miniature runs {mini} fold 0 instead, offline (e.g. on your own images)."
    return textwrap.fill(text, 88)


def add_data_group(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``data``: a registered dataset (``synthetic`` is the procedural benchmark: nothing on disk)."""
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", type=dataset_name, choices=list_datasets(), default="synthetic", metavar="NAME",
                       help=f"registered dataset: {', '.join(list_datasets())} (default synthetic, the procedural "
                            "benchmark generated on the fly)")
    group.add_argument("--fold", type=non_negative_int, default=0, help="fold (default 0)")
    group.add_argument("--data-root", default=None, help="folder holding the datasets (default: $SANSA_DATA)")
    group.add_argument("--dataset-option", type=dataset_option, action="append", default=[], metavar="KEY=VALUE",
                       help="dataset option, e.g. images_per_class=20 or image_size=128 for synthetic (repeatable)")
    return group


def add_output_group(parser: argparse.ArgumentParser, *, writes: str) -> argparse._ArgumentGroup:
    """``output``: ``--out``, the folder the command writes (``writes`` says what)."""
    group = parser.add_argument_group("output")
    group.add_argument("--out", default=None, metavar="DIR",
                       help=f"output folder for {writes} (default: a new runs/<command>-<date>-<time> folder, printed first)")
    return group


def add_overwrite_option(group: argparse._ArgumentGroup, *, what: str) -> argparse._ArgumentGroup:
    """``--overwrite``: replace ``what`` a run of this command left in ``--out`` (never files it did not write)."""
    group.add_argument("--overwrite", action="store_true",
                       help=f"replace {what} in --out (default: refuse); files no run of this command wrote are never touched")
    return group


def data_inputs(args: argparse.Namespace) -> dict[str, list[str]]:
    """The input folders of the ``data`` group that ``--out`` may not be inside: the data root of a
    dataset read from disk (``--data-root``, else ``$SANSA_DATA``)."""
    names = {getattr(args, "dataset", "synthetic"), *(getattr(args, "datasets", None) or [])}
    if names <= {"synthetic", None} and getattr(args, "setting", "strict") != "generalist":
        return {}
    root = getattr(args, "data_root", None) or os.environ.get("SANSA_DATA")
    return {"--data-root": [root]} if root else {}


def add_run_group(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``run``: where it runs and what it prints."""
    group = parser.add_argument_group("run")
    group.add_argument("--device", default=default_device(), help="torch device (default: cuda if available, else cpu)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    group.add_argument("--max-image-pixels", type=positive_int, default=DEFAULT_MAX_IMAGE_PIXELS, metavar="N",
                       help=f"refuse image and mask files whose header claims more than N pixels, before decoding them "
                            f"(default {DEFAULT_MAX_IMAGE_PIXELS:,}: 100 Mpx)")
    return group


# ============================================================================ running a command


def check_device(spec: str, *, name: str = "--device") -> torch.device:
    """``spec`` as a device this machine has; a clear error otherwise (before any model is built)."""
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} {spec!r}: expected a torch device such as 'cpu', 'cuda' or 'cuda:1'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {spec}: no CUDA GPU is available on this machine (torch.cuda.is_available() is False); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {spec}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"{name} {spec}: the MPS backend is not available on this machine; use --device cpu")
    return device


def check_model_args(args: argparse.Namespace) -> None:
    """Validate the shared model arguments before any data is read or the model is built."""
    if getattr(args, "device", None) is not None:
        check_device(str(args.device))
    size = getattr(args, "image_size", None)
    if size is not None and (size < 64 or size % 32):
        raise ValueError(f"--image-size {size}: expected a multiple of 32, at least 64 (SAM2's Hiera downsamples by 32), e.g. 256 or 1024")
    for name in ("checkpoint", "sam2_checkpoint"):
        value = getattr(args, name, None)
        if value is not None and str(value).lower() not in ("none", "auto") and Path(value).expanduser().is_dir():
            raise IsADirectoryError(f"--{name.replace('_', '-')} {value} is a folder; expected a checkpoint file (.pt)")
    if getattr(args, "model", None) == "miniature":
        given = [f"--{name.replace('_', '-').replace('sam2-overrides', 'sam2-override')}" for name in _SAM2_OPTIONS if getattr(args, name, None)]
        if getattr(args, "sam2_checkpoint", "auto") != "auto":
            given.append("--sam2-checkpoint")
        if given:
            raise ValueError(f"--model miniature: the miniature is one fixed SAM2 (128 px, its shipped weights); "
                             f"{', '.join(given)} describe another; leave them out or use --model sam2")


def model_choice(args: argparse.Namespace) -> str:
    """``"miniature"`` or ``"sam2"``: ``--model`` when given, else the embedded default
    (:func:`sansa_probe.miniature.default.wants_miniature`: ``--dataset synthetic`` and no SAM2 option)."""
    chosen = getattr(args, "model", None)
    if chosen is not None:
        return chosen
    return "miniature" if wants_miniature(args) else "sam2"


def _miniature_fold(args: argparse.Namespace) -> int | None:
    fold = getattr(args, "fold", 0)
    return fold if fold in MINIATURE_FOLDS else None


def model_from_args(args: argparse.Namespace, **overrides):
    """Build the model the ``model`` and ``run`` groups describe (``overrides`` win over ``args``).

    :func:`model_choice` says which: the shipped miniature (``--model miniature``, or the embedded
    default for ``--dataset synthetic`` with no SAM2 option: :mod:`sansa_probe.miniature.default`)
    with ``--fold``'s adapters (fold 0 for commands without one; ``--checkpoint``'s when given), or
    SAM2 as the options say. The miniature is announced in one line on stdout.
    """
    check_model_args(args)
    behaviour = parse_behaviour(getattr(args, "behaviour", None))
    if model_choice(args) == "miniature":
        fold = _miniature_fold(args)
        checkpoint = overrides.get("adapters", getattr(args, "checkpoint", None))
        if not overrides.keys() - {"device", "adapters"} and checkpoint is None:
            model = miniature_from_args(args, device=overrides.get("device"), announce=False)
            say(_miniature_line(args, fold))
        else:  # the miniature's SAM2 with other adapters, or a training recipe's overrides
            options = {"adapters": checkpoint, "device": args.device, **behaviour, **overrides}
            model = load_sansa(MINIATURE_BACKBONE, sam2_version=MINIATURE_SAM2_VERSION, image_size=MINIATURE_IMAGE_SIZE,
                               sam2_checkpoint=options.pop("sam2_checkpoint", verified_path("sam2.pt")),
                               sam2_overrides=list(MINIATURE_OVERRIDES), **options)  # fmt: skip
            model.provenance = {**getattr(model, "provenance", {}), "sam2_label": "the miniature SAM2 pretrained here"}
            say(_miniature_line(args, None, checkpoint=checkpoint))
            behaviour = {}
        model.adapters_enabled = getattr(args, "adapters", "on") != "off"
        if behaviour:
            model.config = dataclasses.replace(model.config, **behaviour)
        return model

    kwargs = dict(
        backbone=args.backbone,
        sam2_version=args.sam2_version,
        sam2_checkpoint=args.sam2_checkpoint,
        image_size=args.image_size,
        setting=args.setting,
        sam2_overrides=getattr(args, "sam2_overrides", None),
        **behaviour,
        adapters=args.checkpoint,
        device=args.device,
    )
    kwargs.update(overrides)
    model = load_sansa(**kwargs)
    model.adapters_enabled = getattr(args, "adapters", "on") != "off"
    return model


def _miniature_line(args: argparse.Namespace, fold: int | None, *, checkpoint: str | None = None) -> str:
    if checkpoint is not None:
        adapters = f"adapters {checkpoint}"
    else:
        adapters = f"its SANSA adapters of fold {fold}" if fold is not None else "fresh adapters (no fold of 0-3 given)"
    why = ("--model miniature" if getattr(args, "model", None) == "miniature"
           else "the default for --dataset synthetic with no SAM2 option; --model sam2 runs Meta's SAM2")
    return f"model: the miniature SAM2 shipped in the package (128 px, offline) + {adapters} [{why}]"


def model_record(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """What actually ran, for ``config.json`` and summaries in place of the options' defaults
    (never ``"auto"``): ``model`` (miniature or sam2), backbone, SAM2 version, image size, the SAM2
    weights file (``"none"``: random) and the adapters file (``None``: fresh or none)."""
    provenance = dict(getattr(model, "provenance", {}) or {})
    config = model.config
    return {
        "model": model_choice(args),
        "backbone": config.backbone,
        "sam2_version": config.sam2_version,
        "image_size": config.image_size,
        "sam2_checkpoint": str(provenance.get("sam2_checkpoint") or NO_CHECKPOINT),
        "checkpoint": None if provenance.get("adapters") is None else str(provenance["adapters"]),
    }


def new_run_folder(command: str, *, root: str | os.PathLike = RUNS, now: datetime.datetime | None = None) -> Path:
    """Create and return ``<root>/<command>-YYYYmmdd-HHMMSS``, or ``...-1``, ``-2``, ... when that
    exists: never a folder that existed before."""
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    Path(root).mkdir(parents=True, exist_ok=True)
    for n in range(10_000):
        path = Path(root) / (f"{command}-{stamp}" if n == 0 else f"{command}-{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"--out: {root}/{command}-{stamp}-*: no free name")  # pragma: no cover


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None, body: Callable[[argparse.Namespace], int], *,
                prog: str, needs_out: Callable[[argparse.Namespace], bool] = lambda args: True) -> int:
    """A command's ``main``: parse ``argv``, give ``--out`` its default (a new folder under
    ``runs/``, printed as the first line, removed again if the command fails before writing to it)
    where ``needs_out(args)``, then run ``body(args)``; all under :func:`run_main`."""
    made: list[Path] = []

    def command() -> int:
        args = parser.parse_args(argv)
        if getattr(args, "out", "") is None and needs_out(args):
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise UsageError("--out: required under torchrun (every rank writes into the same folder)")
            made.append(new_run_folder(prog.rsplit(".", 1)[-1]))
            args.out = str(made[0])
            say(f"out: {args.out}")
        with image_pixel_limit(getattr(args, "max_image_pixels", None) or DEFAULT_MAX_IMAGE_PIXELS):  # every image reader of the run
            return body(args)

    code = 2
    try:
        code = run_main(command, prog=prog)
        return code
    finally:
        if code != 0 and made and made[0].is_dir() and not any(made[0].iterdir()):
            made[0].rmdir()


def parse_behaviour(items: list[str] | None) -> dict[str, str]:
    """``["temporal_slots=shared", ...]`` -> ``{"temporal_slots": "shared"}``, checked against the known options."""
    options: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name, value = name.strip().replace("-", "_"), value.strip()
        if not sep or name not in BEHAVIOURS or value not in BEHAVIOURS[name]:
            known = "; ".join(f"{n}={'|'.join(v)}" for n, v in BEHAVIOURS.items())
            raise ValueError(f"--behaviour {item!r}: expected NAME=VALUE, one of {known}")
        options[name] = value
    return options


def run_main(body: Callable[[], int], *, prog: str) -> int:
    """Run a command body: an expected failure becomes one line on stderr and exit code 2.

    Expected failures are ``ValueError`` (bad values, files of the wrong kind), ``OSError``
    (missing, unreadable or unwritable paths, a full disk) and running out of accelerator memory
    (``torch.OutOfMemoryError``: one line saying what to lower); Ctrl-C is one line and exit code
    130. Anything else is a bug and keeps its traceback.
    """
    try:
        return body()
    except (ValueError, OSError) as exc:
        logging.getLogger(prog).debug("error", exc_info=True)
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except torch.OutOfMemoryError as exc:
        logging.getLogger(prog).debug("error", exc_info=True)
        first = str(exc).strip().split("\n")[0].split(". ")[0] or "out of memory"
        print(f"{prog}: error: out of memory ({first}); lower --batch-size (or --micro-batch when training), "
              "--image-size or the number of images, or run with --device cpu", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        detail = str(exc).strip()
        print(f"{prog}: {detail or 'interrupted (Ctrl-C)'}", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split("\n")) if str(exc) else type(exc).__name__
