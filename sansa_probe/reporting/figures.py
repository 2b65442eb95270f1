"""Caveats a figure carries on itself, so that it cannot be read for an effect that is not there.

A figure travels without its log: whatever a reader needs to judge it is drawn on it.

* **chance**: :func:`draw_chance` draws the chance level of an accuracy-like plot (a dotted line,
  labelled); :func:`near_chance` says when a value is too close to it to mean anything, and
  :func:`mark_unreliable` draws such a curve or bar greyed and hatched, the reason written on the
  axes (:func:`note_on_axes`);
* **categories**: :data:`QUALITATIVE` is a palette whose first 20 colours differ by at least
  40 CIELAB units from each other (tab20's differ by 17: pale pairs), without greys (grey means
  "unreliable" here); :func:`class_styles` gives each class a colour and a marker (neighbours differ
  in both), :func:`label_groups` writes class names on the points;
* **intervals**: :func:`with_n` puts the number of episodes behind an interval into its label;
* **paper beside ours**: :func:`stamp_not_comparable` writes "not comparable" and why across the axes;
* **what produced it**: :func:`annotate_figure` writes the warnings (red) and the identity
  footnote (grey) under the figure.

Every artist drawn here carries a ``gid`` (:data:`GIDS`), so that tests and callers find it
without looking at pixels: :func:`texts_with_gid`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.container import Container
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

__all__ = [
    "GIDS",
    "MARKERS",
    "QUALITATIVE",
    "UNRELIABLE_COLOUR",
    "annotate_figure",
    "chance_reason",
    "class_styles",
    "draw_chance",
    "label_groups",
    "mark_unreliable",
    "near_chance",
    "note_on_axes",
    "stamp_not_comparable",
    "texts_with_gid",
    "with_n",
]

# what each drawn caveat is called (its matplotlib gid)
GIDS = {
    "chance": "chance",
    "unreliable": "unreliable",
    "caveat": "caveat",
    "class_label": "class-label",
    "not_comparable": "not-comparable",
    "warning": "warning",
    "footnote": "footnote",
}

# Greedy max-min selection in CIELAB from an sRGB grid (lightness 25-78, chroma > 30: no greys, nothing
# too pale on white), starting from matplotlib's blue: the first 16 differ by >= 41 units, the first 20
# by >= 40, all 24 by >= 35 (checked by tests/test_figure_caveats.py).
QUALITATIVE: tuple[str, ...] = (
    "#2277bb", "#00dd00", "#ff0000", "#0000ff", "#ee00aa", "#555500", "#00ccaa", "#ffaaaa",
    "#ffaa00", "#880022", "#551199", "#dd99ff", "#aacc44", "#dd11ff", "#663366", "#ff0066",
    "#3377ff", "#006655", "#44ccee", "#dd6633", "#007700", "#ccaa66", "#00dd77", "#cc5588",
)  # fmt: skip
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")  # 7 is coprime with 24: (colour, marker) pairs repeat after 168
UNRELIABLE_COLOUR = "0.62"
_WARNING_COLOUR = "#b00020"
_FOOTNOTE_COLOUR = "0.35"


# ============================================================================ chance


def near_chance(value: float, chance: float, *, factor: float = 2.0) -> bool:
    """Whether ``value`` (an accuracy, a fraction or percent like ``chance``) is below ``factor`` x
    ``chance``, or not a finite number. Twice chance is the default bar: a nearest-centroid accuracy
    of 8.3 % on 16 classes (chance 6.25 %) is noise, and a curve divided by it means nothing."""
    if not (isinstance(chance, (int, float)) and chance > 0):
        raise ValueError(f"chance: expected a positive number, got {chance!r}")
    return not math.isfinite(value) or value < factor * chance


def chance_reason(value: float, chance: float, *, what: str = "accuracy", percent: bool = True) -> str:
    """Why a value near chance means little, in words: ``"accuracy 8.3 % is near chance (6.2 %)"``."""
    scale = 100.0 if percent else 1.0
    unit = " %" if percent else ""
    if not math.isfinite(value):
        return f"{what} is not a finite number"
    position = "below" if value < chance else "near"
    return f"{what} {scale * value:.1f}{unit} is {position} chance ({scale * chance:.2f}{unit})"


def draw_chance(ax: Axes, level: float, *, label: str = "chance", axis: str = "y", **style: Any) -> Line2D:
    """A dotted line at the chance ``level`` (horizontal for ``axis="y"``), in the legend as ``label``."""
    options = {"color": "0.25", "linestyle": ":", "linewidth": 1.2, "zorder": 1.5, **style}
    line = ax.axhline(level, label=label, **options) if axis == "y" else ax.axvline(level, label=label, **options)
    line.set_gid(GIDS["chance"])
    return line


def _artists(item: Any) -> list[Artist]:
    if isinstance(item, Container):
        return [a for child in item.get_children() for a in _artists(child)]
    if isinstance(item, Artist):
        return [item]
    if isinstance(item, Iterable) and not isinstance(item, (str, bytes)):
        return [a for child in item for a in _artists(child)]
    return []


def mark_unreliable(items: Any, reason: str, *, ax: Axes | None = None) -> list[Artist]:
    """Draw ``items`` (lines, bars, bar or errorbar containers, lists of them) greyed and hatched:
    lines grey and dotted, patches light grey with a hatch. With ``ax``, ``reason`` is written on
    the axes (:func:`note_on_axes`). Returns the artists changed (their gid: ``"unreliable"``)."""
    changed = _artists(items)
    for artist in changed:
        if isinstance(artist, Patch):
            artist.set_facecolor("0.88")
            artist.set_edgecolor(UNRELIABLE_COLOUR)
            artist.set_hatch("///")
        elif isinstance(artist, Line2D):
            artist.set_color(UNRELIABLE_COLOUR)
            if artist.get_linestyle() not in ("None", " ", ""):
                artist.set_linestyle(":")
            artist.set_markerfacecolor(UNRELIABLE_COLOUR)
            artist.set_markeredgecolor(UNRELIABLE_COLOUR)
        elif hasattr(artist, "set_color"):
            artist.set_color(UNRELIABLE_COLOUR)
        artist.set_gid(GIDS["unreliable"])
    if ax is not None and reason:
        note_on_axes(ax, [reason])
    return changed


def note_on_axes(ax: Axes, messages: Sequence[str], *, width: int = 60) -> Text | None:
    """Write ``messages`` inside ``ax``, top left on a white box (gid ``"caveat"``); several calls
    stack their lines in one box. Returns the text, ``None`` when there is nothing to say."""
    messages = [m for m in messages if m]
    if not messages:
        return None
    old = [t for t in ax.texts if t.get_gid() == GIDS["caveat"]]
    lines = [line for t in old for line in t.get_text().split("\n")]
    for t in old:
        t.remove()
    for message in messages:
        lines += textwrap.wrap("! " + message, width, subsequent_indent="  ")
    text = ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, ha="left", va="top", fontsize=6.5, color=_WARNING_COLOUR,
                   bbox={"facecolor": "white", "edgecolor": _WARNING_COLOUR, "alpha": 0.9, "boxstyle": "round,pad=0.3"}, zorder=10)
    text.set_gid(GIDS["caveat"])
    return text


# ============================================================================ categories


def class_styles(keys: Sequence[Hashable]) -> dict[Hashable, dict[str, str]]:
    """``{key: {"color", "marker"}}`` in the order of ``keys``: colours from :data:`QUALITATIVE`,
    markers from :data:`MARKERS`, both cycling (lengths 24 and 7), so that no two of the first 168
    classes share both and neighbours differ in both. Give the keys in a stable order (sorted)
    so that a class keeps its style across figures."""
    return {key: {"color": QUALITATIVE[i % len(QUALITATIVE)], "marker": MARKERS[i % len(MARKERS)]} for i, key in enumerate(keys)}


def label_groups(ax: Axes, positions: Mapping[Hashable, tuple[float, float]], *, colors: Mapping[Hashable, str] | None = None,
                 fontsize: float = 6.5) -> list[Text]:
    """Write each class's name at its position (e.g. the median of its points; gid ``"class-label"``),
    in its colour on a white box, so that a scatter reads without matching colours to a legend."""
    texts = []
    for key, (x, y) in positions.items():
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        colour = (colors or {}).get(key, "black")
        text = ax.text(x, y, str(key), fontsize=fontsize, ha="center", va="center", color=colour, zorder=5,
                       bbox={"facecolor": "white", "edgecolor": colour, "alpha": 0.8, "boxstyle": "round,pad=0.15", "linewidth": 0.6})
        text.set_gid(GIDS["class_label"])
        texts.append(text)
    return texts


def with_n(label: str, n: int | float) -> str:
    """``"striped-star (n=5)"``: a label with the number of episodes (or samples) behind its interval."""
    return f"{label} (n={int(n)})"


# ============================================================================ paper beside ours


def stamp_not_comparable(ax: Axes, reason: str) -> Text:
    """Write "NOT COMPARABLE" and ``reason`` across the middle of ``ax`` (gid ``"not-comparable"``):
    for figures that show the paper's numbers beside ours measured on another model or data."""
    body = "\n".join(textwrap.wrap(reason, 55))
    text = ax.text(0.5, 0.5, f"NOT COMPARABLE\n{body}", transform=ax.transAxes, ha="center", va="center", fontsize=8,
                   color=_WARNING_COLOUR, fontweight="bold", zorder=10,
                   bbox={"facecolor": "white", "edgecolor": _WARNING_COLOUR, "alpha": 0.85, "boxstyle": "round,pad=0.4"})
    text.set_gid(GIDS["not_comparable"])
    return text


