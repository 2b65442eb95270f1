"""One source for every number the docs quote: the files that hold them, and the blocks written from them.

The docs (``README.md``, ``experiments/README.md``) hold their measured numbers only inside
generated blocks::

    <!-- numbers: main-job -->
    ...text written by render("main-job")...
    <!-- /numbers -->

Each block is rendered from one of two sources, with the settings that produced the numbers:

* the shipped miniature's ``results.csv`` and the measurement settings of its ``manifest.json``
  (:mod:`sansa_probe.miniature.weights`);
* ``docs/measured.json``: the documented runs (:data:`RUNS`), each with its exact command line,
  the numbers read from its output files, its wall time on an idle and on a busy machine (the same
  run with two CPU-bound processes beside it), the machine, the date and the commit.

    python -m sansa_probe.paper.documented --measure main-job pca-fold0 --conditions idle busy   # run, record (slow)
    python -m sansa_probe.paper.documented --measure stale --write                 # after new miniature weights
    python -m sansa_probe.paper.documented --write                                 # rewrite the blocks
    python -m sansa_probe.paper.documented --check                                 # 1 if a block is stale

``tests/test_doc_numbers.py`` checks the blocks against the sources, the recorded command lines
against :data:`RUNS` and the README's commands, and that no result number stands outside a block.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sansa_probe.commands.grammar import command_parser, run_main, say
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text
from sansa_probe.miniature.weights import WEIGHTS_DIR, read_manifest

__all__ = ["BLOCK", "DOCS", "MEASURED", "RUNS", "Run", "blocks", "check", "main", "measure", "miniature_fingerprint", "render", "write"]

REPO = Path(__file__).resolve().parents[2]
MEASURED = REPO / "docs" / "measured.json"
DOCS = ("README.md", "experiments/README.md")
BLOCK = re.compile(r"<!-- numbers: (?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /numbers -->", re.S)
INSTALL_CPU = ("pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu", "pip install -e .")


# ============================================================================ the documented runs


@dataclass(frozen=True)
class Run:
    """A documented run: ``python <argv> --out <folder>`` (or no ``--out`` when ``out`` is False)
    and ``reads(folder, stdout) -> numbers``."""

    name: str
    argv: tuple[str, ...]
    reads: Callable[[Path, str], dict[str, Any]]
    out: bool = True


def _read_compare(out: Path, _: str) -> dict[str, Any]:
    summary = json.loads((out / "summary.json").read_text())
    frozen = json.loads((out / "frozen" / "summary.json").read_text())
    overall = summary["overall"]
    classes = pd.read_csv(out / "comparison.csv").query("scope == 'class'")
    options = dict(frozen["config"].get("dataset_option") or [])
    return {
        **{k: float(overall[k]) for k in ("frozen", "adapted", "difference", "ci_low", "ci_high")},
        "episodes": int(overall["n_episodes"]), "n_classes": int(len(classes)), "fold": int(frozen["folds"][0]),
        "shots": int(frozen["shots"]), "prompt": frozen["prompt"], "protocol": frozen["protocol"], "seed": int(frozen["seed"]),
        "model_size": int(frozen["identity"]["image_size"]), "data_size": int(options.get("image_size", 256)),
        "confidence": float(summary["bootstrap"]["confidence"]), "warnings": summary["warnings"],
    }  # fmt: skip


def _read_pca(out: Path, _: str) -> dict[str, Any]:
    summary = pd.read_csv(out / "summary.csv")
    values = {f"{row.model}_{row.metric}": float(row.value) for row in summary.itertuples()}
    config = json.loads((out / "config.json").read_text())
    return {**values, "warnings": config.get("warnings", [])}


def _read_ablation(out: Path, _: str) -> dict[str, Any]:
    table = pd.read_csv(out / "ablation.csv")
    rows = {f"{r.option}={r.value} ({r.prompt}, k={r.shots})": {"release": float(r.miou_release), "option": float(r.miou_option),
                                                                  "delta": float(r.delta), "episodes": int(r.episodes)}
            for r in table.itertuples()}  # fmt: skip
    return {"rows": rows}


def _read_experiment(table: str) -> Callable[[Path, str], dict[str, Any]]:
    """An experiment script's rows of ours (``<out>/<table>.csv``; none for a figure without numbers)."""

    def read(out: Path, _: str) -> dict[str, Any]:
        path = out / f"{table}.csv"
        if not path.is_file():
            return {"rows": []}
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        folds = frame["fold"].astype(str).nunique() if "fold" in frame.columns else 1
        rows = [{"method": str(r.method), "setting": str(r.setting), "shots": int(r.shots), "metric": str(r.metric),
                 "ours": float(r.ours), **({"fold": str(r.fold)} if folds > 1 else {})}
                for r in frame.itertuples() if pd.notna(r.ours)]  # fmt: skip
        summary = out / "summary.json"
        warnings = json.loads(summary.read_text()).get("warnings", []) if summary.is_file() else []
        return {"rows": rows, "warnings": warnings}

    return read


