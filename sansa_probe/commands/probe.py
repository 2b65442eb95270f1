"""Command-line layer of the probe commands (``python -m sansa_probe.pca`` and its siblings).

Every probe command is a thin shell: its parser is :func:`probe_parser` (the shared groups of
:mod:`sansa_probe.commands.grammar` plus the probes' ``features`` group) and its own ``probe`` options, its
``main`` is :func:`run_probe`, and its body gets a :class:`ProbeRun` that does the steps all of
them share, in the same order: read the inputs (:meth:`ProbeRun.dataset`, :meth:`ProbeRun.splits`),
build the model (:meth:`ProbeRun.extractor`), then write tables, figures and ``config.json``
(:meth:`ProbeRun.write`)::

    def main(argv=None):
        return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)

    def _body(run: ProbeRun) -> None:
        splits = run.splits()
        tables = compute(run.extractor(), splits, models=run.models, ...)
        run.write(tables, figures, train_fold=splits.train_fold)

``--list-layers`` and ``--redraw RUN_DIR`` (the figures of an earlier run, drawn again from its
CSVs by :func:`sansa_probe.pipelines.redraw`) are handled by :func:`run_probe` before the body
runs, with no output folder; "wrote <out>" is printed after the body.
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

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.commands.grammar import (
    add_data_group,
    add_model_group,
    add_output_group,
    add_run_group,
    check_model_args,
    command_parser,
    dataset_options,
    non_negative_int,
    positive_int,
    run_command,
)
from sansa_probe.data import DatasetNotFoundError, SegmentationSource, get_dataset
from sansa_probe.features import MODELS, FeatureExtractor, ProbeSplits, probe_splits
from sansa_probe.inference.protocol import get_protocol
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text, check_output_folder
from sansa_probe.model.sansa import SansaModel
from sansa_probe.pipelines import redraw, write_images
from sansa_probe.pipelines.redraw import pipeline_of
from sansa_probe.probes.plots import add_footnote, save_figure
from sansa_probe.reporting.identity import identity_footnote, identity_line, model_identity, said_in_words
from sansa_probe.reporting.sanity import report

__all__ = [
    "ProbeRun",
    "add_sample_arguments",
    "data_hint",
    "extractor_from_args",
    "models_to_run",
    "print_layers",
    "probe_parser",
    "run_probe",
    "with_identity",
    "write_run_config",
    "write_table",
]

Tables = Mapping[str, pd.DataFrame]
ModelBuilder = Callable[..., SansaModel]  # (args, **overrides) -> model, as sansa_probe.commands.grammar.model_from_args


# ============================================================================ one run of a probe command


def probe_parser(prog: str, description: str | None, *, data: bool = True) -> argparse.ArgumentParser:
    """The parser of ``python -m <prog>``: the shared ``data`` (when ``data``), ``model`` (frozen
    SAM2 and SANSA by default), ``output`` and ``run`` groups, and the probes' ``features`` group;
    the command adds its own ``probe`` group."""
    parser = command_parser(prog, description)
    if data:
        add_data_group(parser)
    feats = parser.add_argument_group("features")
    feats.add_argument("--layer", default=None, help="hook name (default: image_encoder.neck[2], the image encoder's output used for memory); see --list-layers")
    feats.add_argument("--list-layers", action="store_true", help="print the hookable layers and exit")
    feats.add_argument("--redraw", default=None, metavar="RUN_DIR", help="draw the figures of an earlier run again from its CSVs and exit")
    feats.add_argument("--batch-size", type=positive_int, default=8, help="images per forward (default 8)")
    feats.add_argument("--seed", type=non_negative_int, default=0, help="seed of the image samples and of the probe (default 0)")
    feats.add_argument("--cache-dir", default=None, help="feature cache (default <out>/feature_cache)")
    feats.add_argument("--no-cache", action="store_true", help="always recompute features")
    add_model_group(parser, compare=True)
    add_output_group(parser, writes="the tables (CSV, JSON), figures (PNG, PDF) and config.json")
    add_run_group(parser)
    return parser


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """``--images-per-class`` and ``--max-images``: the seeded sample of a split's images."""
    sample = parser.add_argument_group("sample")
    sample.add_argument("--images-per-class", type=non_negative_int, default=50, help="seeded sample of images per class and split (default 50; 0 = all)")
    sample.add_argument("--max-images", type=positive_int, default=None, help="at most this many images per split (seeded sample)")


def run_probe(parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, prog: str, build: ModelBuilder,
              body: Callable[[ProbeRun], None]) -> int:
    """A probe command's ``main``: ``--list-layers`` prints the layers of the model ``build``
    makes; otherwise ``body`` runs on a :class:`ProbeRun` (``--out`` as every command resolves it,
    :func:`sansa_probe.commands.grammar.run_command`)."""

    def command(args: argparse.Namespace) -> int:
        if args.list_layers:
            return print_layers(build, args)
        if args.redraw is not None:
            for path in redraw(args.redraw):
                print(f"wrote {path}", file=sys.stderr)
            return 0
        run = ProbeRun(args, prog=prog, build=build)
        body(run)
        print(f"wrote {run.out}", file=sys.stderr)
        return 0

    return run_command(parser, argv, command, prog=prog, needs_out=lambda args: not (args.list_layers or args.redraw))