# ============================================================================ under the figure


def annotate_figure(fig: Figure, footnote: str = "", *, warnings: Sequence[str] = (), fontsize: float = 6.0) -> Figure:
    """Write ``warnings`` (red, one ``warning: ...`` each; gid ``"warning"``) and ``footnote`` (grey,
    the model's identity; gid ``"footnote"``) under ``fig``, wrapped to its width; the axes are kept
    clear of them (constrained layout, else ``subplots_adjust``). Calling it again adds below the
    layout's previous reservation only what is new. Returns ``fig``."""
    warnings = list(dict.fromkeys(w for w in warnings if w))
    if not footnote and not warnings:
        return fig
    width, height = fig.get_size_inches()
    per_line = max(20, int(width * 72 / (0.55 * fontsize)))
    blocks: list[tuple[str, str, str]] = []  # (text, colour, gid), bottom first
    if footnote:
        blocks.append(("\n".join(textwrap.wrap(footnote, per_line) or [footnote]), _FOOTNOTE_COLOUR, GIDS["footnote"]))
    if warnings:
        lines = [line for w in warnings for line in textwrap.wrap(f"warning: {w}", per_line, subsequent_indent="  ")]
        blocks.append(("\n".join(lines), _WARNING_COLOUR, GIDS["warning"]))
    previous = getattr(fig, "_sansa_reserved", 0.0)
    bottom = previous
    for text, colour, gid in blocks:
        n_lines = text.count("\n") + 1
        artist = fig.text(0.01, bottom + 0.004, text, fontsize=fontsize, color=colour, ha="left", va="bottom")
        artist.set_gid(gid)
        bottom += (n_lines * fontsize * 1.4 + 3) / 72 / height
    reserved = min(0.45, bottom)
    fig._sansa_reserved = reserved  # type: ignore[attr-defined]
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set") and "rect" in getattr(engine, "_params", {}):
        engine.set(rect=(0, reserved, 1, 1 - reserved))
    else:
        fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, reserved + 0.08))
    return fig


def texts_with_gid(fig_or_ax: Figure | Axes, gid: str) -> list[str]:
    """The text of every :class:`~matplotlib.text.Text` with ``gid`` on a figure (its axes included) or one Axes."""
    if isinstance(fig_or_ax, Axes):
        found = list(fig_or_ax.texts)
    else:
        found = list(fig_or_ax.texts) + [t for ax in fig_or_ax.axes for t in ax.texts]
    return [t.get_text() for t in found if t.get_gid() == gid]
