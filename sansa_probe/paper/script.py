"""The shared body of the ``experiments/`` scripts: options, run, paper beside ours, files.

    python experiments/table9_sequence_length.py                    # offline: the shipped miniature, procedural benchmark
    python experiments/table9_sequence_length.py --data-root /data  # the paper's setting

Every script prints the paper's numbers beside ours (on stdout) with the difference where the two
are comparable (``n/c`` where ours ran on another model or benchmark) and writes, under ``--out``:
``<table>.csv`` (the side-by-side table), ``<table>_ours.csv`` (our tidy rows),
``<table>.png``/``.pdf`` (bars, paper beside ours, "not comparable" stamped where they are not)
and ``summary.json`` (notes and warnings: also printed on stderr and drawn on the figure). Every
row of ours names the model that produced it (``identity`` column; printed above the table).

``--out`` follows the output rule of every command (:mod:`sansa_probe.io.manifest`), checked before
any work: its ``sansa-manifest.json`` (command :data:`PAPER_COMMAND`, shared by every paper script,
so table 3 and table 4 may share an ``--out`` and its trained variants) lists what the scripts
wrote; a rerun replaces only those files; a folder holding anything else, or ``--out`` inside
``--data-root``, is refused in one line. The trained variants (``train/``) and annotation studies
(``annotation/``) are run folders of the commands, judged by their own manifests.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd

from sansa_probe.commands.grammar import BACKBONES, command_parser, default_device, episode_count, non_negative_int, positive_int, run_main, say
from sansa_probe.inference import PROTOCOLS
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text
from sansa_probe.io.manifest import RunFolder
from sansa_probe.paper.compare import comparison_warnings, format_side_by_side, plot_side_by_side, side_by_side
from sansa_probe.paper.numbers import TABLE_TITLES
from sansa_probe.paper.runs import RunConfig
from sansa_probe.probes.plots import FIGURE_SUFFIXES, add_footnote, save_figure
from sansa_probe.reporting.sanity import SanityWarning
from sansa_probe.reporting.sanity import report as sanity_report

__all__ = ["PAPER_COMMAND", "experiment_parser", "config_from_args", "open_output", "report", "report_files", "run_experiment"]

PAPER_COMMAND = "sansa_probe.paper"  # the command recorded in a paper script's --out (every script: they may share one)
RUN_FOLDERS = ("train/", "annotation/")  # where a table's runs write the commands' own run folders (paper.runs, paper.annotation_study)


def experiment_parser(table: str, description: str | None = None) -> argparse.ArgumentParser:
    """The options every experiment script shares (data, checkpoints, model, size of the run), on the
    commands' grammar: a bad value is one line and exit code 2."""
    parser = command_parser(f"experiments.{table}", description or f"Paper {table}: {TABLE_TITLES[table]}",
                            invoked_as=Path(sys.argv[0]).name)  # as argparse names a script
    data = parser.add_argument_group("data and checkpoints")
    data.add_argument("--data-root", default=None,
                      help="datasets root: run the paper's setting (default: none, offline on the procedural benchmark with the shipped miniature)")
    data.add_argument("--checkpoints", default=None,
                      help="root of SANSA's adapters (<root>/<setting>/<dataset>/fold<f>.pt) or one .pt file ({fold} replaced); "
                           "default $SANSA_CHECKPOINTS; on the procedural benchmark adapters are trained here when not given")
    data.add_argument("--folds", type=non_negative_int, nargs="+", default=None, help="folds to run (default: all; fold 0 on the procedural benchmark)")
    data.add_argument("--episodes", type=episode_count, default=None,
                      help="test episodes per fold (default: the literature's; offline 100 as the miniature's shipped measurement, 8 with --small)")
    model = parser.add_argument_group("model")
    model.add_argument("--backbone", choices=BACKBONES, default=None,
                       help="SAM2 backbone (default hiera_l; offline the shipped miniature, unless this, --sam2-checkpoint or --image-size is given)")
    model.add_argument("--sam2-checkpoint", default="auto",
                       help="Meta's SAM2 weights: auto (download; offline: the shipped miniature), a path, or none (random weights, smoke tests)")
    model.add_argument("--image-size", type=positive_int, default=None, help="SAM2 input size (default 1024; the miniature's 128 offline)")
    model.add_argument("--device", default=default_device(), help="torch device (default: cuda when available)")
    model.add_argument("--protocol", choices=list(PROTOCOLS), default="release",
                       help="preprocessing and scoring of the evaluations: 'release' (default; the public SANSA release's, "
                            "which the paper's tables come from) or 'hsnet'")
    run = parser.add_argument_group("run")
    run.add_argument("--out", default=f"results/{table}", help=f"output folder (default results/{table})")
    run.add_argument("--seed", type=non_negative_int, default=0, help="seed of episodes, prompts and training (default 0)")
    run.add_argument("--train-steps", type=positive_int, default=None,
                     help="offline: optimizer steps of each trained variant (default: the miniature's adapter recipe, 150; 2 with --small)")
    run.add_argument("--small", action="store_true", help="tiny settings that finish in seconds (tests, smoke runs)")
    run.add_argument("--all-paper-rows", action="store_true", help="also list the paper's rows we do not measure (other methods)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return RunConfig(out=Path(args.out), data_root=args.data_root, checkpoints=args.checkpoints,
                     folds=tuple(args.folds) if args.folds else None, backbone=args.backbone, sam2_checkpoint=args.sam2_checkpoint,
                     image_size=args.image_size, episodes=args.episodes, device=args.device, small=args.small, seed=args.seed,
                     train_steps=args.train_steps, progress=not args.no_progress, protocol=args.protocol)  # fmt: skip


