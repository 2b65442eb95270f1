"""Figures as pure functions of the probes' tidy tables.

Every ``plot_<x>(df, ax=None)`` draws on ``ax`` (or on a new :class:`matplotlib.figure.Figure`,
no pyplot state, safe under the Agg backend) and returns the Axes; the two image panels
(:func:`plot_pca_rgb`, :func:`plot_part_matching`) draw one Axes per image and return them as
an array. :func:`add_footnote` writes a line (the model's identity) under a figure;
:func:`save_figure` writes PNG + PDF atomically; :func:`write_projection_html` writes
an interactive plotly page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sansa_probe.io.atomic import atomic_path, atomic_write_text
from sansa_probe.reporting.figures import annotate_figure, chance_reason, class_styles, draw_chance, label_groups, mark_unreliable, near_chance

__all__ = [
    "FIGURE_SUFFIXES",
    "encoder_colours",
    "add_footnote",
    "save_figure",
    "plot_pca_concentration",
    "plot_projection",
    "write_projection_html",
    "plot_pca_rgb",
    "plot_linear_probe",
    "plot_part_matching",
    "plot_spatial_coherence",
]

FIGURE_SUFFIXES = ("png", "pdf")  # what save_figure writes of each figure


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _new_axes_grid(axes: Any, rows: int, cols: int, size: float = 2.5) -> np.ndarray:
    if axes is not None:
        grid = np.asarray(axes, dtype=object).reshape(-1)
        if grid.size < rows * cols:
            raise ValueError(f"axes: expected at least {rows * cols} Axes, got {grid.size}")
        return grid[: rows * cols].reshape(rows, cols)
    fig = Figure(figsize=(size * cols, size * rows), layout="constrained")
    return np.asarray(fig.subplots(rows, cols, squeeze=False), dtype=object)


def _require(df: pd.DataFrame, columns: Sequence[str], name: str = "df") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing} (has {list(df.columns)})")


def _groups(df: pd.DataFrame, hue: str | None):
    if hue is None or hue not in df.columns:
        yield None, df
    else:
        yield from df.groupby(hue, sort=False)


FIXED_COLOURS = {"sam2": 0, "sansa": 1}  # frozen SAM2 and SANSA keep the first two colours of the palette in every figure


def encoder_colours(names: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """One colour per encoder, the same in every figure of a run: ``sam2`` and ``sansa`` always
    the first two colours of ``tab10`` (matplotlib's default cycle, so a SAM2 / SANSA figure looks as
    it always did), every other encoder the next free colour in the order given."""
    palette = matplotlib.colormaps["tab10"]
    colours: dict[str, tuple[float, float, float, float]] = {}
    free = (k for k in range(len(FIXED_COLOURS), 10_000) if k not in FIXED_COLOURS.values())
    for name in dict.fromkeys(str(n) for n in names):
        colours[name] = palette(FIXED_COLOURS[name] if name in FIXED_COLOURS else next(free) % palette.N)
    return colours


def add_footnote(fig: Figure, text: str, *, fontsize: float = 6.0, warnings: Sequence[str] = ()) -> Figure:
    """Write ``text`` (the model's identity) under ``fig`` in small grey type, and ``warnings`` in
    red above it, wrapped to the figure's width (:func:`sansa_probe.reporting.figures.annotate_figure`);
    a constrained layout keeps the axes clear of them. Returns ``fig``."""
    return annotate_figure(fig, text, warnings=warnings, fontsize=fontsize)


def save_figure(fig: Figure, path_stem: str | os.PathLike, *, dpi: int = 200) -> list[Path]:
    """Write ``fig`` to ``<path_stem>.png`` and ``<path_stem>.pdf`` (:data:`FIGURE_SUFFIXES`; atomic
    writes); returns both paths."""
    stem = Path(path_stem)
    paths = []
    for suffix in (f".{s}" for s in FIGURE_SUFFIXES):
        path = stem.with_name(stem.name + suffix)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=dpi)
        paths.append(path)
    return paths


def plot_pca_concentration(df: pd.DataFrame, ax: Axes | None = None, *, hue: str | None = "model",
                           colors: Mapping[str, Any] | None = None, chance: float | None = None) -> Axes:
    """Relative accuracy vs number of principal components (fig. 8a), one line per ``hue``
    value (coloured by ``colors[value]`` where given, e.g. :func:`encoder_colours`), from
    :meth:`PCAConcentration.accuracy_curve` tables (concatenated). Each curve's label names the
    full-dimension accuracy it is relative to. With ``chance`` (the accuracy of a guess, 1 / number
    of classes), each curve's chance level (``chance`` / its full accuracy) is a dotted line in its
    colour, and a curve whose full accuracy is below twice chance is drawn grey and dotted, the
    reason written on the axes (:func:`~sansa_probe.reporting.figures.mark_unreliable`)."""
    _require(df, ["n_components", "metric", "value"])
    ax = _new_axes(ax)
    curve = df[df["metric"] == "relative_accuracy"]
    full_rows = df[df["metric"] == "full_accuracy"]
    for key, part in _groups(curve, hue):
        part = part.sort_values("n_components")
        name = None if key is None else str(key)
        full_part = full_rows if key is None else full_rows[full_rows[hue] == key]
        full = float(full_part["value"].iloc[0]) if len(full_part) else float("nan")
        label = f"{name or 'accuracy'} (full dimension {100 * full:.1f} %)" if np.isfinite(full) else name
        (line,) = ax.plot(part["n_components"], part["value"], label=label, color=(colors or {}).get(str(key)))
        if chance is None or not np.isfinite(full) or full <= 0:
            continue
        level = draw_chance(ax, chance / full, label=f"chance ({100 * chance:.2f} %) for {name or 'it'}", color=line.get_color())
        if near_chance(full, chance):
            reason = f"{name + ': ' if name else ''}{chance_reason(full, chance, what='full-dimension accuracy')}: below 2x chance, its relative curve is noise"
            mark_unreliable(line, reason, ax=ax)
    ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle="--", label="full dimension")
    ax.set_xlabel("number of principal components")
    ax.set_ylabel("relative accuracy (k PCs / full dimension)")
    ax.legend(title=hue if hue is not None and hue in curve.columns else None, fontsize="small")
    return ax


def plot_projection(df: pd.DataFrame, ax: Axes | None = None, *, hue: str = "class", s: float = 8.0, legend_max: int = 24) -> Axes:
    """2-D embedding coloured by ``hue`` (figs. 4a, 8b-c) from :meth:`Projection2D.to_frame`: each
    class in a colour of a qualitative palette and a marker (:func:`~sansa_probe.reporting.figures.class_styles`;
    sorted, so a class keeps its style across panels), its name written at the median of its
    points, and a legend beside the axes up to ``legend_max`` classes."""
    _require(df, ["x", "y", hue])
    ax = _new_axes(ax)
    groups = list(df.groupby(hue, sort=True))
    styles = class_styles([key for key, _ in groups])
    for key, part in groups:
        style = styles[key]
        ax.scatter(part["x"], part["y"], s=s, label=str(key), alpha=0.8, linewidths=0, color=style["color"], marker=style["marker"])
    label_groups(ax, {key: (float(part["x"].median()), float(part["y"].median())) for key, part in groups},
                 colors={key: style["color"] for key, style in styles.items()})
    ax.set_xticks([])
    ax.set_yticks([])
    if len(groups) <= legend_max:  # beside the points, never over them
        ax.legend(title=hue, fontsize="small", markerscale=2, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return ax


def write_projection_html(
    df: pd.DataFrame,
    path: str | os.PathLike,
    *,
    color: str = "class",
    hover: Sequence[str] = ("image_id", "class", "instance_id"),
    title: str | None = None,
    include_plotlyjs: bool | str = True,
) -> Path:
    """Interactive scatter of a :meth:`Projection2D.to_frame` table, hover showing ``hover``
    columns (image id, class, ...). ``include_plotlyjs=True`` embeds plotly (works offline);
    ``"cdn"`` links it instead. Written atomically; returns the path."""
    import plotly.express as px  # deferred: slow to import; only the interactive HTML figures need it

    _require(df, ["x", "y", color])
    data = df.copy()
    data[color] = data[color].astype(str)  # categorical colours
    fig = px.scatter(data, x="x", y="y", color=color, hover_data=[c for c in hover if c in data.columns], title=title)
    fig.update_traces(marker={"size": 6})
    return atomic_write_text(path, fig.to_html(full_html=True, include_plotlyjs=include_plotlyjs))


def _maps_from_frame(df: pd.DataFrame, value_columns: Sequence[str]) -> list[np.ndarray]:
    maps = []
    for _, part in df.groupby("image", sort=True):
        h, w = int(part["row"].max()) + 1, int(part["col"].max()) + 1
        out = np.zeros((h, w, len(value_columns)), dtype=np.float64)
        out[part["row"].to_numpy(), part["col"].to_numpy()] = part[list(value_columns)].to_numpy(dtype=np.float64)
        maps.append(out)
    return maps


def plot_pca_rgb(df: pd.DataFrame, *, images: Sequence[np.ndarray] | None = None, axes: Any = None) -> np.ndarray:
    """PCA-RGB maps (figs. 2, 4b) from :meth:`PCARGB.to_frame`, each under its image when
    ``images`` (``HxWx3``) are given. Returns the Axes array ``[rows, n_images]``."""
    _require(df, ["image", "row", "col", "r", "g", "b"])
    maps = _maps_from_frame(df, ["r", "g", "b"])
    if images is not None and len(images) != len(maps):
        raise ValueError(f"images: expected {len(maps)} images (one per map), got {len(images)}")
    rows = 1 if images is None else 2
    grid = _new_axes_grid(axes, rows, len(maps))
    for i, rgb in enumerate(maps):
        if images is not None:
            grid[0, i].imshow(np.asarray(images[i]))
        grid[rows - 1, i].imshow(np.clip(rgb, 0, 1), interpolation="nearest")
    for ax in grid.reshape(-1):
        ax.set_axis_off()
    return grid


def plot_part_matching(
    df: pd.DataFrame, *, images: Sequence[np.ndarray] | None = None, axes: Any = None, cmap: str = "tab10", alpha: float = 0.6
) -> np.ndarray:
    """Matched clusters in shared colours (fig. 4c) from the pixels table of :func:`~sansa_probe.probes.match_parts`,
    overlaid on the two ``images`` if given. Returns the Axes array ``[1, 2]``."""
    _require(df, ["image", "row", "col", "cluster"])
    maps = [m[..., 0].astype(int) for m in _maps_from_frame(df, ["cluster"])]
    if images is not None and len(images) != len(maps):
        raise ValueError(f"images: expected {len(maps)} images, got {len(images)}")
    colours = matplotlib.colormaps[cmap]
    grid = _new_axes_grid(axes, 1, len(maps))
    for i, labels in enumerate(maps):
        ax = grid[0, i]
        rgba = np.zeros(labels.shape + (4,))
        inside = labels >= 0
        rgba[inside] = colours(labels[inside] % colours.N)
        rgba[inside, 3] = alpha if images is not None else 1.0
        if images is not None:
            image = np.asarray(images[i])
            ax.imshow(image)
            ax.imshow(rgba, interpolation="nearest", extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
        else:
            ax.imshow(rgba, interpolation="nearest")
        ax.set_axis_off()
    return grid


def _grouped_bars(ax: Axes, df: pd.DataFrame, x: str | None, hue: str | None, ylabel: str, colors: Mapping[str, Any] | None = None) -> Axes:
    """Mean ``value`` per ``x`` (ticks) and ``hue`` (colours, in the legend); where a bar averages
    several rows, an error bar of +-1 standard deviation over them (the spread the table holds)."""
    x = x if x is not None and x in df.columns else None
    hue = hue if hue is not None and hue in df.columns else None
    keys = [k for k in (x, hue) if k is not None]
    if keys:
        table = df.groupby(keys, sort=False)["value"].agg(["mean", "std", "count"]).reset_index()
    else:
        table = pd.DataFrame({"mean": [df["value"].mean()], "std": [df["value"].std()], "count": [len(df)]})
    xs = list(dict.fromkeys(table[x])) if x else [""]
    hs = list(dict.fromkeys(table[hue])) if hue else [None]
    width = 0.8 / len(hs)
    spread = False
    for j, h in enumerate(hs):
        part = table if h is None else table[table[hue] == h]
        rows = [part[part[x] == v] if x else part for v in xs]
        heights = [float(r["mean"].iloc[0]) if len(r) else np.nan for r in rows]
        errors = [float(r["std"].iloc[0]) if len(r) and r["count"].iloc[0] > 1 else np.nan for r in rows]
        has_error = not all(np.isnan(errors))
        spread |= has_error
        ax.bar(np.arange(len(xs)) + (j - (len(hs) - 1) / 2) * width, heights, width, label=None if h is None else str(h),
               color=(colors or {}).get(str(h)),
               yerr=np.nan_to_num(errors) if has_error else None, capsize=3 if has_error else 0, error_kw={"linewidth": 0.8})
    ax.set_xticks(np.arange(len(xs)), [str(v) for v in xs])
    if x:
        ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    if hue:
        ax.legend(title=hue + (" (error bars: ±1 s.d.)" if spread else ""), fontsize="small")
    return ax


COLLAPSED_SHARE = 0.99  # a linear probe predicting one class for this share of the pixels has collapsed (as reporting.sanity says)


def plot_linear_probe(df: pd.DataFrame, ax: Axes | None = None, *, x: str | None = "layer", hue: str | None = "model",
                      colors: Mapping[str, Any] | None = None) -> Axes:
    """Linear-probe mIoU bars in % (fig. 9 left), one colour per model (in the legend; ``colors``
    where given), from :meth:`LinearProbe.to_frame` tables (IoU as fractions)."""
    _require(df, ["metric", "value"])
    ax = _new_axes(ax)
    data = df[df["metric"] == "miou"].assign(value=lambda d: 100.0 * d["value"])
    _grouped_bars(ax, data, x, hue, "mIoU (%)", colors)
    shares = df[df["metric"] == "predicted_share"]
    if hue is None or hue not in df.columns or shares.empty:
        return ax
    bars = {label: container for container in ax.containers if (label := container.get_label()) and not label.startswith("_")}
    for key, part in shares.groupby(hue, sort=False):
        total = float(part["value"].sum())
        if total <= 0 or str(key) not in bars:
            continue
        top = part.loc[part["value"].idxmax()]
        share = float(top["value"]) / total
        if share >= COLLAPSED_SHARE:
            name = top["class_name"] if "class_name" in part.columns and pd.notna(top.get("class_name")) else top.get("class_id", "one class")
            mark_unreliable(bars[str(key)], f"{key}: predicts {name} for {100 * share:.1f} % of the pixels (collapsed): its mIoU says nothing about the features", ax=ax)
    return ax


def plot_spatial_coherence(df: pd.DataFrame, ax: Axes | None = None, *, x: str | None = "setting", hue: str | None = "model",
                           colors: Mapping[str, Any] | None = None) -> Axes:
    """Mean smoothness (table 12; lower is better) per ``x`` and ``hue`` (``colors`` where given) from
    :func:`~sansa_probe.probes.pair_smoothness` tables (with model and setting columns)."""
    _require(df, ["metric", "value"])
    ax = _new_axes(ax)
    data = df[df["metric"] == "smoothness"]
    return _grouped_bars(ax, data, x, hue, "spatial coherence (px, lower is better)", colors)
