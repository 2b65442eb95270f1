"""The paper's number beside ours: one table per table/figure, and a plain-text printer.

``ours`` is a tidy DataFrame with the keys of :data:`~sansa_probe.paper.numbers.PAPER_COLUMNS`
(``table, method, setting, dataset, fold, shots, metric``), ``value``, and ``ours_dataset``: the
benchmark the number was really measured on; optionally ``identity``: the model that produced it
(:func:`sansa_probe.reporting.identity.identity_line`). A number measured on the procedural benchmark
(``ours_dataset == "synthetic"``) stands in the row of the paper's dataset it replaces and is
flagged ``reference_only``: the paper's column is then context, not a target.

    table = side_by_side(ours, "table9")
    print(format_side_by_side(table, "table9"))
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sansa_probe.paper.numbers import TABLE_TITLES, paper_numbers

__all__ = ["KEYS", "OURS_COLUMNS", "SIDE_BY_SIDE_COLUMNS", "side_by_side", "format_side_by_side", "plot_side_by_side"]

KEYS = ["method", "setting", "dataset", "fold", "shots", "metric"]
OURS_COLUMNS = ["table", *KEYS, "value", "ours_dataset", "identity"]
SIDE_BY_SIDE_COLUMNS = [*KEYS, "paper", "ours", "difference", "ours_dataset", "reference_only", "identity"]


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
        number, e.g. frozen SAM2 where it prints only SANSA), ``ours``, ``difference = ours -
        paper``, ``reference_only`` (ours measured on another benchmark than the paper's row),
        ``identity`` (the model behind ours; empty where not recorded).
    """
    paper = paper_numbers(table)[KEYS + ["value"]].rename(columns={"value": "paper"})
    ours = _checked_ours(ours, table).rename(columns={"value": "ours"}).drop(columns="table")
    merged = ours.merge(paper, on=KEYS, how="outer" if all_paper_rows else "left", sort=False)
    merged["difference"] = merged["ours"] - merged["paper"]
    merged["ours_dataset"] = merged["ours_dataset"].fillna("")
    merged["reference_only"] = (merged["ours_dataset"] != "") & (merged["ours_dataset"] != merged["dataset"])
    merged["identity"] = merged["identity"].fillna("")
    return merged[SIDE_BY_SIDE_COLUMNS].reset_index(drop=True)


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.1f}" if value == 0 or abs(value) >= 10 else f"{value:.3g}"  # small numbers (0.045 M parameters, AUC 0.963) keep 3 digits


def format_side_by_side(table: pd.DataFrame, table_id: str, *, notes: list[str] | tuple[str, ...] = ()) -> str:
    """Plain-text rendering of :func:`side_by_side`'s result: a title, a note on reference-only rows,
    ``notes``, the model(s) behind ours (numbered, with a ``model`` column, when several), the rows."""
    lines = [f"{table_id}: {TABLE_TITLES.get(table_id, '')}"]
    if table["reference_only"].any():
        measured = ", ".join(sorted(set(table.loc[table["reference_only"], "ours_dataset"])))
        lines.append(f"  ours measured on {measured}: the paper's column is shown for reference only")
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
         _number(r.paper), _number(r.ours), "" if math.isnan(r.difference) else f"{r.difference:+.1f}"]
        + ([number.get(r.identity, "")] if several else [])
        for r in table.itertuples()
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    for row in [header, *body]:
        lines.append(("  " + "  ".join(cell.rjust(w) if 6 <= i < 9 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))).rstrip())
    return "\n".join(lines)


def plot_side_by_side(table: pd.DataFrame, ax=None, *, metric: str | None = None):
    """Horizontal bars, paper (grey) beside ours (blue), one pair per row of :func:`side_by_side`
    (rows of ``metric`` only, default the table's first metric). Returns the Axes."""
    if table.empty:
        raise ValueError("table: no rows to plot")
    metric = metric or str(table["metric"].iloc[0])
    rows = table[table["metric"] == metric].reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.5), layout="constrained")
    labels = [" / ".join(str(v) for v in (r.method, r.setting, r.dataset, f"{r.shots}-shot" if r.shots else "", r.fold) if v not in ("", None))
              for r in rows.itertuples()]  # fmt: skip
    y = np.arange(len(rows))
    reference = rows["reference_only"].any()
    ax.barh(y - 0.2, rows["paper"].fillna(0), height=0.4, color="0.6", label="paper" + (" (for reference only)" if reference else ""))
    ours_label = "ours" + (": " + ", ".join(sorted(set(rows.loc[rows["reference_only"], "ours_dataset"]))) if reference else "")
    ax.barh(y + 0.2, rows["ours"].fillna(0), height=0.4, color="tab:blue", label=ours_label)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(metric)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return ax
