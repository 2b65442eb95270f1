"""SAM2 weights: Meta's official checkpoints, downloaded into the torch hub cache, loaded strictly.

``sam2_checkpoint="auto"`` looks for Meta's file (e.g. ``sam2.1_hiera_large.pt``) in
``<torch hub dir>/checkpoints/sam2/`` and downloads it from Meta's official address when it
is missing, with a progress bar. Meta publishes no checksums, so the download is checked
against the size the server announces, then opened with ``weights_only=True`` and matched
key by key and shape by shape against the config; the SHA-256 and size of the accepted file
are recorded beside it (``<file>.sha256``) and checked again on every later use, so a
corrupted or replaced file is never loaded silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sansa_probe.model.config import sam2_checkpoint_name, sam2_checkpoint_url
from sansa_probe.io.atomic import atomic_path, atomic_write_json

__all__ = ["CheckpointError", "check_finite", "check_tensor", "existing_checkpoint_file", "sam2_cache_dir", "resolve_sam2_checkpoint", "read_sam2_state_dict", "OBJECT_SCORE_KEYS"]

# Parameters that exist only when SAM2's object-score heads are built (pred_obj_scores=True).
OBJECT_SCORE_KEYS = ("no_obj_ptr", "sam_mask_decoder.obj_score_token.", "sam_mask_decoder.pred_obj_score_head.")


class CheckpointError(ValueError):
    """A checkpoint file is truncated, foreign, or does not match the model it is loaded into."""


def check_finite(state: dict[str, torch.Tensor], *, source: str) -> None:
    """Refuse a state dict with a NaN or infinite value, naming the first such key."""
    for key, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(
                f"{source}: key {key!r} holds NaN or infinite values; expected finite weights "
                "(a corrupted file, or a run that diverged)"
            )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def check_tensor(key: str, value: object, reference: torch.Tensor, *, source: str) -> torch.Tensor:
    """One checkpoint entry against the model tensor it is loaded into: a tensor, floating point
    where the model's is (any float precision: it is converted losslessly enough), the model's own
    dtype otherwise; an int, bool or complex tensor for a weight is refused, never cast."""
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{source}: key {key!r} holds a {type(value).__name__}, not a tensor; expected {_dtype_name(reference.dtype)} "
                              f"weights of shape {tuple(reference.shape)} (a damaged or foreign file)")
    fits = value.is_floating_point() if reference.is_floating_point() else value.dtype == reference.dtype
    if not fits:
        expected = "floating-point weights" if reference.is_floating_point() else f"{_dtype_name(reference.dtype)} values"
        raise CheckpointError(f"{source}: key {key!r} holds {_dtype_name(value.dtype)} values, the model's tensor is "
                              f"{_dtype_name(reference.dtype)}; expected {expected} (converting them would silently change the model)")
    return value


def existing_checkpoint_file(path: str | os.PathLike, *, name: str) -> Path:
    """``path`` as an existing file; a clear error for a folder or a missing path."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{name}: {path} is a folder; expected a checkpoint file (.pt)")
    if not path.is_file():
        hint = " (None or 'none', lower case, means no checkpoint)" if str(path).lower() in ("none", "null", "no") else ""
        raise FileNotFoundError(f"{name}: {path} does not exist; expected a checkpoint file (.pt){hint}")
    return path


def sam2_cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / "sam2"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, destination: Path, *, timeout: float = 30.0) -> None:
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - fixed https address
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FileNotFoundError(
            f"could not download the SAM2 checkpoint from {url} ({exc}).\n"
            f"Offline? Download that file on a connected machine and put it at {destination} "
            f"(or pass sam2_checkpoint=PATH / --sam2-checkpoint PATH)."
        ) from None
    expected = int(response.headers.get("Content-Length") or 0)
    received = 0
    with atomic_path(destination) as tmp, open(tmp, "wb") as handle, tqdm(
        total=expected or None, unit="B", unit_scale=True, desc=f"downloading {destination.name}"
    ) as bar:
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                break
            handle.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
        handle.flush()
        if expected and received != expected:
            raise CheckpointError(f"download of {url} is truncated: {received} of {expected} bytes")


def resolve_sam2_checkpoint(spec: str | os.PathLike, *, backbone: str, sam2_version: str) -> Path:
    """A path to an existing SAM2 checkpoint: ``spec`` itself, or Meta's file for ``"auto"``."""
    if str(spec) != "auto":
        return existing_checkpoint_file(spec, name="sam2_checkpoint")
    path = sam2_cache_dir() / sam2_checkpoint_name(backbone, sam2_version)
    record = path.with_name(path.name + ".sha256")
    if not path.is_file():
        _download(sam2_checkpoint_url(backbone, sam2_version), path)
        read_sam2_state_dict(path)  # refuse a foreign or corrupt file before recording it
        atomic_write_json(record, {"sha256": _sha256(path), "size": path.stat().st_size, "url": sam2_checkpoint_url(backbone, sam2_version)})
    elif record.is_file():
        try:
            expected = json.loads(record.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{record} is not readable ({exc}): delete it and {path.name} to download again") from None
        if path.stat().st_size != expected.get("size"):
            raise CheckpointError(
                f"{path} has {path.stat().st_size} bytes, {expected.get('size')} were recorded at download: "
                f"delete it (and {record.name}) to download it again"
            )
        digest = _sha256(path)
        if digest != expected.get("sha256"):
            raise CheckpointError(
                f"{path} has SHA-256 {digest}, {expected.get('sha256')} was recorded at download (the file is corrupted "
                f"or was replaced): delete it (and {record.name}) to download it again"
            )
    return path


def read_sam2_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of a SAM2 checkpoint, loaded with ``weights_only=True``."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, not a torch file...
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        keys = list(checkpoint)[:5] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path} is not a SAM2 checkpoint: expected a dict with a 'model' state dict, found {keys}")
    return checkpoint["model"]


def load_sam2_weights(
    sam: torch.nn.Module,
    state: dict[str, torch.Tensor],
    *,
    source: str,
    object_scores: bool,
    keep: dict[str, torch.Tensor] | None = None,
) -> None:
    """Load a SAM2 state dict into ``sam`` strictly: every key present, none unexpected, shapes equal.

    With ``object_scores=False`` the object-score heads are not built, so exactly their keys
    (:data:`OBJECT_SCORE_KEYS`) are dropped from the file, and nothing else. ``keep``: tensors of
    ``sam`` that are not SAM2's (the adapters) and stay as they are.
    """
    keep = keep or {}
    expected = {k: v for k, v in sam.state_dict().items() if k not in keep}
    if not object_scores:
        state = {k: v for k, v in state.items() if not k.startswith(OBJECT_SCORE_KEYS)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        hint = ""
        if any(k.startswith(("obj_ptr_tpos_proj", "no_obj_embed_spatial")) for k in missing):
            hint = " (this looks like a SAM2 v1 checkpoint: pass sam2_version='2')"
        elif any(k.startswith(("obj_ptr_tpos_proj", "no_obj_embed_spatial")) for k in unexpected):
            hint = " (this looks like a SAM2.1 checkpoint: pass sam2_version='2.1')"
        raise CheckpointError(
            f"{source} does not match the SAM2 config{hint}: "
            f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
        )
    for key, tensor in state.items():
        check_tensor(key, tensor, expected[key], source=source)
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{source}: key {key!r} has shape {tuple(tensor.shape)}, the config expects {tuple(expected[key].shape)} "
                f"(a checkpoint of another backbone?)"
            )
    check_finite(state, source=source)
    sam.load_state_dict({**state, **keep}, strict=True)
