"""Atomic file writes: nothing already written is lost when a run is interrupted.

Every writer goes to a temporary file in the destination folder, flushes and
fsyncs it, then ``os.replace``-s it over the destination (atomic on POSIX and
Windows). A reader therefore sees either the old file or the new one, never a
truncated mix. Files get the permissions of an ordinary ``open(path, "w")``: ``0666`` less the
user's umask (not the ``0600`` of a temporary file).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

__all__ = ["current_umask", "check_output_folder", "atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_torch_save"]


def current_umask() -> int:
    """The process's umask (read from /proc where possible: setting it to read it is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; a written file gets the user's umask
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any, *, save: Callable[[Any, Path], None] | None = None) -> Path:
    """``torch.save`` through a temporary file and an atomic rename."""
    with atomic_path(path) as tmp:
        (save or torch.save)(obj, tmp)
    return Path(path)


def check_output_folder(path: str | os.PathLike, *, name: str) -> Path:
    """Fail now, before any work, when ``path`` cannot be an output folder: it is a file, or
    the folder (or the nearest existing folder above it) is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{name} {path} is a file; expected an output folder")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(f"{name} {path}: {existing} is a file, so the output folder cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{name} {path}: the folder {existing} is not writable; expected a writable output folder")
    return path
