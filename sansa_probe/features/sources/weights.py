"""Where an encoder's pretrained weights come from, and one clear line when they cannot be had.

* **timm** models: :func:`sansa_probe.features.sources.timm_source.timm_weights_file`.
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

__all__ = ["EncoderWeightsNotFound", "hub_repo_dirs", "reachable", "weights_only_downloads"]


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
