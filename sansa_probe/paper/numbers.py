"""The paper's printed numbers as one tidy table (SANSA, NeurIPS 2025, main text and appendix).

One row per printed value::

    table    "table1" ... "table12", "fig6", "fig8", "fig9"
    method   the method as printed ("SANSA", "SAM 2", "VRP-SAM", "LoRA", ...)
    label    the row's label as it starts in the paper's text (used to check the transcription)
    setting  the variant within the table ("strict", "generalist +LVIS", "point", "J=3",
             "out-of-domain", "(ii) flipped frames", ...)
    dataset  benchmark key of :mod:`sansa_probe.data` ("coco20i", "lvis92i", "fss1000", "pascal5i",
             "pascal_part", "paco_part") or a plain name where the package has none ("davis", "tss")
    fold     "mean" (mean over folds, the tables' usual number) or the fold as a string ("0".."3")
    shots    k of the k-shot evaluation (0 where it does not apply)
    metric   "miou" (percent), "spatial_coherence" (lower is better), "minutes" (for 10,000
             targets), "img_s", "params_m" (millions), "trainable_params_m", "max_components"
    value    the printed number

Dashes in the paper are left out (no row). What the text does not print is not invented:
table 3's adapter-placement mIoUs are missing from the text version (only the stage ranges
survive), fig. 8 prints only its x-axis range, figs. 2 and 4 print no numbers.

    from sansa_probe.paper import paper_numbers
    paper_numbers("table9")          # J ablation rows
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd

__all__ = ["PAPER_COLUMNS", "TABLE_IDS", "TABLE_TITLES", "paper_numbers"]

PAPER_COLUMNS = ["table", "method", "label", "setting", "dataset", "fold", "shots", "metric", "value"]

TABLE_TITLES = {
    "table1": "Strict few-shot segmentation (LVIS-92i, COCO-20i, FSS-1000; 1/5-shot)",
    "table2": "Generalist in-context segmentation (incl. part segmentation)",
    "table3": "Ablation on COCO-20i: fine-tuning, adapter kind and bottleneck, placement",
    "table4": "Adaptation strategies: in-domain vs out-of-domain (COCO-20i)",
    "table6": "Large-scale annotation: mIoU on fold 0 and minutes for 10,000 targets",
    "table8": "SAM2 encoder size: parameters, img/s, mIoU (COCO-20i)",
    "table9": "Training sequence length J (1-shot)",
    "table10": "Pascal-5i and COCO->Pascal, per fold",
    "table11": "Negative prompts on COCO-20i",
    "table12": "Spatial coherence of feature matches (lower is better)",
    "fig2": "PCA of object features mapped to RGB (no printed numbers)",
    "fig4": "Feature space: 2-D PCA, PCA-RGB, part matching (no printed numbers)",
    "fig6": "Prompt types on COCO-20i, 1-shot strict",
    "fig8": "Semantic concentration across principal components (only the x-axis range is printed)",
    "fig9": "Linear probing vs few-shot segmentation, COCO-20i fold 0",
}
TABLE_IDS = tuple(TABLE_TITLES)

_Row = dict


def _wide(table: str, columns: list[tuple[str, int]], rows: Iterable[tuple], *, setting: str = "", metric: str = "miou",
          fold: str = "mean") -> list[_Row]:
    """Rows ``(method, label, values...)`` whose values follow ``columns`` ((dataset, shots) pairs); None = dash."""
    out = []
    for method, label, *values in rows:
        if len(values) != len(columns):
            raise AssertionError(f"{table} {method}: {len(values)} values for {len(columns)} columns")
        for (dataset, shots), value in zip(columns, values):
            if value is not None:
                out.append(dict(table=table, method=method, label=label, setting=setting, dataset=dataset, fold=fold,
                                shots=shots, metric=metric, value=float(value)))
    return out


def _table1() -> list[_Row]:
    columns = [("lvis92i", 1), ("lvis92i", 5), ("coco20i", 1), ("coco20i", 5), ("fss1000", 1), ("fss1000", 5)]
    free = [
        ("SAM 2", "SAM 2 [54]", 16.5, 26.3, 32.2, 44.2, 73.0, 84.3),
        ("PerSAM", "PerSAM [87]", 11.5, None, 23.0, None, 71.2, None),
        ("Matcher", "Matcher [42]", 33.0, 40.0, 52.7, 60.7, 87.0, 89.6),
        ("GF-SAM", "GF-SAM [83]", 35.2, 44.2, 58.7, 66.8, 88.0, 88.9),
    ]
    strict = [
        ("AMFormer", "AMFormer [72]", None, None, 51.0, 57.3, None, None),
        ("HMNet", "HMNet [75]", None, None, 52.1, 58.9, None, None),
        ("VRP-SAM", "VRP-SAM [62]", 28.3, None, 53.9, None, 87.7, None),
        ("SegIC", "SegIC [44]", 40.5, None, 53.6, None, 88.5, None),
        ("DiffewS", "DiffewS [89]", 33.9, 43.7, 52.2, 60.7, 90.2, 90.6),
        ("SANSA", "SANSA", 48.8, 53.9, 60.2, 64.3, 91.4, 92.1),
    ]
    return _wide("table1", columns, free, setting="training-free") + _wide("table1", columns, strict, setting="strict")


def _table2() -> list[_Row]:
    columns = [("lvis92i", 1), ("lvis92i", 5), ("coco20i", 1), ("coco20i", 5), ("fss1000", 1), ("fss1000", 5),
               ("pascal_part", 1), ("paco_part", 1)]
    rows = []
    for setting, method, label, *values in [
        ("training-free", "Matcher", "Matcher [42]", 33.0, 40.0, 52.7, 60.7, 87.0, 89.6, 42.9, 34.7),
        ("training-free", "GF-SAM", "GF-SAM [83]", 35.2, 44.2, 58.7, 66.8, 88.0, 88.9, 44.5, 36.3),
        ("generalist +NYUv2", "Painter", "Painter [70]", 10.5, 10.9, 33.1, 32.6, 61.7, 62.3, 30.4, 14.1),
        ("generalist +Pascal, PACO", "SegGPT", "SegGPT [71]", 18.6, 25.4, 56.1, 67.9, 85.6, 89.3, 35.8, 13.5),
        ("generalist +Object365, PACO", "SINE", "SINE [40]", 31.2, 35.5, 64.5, 66.1, None, None, 36.2, None),
        ("generalist +Pascal", "DiffewS", "DiffewS [89]", 31.4, 35.4, 71.3, 72.2, 87.8, 88.0, 34.0, 22.8),
        # SegIC's COCO number (74.5*) uses a textual meta-prompt at test time.
        ("generalist +LVIS", "SegIC", "SegIC [44]", 47.8, None, 74.5, None, 88.4, None, 31.2, 18.7),
        ("generalist", "SANSA", "SANSA\t-", 36.2, 42.5, 76.4, 77.1, 88.2, 89.0, 40.4, 29.2),
        ("generalist +LVIS", "SANSA", "SANSA\tLVIS\t", 53.2, 58.1, 74.7, 76.3, 89.1, 89.7, 41.5, 31.2),
        ("generalist +LVIS, PACO", "SANSA", "SANSA\tLVIS, PACO", 50.3, 59.0, 75.6, 78.6, 90.0, 91.0, 49.1, 43.0),
    ]:
        rows += _wide("table2", columns, [(method, label, *values)], setting=setting)
    return rows


def _table3() -> list[_Row]:
    coco = [("coco20i", 1)]
    finetune = _wide("table3", coco, [
        ("Frozen", "Frozen", 32.2), ("From Scratch", "From Scratch", 37.1), ("Full FT", "Full FT", 51.6),
        ("Decoder FT", "Decoder FT", 52.1), ("QKV FT", "QKV FT", 55.3), ("Backbone FT", "Backbone FT", 55.2),
        ("SANSA", "SANSA", 60.2),
    ], setting="fine-tuning")
    params = _wide("table3", [("coco20i", 1)], [
        ("Frozen", "Frozen", 0), ("From Scratch", "From Scratch", 224), ("Full FT", "Full FT", 224),
        ("Decoder FT", "Decoder FT", 4), ("QKV FT", "QKV FT", 50), ("Backbone FT", "Backbone FT", 210), ("SANSA", "SANSA", 10),
    ], setting="fine-tuning", metric="trainable_params_m")
    adapters = _wide("table3", coco, [("LoRA", "LoRA [32]", 58.0), ("Adapter", "Adapter [31]", 59.4), ("MONA", "MONA [80]", 56.9)],
                     setting="adapter kind")
    ratios = []
    for ratio, value in (("0.8", 58.2), ("0.5", 59.6), ("0.3", 60.2)):
        ratios += _wide("table3", coco, [("AdaptFormer", f"Bottleneck {ratio}", value)], setting=f"bottleneck ratio {ratio}")
    return finetune + params + adapters + ratios


def _table4() -> list[_Row]:
    rows = []
    for method, label, in_domain, out_domain, params in [
        ("Decoder FT", "Decoder Finetuning", 63.7, 52.1, 4), ("QKV FT", "QKV-only Finetuning", 73.5, 55.3, 50),
        ("Backbone FT", "Backbone Finetuning", 74.8, 55.2, 210), ("SANSA", "AdaptFormer (SANSA)", 72.0, 60.2, 10),
    ]:
        rows += _wide("table4", [("coco20i", 1)], [(method, label, in_domain)], setting="in-domain")
        rows += _wide("table4", [("coco20i", 1)], [(method, label, out_domain)], setting="out-of-domain")
        rows += _wide("table4", [("coco20i", 1)], [(method, label, params)], setting="out-of-domain", metric="trainable_params_m")
    return rows


def _table6() -> list[_Row]:
    rows = []
    for method, label, coco, lvis, minutes in [
        ("VRP-SAM", "VRP-SAM [62]", 54.8, 34.9, 38), ("SegIC", "SegIC [44]", 55.1, 46.7, 77),
        ("GF-SAM", "GF-SAM [83]", 59.7, 38.4, 58), ("SANSA", "SANSA (ours)", 61.2, 55.4, 16),
    ]:
        rows += _wide("table6", [("coco20i", 1), ("lvis92i", 1)], [(method, label, coco, lvis)], setting="annotation", fold="0")
        # one printed time per method ("Total Annotation Time"), for 10,000 targets
        rows += _wide("table6", [("coco20i", 1)], [(method, label, minutes)], setting="annotation", fold="0", metric="minutes")
    return rows


def _table8() -> list[_Row]:
    rows = []
    for method, total, trainable, fps, miou in [("Tiny", 40, 1.3, 50, 51.1), ("Base", 86, 3.3, 31, 55.4), ("Large", 234, 10, 15, 60.2)]:
        for metric, value in (("params_m", total), ("trainable_params_m", trainable), ("img_s", fps), ("miou", miou)):
            rows += _wide("table8", [("coco20i", 1)], [(f"SANSA {method}", method, value)], setting=f"hiera {method.lower()}", metric=metric)
    return rows


def _table9() -> list[_Row]:
    rows = []
    for j, label, coco, lvis in [(1, "1 (no propagation)", 57.0, 44.7), (2, "2", 58.9, 47.2), (3, "3 (ours)", 60.2, 49.6),
                                 (4, "4", 59.8, 49.6), (5, "5", 59.5, 49.8), (7, "7", 60.0, 49.4)]:
        rows += _wide("table9", [("coco20i", 1), ("lvis92i", 1)], [("SANSA", label, coco, lvis)], setting=f"J={j}")
    return rows


def _table10() -> list[_Row]:
    folds = ["0", "1", "2", "3", "mean"]
    printed = [
        ("HSNet", "HSNet [46]", (67.3, 72.3, 62.0, 63.1, 66.2), (47.0, 65.2, 67.1, 77.1, 64.1)),
        # VAT's COCO->Pascal mean is printed as 65.1 (its folds average 70.1): transcribed as printed.
        ("VAT", "VAT [30]", (70.0, 72.5, 64.8, 64.2, 67.9), (68.3, 64.9, 67.5, 79.8, 65.1)),
        ("AMFormer", "AMFormer [72]", (71.3, 76.7, 70.7, 63.9, 70.7), None),
        ("AENet", "AENet [74]", (72.2, 75.5, 68.5, 63.1, 69.8), None),
        ("HMNet", "HMNet [75]", (72.2, 75.4, 70.0, 63.9, 70.4), None),
        ("PMNet", "PMNet [12]", (71.3, 72.4, 66.9, 61.9, 68.1), (71.0, 72.3, 66.6, 63.8, 68.4)),
        ("Matcher", "Matcher [†]", (67.7, 70.7, 66.9, 67.0, 68.1), (67.7, 70.7, 66.9, 67.0, 68.1)),
        ("GF-SAM", "GF-SAM [†]", (71.1, 75.7, 69.2, 73.3, 72.1), (71.1, 75.7, 69.2, 73.3, 72.1)),
        ("SANSA", "SANSA (ours)", (78.1, 80.0, 68.3, 66.1, 73.1), (67.1, 70.9, 73.5, 78.6, 72.5)),
    ]
    rows = []
    for method, label, pascal, coco_pascal in printed:
        for setting, values in (("pascal5i", pascal), ("coco->pascal", coco_pascal)):
            for fold, value in zip(folds, values or ()):
                rows += _wide("table10", [("pascal5i", 1)], [(method, label, value)], setting=setting, fold=fold)
    return rows


def _table11() -> list[_Row]:
    return _wide("table11", [("coco20i", 1)], [
        ("SANSA", "SANSA (baseline)", 60.2),
    ], setting="baseline") + [
        row for setting, label, value in [
            ("+1 negative click", "+1 click", 60.8), ("+3 negative clicks", "+3 clicks", 62.9), ("+5 negative clicks", "+5 clicks", 64.5),
            ("semantic negatives, training-free", "Training-free", 61.2), ("semantic negatives, training-based", "Training-based", 63.0),
        ]
        for row in _wide("table11", [("coco20i", 1)], [("SANSA", label, value)], setting=setting)
    ]


def _table12() -> list[_Row]:
    rows = []
    for setting, label, dataset, sam2, sansa in [
        ("(i) video frames", "(i) Video frames (DAVIS)", "davis", 1.5, 1.7),
        ("(ii) flipped frames", "(ii) Flipped frames (DAVIS)", "davis", 5.5, 2.1),
        ("(iii) independent images", "(iii) Independent images (TSS)", "tss", 9.1, 4.1),
    ]:
        rows += _wide("table12", [(dataset, 0)], [("SAM2", label, sam2), ("SANSA", label, sansa)], setting=setting,
                      metric="spatial_coherence", fold="")
    return rows


def _fig6() -> list[_Row]:
    # The figure's inset table (the text lists the gains for scribbles and boxes in the other order).
    rows = []
    for prompt, vrp, sansa in [("point", 38.4, 53.4), ("scribble", 47.3, 53.1), ("box", 49.7, 54.3), ("mask", 53.9, 60.2)]:
        rows += _wide("fig6", [("coco20i", 1)], [("VRP-SAM", prompt, vrp), ("SANSA", prompt, sansa)], setting=prompt)
    return rows


def _fig8() -> list[_Row]:
    return [dict(table="fig8", method="SAM2 and SANSA", label="from 2 up to 450", setting="components retained (99% variance)",
                 dataset="coco20i", fold="0", shots=0, metric="max_components", value=450.0)]


def _fig9() -> list[_Row]:
    rows = []
    for setting, sam2, sansa in (("linear probe", 65.8, 69.2), ("few-shot", 28.9, 57.5)):
        rows += _wide("fig9", [("coco20i", 1 if setting == "few-shot" else 0)], [("SAM2", setting, sam2), ("SANSA", setting, sansa)],
                      setting=setting, fold="0")
    return rows


_BUILDERS = {"table1": _table1, "table2": _table2, "table3": _table3, "table4": _table4, "table6": _table6,
             "table8": _table8, "table9": _table9, "table10": _table10, "table11": _table11, "table12": _table12,
             "fig6": _fig6, "fig8": _fig8, "fig9": _fig9}


def paper_numbers(table: str | None = None) -> pd.DataFrame:
    """The printed numbers of one table/figure (``"table1"``, ``"fig6"``, ...) or of all of them.

    Returns a tidy DataFrame with columns :data:`PAPER_COLUMNS` (empty for figs. 2 and 4, which
    print no numbers).
    """
    if table is not None and table not in TABLE_TITLES:
        raise ValueError(f"table {table!r}: expected one of {', '.join(TABLE_IDS)}")
    names = [table] if table is not None else list(_BUILDERS)
    rows = [row for name in names if name in _BUILDERS for row in _BUILDERS[name]()]
    frame = pd.DataFrame.from_records(rows, columns=PAPER_COLUMNS)
    return frame.astype({"shots": int, "value": float, "fold": str})
