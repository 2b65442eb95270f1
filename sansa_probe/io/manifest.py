"""What a command wrote in its ``--out``: the manifest, and the one rule that follows from it.

We never remove or change a file that we did not write. Every command that writes into an output
folder opens it as a :class:`RunFolder`, which keeps ``<out>/sansa-manifest.json``::

    {"format": "sansa-probe/outputs", "version": 1, "command": "sansa_probe.segment",
     "state": "running" | "complete", "started": ..., "finished": ... | null,
     "files": {"summary.json": {"size": 1234, "sha256": "..."},    # written and recorded
               "log.csv": null,                                    # claimed: being written
               "checkpoints/": null}}                              # claimed folder: all under it

* **Claim before writing** (:meth:`RunFolder.claim`): the manifest names a file or folder before
  it exists, so a killed run leaves a manifest covering everything it left, including the
  ``.<name>.*.tmp`` files of :mod:`sansa_probe.io.atomic` beside a claimed name.
* **Record when done** (:meth:`RunFolder.finish`): claims become the exact files with their size
  and SHA-256, and the run ``complete``.
* **Ours = listed and unchanged**: a file is the run's when the manifest of the same command lists
  it (or a claimed folder holds it) and, once recorded, its size and SHA-256 still match. Anything
  else -- a file no run listed, a listed file edited since -- is the user's.
* **Open before any work** (:meth:`RunFolder.open`): ``--out`` inside an input folder, a folder of
  another command, or a folder holding any file that is not ours is refused in one line naming a
  few of them; a finished run is refused unless ``overwrite`` where the command says so.
* **Remove only what a manifest lists** (:meth:`RunFolder.remove_previous`, :meth:`RunFolder.staged`,
  :meth:`RunFolder.finish`): nothing else is ever unlinked.
* **Nested run folders** (``"pca/": {"nested": true}``, :meth:`RunFolder.finish`): a folder in which
  other commands wrote their own run folders (a paper script's ``pca/``, ``train/``) belongs to
  those runs, each judged by its own manifest; this folder's run never removes anything under it.
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sansa_probe.io.atomic import atomic_write_bytes, atomic_write_json, check_output_folder

__all__ = ["MANIFEST", "FORMAT", "NESTED", "OutputFolderError", "RunFolder", "file_record", "check_not_inside"]

MANIFEST = "sansa-manifest.json"
FORMAT = "sansa-probe/outputs"
_SHOWN = 3  # files named in a refusal
NESTED = {"nested": True}  # the entry of a folder holding other commands' run folders


class OutputFolderError(ValueError):
    """An output folder holds what this run may not replace (the user's files, another command's run,
    a finished run without ``--overwrite``), or lies inside an input folder."""


def file_record(path: Path) -> dict[str, Any]:
    """``{"size", "sha256"}`` of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path))).resolve()


def check_not_inside(out: str | os.PathLike, inputs: Mapping[str, Iterable[str | os.PathLike]], *, name: str = "--out") -> None:
    """Refuse ``out`` equal to or inside an input folder (``inputs``: option name -> folders), whose
    contents the command reads recursively: its outputs would become inputs of the next run."""
    target = _resolved(out)
    for option, folders in inputs.items():
        for folder in folders:
            if folder is None or not Path(folder).is_dir():
                continue
            root = _resolved(folder)
            if target == root or root in target.parents:
                raise OutputFolderError(
                    f"{name} {out} is inside {option} {folder}, an input folder read recursively: the outputs would be read "
                    f"as inputs by the next run; give an output folder outside it"
                )