# encoders.csv's numbers the experiments table shows (probe, metric, setting pattern): the rest stay in the file
_ENCODER_NUMBERS = (("pca", "full_accuracy", ""), ("linear_probe", "miou_percent", ""), ("spatial_coherence", "smoothness", "video"))


def _read_encoders(out: Path, _: str) -> dict[str, Any]:
    """The encoders script's headline numbers (:data:`_ENCODER_NUMBERS`, one per encoder) and the
    warnings of its six probe runs (each ``config.json``)."""
    frame = pd.read_csv(out / "encoders.csv", keep_default_na=False, na_values=[""])
    rows = []
    for probe, metric, setting in _ENCODER_NUMBERS:
        part = frame[(frame["probe"] == probe) & (frame["metric"] == metric)]
        part = part[part["setting"].fillna("").astype(str).str.contains(setting)]
        for r in part.itertuples():
            label = f"{probe.replace('_', ' ')} {metric.replace('_', ' ')}" + (f" {r.setting}" if setting else "")
            rows.append({"method": str(r.model), "setting": label, "shots": 1, "metric": "miou", "ours": float(r.value)})
    warnings = [str(w) for config in sorted(out.glob("*/config.json")) for w in json.loads(config.read_text()).get("warnings", [])]
    return {"rows": rows, "warnings": list(dict.fromkeys(warnings))}


def _read_suite(_: Path, stdout: str) -> dict[str, Any]:
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)", stdout)}
    return counts


RUNS: dict[str, Run] = {run.name: run for run in (
    Run("main-job", ("-m", "sansa_probe.compare", "--dataset", "synthetic", "--fold", "0", "--episodes", "100"), _read_compare),
    Run("pca-fold0", ("-m", "sansa_probe.pca", "--fold", "0"), _read_pca),
    Run("ablation", ("-m", "sansa_probe.ablation", "--dataset", "synthetic", "--fold", "0", "--episodes", "40"), _read_ablation),
    Run("suite", ("-m", "pytest", "-q", "-p", "no:cacheprovider"), _read_suite, out=False),
)}  # fmt: skip

