"""A training run's folder knows what wrote it, and one run is never mixed with another.

``<out>/run.json`` records the command and every setting that changes the data or the model
(dataset, fold, prompt, recipe, model, initial checkpoint...). Before any work starts:

* a new run refuses a folder that holds another run's files unless ``--overwrite`` is given
  (then exactly the files that run recorded in ``sansa-manifest.json`` are removed, just before
  training starts, so a run that fails to start loses nothing); a folder holding anything a
  training run did not write is refused either way (:mod:`sansa_probe.io.manifest`);
* ``--resume`` needs the checkpoint it continues from (``checkpoints/last.pt``), compares this
  run's settings with the recorded ones and names the first setting that differs.

Settings are stored under their command-line names (``--fold``), so a message names the
option to change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from sansa_probe import __version__
from sansa_probe.io.atomic import atomic_write_json
from sansa_probe.io.manifest import RunFolder

__all__ = ["RUN_FILE", "RUN_FILES", "RUN_CLAIMS", "RunDirectoryError", "existing_run_files", "check_new_run", "check_resume_settings",
           "differing_setting", "legacy_outputs", "write_run_file", "read_run_file"]

RUN_FILE = "run.json"
# Everything a training run writes into its --out folder.
RUN_FILES = (RUN_FILE, "log.csv", "final.pt", "adapters.pt", "checkpoints", "tensorboard")
# ... as claims in the folder's manifest (folders with a trailing slash)
RUN_CLAIMS = (RUN_FILE, "log.csv", "final.pt", "adapters.pt", "checkpoints/", "tensorboard/")


class RunDirectoryError(ValueError):
    """An output folder holds another run, or a resume does not match the run it continues."""


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def existing_run_files(out: str | Path) -> list[str]:
    """Names of the training-run files present in ``out`` (sorted)."""
    out = Path(out)
    return sorted(name for name in RUN_FILES if (out / name).exists())


def legacy_outputs(out: Path) -> dict[str, None] | None:
    """What a training run of a version without ``sansa-manifest.json`` wrote in ``out``: the names of
    :data:`RUN_FILES` present beside its ``run.json`` (``None`` when there is no such run)."""
    recorded = read_run_file(out)
    if recorded is None or recorded.get("command", "sansa_probe.train") != "sansa_probe.train":
        return None
    return {claim: None for name, claim in zip(RUN_FILES, RUN_CLAIMS) if (Path(out) / name).exists()}


def check_new_run(folder: RunFolder, *, overwrite: bool) -> None:
    """A new run may use the opened ``folder`` when it holds no run, or with ``overwrite``."""
    out = folder.path
    found = existing_run_files(out)
    if folder.previous is not None and found and not overwrite:
        raise RunDirectoryError(
            f"--out {out} already holds a training run ({', '.join(found)}); pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )


def read_run_file(out: str | Path) -> dict[str, Any] | None:
    path = Path(out) / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirectoryError(f"{path} is not readable run settings ({exc}); expected the JSON written by the run") from None
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise RunDirectoryError(f"{path} has no 'settings'; expected the JSON written by the run")
    return data


def differing_setting(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """The first setting (in ``current``'s order) whose value differs, or ``None``."""
    recorded, current = _normal(dict(recorded)), _normal(dict(current))
    for key in [*current, *(k for k in recorded if k not in current)]:
        if recorded.get(key) != current.get(key):
            return key
    return None


def _shown(value: Any) -> str:
    if value is None:
        return "(not given)"
    if isinstance(value, list):
        return " ".join(map(str, value)) if value else "(empty)"
    return str(value)


def check_resume_settings(recorded: Mapping[str, Any], current: Mapping[str, Any], *, source: str) -> None:
    """Raise :class:`RunDirectoryError` naming the first setting where ``current`` differs from ``recorded``."""
    key = differing_setting(recorded, current)
    if key is not None:
        raise RunDirectoryError(
            f"--resume: {source} was trained with {key} {_shown(_normal(recorded.get(key)))}, this run has "
            f"{key} {_shown(_normal(current.get(key)))}; resume with the same settings, or start a new run "
            "(another --out, or --overwrite)"
        )


def write_run_file(out: str | Path, *, command: str, settings: Mapping[str, Any], identity: Mapping[str, Any] | None = None) -> Path:
    """``<out>/run.json``: the command, the package version, the ``settings`` a resume must match and,
    when given, the model it started from (``identity``, :func:`sansa_probe.reporting.identity.model_identity`)."""
    record = {"command": command, "version": __version__, "settings": _normal(dict(settings))}
    if identity is not None:
        record["identity"] = _normal(dict(identity))
    return atomic_write_json(Path(out) / RUN_FILE, record)
