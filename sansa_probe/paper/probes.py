"""The paper's probe figures and table 12 beside ours: read what the probe commands wrote.

The probe commands (``python -m sansa_probe.pca``, ``linear_probe``, ``spatial_coherence``,
``evaluate``) write tidy ``summary.csv``/``results.csv`` files; these functions turn them into
rows of ours keyed like the paper's (:func:`sansa_probe.paper.side_by_side`).
``probe_defaults`` gives the options that make a probe script run offline on the procedural
benchmark with the shipped miniature when no dataset is given. Every row carries the identity of
the model behind it, as the command wrote it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd

from sansa_probe.commands.grammar import say
from sansa_probe.paper.runs import Measurement, RunConfig, ours_frame
from sansa_probe.io.manifest import OutputFolderError
from sansa_probe.paper.script import open_output, report, report_files

MINIATURE_LABEL = "synthetic (miniature, fold 0)"  # where ours were measured offline: the procedural benchmark, fold 0

__all__ = ["MINIATURE_LABEL", "fig8_ours", "fig9_ours", "table12_ours", "offline", "probe_defaults", "run_probe_script"]

_NAMES = {"sam2": "SAM2", "sansa": "SANSA"}
TABLE12_SETTINGS = {"video": "(i) video frames", "flipped": "(ii) flipped frames", "independent": "(iii) independent images"}


def _identity(table: pd.DataFrame, column: str = "identity") -> str:
    """The distinct identities in ``table[column]`` (the commands' tables carry one per row), joined by `` ; ``."""
    if column not in table:
        return ""
    return " ; ".join(dict.fromkeys(str(v).removeprefix("model: ") for v in table[column].dropna() if str(v)))


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
                                float(components.max()), ours_dataset, _identity(summary[summary["metric"] == "n_components_variance"])))  # fmt: skip
    auc = summary[summary["metric"] == "auc_relative_accuracy"]
    for k, r in enumerate(auc.itertuples()):
        rows.append(Measurement(_NAMES.get(r.model, r.model), "area under relative accuracy", "coco20i", "0", 0, "auc", float(r.value), ours_dataset,
                                _identity(auc.iloc[[k]])))  # fmt: skip
    return ours_frame("fig8", rows)


def _fss_miou(folder: Path) -> tuple[float, str]:
    results = _read(folder / "results.csv")
    miou = results[results["metric"] == "miou"]
    return float(miou["value"].iloc[0]), _identity(miou.iloc[:1], "model")


def fig9_ours(linear_probe_out: str | os.PathLike, fss_sam2_out: str | os.PathLike, fss_sansa_out: str | os.PathLike, *,
              ours_dataset: str) -> pd.DataFrame:
    """Linear-probe mIoU (``linear_probe``'s ``summary.csv``) and 1-shot few-shot mIoU
    (``evaluate``'s ``results.csv``, adapters off and on) of frozen SAM2 and SANSA."""
    summary = _read(Path(linear_probe_out) / "summary.csv")
    probe = summary[summary["metric"] == "miou_percent"]
    rows = [Measurement(_NAMES.get(r.model, r.model), "linear probe", "coco20i", "0", 0, "miou", float(r.value), ours_dataset,
                        _identity(probe.iloc[[k]])) for k, r in enumerate(probe.itertuples())]  # fmt: skip
    rows += [Measurement("SAM2", "few-shot", "coco20i", "0", 1, "miou", *_swap(_fss_miou(Path(fss_sam2_out)), ours_dataset)),
             Measurement("SANSA", "few-shot", "coco20i", "0", 1, "miou", *_swap(_fss_miou(Path(fss_sansa_out)), ours_dataset))]
    return ours_frame("fig9", rows)


def _swap(value_identity: tuple[float, str], ours_dataset: str) -> tuple[float, str, str]:
    return value_identity[0], ours_dataset, value_identity[1]


