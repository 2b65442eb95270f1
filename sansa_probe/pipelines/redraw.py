"""A probe run's figures drawn again from the files on disk (its CSVs, and its images where the figure shows them).

A probe run folder holds ``config.json`` (with ``command``, e.g. ``sansa_probe.pca``), one
``<table>.csv`` per table of the pipeline's ``TABLES``, and, for the figures that show the
input images (PCA-RGB, part matching), ``images/index.json`` with one PNG per image id
(:func:`write_images`). :func:`redraw` reads them back and calls the pipeline's ``figures``;
the model's identity in ``config.json`` becomes the figures' footnote again, its warnings the lines above it.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from sansa_probe.io.atomic import atomic_write_json
from sansa_probe.io.images import load_rgb
from sansa_probe.io.manifest import MANIFEST, RunFolder
from sansa_probe.probes.plots import FIGURE_SUFFIXES, add_footnote, save_figure
from sansa_probe.reporting.identity import identity_footnote
from sansa_probe.io.masks import save_png

__all__ = ["pipeline_of", "read_images", "read_tables", "redraw", "write_images"]

ID_COLUMNS = ("image_id", "image_a", "image_b", "source", "target")  # read back as strings, as written


def pipeline_of(command: str) -> ModuleType:
    """The pipeline module of a probe command (``sansa_probe.pca`` -> :mod:`sansa_probe.pipelines.pca`)."""
    name = str(command).rsplit(".", 1)[-1]
    try:
        return importlib.import_module(f"sansa_probe.pipelines.{name}")
    except ModuleNotFoundError:
        raise ValueError(f"command {command!r}: not a probe command with figures") from None


def write_images(out: str | os.PathLike, images: Mapping[str, np.ndarray]) -> Path:
    """``images`` (``{image id: HxWx3 uint8}``) as ``<out>/images/<k>.png`` and ``images/index.json``."""
    folder = Path(out) / "images"
    index = []
    for k, (image_id, image) in enumerate(images.items()):
        name = f"{k:04d}.png"
        save_png(folder / name, np.asarray(image))
        index.append({"image_id": str(image_id), "file": name})
    return atomic_write_json(folder / "index.json", index)


def read_images(run_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The images :func:`write_images` wrote (``None`` when the run wrote none)."""
    index = Path(run_dir) / "images" / "index.json"
    if not index.is_file():
        return None
    return {row["image_id"]: load_rgb(index.parent / row["file"], name=f"image {row['image_id']}") for row in json.loads(index.read_text())}


def read_tables(run_dir: str | os.PathLike, names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """``{name: <run_dir>/<name>.csv}``; image ids stay strings."""
    tables = {}
    for name in names:
        path = Path(run_dir) / f"{name}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir}: no {path.name} (a table of this run's figures)")
        tables[name] = pd.read_csv(path, dtype={column: str for column in ID_COLUMNS})
    return tables


def redraw(run_dir: str | os.PathLike) -> list[Path]:
    """Draw the figures of a probe run again from its files and save them beside the tables
    (PNG + PDF); returns the files written. A run folder with a ``sansa-manifest.json`` must be the
    command's own (its manifest then records the new figures, so a later run still knows them)."""
    run = Path(run_dir)
    config_path = run / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run}: no config.json (not the folder of a probe run)")
    config = json.loads(config_path.read_text())
    if "command" not in config:
        raise ValueError(f"{config_path}: names no 'command'; it was written by an older version")
    pipeline = pipeline_of(config["command"])
    options = {option: config[key] for option, key in getattr(pipeline, "FIGURE_OPTIONS", {}).items() if key in config}
    folder = RunFolder.open(run, command=config["command"], name="--redraw") if (run / MANIFEST).is_file() else None
    figures = pipeline.figures(read_tables(run, pipeline.TABLES), read_images(run), **options)
    footnote = identity_footnote(config.get("identity") or {})
    if folder is not None:
        folder.claim(*(f"{name}.{suffix}" for name in figures for suffix in FIGURE_SUFFIXES))
    warnings = [str(w) for w in config.get("warnings") or []]
    written = [path for name, figure in figures.items() for path in save_figure(add_footnote(figure, footnote, warnings=warnings), run / name)]
    if folder is not None:
        folder.finish(remove_stale=False)
    return written
