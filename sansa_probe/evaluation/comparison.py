"""Frozen SAM2 against SANSA on the same episodes: a paired bootstrap of the mIoU difference.

Two evaluations of the same episodes (same sampler, seed and prompts; only the adapters differ)
give, per episode, the foreground intersection and union of each model. mIoU is the literature's
(HSNet's): per class, the sum of intersections over the sum of unions; then the mean over the
classes. The difference of two such numbers has no closed-form error bar, so we bootstrap it:

* replicate ``b`` resamples, **within each class**, that class's episodes with replacement (the
  class mix of the benchmark stays fixed: it is part of the metric's definition);
* the same resampled episodes are used for both models (paired: the episode-to-episode
  difficulty cancels out, which is what makes small differences measurable);
* ``difference_b = mIoU_adapted(b) - mIoU_frozen(b)``; the interval is the percentile interval of
  the replicates (``confidence`` = 0.95 by default). Per-class intervals come from the same
  replicates.

    table = paired_bootstrap(frozen_episodes, adapted_episodes, class_names=names)
    plot_comparison(table)          # forest plot, percent

Inputs are the ``episodes.csv`` tables that ``python -m sansa_probe.evaluate`` writes (columns
``episode, class_id, intersection, union``; ``fold`` when present is part of the episode key).
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sansa_probe.io.atomic import atomic_path, atomic_write_json, atomic_write_text
from sansa_probe.reporting.figures import UNRELIABLE_COLOUR, annotate_figure, mark_unreliable, with_n
from sansa_probe.reporting.identity import identity_footnote
from sansa_probe.reporting.sanity import check_identical, check_small_groups

__all__ = ["COMPARISON_COLUMNS", "COMPARISON_FILES", "Comparison", "compare_evaluations", "comparison_summary", "paired_bootstrap", "plot_comparison",
           "read_evaluation", "write_comparison"]

COMPARISON_FILES = ("comparison.csv", "comparison.png", "comparison.pdf", "summary.json")  # what write_comparison writes

COMPARISON_COLUMNS = [
    "scope", "class_id", "class_name", "n_episodes", "frozen", "adapted", "difference", "ci_low", "ci_high",
    "p_not_better", "episode_mean_difference", "episode_difference_se",
]  # fmt: skip

_REQUIRED = ("episode", "class_id", "intersection", "union")


def _key_columns(table: pd.DataFrame) -> list[str]:
    return ["fold", "episode"] if "fold" in table.columns else ["episode"]


def _checked(table: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame of episodes, got {type(table).__name__}")
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; expected the episodes.csv that evaluate writes")
    if len(table) == 0:
        raise ValueError(f"{name}: no episodes")
    keys = _key_columns(table)
    if table.duplicated(keys).any():
        raise ValueError(f"{name}: duplicated episodes (key {keys}); expected one row per episode")
    if (table["intersection"] < 0).any() or (table["union"] < table["intersection"]).any():
        raise ValueError(f"{name}: intersections must be >= 0 and <= unions")
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def _paired(frozen: pd.DataFrame, adapted: pd.DataFrame) -> pd.DataFrame:
    frozen, adapted = _checked(frozen, "frozen"), _checked(adapted, "adapted")
    keys = _key_columns(frozen)
    if keys != _key_columns(adapted):
        raise ValueError("frozen and adapted: one table has a 'fold' column and the other not")
    shared = [c for c in ("class_id", "target_id", "reference_ids") if c in frozen.columns and c in adapted.columns]
    left = frozen[keys + shared + ["intersection", "union"]]
    right = adapted[keys + shared + ["intersection", "union"]]
    joined = left.merge(right, on=keys, how="outer", suffixes=("_frozen", "_adapted"), indicator=True)
    unmatched = joined[joined["_merge"] != "both"]
    if len(unmatched):
        raise ValueError(
            f"frozen and adapted cover different episodes ({len(unmatched)} unmatched, e.g. "
            f"{unmatched[keys].iloc[0].to_dict()}); a paired comparison needs the same episodes"
        )
    for column in shared:
        if not (joined[f"{column}_frozen"].astype(str) == joined[f"{column}_adapted"].astype(str)).all():
            raise ValueError(f"frozen and adapted: episodes differ in {column!r}; were they run with the same seed and data?")
    joined = joined.rename(columns={"class_id_frozen": "class_id"})
    return joined


def _class_iou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    return 100.0 * intersection / np.maximum(union, 1)


def paired_bootstrap(
    frozen: pd.DataFrame,
    adapted: pd.DataFrame,
    *,
    class_ids: Sequence[Hashable] | None = None,
    class_names: Mapping[Hashable, str] | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired, class-stratified bootstrap of ``mIoU(adapted) - mIoU(frozen)``, overall and per class.

    Args:
        frozen, adapted: episode tables of the same episodes (see module docstring).
        class_ids: the classes mIoU averages over (default: the classes in the tables). A class listed
            here but never sampled counts as IoU 0 for both models (HSNet's rule), so it adds 0 to the
            difference but still divides the mean.
        class_names: optional names for the ``class_name`` column.
        n_boot: bootstrap replicates (>= 100).
        confidence: central interval coverage in (0, 1).
        seed: seed of the resampling.

    Returns:
        A tidy table (columns :data:`COMPARISON_COLUMNS`): one ``scope="overall"`` row, then one
        ``scope="class"`` row per class. Values are percent (IoU points). ``p_not_better`` is the
        fraction of replicates with a difference <= 0 (a one-sided bootstrap p-value);
        ``episode_mean_difference`` and ``episode_difference_se`` are the mean and standard error of
        the per-episode IoU differences (a cruder, unstratified summary).
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot: expected an int >= 100, got {n_boot!r}")
    if not (isinstance(confidence, float) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence: expected a float in (0, 1), got {confidence!r}")
    joined = _paired(frozen, adapted)
    present = list(dict.fromkeys(joined["class_id"].tolist()))
    if class_ids is None:
        classes = present
    else:
        classes = list(class_ids)
        extra = [c for c in present if c not in set(classes)]
        if extra:
            raise ValueError(f"class_ids: the tables hold classes not listed: {extra[:5]}")
    names = dict(class_names or {})
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    n_classes = len(classes)
    boot_f = np.zeros((n_boot, n_classes))
    boot_a = np.zeros((n_boot, n_classes))
    rows: list[dict[str, Any]] = []
    point_f = np.zeros(n_classes)
    point_a = np.zeros(n_classes)
    for j, class_id in enumerate(classes):
        episodes = joined[joined["class_id"] == class_id]
        n = len(episodes)
        if n == 0:
            rows.append(_row("class", class_id, names, 0, 0.0, 0.0, np.zeros(1), 0.0, np.zeros(0)))
            continue
        i_f, u_f = episodes["intersection_frozen"].to_numpy(np.float64), episodes["union_frozen"].to_numpy(np.float64)
        i_a, u_a = episodes["intersection_adapted"].to_numpy(np.float64), episodes["union_adapted"].to_numpy(np.float64)
        point_f[j] = _class_iou(i_f.sum(), u_f.sum())
        point_a[j] = _class_iou(i_a.sum(), u_a.sum())
        draw = rng.integers(0, n, size=(n_boot, n))
        boot_f[:, j] = _class_iou(i_f[draw].sum(axis=1), u_f[draw].sum(axis=1))
        boot_a[:, j] = _class_iou(i_a[draw].sum(axis=1), u_a[draw].sum(axis=1))
        per_episode = _class_iou(i_a, u_a) - _class_iou(i_f, u_f)
        rows.append(_row("class", class_id, names, n, point_f[j], point_a[j], boot_a[:, j] - boot_f[:, j], alpha, per_episode))
    per_episode_all = _class_iou(joined["intersection_adapted"].to_numpy(np.float64), joined["union_adapted"].to_numpy(np.float64)) - _class_iou(
        joined["intersection_frozen"].to_numpy(np.float64), joined["union_frozen"].to_numpy(np.float64)
    )
    overall = _row("overall", "", {}, len(joined), float(point_f.mean()), float(point_a.mean()),
                   boot_a.mean(axis=1) - boot_f.mean(axis=1), alpha, per_episode_all)  # fmt: skip
    return pd.DataFrame.from_records([overall, *rows], columns=COMPARISON_COLUMNS)


def _row(scope: str, class_id: Any, names: Mapping, n: int, frozen: float, adapted: float, replicates: np.ndarray,
         alpha: float, per_episode: np.ndarray) -> dict[str, Any]:  # fmt: skip
    low, high = (np.quantile(replicates, [alpha, 1.0 - alpha]) if n else (0.0, 0.0))
    se = float(per_episode.std(ddof=1) / math.sqrt(len(per_episode))) if len(per_episode) > 1 else float("nan")
    return {
        "scope": scope, "class_id": class_id, "class_name": names.get(class_id, ""), "n_episodes": int(n),
        "frozen": float(frozen), "adapted": float(adapted), "difference": float(adapted - frozen),
        "ci_low": float(low), "ci_high": float(high),
        "p_not_better": float(np.mean(replicates <= 0.0)) if n else float("nan"),
        "episode_mean_difference": float(per_episode.mean()) if len(per_episode) else float("nan"),
        "episode_difference_se": se,
    }  # fmt: skip


def comparison_summary(table: pd.DataFrame, *, confidence: float = 0.95) -> str:
    """One line in words: both mIoUs, the difference with its interval, and whether the interval excludes 0."""
    row = table[table["scope"] == "overall"].iloc[0]
    level = f"{100 * confidence:.0f}%"
    verdict = (
        "SANSA is better on these episodes (interval above 0)" if row["ci_low"] > 0
        else "frozen SAM2 is better on these episodes (interval below 0)" if row["ci_high"] < 0
        else "no significant difference (interval contains 0)"
    )  # fmt: skip
    return (
        f"mIoU frozen SAM2 {row['frozen']:.2f}% vs SANSA {row['adapted']:.2f}%: difference "
        f"{row['difference']:+.2f} points, {level} paired bootstrap CI [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}] "
        f"over {int(row['n_episodes'])} episodes; {verdict}"
    )


def plot_comparison(table: pd.DataFrame, ax: Axes | None = None, *, title: str | None = None, min_episodes: int = 5) -> Axes:
    """Forest plot of the differences (percent points) with their intervals; overall on top
    (on a new :class:`~matplotlib.figure.Figure` unless ``ax`` is given). Each label carries what
    the difference is of and how much it rests on: the class's name, its episodes (``n=``) and both
    absolute IoUs (``frozen -> SANSA``, %); a class with fewer than ``min_episodes`` episodes is
    drawn grey (the legend says why). Columns ``n_episodes``, ``frozen`` and ``adapted`` are used
    where the table has them."""
    if ax is None:
        ax = Figure(figsize=(8.5, 1.8 + 0.28 * len(table)), layout="constrained").add_subplot()
    ordered = pd.concat([table[table["scope"] == "overall"], table[table["scope"] == "class"].sort_values("difference")])
    labels = [_row_label(row) for row in ordered.itertuples()]
    y = np.arange(len(ordered))[::-1]
    diff = ordered["difference"].to_numpy()
    err = np.vstack([diff - ordered["ci_low"].to_numpy(), ordered["ci_high"].to_numpy() - diff])
    counts = ordered["n_episodes"].to_numpy() if "n_episodes" in ordered else np.full(len(ordered), np.inf)
    thin = []
    for yi, d, e0, e1, scope, n in zip(y, diff, err[0], err[1], ordered["scope"], counts):
        bar = ax.errorbar(d, yi, xerr=[[e0], [e1]], fmt="o", color="black" if scope == "overall" else "tab:blue", capsize=3, markersize=4)
        if scope == "class" and n < min_episodes:
            thin.append(bar)
    mark_unreliable(thin, "")
    ax.axvline(0.0, color="grey", linewidth=1, linestyle="--")
    ax.set_yticks(y, labels, fontsize="small")
    ax.set_xlabel("IoU difference, SANSA - frozen SAM2 (% points, paired bootstrap CI)")
    handles = [Line2D([], [], color="black", marker="o", markersize=4, label="overall mIoU"),
               Line2D([], [], color="tab:blue", marker="o", markersize=4, label="per class")]
    if thin:
        handles.append(Line2D([], [], color=UNRELIABLE_COLOUR, marker="o", markersize=4, linestyle=":",
                              label=f"per class, < {min_episodes} episodes: too few to read"))
    ax.legend(handles=handles, title="difference, CI", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title)
    return ax


def _row_label(row: Any) -> str:
    """``"striped-star (n=5): 27.4 -> 28.6 %"``: the row's name, its episodes and both absolute IoUs."""
    name = "overall mIoU" if row.scope == "overall" else _class_label(row.class_id, row.class_name)
    if hasattr(row, "n_episodes") and pd.notna(row.n_episodes):
        name = with_n(name, row.n_episodes)
    if hasattr(row, "frozen") and hasattr(row, "adapted") and pd.notna(row.frozen) and pd.notna(row.adapted):
        digits = 2 if row.scope == "overall" else 1
        name += f": {row.frozen:.{digits}f} \u2192 {row.adapted:.{digits}f} %"
    return name


