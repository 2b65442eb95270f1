"""What produced a result: the model's identity in readable form, for every output file.

A number means nothing without the model behind it. :func:`model_identity` collects, from a
:class:`~sansa_probe.model.SansaModel` built by :func:`~sansa_probe.load_sansa`:

* the architecture (backbone, SAM2 version, image size, adapter recipe, any sam2 overrides and the
  behaviour options recorded in the model's config);
* the SAM2 weights: file and SHA-256, or ``"random"`` (flagged in words: results are meaningless),
  or the shipped miniature (flagged: a toy model, not comparable with the paper);
* the adapters: file and SHA-256, ``"fresh"`` (flagged: SANSA with fresh adapters is frozen SAM2
  plus noise-free identity adapters), or the shipped miniature;
* whether the adapters are switched on (SANSA) or off (frozen SAM2) for this result;
* precision, device and package versions.

:func:`identity_line` is the one-line form printed first by every command and written in table
rows; :func:`identity_footnote` the shorter form under figures, covering the runs of one model
object (frozen SAM2 and SANSA); :func:`identity_warnings` are the flags in words.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from sansa_probe.model.checkpoint import ABSURD_ADAPTERS, ADAPTER_WEIGHT_LIMIT, absurd_adapters_message, largest_adapter_weight
from sansa_probe.model.config import BEHAVIOURS
from sansa_probe.utils.hashing import file_sha256

__all__ = ["model_identity", "identity_line", "identity_footnote", "identity_warnings", "is_miniature", "package_versions", "said_in_words"]


def package_versions() -> dict[str, str]:
    """Versions of python, torch, sam2 and sansa-probe."""

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {"python": platform.python_version(), "torch": torch.__version__, "sam2": version("sam2"), "sansa_probe": version("sansa-probe")}


def _file_record(path: str | Path | None, *, label: str | None = None) -> dict[str, Any] | None:
    if path is None:
        return None
    path = Path(path)
    record: dict[str, Any] = {"file": str(path)}
    if path.is_file():
        record["sha256"] = file_sha256(path)
    if label:
        record["label"] = label
    return record


_PRECISION_NAMES = {"fp32": "float32", "bf16": "bfloat16"}


def model_identity(model: Any, *, adapters_enabled: bool | None = None, precision: str | None = None,
                   protocol: str | None = None) -> dict[str, Any]:
    """The identity of ``model`` as a JSON-safe dict (see module docstring).

    ``adapters_enabled`` defaults to the model's current switch; ``precision`` to ``"float32"``;
    ``protocol`` (the preprocessing and scoring protocol, where the result has one) to none.
    """
    provenance = dict(getattr(model, "provenance", {}) or {})
    config = model.config.to_dict() if hasattr(model, "config") else {}
    enabled = bool(model.adapters_enabled if adapters_enabled is None else adapters_enabled)
    sam2_weights = _file_record(provenance.get("sam2_checkpoint"), label=provenance.get("sam2_label"))
    adapters = _file_record(provenance.get("adapters"), label=provenance.get("adapters_label"))
    identity = {
        "backbone": config.get("backbone"),
        "sam2_version": config.get("sam2_version"),
        "image_size": config.get("image_size"),
        "config": config,
        "sam2_weights": sam2_weights or "random",
        "adapters": adapters or "fresh",
        "adapters_enabled": enabled,
        "model_run": "SANSA (adapters on)" if enabled else "frozen SAM2 (adapters off)",
        "precision": _PRECISION_NAMES.get(precision or "float32", precision or "float32"),  # one spelling, the config's
        "behaviour": _behaviour(config),
        "protocol": protocol,
        "device": str(getattr(model, "device", "cpu")),
        "versions": package_versions(),
    }
    identity["warnings"] = identity_warnings(identity)
    largest = largest_adapter_weight(model.adapter_state_dict()) if enabled and hasattr(model, "adapter_state_dict") else None
    if largest is not None and largest[1] > ADAPTER_WEIGHT_LIMIT:
        identity["warnings"].append(absurd_adapters_message(*largest, source=f"adapters {_describe(adapters, 'in memory')}"))
    return identity


def _behaviour(config: dict[str, Any]) -> dict[str, str]:
    """The behaviour options (where the public release and sam2 differ) recorded in the config."""
    return {name: str(config.get(name, values[0])) for name, values in BEHAVIOURS.items()}


def identity_warnings(identity: dict[str, Any]) -> list[str]:
    """Flags in words: random SAM2 weights, fresh adapters, the miniature SAM2."""
    messages = []
    if identity.get("sam2_weights") == "random":
        messages.append("SAM2 has RANDOM weights (no checkpoint): results are a smoke test, meaningless as numbers")
    if identity.get("adapters") == "fresh" and identity.get("adapters_enabled"):
        messages.append("adapters are FRESH (no trained checkpoint): 'SANSA' here is frozen SAM2 with untrained adapters")
    if is_miniature(identity):
        messages.append("SAM2 is the shipped MINIATURE (128 px, pretrained here on procedural images), not Meta's SAM2: its numbers "
                        "show the code at work on a toy model, not the paper's results; do not compare them with the paper's")
    return messages


def is_miniature(identity: dict[str, Any]) -> bool:
    """Whether the SAM2 weights of ``identity`` are the shipped miniature's (named so by its loader)."""
    record = identity.get("sam2_weights")
    return isinstance(record, dict) and "miniature" in str(record.get("label") or "")