def _files_under(root: Path) -> list[str]:
    """Relative posix paths of every file and symlink under ``root`` (empty folders hold nothing)."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        found.extend((base / f).relative_to(root).as_posix() for f in files)
        found.extend((base / d).relative_to(root).as_posix() for d in dirs if (base / d).is_symlink())
    return sorted(found)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputFolderError(f"{path} is not readable ({exc}); expected the manifest a sansa-probe run writes") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        raise OutputFolderError(f"{path} is not a sansa-probe manifest (format {FORMAT!r} with 'files'); move it away or give another --out")
    return data


class RunFolder:
    """An output folder opened by one run of ``command`` (see the module docstring).

    Attributes:
        path: the folder.
        command: the command writing it (``sansa_probe.segment``).
        previous: the manifest found when it was opened (``None``: a new or empty folder).
    """

    def __init__(self, path: Path, command: str, files: dict[str, Any], previous: dict[str, Any] | None, *, writer: bool) -> None:
        self.path = path
        self.command = command
        self.previous = previous
        self.writer = writer
        self._files = files  # the manifest's entries now: previous ones still on disk, and this run's claims
        self._claimed: set[str] = set()
        self._started = _now()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        command: str,
        name: str = "--out",
        overwrite: bool = False,
        finished: str = "replace",
        inputs: Mapping[str, Iterable[str | os.PathLike]] | None = None,
        legacy: Callable[[Path], Mapping[str, Any] | None] | None = None,
        writer: bool = True,
    ) -> "RunFolder":
        """Check ``path`` for a run of ``command`` before any work (nothing is written here).

        ``finished``: ``"replace"`` (a rerun replaces a finished run), ``"refuse"`` (a finished
        run is refused unless ``overwrite``). ``inputs``: option -> folders ``path`` may not be in.
        ``legacy``: for a folder without a manifest, the entries an older version of the command
        wrote there (or ``None``). ``writer``: False on ranks other than 0 (they only check).
        """
        path = check_output_folder(Path(path), name=name)
        check_not_inside(path, inputs or {}, name=name)
        present = _files_under(path) if path.is_dir() else []
        # a manifest beside nothing (a run that failed before writing, or whose files were all removed) holds no data
        manifest = _read_manifest(path / MANIFEST) if set(present) - {MANIFEST} else None
        if manifest is None:
            entries = dict(legacy(path) or {}) if legacy is not None and present else {}
            previous = {"command": command, "state": "complete", "files": entries, "legacy": True} if entries else None
        else:
            if manifest.get("command") != command:
                raise OutputFolderError(
                    f"{name} {path} holds a run of {manifest.get('command')} ({MANIFEST}); give another {name} for {command}"
                )
            entries, previous = dict(manifest["files"]), manifest
        folder = cls(path, command, entries, previous, writer=writer)
        foreign = [p for p in present if p != MANIFEST and not folder._is_ours(p)]
        if foreign:
            shown = ", ".join(foreign[:_SHOWN]) + (f" and {len(foreign) - _SHOWN} more" if len(foreign) > _SHOWN else "")
            why = "no sansa-probe run wrote" if previous is None else f"no {command} run wrote, or that changed since it wrote them"
            raise OutputFolderError(f"{name} {path} holds files that {why} ({shown}); give an empty or new {name} (nothing was changed)")
        if previous is not None and finished == "refuse" and previous.get("state") == "complete" and not overwrite:
            when = f" of {previous['finished']}" if previous.get("finished") else ""
            raise OutputFolderError(
                f"{name} {path} holds a finished {command} run{when}; pass --overwrite to replace it, or give another {name}"
            )
        return folder

    def _entry_for(self, rel: str) -> tuple[str, Any] | None:
        """The manifest entry covering ``rel`` (itself, or a claimed folder above it)."""
        if rel in self._files:
            return rel, self._files[rel]
        parts = rel.split("/")
        for i in range(len(parts) - 1, 0, -1):
            key = "/".join(parts[:i]) + "/"
            if key in self._files:
                return key, self._files[key]
        return None

    def _is_ours(self, rel: str) -> bool:
        entry = self._entry_for(rel)
        if entry is not None:
            key, record = entry
            if record is None or key.endswith("/"):
                return True
            try:
                return (self.path / rel).stat().st_size == record.get("size") and file_record(self.path / rel) == record
            except OSError:
                return False
        # a temporary file of io.atomic (``.<name>.XXXX.tmp``) beside a name of ours: a killed writer's
        folder, _, base = rel.rpartition("/")
        if base.startswith(".") and base.endswith(".tmp"):
            for candidate in [*self._files, MANIFEST]:
                c_folder, _, c_base = candidate.rstrip("/").rpartition("/")
                if c_folder == folder and fnmatch.fnmatchcase(base, f".{c_base}.*.tmp"):
                    return True
        return False

    # ------------------------------------------------------------------ writing
    @property
    def previous_state(self) -> str | None:
        return None if self.previous is None else self.previous.get("state")

    def _write(self, state: str, finished: str | None = None) -> None:
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / MANIFEST, {"format": FORMAT, "version": 1, "command": self.command, "state": state,
                                                 "started": self._started, "finished": finished,
                                                 "files": dict(sorted(self._files.items()))})

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` (absolute, or relative to the folder) as the folder's posix name of it; a folder
        given with a trailing ``/`` keeps it."""
        text = os.fspath(path)
        folder = text.endswith(("/", os.sep))
        path = Path(text)
        if path.is_absolute():
            path = Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(self.path)))
        rel = path.as_posix()
        if rel in ("", ".") or rel.startswith("../"):
            raise ValueError(f"{text} is not inside the output folder {self.path}")
        return rel + ("/" if folder else "")

    def claim(self, *names: str | os.PathLike) -> "RunFolder":
        """Name files (``"a.csv"``) or folders (``"masks/"``, trailing slash) this run is about to
        write, absolute or relative to the folder; recorded in the manifest before they exist."""
        for name in names:
            rel = self.relative(name)
            self._claimed.add(rel)
            self._files[rel] = None
        self._write("running")
        return self

    def remove_previous(self, names: Iterable[str] | None = None) -> list[str]:
        """Remove the files of earlier runs listed in the manifest (all, or those under ``names``)
        that are still ours, and the folders this leaves empty. Returns what was removed."""
        removed: list[str] = []
        wanted = None if names is None else [n.rstrip("/") for n in names]
        for rel in sorted(self._files_on_disk(previous_only=True)):
            if wanted is not None and not any(rel == w or rel.startswith(w + "/") for w in wanted):
                continue
            if self._is_ours(rel):
                (self.path / rel).unlink()
                removed.append(rel)
        self._drop_entries(removed)
        self._prune(removed)
        self._write("running")
        return removed

    def _claimed_now(self, rel: str) -> bool:
        """Whether this run claimed ``rel``, itself or a folder above it."""
        return rel in self._claimed or any(c.endswith("/") and rel.startswith(c) for c in self._claimed)

    def _files_on_disk(self, *, previous_only: bool) -> list[str]:
        out = []
        for key in list(self._files):
            if previous_only and (self._claimed_now(key) or self._files[key] == NESTED):
                continue  # claimed again by this run, or other runs' folders: never removed from here
            if key.endswith("/"):
                root = self.path / key
                found = (f"{key}{rel}" for rel in (_files_under(root) if root.is_dir() else []))
                out.extend(rel for rel in found if not (previous_only and self._claimed_now(rel)))
            elif (self.path / key).is_file() or (self.path / key).is_symlink():
                out.append(key)
        return out

    def _drop_entries(self, removed: Iterable[str]) -> None:
        for rel in removed:
            self._files.pop(rel, None)
        for key in [k for k in self._files if k.endswith("/") and k not in self._claimed]:
            if not (self.path / key).is_dir() or not _files_under(self.path / key):
                self._files.pop(key)

    def _prune(self, removed: Iterable[str]) -> None:
        """Remove folders that ``removed`` left empty (never ``path`` itself)."""
        for folder in sorted({(self.path / rel).parent for rel in removed}, key=lambda p: len(p.parts), reverse=True):
            while folder != self.path and self.path in folder.parents:
                try:
                    folder.rmdir()
                except OSError:  # not empty: it holds something else
                    break
                folder = folder.parent

    @contextlib.contextmanager
    def staged(self, names: Sequence[str] | None = None) -> Iterator[Path]:
        """Write ``names`` (files or folders; ``None``: whatever the block writes) into a staging
        folder; when the block succeeds the previous run's files are removed and the staged names
        moved in, so outputs are complete or absent, never a mix. On any error or Ctrl-C the
        staging folder goes and nothing else changes."""
        self.path.mkdir(parents=True, exist_ok=True)
        manifest = self.path / MANIFEST
        before = (dict(self._files), set(self._claimed), manifest.read_bytes() if manifest.is_file() else None)
        staging_name = f".staging-{os.getpid()}-{datetime.datetime.now().strftime('%H%M%S%f')}"
        self.claim(staging_name + "/")
        staging = self.path / staging_name
        staging.mkdir()
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # ours: created and claimed above
            self._files, self._claimed, saved = before  # the folder exactly as it was, its manifest included
            if self.writer:
                if saved is None:
                    manifest.unlink(missing_ok=True)
                else:
                    atomic_write_bytes(manifest, saved)
            raise
        self.remove_previous()
        written = sorted(p.name for p in staging.iterdir()) if names is None else [n for n in names if (staging / n).exists()]
        self.claim(*[n + "/" if (staging / n).is_dir() else n for n in written])
        for rel in written:
            if (self.path / rel).exists():  # an empty folder left behind (it held nothing)
                (self.path / rel).rmdir()
            os.replace(staging / rel, self.path / rel)
        shutil.rmtree(staging, ignore_errors=True)
        self._files.pop(staging_name + "/", None)
        self._claimed.discard(staging_name + "/")
        self._write("running")

    def finish(self, *, remove_stale: bool = True, nested: Iterable[str] = ()) -> None:
        """The run is complete: claims become the files found with their size and SHA-256; files of
        earlier runs that this run did not write again are removed (``remove_stale``). ``nested``:
        folders in which other commands wrote their own run folders: recorded as such (with the
        nested folders of earlier runs still there), not file by file, and never removed from here."""
        for name in nested:
            self._files[self.relative(os.fspath(name).rstrip("/") + "/")] = NESTED
        if remove_stale:
            self.remove_previous()
        kept = [k for k, v in self._files.items() if v == NESTED and (self.path / k).is_dir()]
        files: dict[str, Any] = {}
        for key in self._files_on_disk(previous_only=False):
            if not any(key.startswith(folder) for folder in kept):
                files[key] = file_record(self.path / key)
        self._files = {**files, **dict.fromkeys(kept, NESTED)}
        self._write("complete", finished=_now())
