"""Command-line layer of the probe commands (``python -m sansa_probe.pca`` and its siblings).

Every probe command is a thin shell: its parser is :func:`probe_parser` plus its own ``probe``
options, its ``main`` is :func:`run_probe`, and its body gets a :class:`ProbeRun` that does the
steps all of them share, in the same order: read the inputs (:meth:`ProbeRun.dataset`,
:meth:`ProbeRun.splits`), resolve the adapter checkpoint and build the model
(:meth:`ProbeRun.extractor`), then write tables, figures and ``config.json`` (:meth:`ProbeRun.write`)::

    def main(argv=None):
        return run_probe(build_parser().parse_args(argv), prog=PROG, build=model_from_args, body=_body)

    def _body(run: ProbeRun) -> None:
        splits = run.splits()
        tables = compute(run.extractor(), splits, models=run.models, ...)
        run.write(tables, figures, train_fold=splits.train_fold)

``--list-layers`` and the required ``--out`` are handled by :func:`run_probe` before the body runs;
"wrote <out>" is printed after it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.cli import add_model_arguments, run_main
from sansa_probe.data import SegmentationSource, get_dataset
from sansa_probe.features import MODELS, FeatureExtractor, ProbeSplits, probe_splits
from sansa_probe.model.sansa import SansaModel
from sansa_probe.probes.plots import save_figure
from sansa_probe.utils.io import atomic_write_json, atomic_write_text

__all__ = [
    "ProbeRun",
    "add_probe_arguments",
    "data_hint",
    "default_checkpoint",
    "extractor_from_args",
    "models_to_run",
    "parse_options",
    "print_layers",
    "probe_parser",
    "resolve_checkpoint",
    "run_probe",
    "write_run_config",
    "write_table",
]

Tables = Mapping[str, pd.DataFrame]
ModelBuilder = Callable[..., SansaModel]  # (args, **overrides) -> model, as sansa_probe.cli.model_from_args


# ============================================================================ one run of a probe command


def probe_parser(prog: str, description: str | None, **options: Any) -> argparse.ArgumentParser:
    """The parser of ``python -m <prog>`` with the shared probe arguments (``options`` go to
    :func:`add_probe_arguments`); the command adds its own ``probe`` group."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_probe_arguments(parser, **options)
    return parser


def run_probe(args: argparse.Namespace, *, prog: str, build: ModelBuilder, body: Callable[[ProbeRun], None]) -> int:
    """A probe command's ``main`` after parsing: ``--list-layers`` prints the layers of the model
    ``build`` makes; otherwise ``--out`` is required and ``body`` runs on a :class:`ProbeRun`.
    Expected user errors become one line on stderr and exit code 2 (:func:`sansa_probe.cli.run_main`)."""

    def command() -> int:
        if args.list_layers:
            return print_layers(build, args)
        if args.out is None:
            raise ValueError("--out: required (the output folder)")
        run = ProbeRun(args, prog=prog, build=build)
        body(run)
        print(f"wrote {run.out}", file=sys.stderr)
        return 0

    return run_main(command, prog=prog)


