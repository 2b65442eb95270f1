"""Image pairs of the spatial-coherence probe (paper appendix G, table 12), as continuity breaks.

Three settings with progressively weaker continuity, each a list of ``(source, target)`` image
indices into one :class:`PairSet`:

* ``video``: consecutive frames ``(t, t + stride)`` of each video;
* ``flipped``: the same pairs with the target mirrored left-right (its mask too);
* ``independent``: unrelated images: consecutive pairs ``(0, 1), (2, 3), ...`` of a folder of
  unrelated images (e.g. TSS pairs), else frame ``t`` of video ``v`` with frame ``t`` of video
  ``v + 1`` when there are several videos; with one video and no such folder it is left out.

:func:`folder_pairs` reads frame folders (one video each, frames in sorted file order) with
optional mask folders (``<frame stem>.png``); without masks the whole image is the object.
:func:`synthetic_pairs` makes pseudo-videos (:func:`sansa_probe.data.synthetic.synthetic_video`,
masks = the union of the moving objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sansa_probe.data.synthetic import synthetic_video
from sansa_probe.io.images import list_images, load_rgb
from sansa_probe.io.masks import load_binary_png

__all__ = ["SETTINGS", "PairSet", "folder_pairs", "synthetic_pairs"]

# setting -> (appearance continuity, spatial continuity), as table 12's columns
SETTINGS = {"video": (True, True), "flipped": (True, False), "independent": (False, False)}


@dataclass
class PairSet:
    """Images (``HxWx3`` uint8), their object masks (``HxW`` bool), ids, and the pairs of each
    setting as ``(source index, target index)``."""

    images: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    pairs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def add(self, image_id: str, image: np.ndarray, mask: np.ndarray | None) -> int:
        if mask is None:
            mask = np.ones(image.shape[:2], dtype=bool)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask of {image_id}: size {mask.shape} does not match its image {image.shape[:2]} (HxW)")
        self.images.append(image)
        self.masks.append(mask)
        self.ids.append(image_id)
        return len(self.images) - 1


def _spread(items: list, limit: int | None) -> list:
    """At most ``limit`` items, evenly spaced (all when ``None``)."""
    if limit is None or len(items) <= limit:
        return items
    return [items[int(k)] for k in np.unique(np.linspace(0, len(items) - 1, int(limit)).round())]


def _videos_to_pairs(videos: Sequence[Sequence[tuple[str, np.ndarray, np.ndarray | None]]], *, stride: int, max_pairs: int | None,
                     independent: Sequence[tuple[str, np.ndarray, np.ndarray | None]] | None) -> PairSet:
    out = PairSet()
    index: list[list[int]] = [[out.add(i, im, m) for i, im, m in video] for video in videos]
    consecutive = _spread([(v, t) for v, frames in enumerate(index) for t in range(len(frames) - stride)], max_pairs)
    out.pairs["video"] = [(index[v][t], index[v][t + stride]) for v, t in consecutive]
    flipped = []
    for v, t in consecutive:
        target = index[v][t + stride]
        flipped.append((index[v][t], out.add(out.ids[target] + ":flipped", np.ascontiguousarray(out.images[target][:, ::-1]),
                                             np.ascontiguousarray(out.masks[target][:, ::-1]))))
    out.pairs["flipped"] = flipped
    if independent:
        loose = [out.add(i, im, m) for i, im, m in independent]
        out.pairs["independent"] = _spread(list(zip(loose[0::2], loose[1::2])), max_pairs)
    elif len(index) > 1:
        across = [(index[v][t], index[(v + 1) % len(index)][t]) for v in range(len(index)) for t in range(min(len(index[v]), len(index[(v + 1) % len(index)])))]
        out.pairs["independent"] = _spread(across, max_pairs)
    return out


def _read_folder(frames: str | Path, masks: str | Path | None, *, label: str) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    paths = list_images(frames, recursive=False)
    if not paths:
        raise FileNotFoundError(f"{label} {frames}: holds no image")
    items = []
    for path in paths:
        mask = None
        if masks is not None:
            mask_path = Path(masks) / f"{path.stem}.png"
            if not mask_path.is_file():
                raise FileNotFoundError(f"{label} masks {masks}: no {mask_path.name} for frame {path.name} (expected <frame stem>.png)")
            mask = load_binary_png(mask_path, name=f"mask {mask_path}")
        items.append((f"{Path(frames).name}/{path.name}", load_rgb(path, name=f"{label} {path}"), mask))
    return items


def folder_pairs(frames: Sequence[str | Path], masks: Sequence[str | Path] | None = None, *, independent: str | Path | None = None,
                 independent_masks: str | Path | None = None, stride: int = 1, max_pairs: int | None = None) -> PairSet:
    """Pairs from frame folders (one video each), optional mask folders and an optional folder of
    unrelated images for the ``independent`` setting (see the module docstring)."""
    if masks and len(masks) != len(frames):
        raise ValueError(f"--masks: {len(masks)} mask folders for {len(frames)} --frames folders (give one per folder, or none)")
    videos = [_read_folder(f, masks[i] if masks else None, label="--frames") for i, f in enumerate(frames)]
    loose = _read_folder(independent, independent_masks, label="--independent") if independent is not None else None
    if loose is not None and len(loose) < 2:
        raise ValueError(f"--independent {independent}: needs at least 2 images (pairs (0, 1), (2, 3), ...)")
    return _videos_to_pairs(videos, stride=stride, max_pairs=max_pairs, independent=loose)


def synthetic_pairs(*, n_videos: int = 3, n_frames: int = 8, image_size: int = 256, seed: int = 0, stride: int = 1,
                    max_pairs: int | None = None) -> PairSet:
    """Pairs from synthetic pseudo-videos (seeds ``seed .. seed + n_videos - 1``); masks are the
    union of each frame's visible objects."""
    videos = []
    for v in range(n_videos):
        frames, instances = synthetic_video(n_frames=n_frames, image_size=image_size, seed=seed + v)
        videos.append([(f"video{seed + v}/{t:03d}", frame, np.logical_or.reduce([i.mask for i in objects]))
                       for t, (frame, objects) in enumerate(zip(frames, instances))])
    return _videos_to_pairs(videos, stride=stride, max_pairs=max_pairs, independent=None)