def table12_ours(out: str | os.PathLike, *, ours_dataset: str | None) -> pd.DataFrame:
    """Mean smoothness per setting and model (``spatial_coherence``'s ``summary.csv``); with
    ``ours_dataset=None`` the pairs are taken to be the paper's (DAVIS videos, TSS pairs)."""
    summary = _read(Path(out) / "summary.csv")
    rows = []
    for k, r in enumerate(summary.itertuples()):
        if r.setting in TABLE12_SETTINGS:
            dataset = "tss" if r.setting == "independent" else "davis"
            rows.append(Measurement(_NAMES.get(r.model, r.model), TABLE12_SETTINGS[r.setting], dataset, "", 0, "spatial_coherence",
                                    float(r.mean), ours_dataset or dataset, _identity(summary.iloc[[k]])))  # fmt: skip
    return ours_frame("table12", rows)


def offline(argv: list[str]) -> bool:
    """True when a probe script got no dataset: no ``--data-root``/``--frames`` and no ``$SANSA_DATA``."""
    given = any(a.split("=", 1)[0] in ("--data-root", "--frames", "--dataset") for a in argv)
    return not given and not os.environ.get("SANSA_DATA")


def probe_defaults(argv: list[str], *, out: str | os.PathLike, small: bool = False, dataset: bool = True) -> list[str]:
    """Model options placed before the user's that run a probe command offline on the shipped
    miniature. A command with ``--dataset`` (``dataset``) gets none: on ``--dataset synthetic`` its
    embedded default is the miniature with the fold's adapters; one without (pseudo-videos) or a
    user's ``--checkpoint`` gets the miniature's SAM2 (and its fold-0 adapters unless
    ``--checkpoint`` is given). With a model option of the user's (``--backbone``,
    ``--sam2-checkpoint``, ``--image-size``) the command builds what they say. Empty when a
    dataset is given (the paper's setting)."""
    if not offline(argv):
        return []
    own_model = any(a.split("=", 1)[0] in ("--backbone", "--sam2-checkpoint", "--image-size") for a in argv)
    if own_model or (dataset and "--checkpoint" not in argv):
        return []
    config = RunConfig(out=Path(out), small=small, progress=False)
    options = config.model_args()
    if "--checkpoint" not in argv:
        options += ["--checkpoint", str(config.miniature_adapters(0))]
    return options


# the procedural benchmark's sizes for probe commands and evaluate, offline: the miniature's size and,
# in full, the settings of its shipped measurement (sansa_probe.miniature.pipeline.MeasureConfig:
# 12 images per class for the probes, 100 episodes); ``small``: seconds
_PROBE_DATA = {True: ["--dataset-option", "image_size=128"], False: ["--dataset-option", "image_size=128"]}
_PROBE_SAMPLE = {True: ["--images-per-class", "3"], False: ["--images-per-class", "12"]}  # the commands that sample images per class
_EVALUATE_DATA = {True: ["--dataset-option", "image_size=128", "--episodes", "8", "--num-workers", "0"],
                  False: ["--dataset-option", "image_size=128", "--episodes", "100", "--num-workers", "0"]}


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


def _option_groups(argv: list[str]) -> list[list[str]]:
    """``argv`` cut into ``[--flag, values...]`` groups (``--flag=value`` is one group)."""
    groups: list[list[str]] = []
    for arg in argv:
        if arg.startswith("--") or not groups:
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups


def _known(command, flag: str) -> bool:
    return flag.split("=", 1)[0] in command.build_parser()._option_string_actions


def _options_for(command, argv: list[str], commands: list) -> list[str]:
    """The user's options ``command`` takes: those it knows, and those no step knows (its parser
    then names them as errors); an option only another step knows (``--episodes`` of evaluate,
    ``--images-per-class`` of the probes) is left out."""
    kept = []
    for group in _option_groups(argv):
        if _known(command, group[0]) or not any(_known(other, group[0]) for other in commands):
            kept += group
    return kept