# experiments/README's miniature column: (paper item, script, the paper's setting, the script's offline options)
EXPERIMENTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Table 1 (strict, 1/5-shot, LVIS-92i, COCO-20i, FSS-1000)", "table1_strict_fss", "`--data-root /data --checkpoints ckpt`", ("--small", "--episodes", "100")),
    ("Table 2 (generalist, incl. part segmentation)", "table2_generalist", "`--data-root /data --checkpoint gen.pt --variant \"generalist +LVIS\"`", ("--small", "--episodes", "100")),
    ("Fig. 6 (prompt types)", "fig6_prompt_types", "`--data-root /data --checkpoints ckpt`", ("--small", "--episodes", "100")),
    ("Table 3 (fine-tuning, adapter kind and ratio, placement)", "table3_ablations", "`--data-root /data --checkpoints ckpt [--variants ...]` (trains each variant)", ("--small", "--episodes", "100")),
    ("Table 4 (in-domain vs out-of-domain)", "table4_adaptation", "`--data-root /data --checkpoints ckpt` (same `--out` as table 3 reuses its variants)", ("--small", "--episodes", "100")),
    ("Table 6 (annotation time and mIoU)", "table6_annotation", "`--data-root /data --checkpoints ckpt --device cuda`", ("--small",)),
    ("Table 8 (backbone size, img/s, mIoU)", "table8_backbones", "`--data-root /data --checkpoints ckpt --device cuda` (`strict-hiera_t/`, `strict-hiera_b+/`, `strict/`)", ("--small", "--episodes", "100")),
    ("Table 9 (sequence length J)", "table9_sequence_length", "`--data-root /data --checkpoints ckpt` (trains each J)", ("--small", "--episodes", "100")),
    ("Table 10 (Pascal-5i, COCO->Pascal)", "table10_pascal", "`--data-root /data --checkpoints ckpt`", ("--small", "--episodes", "100")),
    ("Table 11 (negative prompts)", "table11_negative_prompts", "`--data-root /data --checkpoints ckpt`", ("--small", "--episodes", "100")),
    ("Table 12 (spatial coherence)", "table12_spatial_coherence", "`--frames DAVIS/... --masks ... --independent TSS/...`", ("--small",)),
    ("Fig. 2 (PCA to RGB)", "fig2_pca_rgb", "`--data-root /data`", ("--small",)),
    ("Fig. 4 (feature space, part matching)", "fig4_feature_space", "`--data-root /data`", ("--small",)),
    ("Fig. 8 (semantics across principal components)", "fig8_pca_concentration", "`--data-root /data`", ("--small", "--images-per-class", "12")),
    ("Fig. 9 (linear probe vs few-shot)", "fig9_linear_probe", "`--data-root /data`", ("--small", "--images-per-class", "12", "--episodes", "100")),
    ("SAM2, SANSA and DINOv2 on the probes (figs. 2, 4, 8, 9 left, table 12; not in the paper)", "encoders_sam2_sansa_dinov2",
     "`--data-root /data --checkpoint sansa_coco_fold0.pt` (DINOv2 ViT-S/14 from the Hugging Face hub; `--encoders` for others, e.g. CLIP); "
     "offline DINOv2's architecture runs with RANDOM weights beside the miniature (a smoke test); `encoders.csv` holds every probe's number", ("--small",)),
)  # fmt: skip
for _item, _script, _paper, _options in EXPERIMENTS:
    _table = _script.split("_", 1)[0]
    RUNS[_script] = Run(_script, (f"experiments/{_script}.py", *_options), _read_encoders if _table == "encoders" else _read_experiment(_table))


def _burners(n: int) -> list[subprocess.Popen]:
    """``n`` CPU-bound processes: the "busy machine" of the measured times."""
    spin = f"import os\nwhile os.getppid() == {os.getpid()}: pass"  # ends with the measuring process, however that ends
    return [subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(n)]


