"""The shipped miniature: its files, their SHA-256 manifest, and :func:`load_miniature`.

Files in ``sansa_probe/miniature/weights/``::

    sam2.pt          the pretrained miniature SAM2, sam2's checkpoint layout ({"model": state dict}), float16
    fold<f>.pt       SANSA adapters trained on fold f's base classes of the procedural benchmark (f = 0..3)
    manifest.json    {"files": {name: {"sha256", "bytes"}}, "sam2_overrides": [...], "image_size", "recipe": {...}}
    results.csv      the measured results table (tidy: fold, model, metric, value)

Every load checks each file it reads against the manifest, so a damaged or replaced file is
refused with the name of the file and both checksums.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from sansa_probe.io.atomic import atomic_write_json
from sansa_probe.miniature.architecture import BACKBONE, IMAGE_SIZE, SAM2_OVERRIDES, SAM2_VERSION
from sansa_probe.model.build import load_sansa

__all__ = ["WEIGHTS_DIR", "FOLDS", "MiniatureWeightsError", "file_sha256", "write_manifest", "read_manifest", "verified_path", "load_miniature"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
FOLDS = (0, 1, 2, 3)
MANIFEST = "manifest.json"


class MiniatureWeightsError(ValueError):
    """A shipped miniature file is missing or does not match its recorded checksum."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: str | os.PathLike, names: list[str], **info: Any) -> Path:
    """Record the SHA-256 and size of ``names`` in ``folder/manifest.json`` (atomically)."""
    folder = Path(folder)
    files = {name: {"sha256": file_sha256(folder / name), "bytes": (folder / name).stat().st_size} for name in sorted(names)}
    return atomic_write_json(folder / MANIFEST, {"files": files, **info})


def read_manifest(folder: str | os.PathLike = WEIGHTS_DIR) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise MiniatureWeightsError(
            f"{path} does not exist: the miniature's weights are not installed here "
            "(regenerate them with `python -m sansa_probe.miniature --ship`)"
        )
    return json.loads(path.read_text())


def verified_path(name: str, folder: str | os.PathLike = WEIGHTS_DIR) -> Path:
    """``folder/name`` after checking it against the manifest's SHA-256."""
    folder = Path(folder)
    record = read_manifest(folder)["files"].get(name)
    if record is None:
        raise MiniatureWeightsError(f"{name!r} is not listed in {folder / MANIFEST}")
    path = folder / name
    if not path.is_file():
        raise MiniatureWeightsError(f"{path} is missing (listed in {MANIFEST})")
    actual = file_sha256(path)
    if actual != record["sha256"]:
        raise MiniatureWeightsError(f"{path} has SHA-256 {actual}, the manifest records {record['sha256']}: the file is damaged or was replaced")
    return path


def load_miniature(fold: int | None = 0, *, device: str | torch.device = "cpu", folder: str | os.PathLike = WEIGHTS_DIR):
    """The shipped miniature as a :class:`~sansa_probe.model.SansaModel`.

    Args:
        fold: whose SANSA adapters to load (0..3: trained on that fold's base classes of the
            procedural benchmark, so its novel classes are the fold's test classes); ``None``
            gives the pretrained miniature SAM2 with fresh (untrained) adapters.
        device: where the model lives.
        folder: the weights folder (default: the one inside the package).

    ``with model.adapters(False)`` is the frozen pretrained miniature SAM2.
    """
    if fold is not None and (isinstance(fold, bool) or fold not in FOLDS):
        raise ValueError(f"fold: expected one of {FOLDS} or None, got {fold!r}")
    sam2 = verified_path("sam2.pt", folder)
    adapters = None if fold is None else verified_path(f"fold{fold}.pt", folder)
    model = load_sansa(
        BACKBONE,
        sam2_version=SAM2_VERSION,
        image_size=IMAGE_SIZE,
        sam2_checkpoint=sam2,
        sam2_overrides=list(SAM2_OVERRIDES),
        adapters=adapters,
        device=device,
    )
    # named in words in every output's identity line (sansa_probe.reporting.identity)
    model.provenance = {
        **getattr(model, "provenance", {}),
        "sam2_label": "the miniature SAM2 pretrained here",
        "adapters_label": None if fold is None else f"miniature fold-{fold} adapters",
    }
    return model
