"""Command-line layer of the probe commands (``python -m sansa_probe.pca`` and its siblings).

Every probe command is a thin shell: its parser is :func:`probe_parser` (the shared groups of
:mod:`sansa_probe.commands.grammar` plus the probes' ``features`` group) and its own ``probe`` options, its
``main`` is :func:`run_probe`, and its body gets a :class:`ProbeRun` that does the steps all of
them share, in the same order: read the inputs (:meth:`ProbeRun.dataset`, :meth:`ProbeRun.splits`),
build the encoders of ``--encoders`` (:meth:`ProbeRun.encoders`: frozen SAM2 and SANSA over one
model by default, any timm or torch.hub model beside them), then write tables, figures and
``config.json`` (:meth:`ProbeRun.write`)::

    def main(argv=None):
        return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)

    def _body(run: ProbeRun) -> None:
        splits = run.splits()
        tables = compute(run.encoders(), splits, layer=run.args.layer, ...)
        run.write(tables, figures, train_fold=splits.train_fold)

``--list-layers`` and ``--redraw RUN_DIR`` (the figures of an earlier run, drawn again from its
CSVs by :func:`sansa_probe.pipelines.redraw`) are handled by :func:`run_probe` before the body
runs, with no output folder; "wrote <out>" is printed after the body.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
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
    data_inputs,
    dataset_options,
    model_record,
    non_negative_int,
    positive_int,
    run_command,
    say,
)
from sansa_probe.data import DatasetNotFoundError, SegmentationSource, get_dataset
from sansa_probe.features import FeatureExtractor, ProbeSplits, SourceExtractor, probe_splits
from sansa_probe.features.encoders import encoders_from_specs
from sansa_probe.features.sources import DEFAULT_ENCODERS, EncoderSpec, build_sources, parse_encoders
from sansa_probe.inference.protocol import get_protocol
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text
from sansa_probe.io.manifest import RunFolder
from sansa_probe.model.sansa import SansaModel
from sansa_probe.pipelines import redraw, write_images
from sansa_probe.pipelines.redraw import pipeline_of
from sansa_probe.probes.plots import add_footnote, save_figure
from sansa_probe.reporting.identity import identity_footnote, identity_line, said_in_words
from sansa_probe.reporting.sanity import report

__all__ = [
    "ProbeRun",
    "add_sample_arguments",
    "data_hint",
    "encoder_list",
    "encoder_specs",
    "extractor_from_args",
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
    feats.add_argument("--encoders", type=encoder_list, default=None, metavar="ENCODER[,ENCODER...]",
                       help=f"encoders probed side by side: sam2 (adapters off), sansa (adapters on), timm:<model name>[:random], "
                            f"hub:<owner/repo>:<entry>[:random] (default {DEFAULT_ENCODERS}, or the one --adapters names); "
                            "e.g. sam2,sansa,timm:vit_small_patch14_dinov2.lvd142m")
    feats.add_argument("--layer", default=None, metavar="[ENCODER=]LAYER[,...]",
                       help="hook name for every encoder that has it, or ENCODER=LAYER, comma-separated (default: each encoder's output: "
                            "image_encoder.neck[2] for SAM2/SANSA, the final norm of a ViT); see --list-layers")
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
                say(f"wrote {path}")
            return 0
        run = ProbeRun(args, prog=prog, build=build)
        body(run)
        say(f"wrote {run.out}")
        return 0

    return run_command(parser, argv, command, prog=prog, needs_out=lambda args: not (args.list_layers or args.redraw))


class ProbeRun:
    """What a probe command's body shares with its siblings.

    Attributes:
        args: the parsed arguments.
        prog: the command's module (``sansa_probe.pca``), for error hints.
        specs: the encoders to run, in order (:func:`encoder_specs`).
        out: the output folder; ``folder`` the :class:`~sansa_probe.io.manifest.RunFolder` opened on it
            (a folder holding files no run of this command wrote is refused before any work).
        checkpoint: the adapter checkpoint (``None``: fresh adapters, i.e. frozen SAM2).
        identities: ``{encoder: identity}`` (:mod:`sansa_probe.reporting.identity`), set by :meth:`encoders`.
        notes: what the encoders said while measuring (objects smaller than a feature cell), in words.
    """

    def __init__(self, args: argparse.Namespace, *, prog: str, build: ModelBuilder) -> None:
        self.args = args
        self.prog = prog
        self.specs = encoder_specs(args)
        inputs = {**data_inputs(args), **{"--frames": [f for f in getattr(args, "frames", None) or [] if Path(f).is_dir()]}}
        self.folder = RunFolder.open(args.out, command=prog, inputs=inputs)  # before any work: not after it
        self.out = self.folder.path
        check_model_args(args)
        self.checkpoint: str | None = args.checkpoint
        self.identities: dict[str, dict[str, Any]] = {}  # encoder -> its identity, once built
        self.notes: list[str] = []
        self.model_record: dict[str, Any] = {}  # what actually ran (grammar.model_record), once the model is built
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

    def encoders(self) -> dict[str, SourceExtractor]:
        """Build the encoders in order: ``sam2`` / ``sansa`` as one model with its adapters off / on
        (built only when one of them is asked for, with ``--checkpoint``'s adapters), the others on
        ``--device`` (their weights found or downloaded, else one line saying what to fetch); print
        each identity (one line each, then random weights or fresh adapters in words)."""
        args = self.args
        cache = _cache_dir(args)
        if cache is not None and self.out.resolve() in (Path(cache).resolve(), *Path(cache).resolve().parents):
            self.folder.claim(Path(cache).resolve().relative_to(self.out.resolve()).as_posix() + "/")  # the cache in --out is ours
        extractor = None
        if any(spec.uses_sansa_model for spec in self.specs):
            with said_in_words():
                model = self._build(args)
            self.model_record = model_record(args, model)
            extractor = extractor_from_args(model, args)
        encoders = encoders_from_specs(self.specs, extractor=extractor, device=args.device, batch_size=args.batch_size,
                                       progress=not args.no_progress, cache_dir=cache, notes=self.notes.append)
        self.identities = {name: encoder.identity() for name, encoder in encoders.items()}
        for identity in self.identities.values():
            say(identity_line(identity))
        report(self.identity_warnings())
        return encoders

    def identity_warnings(self) -> list[str]:
        """The identities' flags (random SAM2 or encoder weights, fresh adapters), each once."""
        return list(dict.fromkeys(w for identity in self.identities.values() for w in identity["warnings"]))

    def write(self, tables: Tables, figures: Callable[..., Mapping[str, Figure]], *, images: Mapping[str, np.ndarray] | None = None,
              **config: Any) -> None:
        """Each table as ``<out>/<name>.{csv,json}`` with the model's identity in an ``identity``
        column (:func:`with_identity`), the ``images`` a figure shows (``{image id: HxWx3}``,
        :func:`~sansa_probe.pipelines.write_images`), each figure of ``figures(tables, images)`` as
        ``<out>/<name>.{png,pdf}`` with the identity as footnote and the warnings above it, then
        ``config.json``: the command, its arguments with what actually ran in place of their
        defaults (:func:`~sansa_probe.commands.grammar.model_record`), the checkpoint, ``config``,
        ``identity`` (per encoder) and ``warnings`` (the identities' flags, the encoders' notes and
        the pipeline's sanity checks, also printed): :func:`~sansa_probe.pipelines.redraw` needs nothing else."""
        identities = self.identities
        tables = {name: with_identity(table, identities) for name, table in tables.items()}
        checks = getattr(pipeline_of(self.prog), "check", None)
        measured = (report(checks(tables)) if checks is not None else []) + report(dict.fromkeys(self.notes))
        with self.folder.staged() as staging:  # complete or absent; replaces only an earlier run's files
            for name, table in tables.items():
                write_table(table, staging / name)
            if images is not None:
                write_images(staging, images)
            footnote, warnings = identity_footnote(identities), [*self.identity_warnings(), *measured]
            for name, figure in figures(tables, images).items():
                save_figure(add_footnote(figure, footnote, warnings=warnings), staging / name)
            checkpoint = self.model_record.get("checkpoint", self.checkpoint)
            write_run_config(self.args, staging, command=self.prog, checkpoint=checkpoint, **config, identity=identities, warnings=warnings,
                             resolved=self.model_record)
        self.folder.finish()


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


def encoder_list(text: str) -> str:
    """``--encoders``: checked while parsing; the specs written back in one form, comma-separated."""
    try:
        return ",".join(spec.name for spec in parse_encoders(text, name="encoders"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("encoders: ")) from None


def encoder_specs(args: argparse.Namespace) -> list[EncoderSpec]:
    """The encoders to run: ``--encoders``, else ``sam2,sansa`` for ``--adapters both`` (its
    default), ``sansa`` for ``on``, ``sam2`` for ``off``; both options at once is an error."""
    choice = getattr(args, "adapters", "both")
    text = getattr(args, "encoders", None)
    if text is None:
        return parse_encoders({"both": DEFAULT_ENCODERS, "on": "sansa", "off": "sam2"}[choice])
    if choice != "both":
        raise ValueError(f"--adapters {choice}: with --encoders, name SAM2 (adapters off) as sam2 and SANSA (on) as sansa there instead")
    return parse_encoders(text)


def _cache_dir(args: argparse.Namespace) -> str | None:
    return None if args.no_cache else (args.cache_dir or str(Path(args.out) / "feature_cache"))


def extractor_from_args(model: SansaModel, args: argparse.Namespace) -> FeatureExtractor:
    # images enter as the release does for this dataset (its square; the procedural images: their own size)
    protocol = get_protocol("release", image_size=model.image_size, dataset=getattr(args, "dataset", None), output="image")
    return FeatureExtractor(model, batch_size=args.batch_size, progress=not args.no_progress, cache_dir=_cache_dir(args), protocol=protocol)


def print_layers(build: Callable[..., SansaModel], args: argparse.Namespace) -> int:
    """``--list-layers``: the hookable layers of each encoder, built without weights (layer names
    do not depend on them): SAM2 / SANSA's model once, each other encoder under its name."""
    specs = encoder_specs(args)
    blocks = []
    if any(spec.uses_sansa_model for spec in specs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = build(args, adapters=None, sam2_checkpoint=None)
        blocks.append((", ".join(s.name for s in specs if s.uses_sansa_model), FeatureExtractor(model).describe_layers()))
    for spec in specs:
        if not spec.uses_sansa_model:
            weightless = dataclasses.replace(spec, random=True)
            source = build_sources([weightless])[weightless.name]
            blocks.append((spec.name, SourceExtractor(source).describe_layers().drop(columns="encoder")))
    for title, table in blocks:
        if len(blocks) > 1:
            print(f"{title}:")
        print(table.to_string(index=False))
    return 0


def write_table(frame: pd.DataFrame, path_stem: str | os.PathLike) -> list[Path]:
    """A tidy table as ``<stem>.csv`` and ``<stem>.json`` (records), atomically."""
    stem = Path(path_stem)
    csv = atomic_write_text(stem.with_name(stem.name + ".csv"), frame.to_csv(index=False))
    records = json.loads(frame.to_json(orient="records"))
    js = atomic_write_json(stem.with_name(stem.name + ".json"), records)
    return [csv, js]


def write_run_config(args: argparse.Namespace, out: str | os.PathLike, *, resolved: Mapping[str, Any] | None = None, **extra: Any) -> Path:
    """The command's arguments (and ``extra``) as ``<out>/config.json``; ``resolved`` (what actually
    ran: :func:`~sansa_probe.commands.grammar.model_record`) replaces the options' defaults, so that
    a miniature run records the miniature's files, never ``"auto"``."""
    config = {k: v for k, v in sorted(vars(args).items()) if isinstance(v, (str, int, float, bool, list, type(None)))}
    return atomic_write_json(Path(out) / "config.json", {**config, **(resolved or {}), **extra})