def _class_label(class_id: Any, name: Any) -> str:
    """A class's name, else ``class <id>`` (ids read back from CSV as floats: 28.0 -> 28)."""
    if isinstance(name, str) and name.strip():
        return name
    try:
        number = float(class_id)
        return f"class {int(number)}" if number.is_integer() else f"class {class_id}"
    except (TypeError, ValueError):
        return f"class {class_id}"


# ----------------------------------------------------------------------------- two evaluate folders


def read_evaluation(folder: str | Path) -> tuple[pd.DataFrame, list, dict[str, Any]]:
    """An evaluate output folder's episodes (``episodes.csv``), the classes its mIoU averages over
    (``results.csv``) and its ``summary.json`` (empty when absent). The classes' names, where
    ``results.csv`` has them, are in the episodes table's ``attrs["class_names"]``."""
    folder = Path(folder)
    table_path, results_path, summary_path = folder / "episodes.csv", folder / "results.csv", folder / "summary.json"
    for path in (table_path, results_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; expected an evaluate output folder")
    results = pd.read_csv(results_path)
    scored = results[results["metric"] == "iou"]
    classes = scored["class_id"].tolist()
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    episodes = pd.read_csv(table_path)
    if "class_name" in scored:
        episodes.attrs["class_names"] = {c: str(n) for c, n in zip(scored["class_id"], scored["class_name"]) if isinstance(n, str) and n}
    return episodes, classes, summary


@dataclass
class Comparison:
    """Frozen SAM2 against SANSA from two evaluate folders.

    ``table``: :func:`paired_bootstrap`'s, with an ``identity`` column when the runs name their
    models; ``line``: :func:`comparison_summary`; ``runs``/``summaries``: the folders and their
    ``summary.json``; ``footnote``: the models in one line; ``inherited``: the runs' own warnings;
    ``warnings``: this comparison's (identical numbers, classes with too few episodes for their intervals).
    """

    table: pd.DataFrame
    line: str
    runs: dict[str, Path]
    summaries: dict[str, dict[str, Any]]
    footnote: str
    inherited: list[str]
    warnings: list[str]


def compare_evaluations(frozen: str | Path, adapted: str | Path, *, n_boot: int = 2000, confidence: float = 0.95,
                        seed: int = 0) -> Comparison:  # fmt: skip
    """Pair the episodes of two evaluate folders (frozen SAM2, SANSA; the same benchmark and fold)
    and bootstrap the mIoU difference (:func:`paired_bootstrap`)."""
    runs = {"frozen": Path(frozen), "adapted": Path(adapted)}
    (frozen_rows, classes, frozen_summary), (adapted_rows, adapted_classes, adapted_summary) = (read_evaluation(p) for p in runs.values())
    if sorted(map(str, classes)) != sorted(map(str, adapted_classes)):
        raise ValueError(f"--from-runs: {runs['frozen']} and {runs['adapted']} score different classes; expected the same benchmark and fold")
    names = frozen_rows.attrs.get("class_names") or adapted_rows.attrs.get("class_names") or None
    table = paired_bootstrap(frozen_rows, adapted_rows, class_ids=classes or None, class_names=names, n_boot=n_boot, confidence=confidence,
                             seed=seed)
    summaries = {"frozen": frozen_summary, "adapted": adapted_summary}
    footnote = identity_footnote({name: summary["identity"] for name, summary in summaries.items() if summary.get("identity")})
    overall = table.iloc[0]
    return Comparison(
        table=table.assign(identity=footnote) if footnote else table,
        line=comparison_summary(table, confidence=confidence),
        runs=runs,
        summaries=summaries,
        footnote=footnote,
        inherited=list(dict.fromkeys(w for summary in summaries.values() for w in summary.get("warnings", []))),
        warnings=[*check_identical(float(overall["frozen"]), float(overall["adapted"]), what="compare, overall mIoU"),
                  *check_small_groups({_class_label(r.class_id, r.class_name): int(r.n_episodes)
                                       for r in table[(table["scope"] == "class") & (table["n_episodes"] > 0)].itertuples()},
                                      what="compare, per-class intervals")],
    )


def write_comparison(out: str | Path, comparison: Comparison, *, command: str, argv: Sequence[str],
                     bootstrap: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """``comparison.csv``, ``comparison.png``/``.pdf`` (the forest plot with the result above it, the
    warnings and the models under it) and ``summary.json`` (the command and its ``argv``, the ``bootstrap`` settings, the
    result, the models, warnings) into ``out``; returns the summary."""
    out = Path(out)
    table, footnote = comparison.table, comparison.footnote
    atomic_write_text(out / "comparison.csv", table.to_csv(index=False))
    ax = plot_comparison(table, title="frozen SAM2 vs SANSA, same episodes\n" + "\n".join(textwrap.wrap(comparison.line, 110)))
    ax.title.set_fontsize(7)
    annotate_figure(ax.figure, f"model: {footnote}" if footnote else "", warnings=[*comparison.inherited, *comparison.warnings])
    for suffix in ("png", "pdf"):
        with atomic_path(out / f"comparison.{suffix}") as tmp:
            ax.figure.savefig(tmp, format=suffix, dpi=150)
    summaries = comparison.summaries
    summary = {
        "command": command,
        "argv": list(argv),
        "runs": {name: str(path) for name, path in comparison.runs.items()},
        "result": comparison.line,
        "overall": table.iloc[0].to_dict(),
        "bootstrap": dict(bootstrap),
        "models": {name: summaries[name].get("identity", summaries[name].get("model")) for name in ("frozen", "adapted")},
        "identity": footnote,
        "warnings": [*comparison.inherited, *comparison.warnings],
        "files": {"table": "comparison.csv", "figure": "comparison.png"},
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
