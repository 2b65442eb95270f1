"""Where an encoder's pretrained weights come from, and one clear line when they cannot be had.

* **timm** models: the file timm would load from the Hugging Face hub (``model.safetensors``, or
  the model's own file name), looked up first in a plain folder,
  ``<torch hub dir>/checkpoints/timm/<model name>/<file>`` (where an offline user puts it by hand),
  then in the Hugging Face cache (``~/.cache/huggingface/hub``, ``$HF_HOME``), else downloaded into
  that cache (:func:`timm_weights_file`).
* **torch.hub** entries: the repository's code in ``<torch hub dir>/<owner>_<name>_main`` and the
  files its entry downloads into ``<torch hub dir>/checkpoints/``, as ``torch.hub`` does; every such
  download is loaded with ``weights_only=True`` (:func:`weights_only_downloads`).

Offline (``HF_HUB_OFFLINE=1``, or the host unreachable), a missing file is
:class:`EncoderWeightsNotFound`: one line naming the file to fetch and where to put it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = ["EncoderWeightsNotFound", "hub_repo_dirs", "reachable", "timm_plain_dir", "timm_weights_file", "weights_only_downloads"]


class EncoderWeightsNotFound(FileNotFoundError):
    """An encoder's weights (or code) are not on disk and cannot be downloaded: the message names
    what to fetch and where to put it."""


def reachable(url: str, *, timeout: float = 3.0) -> bool:
    """Whether the host of ``url`` accepts a connection (a quick check before a download that
    would otherwise retry for a minute when offline)."""
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def timm_plain_dir(model_name: str) -> Path:
    """``<torch hub dir>/checkpoints/timm/<model name>``: where a weights file put by hand is found."""
    return Path(torch.hub.get_dir()) / "checkpoints" / "timm" / model_name


def _hf_candidates(cfg: Any) -> list[str]:
    """The files timm loads for a Hugging Face hosted model, safetensors first."""
    filename = getattr(cfg, "hf_hub_filename", None) or "pytorch_model.bin"
    safe = {"pytorch_model.bin": ["model.safetensors"], "open_clip_pytorch_model.bin": ["open_clip_model.safetensors"]}.get(filename)
    if safe is None:
        safe = [filename[:-4] + ".safetensors"] if filename.endswith(".bin") else []
    return [*safe, filename]


def timm_weights_file(model_name: str) -> Path:
    """The pretrained weights file of the timm model ``model_name`` (``arch.tag``), found or
    downloaded as the module docstring says; :class:`EncoderWeightsNotFound` offline."""
    import timm  # deferred on purpose: timm is an optional dependency (the ``encoders`` extra)
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    cfg = timm.models.get_pretrained_cfg(model_name)
    spec = f"timm:{model_name}"
    if cfg is None or not getattr(cfg, "hf_hub_id", None):
        raise EncoderWeightsNotFound(
            f"{spec}: timm {timm.__version__} has no pretrained weights on the Hugging Face hub for this name "
            f"(timm.list_pretrained() lists those that have); use {spec}:random for random weights"
        )
    repo = cfg.hf_hub_id
    candidates = _hf_candidates(cfg)
    plain = timm_plain_dir(model_name)
    for filename in candidates:
        if (plain / filename).is_file():
            return plain / filename
    for filename in candidates:
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str) and Path(cached).is_file():
            return Path(cached)
    url = f"{constants.ENDPOINT}/{repo}/resolve/main/{candidates[0]}"
    if _hf_offline() or not reachable(constants.ENDPOINT):
        raise EncoderWeightsNotFound(
            f"{spec}: its pretrained weights are not on disk and {constants.ENDPOINT} cannot be reached (offline?); "
            f"download {url} and put it at {plain / candidates[0]} (or run once online to fill the Hugging Face cache "
            f"{constants.HF_HUB_CACHE}), or use {spec}:random for a smoke test"
        )
    for filename in candidates:
        try:
            return Path(hf_hub_download(repo, filename))
        except EntryNotFoundError:
            continue
        except (LocalEntryNotFoundError, OSError) as exc:
            raise EncoderWeightsNotFound(f"{spec}: could not download {url} ({type(exc).__name__}); put that file at {plain / candidates[0]}") from None
    raise EncoderWeightsNotFound(f"{spec}: {repo} on the Hugging Face hub holds none of {', '.join(candidates)}")


def hub_repo_dirs(repo: str) -> list[Path]:
    """Where ``torch.hub`` keeps the code of a GitHub repository ``owner/name`` (its default
    branch, ``main`` or ``master``)."""
    owner, name = repo.split("/", 1)
    return [Path(torch.hub.get_dir()) / f"{owner}_{name}_{branch}" for branch in ("main", "master")]


@contextlib.contextmanager
def weights_only_downloads(spec: str) -> Iterator[list[Path]]:
    """While a torch.hub entry builds its model: every ``torch.hub.load_state_dict_from_url`` it
    calls loads with ``weights_only=True`` (no pickled code runs), a download that fails offline is
    :class:`EncoderWeightsNotFound` naming the URL and the file to put, and the files loaded are
    collected in the yielded list (for the identity: file and SHA-256)."""
    original = torch.hub.load_state_dict_from_url
    files: list[Path] = []

    def load(url: str, model_dir: str | None = None, map_location: Any = None, progress: bool = True, check_hash: bool = False,
             file_name: str | None = None, weights_only: bool = True) -> dict[str, Any]:
        folder = Path(model_dir) if model_dir else Path(torch.hub.get_dir()) / "checkpoints"
        target = folder / (file_name or os.path.basename(urllib.parse.urlparse(url).path))
        if not target.is_file() and not reachable(url):
            raise EncoderWeightsNotFound(f"{spec}: its weights are not on disk and {url} cannot be reached (offline?); "
                                         f"download that file and put it at {target}")
        state = original(url, model_dir=model_dir, map_location=map_location, progress=progress, check_hash=check_hash,
                         file_name=file_name, weights_only=True)
        files.append(target)
        return state

    torch.hub.load_state_dict_from_url = load
    try:
        yield files
    finally:
        torch.hub.load_state_dict_from_url = original
