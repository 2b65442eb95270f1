"""The shipped miniature's numbers as rows of ours, to stand beside the paper's (for reference only).

The miniature (:mod:`sansa_probe.miniature`) runs on the procedural benchmark, so every row is
flagged ``reference_only`` by :func:`~sansa_probe.paper.side_by_side`: the paper's column is
context, not a target.

    ours = pd.concat([shipped_ours(), measured_ours(load_miniature(fold=0), fold=0, episodes=8)])
    side_by_side(ours, "table1")
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from sansa_probe.miniature import WEIGHTS_DIR
from sansa_probe.miniature.measure import few_shot_miou
from sansa_probe.paper.runs import Measurement, ours_frame

__all__ = ["shipped_ours", "measured_ours"]

_FIG = {"frozen": "SAM2", "adapted": "SANSA"}
_TABLE1 = {"frozen": ("SAM 2", "training-free"), "adapted": ("SANSA", "strict")}


def _folds_label(folds) -> str:
    return f"synthetic (miniature, fold {','.join(str(f) for f in sorted(folds))})"


def shipped_ours(results: str | os.PathLike | None = None) -> pd.DataFrame:
    """Rows of ours from the miniature's measured results (default the shipped ``results.csv``):

    * table1: 1-shot mIoU of frozen SAM2 (the paper's training-free SAM 2 row) and SANSA
      (strict), mean over the folds, in the COCO-20i column;
    * fig9: linear-probe and 1-shot few-shot mIoU of fold 0;
    * fig8: area under the relative-accuracy curve of fold 0 (the paper prints none).
    """
    path = Path(results) if results is not None else Path(WEIGHTS_DIR) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected the miniature's results table (fold, model, metric, value)")
    table = pd.read_csv(path)
    missing = {"fold", "model", "metric", "value"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected fold, model, metric, value")
    table = table[table["fold"].astype(str) != "all"].astype({"fold": int})
    rows = []
    few_shot = table[table["metric"] == "few_shot_1shot_miou"]
    for model, (method, setting) in _TABLE1.items():
        values = few_shot[few_shot["model"] == model]
        if len(values):
            rows.append(Measurement(method, setting, "coco20i", "mean", 1, "miou", float(values["value"].mean()), _folds_label(values["fold"])))
    fold0 = table[table["fold"] == 0]
    ours = [ours_frame("table1", rows)]
    fig9, fig8 = [], []
    for model, method in _FIG.items():
        values = fold0[fold0["model"] == model].set_index("metric")["value"]
        if "linear_probe_miou" in values:
            fig9.append(Measurement(method, "linear probe", "coco20i", "0", 0, "miou", float(values["linear_probe_miou"]), _folds_label([0])))
        if "few_shot_1shot_miou" in values:
            fig9.append(Measurement(method, "few-shot", "coco20i", "0", 1, "miou", float(values["few_shot_1shot_miou"]), _folds_label([0])))
        if "pca_auc_relative_accuracy" in values:
            fig8.append(Measurement(method, "area under relative accuracy", "coco20i", "0", 0, "auc",
                                    float(values["pca_auc_relative_accuracy"]), _folds_label([0])))  # fmt: skip
    ours += [ours_frame("fig9", fig9), ours_frame("fig8", fig8)]
    return pd.concat([o for o in ours if len(o)], ignore_index=True)


def measured_ours(model, *, fold: int, episodes: int = 100, shots: int = 1, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Measure now: ``shots``-shot mIoU of ``model`` with adapters off (frozen SAM2) and on (SANSA)
    on ``episodes`` mask-prompt episodes of ``fold``'s novel classes of the procedural benchmark
    (:func:`sansa_probe.miniature.measure.few_shot_miou`), as table1 rows (the fold stands in for
    the mean) and, 1-shot, fig9 few-shot rows of fold 0's place."""
    table1, fig9 = [], []
    for model_name, (method, setting) in _TABLE1.items():
        value = few_shot_miou(model, fold=fold, adapters=model_name == "adapted", episodes=episodes, shots=shots, seed=seed, progress=progress)
        label = f"synthetic (fold {fold}, {episodes} episodes)"
        table1.append(Measurement(method, setting, "coco20i", "mean", shots, "miou", value, label))
        if shots == 1:
            fig9.append(Measurement(_FIG[model_name], "few-shot", "coco20i", "0", 1, "miou", value, label))
    return pd.concat([ours_frame("table1", table1), ours_frame("fig9", fig9)] if fig9 else [ours_frame("table1", table1)], ignore_index=True)
