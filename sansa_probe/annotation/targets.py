"""Target images of an annotation run: collection, de-duplication, ids, the decoding data set."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from sansa_probe.inference.protocol import Protocol
from sansa_probe.io.images import collect_images, load_rgb


@dataclass(frozen=True)
class TargetTable:
    """The sorted, de-duplicated targets: ``paths[i]`` is image id ``i + 1``.

    ``file_names[i]`` is the path relative to ``root`` (posix), ``stems[i]`` the relative path of
    its mask and overlay PNGs: ``file_names[i] + ".png"`` (``a.jpg`` -> ``a.jpg.png``,
    ``sub/a.png`` -> ``sub/a.png.png``). The folders of the targets are kept and so is the
    suffix, so two targets never share an output file (``a.jpg``, ``a.png`` and ``a__2.jpg``
    give three files).
    """

    paths: tuple[Path, ...]
    file_names: tuple[str, ...]
    stems: tuple[str, ...]
    root: Path

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike]) -> "TargetTable":
        unique = sorted({os.path.abspath(p) for p in paths})
        if not unique:
            raise ValueError("no target images: give --targets files/folders or a --target-list")
        root = Path(os.path.commonpath([os.path.dirname(p) for p in unique]))
        file_names = tuple(Path(p).relative_to(root).as_posix() for p in unique)
        stems = tuple(f"{name}.png" for name in file_names)  # unique because the relative paths are
        return cls(tuple(Path(p) for p in unique), file_names, stems, root)

    def __len__(self) -> int:
        return len(self.paths)

    def digest(self) -> str:
        return hashlib.sha256("\n".join(map(str, self.paths)).encode()).hexdigest()


def collect_targets(items: Sequence[str | os.PathLike] = (), lists: Sequence[str | os.PathLike] = ()) -> TargetTable:
    """The targets of ``--targets`` files and folders and ``--target-list`` files
    (:func:`~sansa_probe.io.images.collect_images`, the rule segment shares), as a :class:`TargetTable`."""
    return TargetTable.from_paths(collect_images(items, lists=lists, option="--targets"))


class TargetImages(Dataset):
    """Decodes targets and makes their model input (``protocol.image``) in DataLoader workers;
    an unreadable file becomes an error item."""

    def __init__(self, paths: Sequence[Path], protocol: Protocol, *, keep_images: bool) -> None:
        self.paths = paths
        self.protocol = protocol
        self.keep_images = keep_images

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        try:
            image = load_rgb(path, name="target")
        except Exception as exc:  # any unreadable target is skipped and reported, the run goes on
            return {"index": index, "error": f"{type(exc).__name__}: {exc}"}
        return {
            "index": index,
            "error": None,
            "tensor": self.protocol.image(image),  # (3, S, S)
            "size": (int(image.shape[0]), int(image.shape[1])),
            "image": image if self.keep_images else None,
        }


def collate_targets(items: list[dict[str, Any]]) -> dict[str, Any]:
    good = [item for item in items if item["error"] is None]
    return {
        "indices": [item["index"] for item in items],
        "errors": [(item["index"], item["error"]) for item in items if item["error"] is not None],
        "good": [item["index"] for item in good],
        "sizes": [item["size"] for item in good],
        "images": [item["image"] for item in good],
        "tensor": torch.stack([item["tensor"] for item in good]) if good else None,  # (B, 3, S, S)
    }