def _describe(record: Any, default: str) -> str:
    if record in (None, "random", "fresh"):
        return default
    label = record.get("label")
    sha = record.get("sha256", "")[:12]
    name = label or Path(record["file"]).name
    return f"{name} (sha256 {sha})" if sha else name


def _is_encoder(identity: dict[str, Any]) -> bool:
    """An encoder other than SAM2 / SANSA (``EncoderSource.identity()``: a timm, torch.hub or user's model)."""
    return "encoder" in identity and "model_run" not in identity


def _weights(identity: dict[str, Any], random: str) -> str:
    """An encoder's weights in words: files with their SHA-256, ``random``, or what the source says."""
    weights = identity.get("weights")
    if weights == "random":
        return random
    if isinstance(weights, dict):
        return _describe(weights, random)
    if isinstance(weights, list):
        return ", ".join(_describe(record, random) for record in weights) or "none"
    return str(weights)


def _encoder_line(identity: dict[str, Any]) -> str:
    """``model: timm:vit_small_patch14_dinov2.lvd142m | timm 1.0.31 | weights: model.safetensors (sha256 ...) | @518x518px``."""
    parts = [identity["encoder"], f"{identity.get('library')} {identity.get('library_version', '')}".strip(),
             f"weights: {_weights(identity, 'RANDOM')}"]
    preprocess = identity.get("preprocess")
    size = preprocess.get("size") if isinstance(preprocess, dict) else None  # a user's preprocessing function has no size
    if size:
        parts.append(f"@{size[0]}x{size[1]}px")
    return "model: " + " | ".join(parts)


def identity_line(identity: dict[str, Any]) -> str:
    """One readable line, e.g. ``model: SANSA (adapters on) | hiera_t SAM2 2.1 @256 | SAM2 weights: ... | adapters: ...``
    (for another encoder: its name, library, weights and input size)."""
    if _is_encoder(identity):
        return _encoder_line(identity)
    parts = [
        identity["model_run"],
        f"{identity.get('backbone')} SAM2 {identity.get('sam2_version')} @{identity.get('image_size')}px",
        f"SAM2 weights: {_describe(identity.get('sam2_weights'), 'RANDOM')}",
        f"adapters: {_describe(identity.get('adapters'), 'fresh (untrained)')}",
        identity.get("precision", "float32"),
    ]
    changed = [f"{k}={v}" for k, v in (identity.get("behaviour") or {}).items() if k != "precision" and v != BEHAVIOURS[k][0]]
    parts.append("behaviour: " + (", ".join(changed) if changed else "release"))
    if identity.get("protocol"):
        parts.append(f"protocol: {identity['protocol']}")
    return "model: " + " | ".join(parts)


def identity_footnote(identities: Any) -> str:
    """The weights behind a figure in one line, for one identity or several of one model object
    (``{"sam2": ..., "sansa": ...}``): e.g. ``hiera_t SAM2 2.1 @256px | SAM2: RANDOM weights
    (results meaningless) | adapters: fresh = frozen SAM2 | float32``; other encoders follow, each
    as ``<name>: <weights>``."""
    if isinstance(identities, dict) and ("model_run" in identities or "encoder" in identities):
        identities = [identities]
    elif isinstance(identities, dict):
        identities = list(identities.values())
    identities = [i for i in identities if i]
    others = [f"{i['encoder']}: {_weights(i, 'RANDOM weights (results meaningless)')}" for i in identities if _is_encoder(i)]
    identities = [i for i in identities if not _is_encoder(i)]
    if not identities:
        return " | ".join(others)
    first = identities[0]
    weights = _describe(first.get("sam2_weights"), "RANDOM weights (results meaningless)")
    enabled = [i for i in identities if i.get("adapters_enabled")]
    if enabled:
        adapters = _describe(first.get("adapters"), "fresh = frozen SAM2")
        if len(enabled) < len(identities):  # SAM2 beside SANSA: the frozen curves ran without them
            adapters += ", on for SANSA only (frozen SAM2 runs without them)"
    else:
        adapters = "off (frozen SAM2)"
    parts = [f"{first.get('backbone')} SAM2 {first.get('sam2_version')} @{first.get('image_size')}px", f"SAM2: {weights}",
             f"adapters: {adapters}", str(first.get("precision", "float32"))]
    return " | ".join(parts + others)


@contextlib.contextmanager
def said_in_words() -> Iterator[None]:
    """Build a model without Python's ``UserWarning`` about random SAM2 weights (a source line on
    stderr): for commands that print the identity and its warnings in words instead."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="sam2_checkpoint=None", category=UserWarning)
        warnings.filterwarnings("ignore", message=f".*{ABSURD_ADAPTERS}", category=UserWarning)  # the identity says it
        yield