def miniature_fingerprint() -> str:
    """The shipped miniature a run used: the first 12 hex digits of the SHA-256 of its
    ``manifest.json`` (which holds every weights file's SHA-256). A run recorded with another
    fingerprint ran on other weights: measure it again."""
    return hashlib.sha256((WEIGHTS_DIR / "manifest.json").read_bytes()).hexdigest()[:12]


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measure(names: list[str], *, conditions: tuple[str, ...] = ("idle",), path: Path = MEASURED, keep_times: bool = False) -> dict[str, Any]:
    """Run each documented run (``"install"``: the CPU-only install into a fresh virtual
    environment, no pip cache) once per condition: ``idle`` (nothing else running) and ``busy``
    (beside two CPU-bound processes); record its command line, numbers (from the idle run, else
    the first), times, machine, date and commit into ``path``, keeping the times of the other
    condition recorded before. ``keep_times``: a time recorded before stays (new numbers from the
    same workload, e.g. new weights of the same model; ``times_commit`` says where the times were
    measured), so that numbers can be re-measured on a machine that is not idle. Returns the whole record."""
    unknown = [c for c in conditions if c not in ("idle", "busy")]
    if unknown:
        raise ValueError(f"--conditions {' '.join(unknown)}: expected idle and/or busy")
    record = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    record["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    for name in names:
        if name != "install" and name not in RUNS:
            raise ValueError(f"--measure {name}: expected one of install, {', '.join(RUNS)}")
        entry: dict[str, Any] = dict(record["runs"].get(name, {}))
        entry["seconds"] = dict(entry.get("seconds", {}))
        for condition in conditions:
            burners = _burners(2) if condition == "busy" else []
            try:
                seconds, values, argv = _install() if name == "install" else _one(RUNS[name])
            finally:
                for burner in burners:
                    burner.kill()
                    burner.wait()
            kept = keep_times and condition in entry["seconds"]
            if kept:
                entry.setdefault("times_commit", entry.get("commit"))
            else:
                entry["seconds"][condition] = round(seconds, 1)
                entry.pop("times_commit", None)
            if condition == "idle" or "values" not in entry or entry.get("argv") != argv:
                entry.update(argv=argv, values=values)
            say(f"{name} ({condition}): {seconds:.1f} s" + (" (not recorded: --keep-times)" if kept else ""))
        entry.update(date=datetime.date.today().isoformat(), commit=_commit())
        if name not in ("install", "suite"):
            entry["miniature"] = miniature_fingerprint()
        record["runs"][name] = entry
        atomic_write_json(path, record)
    return record


def expand(names: list[str], record: Mapping[str, Any]) -> list[str]:
    """``--measure``'s names with ``experiments`` (every experiment script) and ``stale`` (every
    recorded run measured on other miniature weights than the shipped ones) spelled out, in order, once each."""
    fingerprint = miniature_fingerprint()
    out: list[str] = []
    for name in names:
        if name == "experiments":
            out += [script for _, script, _, _ in EXPERIMENTS]
        elif name == "stale":
            out += [n for n, e in record.get("runs", {}).items() if n not in ("install", "suite") and e.get("miniature") != fingerprint]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def _one(run: Run) -> tuple[float, dict[str, Any], list[str]]:
    with tempfile.TemporaryDirectory(prefix=f"documented-{run.name}-") as folder:
        out = Path(folder) / "out"
        argv = [*run.argv, *(["--out", str(out), "--no-progress"] if run.out else [])]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0 and run.name != "suite":
            raise RuntimeError(f"{run.name}: exit code {done.returncode}: {done.stderr.strip()[-500:]}")
        if run.name == "suite":  # its result, failures included, where the one measuring sees it
            print(done.stdout.strip()[-4000:], file=sys.stderr, flush=True)
        return seconds, run.reads(out, done.stdout), list(run.argv)


def _install() -> tuple[float, dict[str, Any], list[str]]:
    with tempfile.TemporaryDirectory(prefix="documented-install-") as folder:
        venv = Path(folder) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--no-cache-dir", "--quiet"]
        start = time.perf_counter()
        subprocess.run([*pip, "install", *INSTALL_CPU[0].split()[2:]], check=True)
        subprocess.run([*pip, "install", "-e", str(REPO)], check=True)
        seconds = time.perf_counter() - start
        size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
        shutil.rmtree(venv, ignore_errors=True)
        return seconds, {"environment_mb": round(size / 2**20)}, list(INSTALL_CPU)


# ============================================================================ the blocks


def _results() -> tuple[pd.DataFrame, dict[str, Any]]:
    return pd.read_csv(WEIGHTS_DIR / "results.csv"), read_manifest(WEIGHTS_DIR)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "not measured"
    return f"{seconds:.0f} s" if seconds < 120 else f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def _times(record: Mapping[str, Any], name: str) -> dict[str, float | None]:
    seconds = record.get("runs", {}).get(name, {}).get("seconds", {})
    return {"idle": seconds.get("idle"), "busy": seconds.get("busy")}


def _block_main_job(record: Mapping[str, Any]) -> str:
    v = record["runs"]["main-job"]["values"]
    return (f"Measured (`docs/measured.json`): frozen SAM2 {v['frozen']:.2f} % vs SANSA {v['adapted']:.2f} % mIoU, {v['difference']:+.2f} points, "
            f"{100 * v['confidence']:.0f} % CI [{v['ci_low']:+.2f}, {v['ci_high']:+.2f}] ({v['episodes']} {v['shots']}-shot "
            f"{v['prompt']} episodes of fold {v['fold']}'s {v['n_classes']} novel classes, seed {v['seed']}; procedural images "
            f"drawn at {v['data_size']} px, brought to the model's {v['model_size']} px by the {v['protocol']} protocol).")


def _block_times(record: Mapping[str, Any]) -> str:
    install, job, pca, suite = (_times(record, n) for n in ("install", "main-job", "pca-fold0", "suite"))
    runs = record.get("runs", {})
    passed = runs.get("suite", {}).get("values", {}).get("passed")
    dates = sorted({entry.get("date", "") for entry in runs.values() if entry.get("date")})
    when = f", {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "") if dates else ""
    cpus = record.get("machine", {}).get("cpus")
    note = runs.get("install", {}).get("note", "")
    install_text = f"{_minutes(install['idle'])} (no pip cache)" if install["idle"] else (note.replace("not measured: ", "not measured (") + ")"
                                                                                        if note else "not measured")
    return (f"Times measured on a {cpus}-core CPU machine{when} (`docs/measured.json`; busy = the same run with two "
            f"CPU-bound processes beside it): the CPU-only install {install_text}; the main job "
            f"{_minutes(job['idle'])} idle, {_minutes(job['busy'])} busy; `python -m sansa_probe.pca --fold 0` "
            f"{_minutes(pca['idle'])} idle, {_minutes(pca['busy'])} busy; the test suite {_minutes(suite['idle'])} idle"
            + (f" (at {runs['suite']['commit']})" if passed else "") + ".")


def _span(values: pd.Series) -> str:
    return f"{values.min():+.1f} to {values.max():+.1f}"


def _block_miniature(record: Mapping[str, Any]) -> str:
    """The shipped miniature's measured numbers (``results.csv``), each with what was measured: the
    adapters' gain, the reference check, tracking (own vs another clip's prompt, mirrored, one
    click) and the attribute probe, where the file has them."""
    results, manifest = _results()
    settings = manifest.get("measure", {})
    rows = results.assign(fold=results["fold"].astype(str))
    value = rows.set_index(["fold", "model", "metric"])["value"].astype(float)
    few = rows[rows["metric"] == "few_shot_1shot_miou"].pivot(index="fold", columns="model", values="value").astype(float)
    folds = [f for f in few.index if f != "all"]
    text = (f"Measured (`sansa_probe/miniature/weights/results.csv`; {settings.get('episodes', '?')} one-shot episodes per fold, "
            f"procedural images drawn at the model's {manifest.get('image_size', '?')} px): adapted - frozen "
            f"{_span(few['adapted'] - few['frozen'])} mIoU on novel classes, folds {', '.join(folds)}")
    other = rows[rows["metric"] == "few_shot_1shot_miou_other_class_reference"].pivot(index="fold", columns="model", values="value").astype(float)
    if "adapted" in other:
        text += (f"; the adapted model with the right reference - with another class's {_span(few['adapted'] - other['adapted'])} "
                 "(a model that reads its reference scores far lower with the wrong one)")
    if "every_object_oracle" in few:
        text += f"; an oracle segmenting every object of the target scores {few['every_object_oracle'].min():.1f} to {few['every_object_oracle'].max():.1f}"

    def get(model: str, metric: str, fold: str = "all") -> float | None:
        key = (fold, model, metric)
        return float(value[key]) if key in value.index else None

    track, other_clip = get("pretrained", "tracking_miou"), get("pretrained", "tracking_miou_other_clip_prompt")
    if track is not None:
        clips = f"{settings['tracking_clips']} held-out clips" if settings.get("tracking_clips") else "held-out clips"
        text += f". Tracking on {clips}: {track:.1f} mIoU from its own prompt"
        if other_clip is not None:
            text += f", {other_clip:.1f} from another clip's"
        mirrored, mirrored_other = get("pretrained", "tracking_miou_mirrored"), get("pretrained", "tracking_miou_mirrored_other_clip_prompt")
        if mirrored is not None and mirrored_other is not None:
            text += f"; {mirrored:.1f} vs {mirrored_other:.1f} with every object moved to its mirrored place"
        click, click_other = get("pretrained", "click_miou"), get("pretrained", "click_miou_other_clip_click")
        if click is not None and click_other is not None:
            text += f"; {click:.1f} vs {click_other:.1f} IoU from one click"
        random_init = get("random_init", "tracking_miou")
        if random_init is not None:
            text += f" ({random_init:.1f} at random init)"
    probe = rows[rows["metric"].str.startswith("attribute_probe_") & (rows["fold"] == "0")]
    if len(probe):
        parts = []
        for metric in dict.fromkeys(probe["metric"]):
            name = metric.removeprefix("attribute_probe_").removesuffix("_accuracy")
            frozen, majority = get("frozen", metric, "0"), get("majority", metric, "0")
            if frozen is not None:
                parts.append(f"{name} {frozen:.1f} %" + (f" (majority label {majority:.1f} %)" if majority is not None else ""))
        text += f". Attribute probe on each object's stride-16 feature, fold 0, frozen: {', '.join(parts)}"
    return text + "."


def _block_ablation(record: Mapping[str, Any]) -> str:
    rows = record["runs"]["ablation"]["values"]["rows"]
    release = sorted({round(r["release"], 2) for r in rows.values()})
    episodes = sorted({r["episodes"] for r in rows.values()})
    behaviour = [r for key, r in rows.items() if not key.startswith("protocol=")]
    protocol = [r for key, r in rows.items() if key.startswith("protocol=")]
    largest = max(abs(r["delta"]) for r in behaviour) if behaviour else float("nan")
    text = (f"Measured (`docs/measured.json`): {len(behaviour)} behaviour rows change mIoU by at most {largest:.2f} points ({', '.join(f'{v:.2f}' for v in release)} % "
            f"with the release's behaviour, {', '.join(map(str, episodes))} episodes per row)")
    if protocol:
        p = protocol[0]
        text += f"; `--protocol hsnet` gives {p['delta']:+.2f} ({p['option']:.2f} % against {p['release']:.2f} %)"
    return text + "."


def _ours_cell(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "not measured"
    rows = entry["values"]["rows"]
    if not rows:
        return "figure only"
    parts = []
    for r in rows:
        fold = r.get("fold")
        label = " ".join(v for v in (r["method"], r["setting"] if r["setting"] not in ("", "nan") else "",
                                     "" if fold is None else (fold if fold == "mean" else f"fold {fold}"),
                                     f"{r['shots']}-shot" if r["shots"] > 1 else "", r["metric"] if r["metric"] != "miou" else "") if v)
        parts.append(f"{label} {_format(r['ours'])}")
    return "; ".join(parts)


def _format(value: float) -> str:
    if float(value).is_integer():
        return f"{value:.0f}" if value else "0.0"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


# warnings every offline row carries (said once above the table), not repeated per script
_GENERIC_WARNINGS = (re.compile(r"^\w+: not comparable with the paper"), re.compile(r"^SAM2 is the shipped MINIATURE"))


def _specific_warnings(entry: Mapping[str, Any] | None) -> list[str]:
    warnings = (entry or {}).get("values", {}).get("warnings") or []
    return [str(w) for w in warnings if not any(p.search(str(w)) for p in _GENERIC_WARNINGS)]


def _block_experiments(record: Mapping[str, Any]) -> str:
    runs = record.get("runs", {})
    lines = ["| paper | script | the paper's setting | ours on the miniature (offline; options) |", "| --- | --- | --- | --- |"]
    notes: list[str] = []
    for item, script, paper, options in EXPERIMENTS:
        entry = runs.get(script)
        marks = []
        for warning in _specific_warnings(entry):
            notes.append(f"{len(notes) + 1}. `{script}.py`: {warning}")
            marks.append(f"[{len(notes)}]")
        mark = f" (warned: {', '.join(marks)})" if marks else ""
        lines.append(f"| {item} | `{script}.py` | {paper} | {_ours_cell(entry)}{mark} (`{' '.join(options)}`) |")
    if notes:
        lines += ["", "Warnings these runs gave, besides the \"not comparable with the paper\" every row of ours carries:", "", *notes]
    seconds = [e["seconds"]["idle"] for name, e in runs.items() if name in RUNS and RUNS[name].argv[0].startswith("experiments/")
               and e.get("seconds", {}).get("idle")]
    if seconds:
        dates = sorted({runs[s]["date"] for _, s, _, _ in EXPERIMENTS if s in runs})
        lines += ["", f"Measured (`docs/measured.json`, {dates[0]}{' to ' + dates[-1] if len(dates) > 1 else ''}, "
                      f"{record.get('machine', {}).get('cpus')}-core CPU, idle): each script took {min(seconds):.0f}-{max(seconds):.0f} s."]
    return "\n".join(lines)


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "experiments": _block_experiments,
    "main-job": _block_main_job,
    "times": _block_times,
    "miniature": _block_miniature,
    "ablation": _block_ablation,
}


def render(name: str, record: Mapping[str, Any] | None = None) -> str:
    """The text of block ``name`` from the sources (``record``: ``docs/measured.json`` read)."""
    if name not in RENDERERS:
        raise ValueError(f"block {name!r}: expected one of {', '.join(RENDERERS)}")
    record = record if record is not None else json.loads(MEASURED.read_text())
    return RENDERERS[name](record)


def blocks(text: str) -> list[tuple[str, str]]:
    """``[(name, body)]`` of the generated blocks in ``text``."""
    return [(m["name"], m["body"]) for m in BLOCK.finditer(text)]


def _rewritten(text: str, record: Mapping[str, Any]) -> str:
    return BLOCK.sub(lambda m: f"<!-- numbers: {m['name']} -->\n{render(m['name'], record)}\n<!-- /numbers -->", text)


def check(record: Mapping[str, Any] | None = None, *, root: Path = REPO) -> list[str]:
    """The blocks of :data:`DOCS` that differ from what the sources give (``file: block``)."""
    record = record if record is not None else json.loads(MEASURED.read_text())
    stale = []
    for doc in DOCS:
        text = (root / doc).read_text()
        for name, body in blocks(text):
            if body != render(name, record) + "\n":
                stale.append(f"{doc}: {name}")
    return stale


def write(record: Mapping[str, Any] | None = None, *, root: Path = REPO) -> list[Path]:
    """Rewrite every block of :data:`DOCS` from the sources; returns the files changed."""
    record = record if record is not None else json.loads(MEASURED.read_text())
    changed = []
    for doc in DOCS:
        path = root / doc
        text = path.read_text()
        new = _rewritten(text, record)
        if new != text:
            atomic_write_text(path, new)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("sansa_probe.paper.documented", __doc__)
    parser.add_argument("--measure", nargs="+", default=None, metavar="RUN",
                        help=f"runs to measure: install, {', '.join(RUNS)}; 'experiments' (every script), 'stale' (runs on other miniature weights)")
    parser.add_argument("--conditions", nargs="+", default=["idle"], metavar="idle|busy",
                        help="idle (nothing else running; default) and/or busy (beside two CPU-bound processes)")
    parser.add_argument("--keep-times", action="store_true",
                        help="record the new numbers but keep the times recorded before (the same workload, e.g. new weights; a machine that is not idle)")
    parser.add_argument("--write", action="store_true", help="rewrite the docs' blocks from the sources")
    parser.add_argument("--check", action="store_true", help="exit 1 when a block differs from the sources")

    def body() -> int:
        args = parser.parse_args(argv)
        if args.measure:
            record = json.loads(MEASURED.read_text()) if MEASURED.is_file() else {}
            measure(expand(args.measure, record), conditions=tuple(args.conditions), keep_times=args.keep_times)
        if args.write:
            for path in write():
                say(f"wrote {path}")
        if args.check:
            stale = check()
            for item in stale:
                say(f"stale: {item}")
            return 1 if stale else 0
        return 0

    return run_main(body, prog="sansa_probe.paper.documented")


if __name__ == "__main__":
    raise SystemExit(main())