def _input_folders(argv: list[str]) -> dict[str, list[str]]:
    """The input folders of the user's options that ``--out`` may not be inside: ``--data-root``
    (else ``$SANSA_DATA`` when a dataset is given) and every ``--frames``."""
    inputs: dict[str, list[str]] = {}
    for group in _option_groups(argv):
        flag, _, inline = group[0].partition("=")
        values = [inline] if inline else group[1:]
        if flag in ("--data-root", "--frames"):
            inputs.setdefault(flag, []).extend(values)
    if "--data-root" not in inputs and not offline(argv) and os.environ.get("SANSA_DATA"):
        inputs["--data-root"] = [os.environ["SANSA_DATA"]]
    return inputs


def run_probe_script(table: str, steps: list[tuple], argv: list[str], *, ours=None, after=None, writes: tuple[str, ...] = ()) -> int:
    """The body of a probe figure script: run each ``(command, paper options, subfolder, kind)``
    step (``kind``: "probe", "evaluate", or "frames" for commands without a dataset) into ``<out>/<subfolder>``, then print the paper beside
    ours (``ours(out, ours_dataset) -> rows``) and write the table and figure into ``--out``;
    ``after(out)``, when given, runs once every step has succeeded (a script's own summary, writing
    ``writes`` into ``--out``).

    ``--out`` is checked before any step runs (:func:`sansa_probe.paper.script.open_output`): a
    folder holding files no paper script wrote, or inside ``--data-root``/``--frames``, is refused in
    one line (exit code 2); the steps' subfolders are the commands' run folders.

    With no dataset (``--data-root``/``--frames``/``--dataset``, ``$SANSA_DATA``) the steps run on
    the procedural benchmark with the shipped miniature (:func:`probe_defaults`); ``--small``
    shrinks that run to seconds.
    """

    out, small, rest = _split_own(argv, table)
    try:
        folder = open_output(out, _input_folders(rest))
    except (OutputFolderError, OSError) as exc:
        print(f"{table}: error: {exc}", file=sys.stderr)
        return 2
    subfolders = [f"{step[2]}/" for step in steps]
    folder.claim(*subfolders, *(report_files(table) if ours is not None else ()), *writes)
    synthetic = offline(rest)
    commands = [step[0] for step in steps]
    codes = []
    for command, paper, subfolder, kind in steps:
        defaults = probe_defaults(rest, out=out, small=small, dataset=kind != "frames")
        sizes = []
        if synthetic and kind in ("probe", "evaluate"):
            sizes = ["--dataset", "synthetic", *(_PROBE_DATA if kind == "probe" else _EVALUATE_DATA)[small]]
            if kind == "probe" and "--images-per-class" in command.build_parser()._option_string_actions:
                sizes += _PROBE_SAMPLE[small]
        again = ["--overwrite"] if kind == "evaluate" else []  # a rerun of the script measures again: its own evaluation is replaced
        codes.append(command.main([*paper, *defaults, *sizes, *_options_for(command, rest, commands), *again, "--out", str(out / subfolder)]))
    if max(codes) != 0:
        return max(codes)
    if after is not None:
        after(out)
    if ours is None:
        say(f"{table}: the paper prints no numbers for this figure; ours are in {out}")
    else:
        try:
            own_model = any(a.split("=", 1)[0] in ("--backbone", "--sam2-checkpoint", "--image-size") for a in rest)
            inherited = [w for subfolder in (step[2] for step in steps) for w in _run_warnings(out / subfolder)]
            report(ours(out, (MINIATURE_LABEL if not own_model else "synthetic") if synthetic else None), table, out, warnings=inherited)
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    folder.finish(remove_stale=False, nested=subfolders)  # other scripts' files in a shared --out stay
    return 0


def _run_warnings(folder: Path) -> list[str]:
    """The warnings a step's run recorded (a probe's ``config.json``, an evaluation's ``summary.json``)."""
    for name in ("config.json", "summary.json"):
        path = Path(folder) / name
        if path.is_file():
            return [str(w) for w in json.loads(path.read_text()).get("warnings") or []]
    return []