class ProbeRun:
    """What a probe command's body shares with its siblings.

    Attributes:
        args: the parsed arguments.
        prog: the command's module (``sansa_probe.pca``), for error hints.
        models: ``{table name: adapters on}`` to run (:func:`models_to_run`).
        out: the output folder.
        checkpoint: the adapter checkpoint loaded by :meth:`extractor` (``None`` before, or for
            fresh adapters / frozen SAM2 only).
    """

    def __init__(self, args: argparse.Namespace, *, prog: str, build: ModelBuilder) -> None:
        self.args = args
        self.prog = prog
        self.models = models_to_run(args)
        self.out = Path(args.out)
        self.checkpoint: str | None = None
        self._build = build

    def dataset(self, split: str) -> SegmentationSource:
        """``--dataset``'s ``--fold`` and ``split`` (with ``--data-root`` and ``--dataset-option``);
        a missing dataset names the same command on the procedural benchmark (:func:`data_hint`)."""
        args = self.args
        with data_hint(self.prog, args):
            return get_dataset(args.dataset, fold=args.fold, split=split, root=args.data_root, **parse_options(args.dataset_option))

    def splits(self) -> ProbeSplits:
        """The fold's training and evaluation sources (:func:`~sansa_probe.features.probe_splits`,
        with ``--train-fold``)."""
        args = self.args
        with data_hint(self.prog, args):
            return probe_splits(args.dataset, args.fold, root=args.data_root, train_fold=args.train_fold, **parse_options(args.dataset_option))

    def extractor(self, *, dataset: str | None = None, fold: int | None = None) -> FeatureExtractor:
        """Resolve the adapter checkpoint of ``dataset`` / ``fold`` (default ``--dataset`` / ``--fold``;
        required when SANSA runs), build the model with it and wrap it in a feature extractor."""
        args = self.args
        self.checkpoint = resolve_checkpoint(args, dataset=args.dataset if dataset is None else dataset,
                                             fold=args.fold if fold is None else fold, needed="sansa" in self.models)
        return extractor_from_args(self._build(args, adapters=self.checkpoint), args)

    def write(self, tables: Tables, figures: Callable[[Tables], Mapping[str, Figure]], **config: Any) -> None:
        """Each table as ``<out>/<name>.{csv,json}``, then each figure of ``figures(tables)`` as
        ``<out>/<name>.{png,pdf}``, then ``config.json`` (the arguments, the checkpoint and ``config``)."""
        for name, table in tables.items():
            write_table(table, self.out / name)
        for name, figure in figures(tables).items():
            save_figure(figure, self.out / name)
        write_run_config(self.args, self.out, checkpoint=self.checkpoint, **config)


# ============================================================================ arguments, checkpoints, outputs


