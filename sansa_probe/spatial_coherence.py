"""``python -m sansa_probe.spatial_coherence``: how smooth are feature matches as continuity breaks? (paper app. G, table 12)

    python -m sansa_probe.spatial_coherence --frames frames/bedroom --checkpoint sansa.pt --out results/table12_bedroom
    python -m sansa_probe.spatial_coherence --frames davis/JPEGImages/480p/bear --masks davis/Annotations/480p/bear \\
        --independent tss_pairs/ --checkpoint sansa.pt --out results/table12
    python -m sansa_probe.spatial_coherence        # synthetic pseudo-videos, output in a new runs/spatial_coherence-* folder

Three conditions with progressively weaker continuity (table 12), each a list of image pairs
(source, target) whose nearest-neighbour feature matches give a displacement field, scored by
its mean first-order gradient (:class:`~sansa_probe.probes.SpatialCoherence`, sd-dino's
definition; lower is smoother), for frozen SAM2 and SANSA (the same model, adapters off / on):

* ``video``: consecutive frames ``(t, t + stride)`` of each video;
* ``flipped``: the same pairs with the target mirrored left-right (its mask too);
* ``independent``: unrelated images: consecutive pairs ``(0, 1), (2, 3), ...`` of the
  ``--independent`` folder (e.g. TSS pairs), else frame ``t`` of video ``v`` with frame ``t``
  of video ``v + 1`` when there are several videos; with one video and no ``--independent``
  folder this condition is left out (a note is printed).

Inputs: ``--frames DIR`` (repeatable; one video per folder, frames in sorted file order) with
optional ``--masks DIR`` (one per ``--frames``, ``<frame stem>.png`` binary object masks, e.g.
DAVIS annotations binarised); without ``--frames``, synthetic pseudo-videos
(:func:`sansa_probe.data.synthetic.synthetic_video`, masks = the union of the moving objects).
**Without masks the whole image is the object** (a full mask): every pixel is scored, i.e.
the summed gradient of both displacement components divided by ``H * W`` (sd-dino's own
unmasked variant divides by ``2 H W``, half this value).

Writes into ``--out``: ``spatial_coherence.{csv,json}`` (model, setting, pair, source, target,
metric, value, n_mask_pixels), ``summary.{csv,json}`` (mean per setting and model),
``table12.{csv,json}`` (the paper's layout: one row per setting, one column per model),
``spatial_coherence.{png,pdf}``, ``config.json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sansa_probe.cli import model_from_args
from sansa_probe.features import FeatureExtractor
from sansa_probe.images import list_images, load_rgb
from sansa_probe.probes import SpatialCoherence, plot_spatial_coherence
from sansa_probe.cli import positive_int
from sansa_probe.probes.cli import ProbeRun, probe_parser, run_probe
from sansa_probe.utils.masks import load_binary_png

__all__ = ["main", "build_parser", "SETTINGS", "PairSet", "folder_pairs", "synthetic_pairs", "compute", "figures"]

PROG = "sansa_probe.spatial_coherence"

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
    from sansa_probe.data.synthetic import synthetic_video

    videos = []
    for v in range(n_videos):
        frames, instances = synthetic_video(n_frames=n_frames, image_size=image_size, seed=seed + v)
        videos.append([(f"video{seed + v}/{t:03d}", frame, np.logical_or.reduce([i.mask for i in objects]))
                       for t, (frame, objects) in enumerate(zip(frames, instances))])
    return _videos_to_pairs(videos, stride=stride, max_pairs=max_pairs, independent=None)


def compute(
    extractor: FeatureExtractor,
    pair_set: PairSet,
    *,
    models: Mapping[str, bool],
    layer: str | None = None,
    restrict_to_target_mask: bool = False,
    outside: str = "zero",
) -> dict[str, pd.DataFrame]:
    """``spatial_coherence`` (one row per pair, setting and model), ``summary`` and ``table12``."""
    layer = layer or extractor.default_layer()
    used = sorted({i for pairs in pair_set.pairs.values() for pair in pairs for i in pair})
    if not used:
        raise ValueError("no image pair to score (a video needs at least stride + 1 frames)")
    rows = []
    for name, adapters in models.items():
        X = extractor.dense_features([pair_set.images[i] for i in used], layer=layer, adapters=adapters)
        feats = {i: X[k] for k, i in enumerate(used)}
        for setting, pairs in pair_set.pairs.items():
            if not pairs:
                continue
            estimator = SpatialCoherence(restrict_to_target_mask=restrict_to_target_mask, outside=outside, device=extractor.model.device)
            estimator.fit([feats[s] for s, _ in pairs], [feats[t] for _, t in pairs], source_masks=[pair_set.masks[s] for s, _ in pairs],
                          target_masks=[pair_set.masks[t] for _, t in pairs])
            frame = estimator.to_frame(model=name, layer=layer, setting=setting)
            frame.insert(4, "source", [pair_set.ids[s] for s, _ in pairs])
            frame.insert(5, "target", [pair_set.ids[t] for _, t in pairs])
            rows.append(frame)
    results = pd.concat(rows, ignore_index=True)
    summary = (results.groupby(["setting", "model", "layer"], sort=False)["value"].agg(["mean", "std", "count"]).reset_index()
               .rename(columns={"count": "n_pairs"}))
    summary.insert(3, "metric", "smoothness")
    table = summary.pivot(index="setting", columns="model", values="mean").reindex([s for s in SETTINGS if s in set(summary["setting"])])
    table.columns.name = None
    table = table.reset_index()
    table.insert(1, "appearance_continuity", [SETTINGS[s][0] for s in table["setting"]])
    table.insert(2, "spatial_continuity", [SETTINGS[s][1] for s in table["setting"]])
    return {"spatial_coherence": results, "summary": summary, "table12": table}


def figures(tables: Mapping[str, pd.DataFrame]) -> dict[str, Figure]:
    """Mean smoothness per setting (bars per model); lower is better."""
    figure = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = plot_spatial_coherence(tables["spatial_coherence"], ax=figure.add_subplot())
    ax.set_title("spatial coherence (table 12)")
    return {"spatial_coherence": figure}


def build_parser() -> argparse.ArgumentParser:
    parser = probe_parser(PROG, __doc__, data=False)
    data = parser.add_argument_group("pairs")
    data.add_argument("--frames", action="append", default=[], help="a folder of consecutive frames (one video; repeatable)")
    data.add_argument("--masks", action="append", default=[], help="object mask folder per --frames (<frame stem>.png); default: whole frames")
    data.add_argument("--independent", default=None, help="folder of unrelated images, paired (0, 1), (2, 3), ... (e.g. TSS)")
    data.add_argument("--independent-masks", default=None, help="mask folder of --independent (<image stem>.png)")
    data.add_argument("--stride", type=positive_int, default=1, help="frame step of a consecutive pair (default 1)")
    data.add_argument("--max-pairs", type=positive_int, default=None, help="at most this many pairs per setting (evenly spread)")
    data.add_argument("--videos", type=positive_int, default=3, help="synthetic pseudo-videos when no --frames (default 3)")
    data.add_argument("--frames-per-video", type=positive_int, default=8, help="frames per synthetic video (default 8)")
    data.add_argument("--video-size", type=positive_int, default=256, help="synthetic frame size (default 256)")
    probe = parser.add_argument_group("probe")
    probe.add_argument("--restrict-to-target-mask", action="store_true", help="match only into the target's mask (sd-dino --MASK)")
    probe.add_argument("--outside", choices=["zero", "exclude"], default="zero", help="'zero': sd-dino's definition; 'exclude': mask-interior differences only")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_probe(build_parser(), argv, prog=PROG, build=model_from_args, body=_body)


def _body(run: ProbeRun) -> None:
    args = run.args
    if args.frames:
        pair_set = folder_pairs(args.frames, args.masks or None, independent=args.independent, independent_masks=args.independent_masks,
                                stride=args.stride, max_pairs=args.max_pairs)
    else:
        if args.masks or args.independent:
            raise ValueError("--masks/--independent: need --frames (without --frames the synthetic pseudo-videos are used)")
        pair_set = synthetic_pairs(n_videos=args.videos, n_frames=args.frames_per_video, image_size=args.video_size, seed=args.seed,
                                   stride=args.stride, max_pairs=args.max_pairs)
    if "independent" not in pair_set.pairs:
        print("note: one video and no --independent folder: the 'independent' setting is left out", file=sys.stderr)
    extractor = run.extractor()
    tables = compute(extractor, pair_set, models=run.models, layer=args.layer, restrict_to_target_mask=args.restrict_to_target_mask,
                     outside=args.outside)
    run.write(tables, figures)
    print(tables["table12"].to_string(index=False), file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
