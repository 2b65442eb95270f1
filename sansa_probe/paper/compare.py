"""The paper's number beside ours: one table per table/figure, and a plain-text printer.

``ours`` is a tidy DataFrame with the keys of :data:`~sansa_probe.paper.numbers.PAPER_COLUMNS`
(``table, method, setting, dataset, fold, shots, metric``), ``value``, and ``ours_dataset``: the
benchmark the number was really measured on; optionally ``identity``: the model that produced it
(:func:`sansa_probe.reporting.identity.identity_line`). A number measured on the procedural benchmark
(``ours_dataset == "synthetic"``) stands in the row of the paper's dataset it replaces and is
flagged ``reference_only``: the paper's column is then context, not a target. A row is
``comparable`` only when ours ran on the paper's benchmark with neither the miniature nor random
SAM2 weights; elsewhere there is no difference to read (``difference`` is NaN, printed ``n/c``),
and the figure says "not comparable" on itself.

    table = side_by_side(ours, "table9")
    print(format_side_by_side(table, "table9"))
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sansa_probe.paper.numbers import TABLE_TITLES, paper_numbers
from sansa_probe.reporting.figures import annotate_figure, stamp_not_comparable
from sansa_probe.reporting.sanity import check_against_paper

__all__ = ["KEYS", "OURS_COLUMNS", "SIDE_BY_SIDE_COLUMNS", "side_by_side", "format_side_by_side", "plot_side_by_side", "comparison_warnings"]

KEYS = ["method", "setting", "dataset", "fold", "shots", "metric"]
OURS_COLUMNS = ["table", *KEYS, "value", "ours_dataset", "identity"]
SIDE_BY_SIDE_COLUMNS = [*KEYS, "paper", "ours", "difference", "ours_dataset", "reference_only", "comparable", "identity"]


def _checked_ours(ours: pd.DataFrame, table: str) -> pd.DataFrame:
    if not isinstance(ours, pd.DataFrame):
        raise TypeError(f"ours: expected a pandas DataFrame, got {type(ours).__name__}")
    if "identity" not in ours.columns:  # optional: rows made before identities were recorded
        ours = ours.assign(identity="")
    missing = [c for c in OURS_COLUMNS if c not in ours.columns]
    if missing:
        raise ValueError(f"ours: missing column(s) {missing}; expected {OURS_COLUMNS}")
    ours = ours[ours["table"] == table][OURS_COLUMNS].astype({"fold": str, "shots": int, "value": float})
    ours["identity"] = ours["identity"].fillna("").astype(str)
    if ours.duplicated(KEYS).any():
        first = ours[ours.duplicated(KEYS, keep=False)].iloc[0]
        raise ValueError(f"ours: two values for one row of {table} ({dict(first[KEYS])}); expected one per row")
    return ours


def side_by_side(ours: pd.DataFrame, table: str, *, all_paper_rows: bool = False) -> pd.DataFrame:
    """Our numbers of ``table`` beside the paper's printed ones.

    Args:
        ours: tidy rows (columns :data:`OURS_COLUMNS`); rows of other tables are ignored.
        table: ``"table1"`` ... ``"fig9"`` (see :data:`~sansa_probe.paper.numbers.TABLE_IDS`).
        all_paper_rows: also list the paper's rows we did not measure (other methods' rows),
            with ``ours`` empty.

    Returns:
        columns :data:`SIDE_BY_SIDE_COLUMNS`: ``paper`` (NaN where the paper prints no such
        number, e.g. frozen SAM2 where it prints only SANSA), ``ours``, ``reference_only`` (ours
        measured on another benchmark than the paper's row), ``comparable`` (ours measured on the
        paper's benchmark, and by neither the miniature nor random SAM2 weights), ``difference =
        ours - paper`` where comparable (NaN elsewhere: two different experiments have no
        difference to read), ``identity`` (the model behind ours; empty where not recorded).
    """
    paper = paper_numbers(table)[KEYS + ["value"]].rename(columns={"value": "paper"})
    ours = _checked_ours(ours, table).rename(columns={"value": "ours"}).drop(columns="table")
    merged = ours.merge(paper, on=KEYS, how="outer" if all_paper_rows else "left", sort=False)
    merged["ours_dataset"] = merged["ours_dataset"].fillna("")
    merged["reference_only"] = (merged["ours_dataset"] != "") & (merged["ours_dataset"] != merged["dataset"])
    merged["identity"] = merged["identity"].fillna("")
    toy = merged["identity"].str.contains("RANDOM|miniature", case=True, regex=True)
    merged["comparable"] = merged["ours"].notna() & ~merged["reference_only"] & ~toy
    merged["difference"] = (merged["ours"] - merged["paper"]).where(merged["comparable"])
    return merged[SIDE_BY_SIDE_COLUMNS].reset_index(drop=True)


def comparison_warnings(table: pd.DataFrame, table_id: str) -> list[str]:
    """The sanity warning (:func:`~sansa_probe.reporting.sanity.check_against_paper`) for the rows of
    :func:`side_by_side` that are not comparable with the paper's, in one message."""
    rows = table[table["ours"].notna() & ~table["comparable"]]
    if rows.empty:
        return []
    identities = " ".join(rows["identity"])
    ours = ", ".join(sorted(set(rows.loc[rows["reference_only"], "ours_dataset"])))
    paper = ", ".join(sorted(set(rows.loc[rows["reference_only"], "dataset"])))
    return check_against_paper(what=table_id, miniature="miniature" in identities, random_weights="RANDOM" in identities,
                               ours_dataset=ours, paper_dataset=paper)


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.1f}" if value == 0 or abs(value) >= 10 else f"{value:.3g}"  # small numbers (0.045 M parameters, AUC 0.963) keep 3 digits