def add_probe_arguments(parser: argparse.ArgumentParser, *, dataset: str | None = "coco20i", split: bool = False,
                        checkpoint_help: str | None = None) -> None:
    """Data, layer, output, cache and model options shared by the probe commands (``--adapters``
    defaults to both models)."""
    data = parser.add_argument_group("data")
    if dataset is not None:
        data.add_argument("--dataset", default=dataset, help=f"registered dataset (default {dataset}); 'synthetic' runs with no data on disk")
        data.add_argument("--fold", type=int, default=0, help="fold (default 0)")
        data.add_argument("--data-root", default=None, help="datasets root (default: $SANSA_DATA)")
        data.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                          help="dataset option, e.g. images_per_class=4 or image_size=128 for synthetic (repeatable)")
        data.add_argument("--images-per-class", type=int, default=50, help="seeded sample of images per class and split (default 50; 0 = all)")
        data.add_argument("--max-images", type=int, default=None, help="at most this many images per split (seeded sample)")
        if split:
            data.add_argument("--split", default="val", choices=["train", "val", "test"], help="split to read (default val)")
    data.add_argument("--seed", type=int, default=0, help="seed of the image samples")
    feats = parser.add_argument_group("features")
    feats.add_argument("--layer", default=None, help="hook name (default: image_encoder.neck[2], the image encoder's output used for memory); see --list-layers")
    feats.add_argument("--list-layers", action="store_true", help="print the hookable layers and exit")
    feats.add_argument("--batch-size", type=int, default=8, help="images per forward")
    run = parser.add_argument_group("run")
    run.add_argument("--out", default=None, help="output folder (required unless --list-layers)")
    run.add_argument("--cache-dir", default=None, help="feature cache (default <out>/feature_cache)")
    run.add_argument("--no-cache", action="store_true", help="always recompute features")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_model_arguments(parser, adapters_help=checkpoint_help or (
        "adapter checkpoint of this fold (default: $SANSA_CHECKPOINTS/<setting>/<dataset>/fold<f>.pt); 'none': fresh adapters"))
    parser.set_defaults(adapters=None)  # both models unless --adapters on|off
    parser.epilog = ((parser.epilog or "") + "\nBy default frozen SAM2 (adapters off, model 'sam2') and SANSA (adapters on, model 'sansa') "
                     "run through the same model object in one run; --adapters on|off keeps one.\n"
                     "--checkpoint defaults to $SANSA_CHECKPOINTS/<setting>/<dataset>/fold<f>.pt "
                     "(./checkpoints/... when SANSA_CHECKPOINTS is unset); --checkpoint none uses fresh adapters.").strip()


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["images_per_class=4", "seed=1"]`` -> ``{"images_per_class": 4, "seed": 1}`` (JSON values, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--dataset-option: {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@contextlib.contextmanager
def data_hint(prog: str, args: argparse.Namespace) -> Iterator[None]:
    """Re-raise a missing-dataset error with the same command on the procedural benchmark."""
    from sansa_probe.data import DatasetNotFoundError

    try:
        yield
    except DatasetNotFoundError as exc:
        if getattr(args, "dataset", None) == "synthetic":
            raise
        raise DatasetNotFoundError(
            f"{exc}\nThe same probe on the procedural benchmark (nothing on disk; add --checkpoint none to compare "
            f"with untrained adapters):\n    python -m {prog} --dataset synthetic --fold {getattr(args, 'fold', 0)} --out {args.out}"
        ) from None


def models_to_run(args: argparse.Namespace) -> dict[str, bool]:
    """``{"sam2": False, "sansa": True}``, or one of them with ``--adapters off|on``."""
    choice = getattr(args, "adapters", None)
    if choice is None:
        return dict(MODELS)
    return {"sansa": True} if choice == "on" else {"sam2": False}


def default_checkpoint(dataset: str, fold: int, setting: str = "strict") -> Path:
    """``$SANSA_CHECKPOINTS/<setting>/<dataset>/fold<fold>.pt`` (``./checkpoints`` when unset)."""
    root = Path(os.environ.get("SANSA_CHECKPOINTS") or "checkpoints").expanduser()
    return root / setting / dataset / f"fold{fold}.pt"


def resolve_checkpoint(args: argparse.Namespace, *, dataset: str, fold: int, needed: bool) -> str | None:
    """The adapter checkpoint a probe command loads: ``--checkpoint PATH``, ``none`` (fresh
    adapters), or the per-fold default (:func:`default_checkpoint`), which must exist when the
    adapted model runs (``needed``)."""
    given = getattr(args, "checkpoint", None)
    if given is not None:
        return None if str(given).lower() == "none" else str(given)
    if not needed:
        return None
    path = default_checkpoint(dataset, fold, getattr(args, "setting", "strict"))
    if not path.is_file():
        raise FileNotFoundError(
            f"--checkpoint: no adapter checkpoint for {dataset} fold {fold} at {path} (the default "
            "$SANSA_CHECKPOINTS/<setting>/<dataset>/fold<f>.pt; ./checkpoints when SANSA_CHECKPOINTS is unset).\n"
            f"Train one (adapters trained on the other folds' classes) with\n"
            f"    python -m sansa_probe.train --dataset {dataset} --fold {fold} --out runs/{dataset}_fold{fold}\n"
            f"and copy runs/{dataset}_fold{fold}/final.pt to {path}, or pass --checkpoint PATH "
            "(a sansa-probe or public SANSA checkpoint); --checkpoint none compares frozen SAM2 with untrained adapters "
            "(smoke tests), --adapters off runs frozen SAM2 only."
        )
    return str(path)


def extractor_from_args(model: SansaModel, args: argparse.Namespace) -> FeatureExtractor:
    cache = None if args.no_cache else (args.cache_dir or str(Path(args.out) / "feature_cache"))
    return FeatureExtractor(model, batch_size=args.batch_size, progress=not args.no_progress, cache_dir=cache)


def print_layers(build: Callable[..., SansaModel], args: argparse.Namespace) -> int:
    """``--list-layers``: build the model the arguments describe, without weights (layer names do
    not depend on them), and print its hookable layers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = build(args, adapters=None, sam2_checkpoint=None)
    print(FeatureExtractor(model).describe_layers().to_string(index=False))
    return 0


def write_table(frame: pd.DataFrame, path_stem: str | os.PathLike) -> list[Path]:
    """A tidy table as ``<stem>.csv`` and ``<stem>.json`` (records), atomically."""
    stem = Path(path_stem)
    csv = atomic_write_text(stem.with_name(stem.name + ".csv"), frame.to_csv(index=False))
    records = json.loads(frame.to_json(orient="records"))
    js = atomic_write_json(stem.with_name(stem.name + ".json"), records)
    return [csv, js]


def write_run_config(args: argparse.Namespace, out: str | os.PathLike, **extra: Any) -> Path:
    """The command's arguments (and ``extra``) as ``<out>/config.json``."""
    config = {k: v for k, v in sorted(vars(args).items()) if isinstance(v, (str, int, float, bool, list, type(None)))}
    return atomic_write_json(Path(out) / "config.json", {**config, **extra})