def open_output(out: str | Path, inputs: dict[str, list] | None = None) -> RunFolder:
    """A paper script's ``--out``, checked before any work (``inputs``: option -> input folders it
    may not be inside): a folder holding files no paper script wrote is refused in one line."""
    return RunFolder.open(out, command=PAPER_COMMAND, inputs={k: [f for f in v if f] for k, v in (inputs or {}).items()})


def report_files(table: str) -> list[str]:
    """The files :func:`report` writes for ``table``."""
    return [f"{table}.csv", f"{table}_ours.csv", *(f"{table}.{suffix}" for suffix in FIGURE_SUFFIXES), "summary.json"]


def report(ours: pd.DataFrame, table: str, out: Path, *, all_paper_rows: bool = False, warnings: Sequence[str] = ()) -> pd.DataFrame:
    """Print the paper beside ours (stdout) and write ``<table>.csv``, ``<table>_ours.csv``, the
    figure and ``summary.json`` (the notes and warnings). ``warnings``: the runs' sanity messages
    (e.g. classes never sampled); with the rows not comparable with the paper's (miniature, random
    weights, another benchmark), they are printed on stderr, listed in ``summary.json`` and drawn
    on the figure."""
    matplotlib.use("Agg")  # a script writes its figures, it shows none
    compared = side_by_side(ours, table, all_paper_rows=all_paper_rows)
    messages = list(dict.fromkeys([*comparison_warnings(compared, table), *warnings]))
    say(format_side_by_side(compared, table, notes=ours.attrs.get("notes", ())))
    sanity_report(messages)
    atomic_write_text(out / f"{table}.csv", compared.to_csv(index=False))
    atomic_write_text(out / f"{table}_ours.csv", ours.to_csv(index=False))
    if not compared.empty:
        ax = plot_side_by_side(compared)  # with the model behind ours under it
        ax.set_title(f"{table}: {TABLE_TITLES[table]}", fontsize=8)
        shown = messages if len(messages) <= 4 else [*messages[:3], f"... and {len(messages) - 3} more (summary.json)"]
        add_footnote(ax.figure, "", warnings=shown)
        save_figure(ax.figure, out / table)
        plt.close(ax.figure)
    atomic_write_json(out / "summary.json", {"table": table, "title": TABLE_TITLES[table], "notes": list(ours.attrs.get("notes", ())),
                                             "warnings": messages, "files": [f"{table}.csv", f"{table}_ours.csv", f"{table}.png"]})
    say(f"wrote {out / (table + '.csv')}, {out / (table + '_ours.csv')}, {out / table}.png/.pdf and {out / 'summary.json'}")
    return compared


def run_experiment(table: str, run: Callable[..., pd.DataFrame], argv: list[str] | None = None, *,
                   parser: argparse.ArgumentParser | None = None, options: Callable[[argparse.Namespace], dict] | None = None) -> int:
    """Parse ``argv``, run ``run(config, **options(args))``, report. Returns the exit code (2 with
    one clear line on bad input or missing data/checkpoints, as every command)."""
    parser = parser or experiment_parser(table)

    def body() -> int:
        args = parser.parse_args(argv)
        config = config_from_args(args)
        where = "the procedural benchmark (offline; the paper's numbers for reference only)" if config.synthetic else f"the paper's datasets under {config.data_root}"
        folder = open_output(config.out, {"--data-root": [config.data_root]})
        say(f"{table}: {TABLE_TITLES[table]} -- on {where}; model: {config.model_label()}")
        folder.claim(*report_files(table), *RUN_FOLDERS)
        with warnings.catch_warnings(record=True) as caught:  # the runs' sanity messages, said in words by report()
            warnings.simplefilter("always", SanityWarning)
            ours = run(config, **(options(args) if options else {}))
        for other in (w for w in caught if not issubclass(w.category, SanityWarning)):  # anything else as Python shows it
            warnings.showwarning(other.message, other.category, other.filename, other.lineno)
        found = [str(w.message) for w in caught if issubclass(w.category, SanityWarning)]
        report(ours, table, config.out, all_paper_rows=args.all_paper_rows, warnings=found)
        folder.finish(remove_stale=False, nested=RUN_FOLDERS)  # other tables' files in a shared --out stay
        return 0

    return run_main(body, prog=table)
