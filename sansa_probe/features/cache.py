"""The on-disk feature cache and the model-state hashes that key it.

**Cache** (:class:`FeatureCache`): one file per model state (adapters off: SAM2's weights;
on: SAM2's weights + adapters, by content hash), layer, dataset, fold and split, with its
config in a JSON beside it and inside it; any config difference (pooling, images, dataset
options, ...) means recompute and overwrite. Writes are atomic.

A model state is hashed by content (:class:`ModelStateHasher`), so retraining the adapters, or
loading other SAM2 weights, changes the file name; frozen-SAM2 features do not depend on the
adapters and survive their retraining.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sansa_probe.io.atomic import atomic_torch_save, atomic_write_text
from sansa_probe.model.sansa import SansaModel

__all__ = ["CACHE_FORMAT", "CACHE_VERSION", "FeatureCache", "ModelStateHasher", "payload_checksum"]

CACHE_FORMAT = "sansa-probe/features"
CACHE_VERSION = 3  # 2: images enter through the release protocol (640 px square first); 3: a checksum of the arrays


class FeatureCache:
    """Feature sets on disk: ``<root>/<dataset>/fold<f>-<split>/<layer>/<model state>.<kind>.pt``
    plus ``.json`` with the config (also stored inside the ``.pt``). :meth:`load` returns
    ``None`` (recompute) when either is missing, truncated or the config differs, when the
    checksum of its arrays (:func:`payload_checksum`, written inside it) does not match, or when a
    feature is NaN or infinite; a ``.pt`` file holding objects that ``weights_only`` loading refuses
    (not written by the cache: tampered with) is a ``ValueError`` naming it, never loaded."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @staticmethod
    def _safe(text: Any) -> str:
        return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in str(text)).strip("-") or "none"

    def path(self, *, kind: str, dataset: str, fold: int | None, split: str, layer: str, state: str) -> Path:
        folder = self.root / self._safe(dataset) / f"fold{'-' if fold is None else fold}-{self._safe(split)}" / self._safe(layer)
        return folder / f"{self._safe(state)}.{self._safe(kind)}.pt"

    @staticmethod
    def _normal(config: Mapping[str, Any]) -> Any:
        return json.loads(json.dumps(config, sort_keys=True, default=str))

    def load(self, path: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
        meta = path.with_suffix(".json")
        if not path.is_file() or not meta.is_file():
            return None
        expected = self._normal(config)
        try:
            if json.loads(meta.read_text(encoding="utf-8")) != expected:
                return None
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # objects or code that weights_only refuses: not written by us
            raise ValueError(
                f"feature cache file {path} holds Python objects other than tensors and plain values, which are never "
                "loaded; expected a file written by the feature cache: delete it to recompute"
            ) from None
        except (OSError, ValueError, RuntimeError, EOFError, json.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or json.loads(payload.get("config", "null")) != expected:
            return None
        if payload.get("checksum") != payload_checksum(payload) or not _finite(payload):
            warnings.warn(f"feature cache file {path} does not match its checksum or holds non-finite features: recomputed", stacklevel=2)
            return None
        return payload

    def save(self, path: Path, payload: Mapping[str, Any], config: Mapping[str, Any]) -> Path:
        text = json.dumps(self._normal(config), sort_keys=True)
        payload = {**payload, "config": text}
        atomic_torch_save(path, {**payload, "checksum": payload_checksum(payload)})
        atomic_write_text(path.with_suffix(".json"), json.dumps(self._normal(config), indent=2, sort_keys=True) + "\n")
        return path


def payload_checksum(payload: Mapping[str, Any]) -> str:
    """BLAKE2b of a cache payload (every entry but ``checksum``): tensors by dtype, shape and bytes,
    everything else as JSON; a file whose arrays were changed after it was written no longer matches."""
    digest = hashlib.blake2b(digest_size=20)
    for key in sorted(k for k in payload if k != "checksum"):
        value = payload[key]
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            data = value.detach().contiguous().cpu()
            digest.update(f"{data.dtype}{tuple(data.shape)}".encode())
            if data.numel():
                digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _finite(payload: Mapping[str, Any]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in payload.values() if isinstance(v, torch.Tensor) and v.is_floating_point())


class ModelStateHasher:
    """Content hashes of the two states of one model (adapters off / on), for cache keys.

    Per-tensor digests are kept and reused while a tensor is not modified in place
    (``tensor._version``): hashing again reads only the tensors that changed.
    """

    def __init__(self, model: SansaModel) -> None:
        self.model = model
        self._digests: dict[str, tuple[int, int, tuple[int, ...], bytes]] = {}

    def __call__(self, adapters: bool) -> dict[str, Any]:
        """Content hash of what the features depend on: SAM2's tensors and config, plus the adapters
        (tensors and recipe) when ``adapters`` is on -> ``{"id", "digest", "adapters", "config"}``."""
        sam = self.model.sam
        adapter_names = set(self.model.adapter_names)
        config = self.model.config.to_dict()
        if not adapters:
            config = {k: config[k] for k in ("backbone", "sam2_version", "image_size", "object_scores") if k in config}
        hasher = hashlib.blake2b(digest_size=20)
        hasher.update(json.dumps({"config": config, "adapters": bool(adapters)}, sort_keys=True, default=str).encode())
        for name, tensor in sorted(sam.state_dict(keep_vars=True).items()):
            if name in adapter_names and not adapters:
                continue
            hasher.update(name.encode())
            hasher.update(self._tensor_digest(name, tensor))
        digest = hasher.hexdigest()
        return {"id": f"{'sansa' if adapters else 'sam2'}-{digest[:12]}", "digest": digest, "adapters": bool(adapters), "config": config}

    def _tensor_digest(self, name: str, tensor: torch.Tensor) -> bytes:
        key = (tensor.data_ptr(), int(tensor._version), tuple(tensor.shape))
        cached = self._digests.get(name)
        if cached is not None and cached[:3] == key:
            return cached[3]
        data = tensor.detach().contiguous().cpu()
        digest = hashlib.blake2b(str((data.dtype, tuple(data.shape))).encode(), digest_size=16)
        if data.numel():
            digest.update(data.reshape(-1).view(torch.uint8).numpy().data)
        self._digests[name] = (*key, digest.digest())
        return self._digests[name][3]
