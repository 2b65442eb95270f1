"""The paper's probe figures and table 12 beside ours: read what the probe commands wrote.

The probe commands (``python -m sansa_probe.pca``, ``linear_probe``, ``spatial_coherence``,
``evaluate``) write tidy ``summary.csv``/``results.csv`` files; these functions turn them into
rows of ours keyed like the paper's (:func:`sansa_probe.paper.side_by_side`).
``probe_defaults`` gives the options that make a probe script run offline on the procedural
benchmark when no dataset is given.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from sansa_probe.paper.runs import Measurement, RunConfig, ours_frame, train_variant

__all__ = ["fig8_ours", "fig9_ours", "table12_ours", "offline", "probe_defaults", "run_probe_script"]

_NAMES = {"sam2": "SAM2", "sansa": "SANSA"}
TABLE12_SETTINGS = {"video": "(i) video frames", "flipped": "(ii) flipped frames", "independent": "(iii) independent images"}


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; did the probe command run and write into {path.parent}?")
    return pd.read_csv(path)


def fig8_ours(out: str | os.PathLike, *, ours_dataset: str) -> pd.DataFrame:
    """From ``python -m sansa_probe.pca``'s ``summary.csv``: the components kept for 99% of the
    variance (the end of fig. 8's x-axis, the one number the paper prints: 450) and, for each
    model, the area under the relative-accuracy curve (not printed in the paper)."""
    summary = _read(Path(out) / "summary.csv")
    rows = []
    components = summary[summary["metric"] == "n_components_variance"]["value"]
    if len(components):
        rows.append(Measurement("SAM2 and SANSA", "components retained (99% variance)", "coco20i", "0", 0, "max_components",
                                float(components.max()), ours_dataset))  # fmt: skip
    for r in summary[summary["metric"] == "auc_relative_accuracy"].itertuples():
        rows.append(Measurement(_NAMES.get(r.model, r.model), "area under relative accuracy", "coco20i", "0", 0, "auc", float(r.value), ours_dataset))
    return ours_frame("fig8", rows)


def _fss_miou(folder: Path) -> float:
    results = _read(folder / "results.csv")
    return float(results[results["metric"] == "miou"]["value"].iloc[0])


def fig9_ours(linear_probe_out: str | os.PathLike, fss_sam2_out: str | os.PathLike, fss_sansa_out: str | os.PathLike, *,
              ours_dataset: str) -> pd.DataFrame:
    """Linear-probe mIoU (``linear_probe``'s ``summary.csv``) and 1-shot few-shot mIoU
    (``evaluate``'s ``results.csv``, adapters off and on) of frozen SAM2 and SANSA."""
    summary = _read(Path(linear_probe_out) / "summary.csv")
    rows = [Measurement(_NAMES.get(r.model, r.model), "linear probe", "coco20i", "0", 0, "miou", float(r.value), ours_dataset)
            for r in summary[summary["metric"] == "miou_percent"].itertuples()]
    rows += [Measurement("SAM2", "few-shot", "coco20i", "0", 1, "miou", _fss_miou(Path(fss_sam2_out)), ours_dataset),
             Measurement("SANSA", "few-shot", "coco20i", "0", 1, "miou", _fss_miou(Path(fss_sansa_out)), ours_dataset)]
    return ours_frame("fig9", rows)


def table12_ours(out: str | os.PathLike, *, ours_dataset: str | None) -> pd.DataFrame:
    """Mean smoothness per setting and model (``spatial_coherence``'s ``summary.csv``); with
    ``ours_dataset=None`` the pairs are taken to be the paper's (DAVIS videos, TSS pairs)."""
    summary = _read(Path(out) / "summary.csv")
    rows = []
    for r in summary.itertuples():
        if r.setting in TABLE12_SETTINGS:
            dataset = "tss" if r.setting == "independent" else "davis"
            rows.append(Measurement(_NAMES.get(r.model, r.model), TABLE12_SETTINGS[r.setting], dataset, "", 0, "spatial_coherence",
                                    float(r.mean), ours_dataset or dataset))  # fmt: skip
    return ours_frame("table12", rows)


def offline(argv: list[str]) -> bool:
    """True when a probe script got no dataset: no ``--data-root``/``--frames`` and no ``$SANSA_DATA``."""
    given = any(a.split("=", 1)[0] in ("--data-root", "--frames", "--dataset") for a in argv)
    return not given and not os.environ.get("SANSA_DATA")


def probe_defaults(argv: list[str], *, out: str | os.PathLike, small: bool = False) -> list[str]:
    """Options placed before the user's that run a probe command offline: the procedural
    benchmark, a tiny random-init SAM2 and SANSA adapters trained here in a few steps (unless
    ``--checkpoint`` is given). Empty when a dataset is given (the paper's setting)."""
    if not offline(argv):
        return []
    config = RunConfig(out=Path(out), small=small, progress=False)
    options = config.model_args()
    if "--checkpoint" not in argv:
        options += ["--checkpoint", str(train_variant(config, "sansa", dataset="synthetic", fold=0))]
    return options


# the procedural benchmark's sizes for probe commands and evaluate, offline (``small``: seconds)
_PROBE_DATA = {True: ["--dataset-option", "image_size=64", "--dataset-option", "n_classes=8", "--dataset-option", "images_per_class=2"],
               False: ["--dataset-option", "image_size=128"]}
_PROBE_SAMPLE = {True: ["--images-per-class", "2"], False: ["--images-per-class", "12"]}  # the commands that sample images per class
_EVALUATE_DATA = {True: ["--dataset-option", "image_size=64", "--dataset-option", "n_classes=8", "--dataset-option", "images_per_class=3",
                         "--episodes", "4", "--num-workers", "0"],
                  False: ["--dataset-option", "image_size=128", "--dataset-option", "images_per_class=12", "--episodes", "48"]}


def _split_own(argv: list[str], table: str) -> tuple[Path, bool, list[str]]:
    """``--out`` (default ``results/<table>``) and ``--small`` taken out of ``argv``; the rest goes to the commands."""
    out, small, rest, i = Path("results") / table, False, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--small":
            small = True
        elif arg == "--out" and i + 1 < len(argv):
            out, i = Path(argv[i + 1]), i + 1
        elif arg.startswith("--out="):
            out = Path(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return out, small, rest


def run_probe_script(table: str, steps: list[tuple], argv: list[str], *, ours=None) -> int:
    """The body of a probe figure script: run each ``(command, paper options, subfolder, kind)``
    step (``kind``: "probe", "evaluate", or "frames" for commands without a dataset) into ``<out>/<subfolder>``, then print the paper beside
    ours (``ours(out, ours_dataset) -> rows``) and write the table and figure into ``--out``.

    With no dataset (``--data-root``/``--frames``/``--dataset``, ``$SANSA_DATA``) the steps run on
    the procedural benchmark with SANSA adapters trained here (:func:`probe_defaults`); ``--small``
    shrinks that run to seconds.
    """
    import sys

    from sansa_probe.paper.script import report

    out, small, rest = _split_own(argv, table)
    defaults = probe_defaults(rest, out=out, small=small)
    codes = []
    for command, paper, subfolder, kind in steps:
        sizes = []
        if defaults and kind in ("probe", "evaluate"):
            sizes = ["--dataset", "synthetic", *(_PROBE_DATA if kind == "probe" else _EVALUATE_DATA)[small]]
            if kind == "probe" and "--images-per-class" in command.build_parser()._option_string_actions:
                sizes += _PROBE_SAMPLE[small]
        codes.append(command.main([*paper, *defaults, *sizes, *rest, "--out", str(out / subfolder)]))
    if max(codes) != 0:
        return max(codes)
    if ours is None:
        print(f"{table}: the paper prints no numbers for this figure; ours are in {out}", file=sys.stderr)
        return 0
    try:
        report(ours(out, "synthetic" if defaults else None), table, out)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