def _difference(row) -> str:
    if not math.isnan(row.difference):
        return f"{row.difference:+.1f}"
    return "n/c" if not (isinstance(row.ours, float) and math.isnan(row.ours)) and not (isinstance(row.paper, float) and math.isnan(row.paper)) else ""


def format_side_by_side(table: pd.DataFrame, table_id: str, *, notes: list[str] | tuple[str, ...] = ()) -> str:
    """Plain-text rendering of :func:`side_by_side`'s result: a title, a note on reference-only rows,
    ``notes``, the model(s) behind ours (numbered, with a ``model`` column, when several), the rows."""
    lines = [f"{table_id}: {TABLE_TITLES.get(table_id, '')}"]
    if table["reference_only"].any():
        measured = ", ".join(sorted(set(table.loc[table["reference_only"], "ours_dataset"])))
        lines.append(f"  ours measured on {measured}: the paper's column is shown for reference only")
    if (table["ours"].notna() & ~table["comparable"]).any():
        lines.append("  diff n/c: not comparable (another model or benchmark than the paper's): no difference to read")
    lines += [f"  note: {note}" for note in notes]
    identities = list(dict.fromkeys(i for i in (table["identity"].fillna("") if "identity" in table else []) if i))
    if len(identities) == 1:
        lines.append(f"  ours by model: {identities[0]}")
    else:
        lines += [f"  ours by model [{n}]: {identity}" for n, identity in enumerate(identities, start=1)]
    number = {identity: f"[{n}]" for n, identity in enumerate(identities, start=1)}
    several = len(identities) > 1
    header = ["method", "setting", "dataset", "fold", "k", "metric", "paper", "ours", "diff"] + (["model"] if several else [])
    body = [
        [str(r.method), str(r.setting), str(r.dataset), str(r.fold), str(r.shots), str(r.metric),
         _number(r.paper), _number(r.ours), _difference(r)]
        + ([number.get(r.identity, "")] if several else [])
        for r in table.itertuples()
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    for row in [header, *body]:
        lines.append(("  " + "  ".join(cell.rjust(w) if 6 <= i < 9 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))).rstrip())
    return "\n".join(lines)


def plot_side_by_side(table: pd.DataFrame, ax=None, *, metric: str | None = None):
    """Horizontal bars, paper (grey) beside ours (blue), one pair per row of :func:`side_by_side`
    (rows of ``metric`` only, default the table's first metric). Where the row is comparable, the
    difference is written beside the pair; where it is not, the paper's bar is an empty hatched
    outline, no difference is drawn, and "NOT COMPARABLE" with the reason is stamped across the
    axes. The model behind ours (the ``identity`` column) goes under the figure. Returns the Axes."""
    if table.empty:
        raise ValueError("table: no rows to plot")
    metric = metric or str(table["metric"].iloc[0])
    rows = table[table["metric"] == metric].reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.8), layout="constrained")
    labels = [" / ".join(str(v) for v in (r.method, r.setting, r.dataset, f"{r.shots}-shot" if r.shots else "", r.fold) if v not in ("", None))
              for r in rows.itertuples()]  # fmt: skip
    y = np.arange(len(rows))
    comparable = rows["comparable"].to_numpy(dtype=bool) if "comparable" in rows else ~rows["reference_only"].to_numpy(dtype=bool)
    paper = rows["paper"].fillna(0).to_numpy()
    if comparable.any():
        ax.barh(y[comparable] - 0.2, paper[comparable], height=0.4, color="0.6", label="paper")
    if (~comparable).any():
        ax.barh(y[~comparable] - 0.2, paper[~comparable], height=0.4, facecolor="none", edgecolor="0.6", hatch="//",
                label="paper (another model and data: not comparable)")
    reference = rows["reference_only"].any()
    ours_label = "ours" + (": " + ", ".join(sorted(set(rows.loc[rows["reference_only"], "ours_dataset"]))) if reference else "")
    ax.barh(y + 0.2, rows["ours"].fillna(0), height=0.4, color="tab:blue", label=ours_label)
    for yi, r, ok in zip(y, rows.itertuples(), comparable):
        if ok and not math.isnan(r.difference):
            ax.text(max(r.ours, r.paper), yi, f"  {r.difference:+.1f}", va="center", fontsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(metric)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    if (~comparable).any():
        ours_where = ", ".join(sorted(set(rows.loc[~comparable, "ours_dataset"]))) or "ours"
        model = "the shipped miniature" if rows["identity"].str.contains("miniature").any() else (
            "random SAM2 weights" if rows["identity"].str.contains("RANDOM").any() else "another model")
        stamp_not_comparable(ax, f"ours: {model} on {ours_where}; the paper: its SANSA on {', '.join(sorted(set(rows['dataset'])))}. "
                                 "Two different experiments: the gap between the bars is not a result.")
    weights = sorted({i.split(" | ", 1)[-1] for part in rows["identity"].fillna("") for i in str(part).split(" ; ") if i})
    if weights:
        annotate_figure(ax.figure, "ours: " + (weights[0] if len(weights) == 1 else f"{len(weights)} models, see the table's identity column"))
    return ax