class ProbeRun:
    """What a probe command's body shares with its siblings.

    Attributes:
        args: the parsed arguments.
        prog: the command's module (``sansa_probe.pca``), for error hints.
        models: ``{table name: adapters on}`` to run (:func:`models_to_run`).
        out: the output folder.
        checkpoint: the adapter checkpoint (``None``: fresh adapters, i.e. frozen SAM2).
        identities: ``{model run: model_identity}`` (:mod:`sansa_probe.reporting.identity`), set by
            :meth:`extractor`.
    """

    def __init__(self, args: argparse.Namespace, *, prog: str, build: ModelBuilder) -> None:
        self.args = args
        self.prog = prog
        self.models = models_to_run(args)
        self.out = check_output_folder(Path(args.out), name="--out")  # before any work: not after it
        check_model_args(args)
        self.checkpoint: str | None = args.checkpoint
        self.identities: dict[str, dict[str, Any]] = {}  # model run -> model_identity, once the model is built
        self._build = build

    def dataset(self, split: str) -> SegmentationSource:
        """``--dataset``'s ``--fold`` and ``split`` (with ``--data-root`` and ``--dataset-option``);
        a missing dataset names the same command on the procedural benchmark (:func:`data_hint`)."""
        args = self.args
        with data_hint(self.prog, args):
            return get_dataset(args.dataset, fold=args.fold, split=split, root=args.data_root, **dataset_options(args))

    def splits(self) -> ProbeSplits:
        """The fold's training and evaluation sources (:func:`~sansa_probe.features.probe_splits`,
        with ``--train-fold``)."""
        args = self.args
        with data_hint(self.prog, args):
            return probe_splits(args.dataset, args.fold, root=args.data_root, train_fold=args.train_fold, **dataset_options(args))

    def extractor(self) -> FeatureExtractor:
        """Build the model (``--checkpoint``'s adapters), print its identity (one line per model
        run, then random or fresh weights in words) and wrap it in a feature extractor."""
        with said_in_words():
            model = self._build(self.args)
        self.identities = {name: model_identity(model, adapters_enabled=on) for name, on in self.models.items()}
        for identity in self.identities.values():
            print(identity_line(identity), file=sys.stderr, flush=True)
        report(self.identity_warnings())
        return extractor_from_args(model, self.args)

    def identity_warnings(self) -> list[str]:
        """The identities' flags (random SAM2 weights, fresh adapters), each once."""
        return list(dict.fromkeys(w for identity in self.identities.values() for w in identity["warnings"]))

    def write(self, tables: Tables, figures: Callable[..., Mapping[str, Figure]], *, images: Mapping[str, np.ndarray] | None = None,
              **config: Any) -> None:
        """Each table as ``<out>/<name>.{csv,json}`` with the model's identity in an ``identity``
        column (:func:`with_identity`), the ``images`` a figure shows (``{image id: HxWx3}``,
        :func:`~sansa_probe.pipelines.write_images`), each figure of ``figures(tables, images)`` as
        ``<out>/<name>.{png,pdf}`` with the identity as footnote, then ``config.json``: the
        command, its arguments, the checkpoint, ``config``, ``identity`` (per model run) and
        ``warnings`` (the identity's flags and the pipeline's sanity checks, also printed):
        :func:`~sansa_probe.pipelines.redraw` needs nothing else."""
        identities = self.identities
        tables = {name: with_identity(table, identities) for name, table in tables.items()}
        checks = getattr(pipeline_of(self.prog), "check", None)
        measured = report(checks(tables)) if checks is not None else []
        for name, table in tables.items():
            write_table(table, self.out / name)
        if images is not None:
            write_images(self.out, images)
        footnote = identity_footnote(identities)
        for name, figure in figures(tables, images).items():
            save_figure(add_footnote(figure, footnote), self.out / name)
        write_run_config(self.args, self.out, command=self.prog, checkpoint=self.checkpoint, **config, identity=identities,
                         warnings=[*self.identity_warnings(), *measured])


def with_identity(table: pd.DataFrame, identities: Mapping[str, dict[str, Any]]) -> pd.DataFrame:
    """``table`` with an ``identity`` column: the identity line of each row's ``model`` (or, in a
    table without one, the footnote covering every model run). Feature-cell maps (tables with
    ``row`` and ``col`` columns, one row per cell) are left as they are to stay small: their
    run's ``config.json`` names the model."""
    if not identities or "identity" in table.columns or {"row", "col"} <= set(table.columns):
        return table
    lines = {name: identity_line(identity).removeprefix("model: ") for name, identity in identities.items()}
    if "model" in table.columns:
        return table.assign(identity=table["model"].map(lines).fillna(""))
    return table.assign(identity=identity_footnote(identities))


# ============================================================================ arguments and outputs


@contextlib.contextmanager
def data_hint(prog: str, args: argparse.Namespace) -> Iterator[None]:
    """Re-raise a missing-dataset error with the same command on the procedural benchmark."""
    try:
        yield
    except DatasetNotFoundError as exc:
        if getattr(args, "dataset", None) == "synthetic":
            raise
        raise DatasetNotFoundError(
            f"{exc}\nThe same probe on the procedural benchmark (nothing on disk):\n"
            f"    python -m {prog} --dataset synthetic --fold {getattr(args, 'fold', 0)}"
        ) from None


def models_to_run(args: argparse.Namespace) -> dict[str, bool]:
    """``{"sam2": False, "sansa": True}`` for ``--adapters both``, or one of them with ``on|off``."""
    choice = getattr(args, "adapters", "both")
    if choice == "both":
        return dict(MODELS)
    return {"sansa": True} if choice == "on" else {"sam2": False}


def extractor_from_args(model: SansaModel, args: argparse.Namespace) -> FeatureExtractor:
    cache = None if args.no_cache else (args.cache_dir or str(Path(args.out) / "feature_cache"))
    # images enter as the release does for this dataset (its square; the procedural images: their own size)
    protocol = get_protocol("release", image_size=model.image_size, dataset=getattr(args, "dataset", None), output="image")
    return FeatureExtractor(model, batch_size=args.batch_size, progress=not args.no_progress, cache_dir=cache, protocol=protocol)


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
