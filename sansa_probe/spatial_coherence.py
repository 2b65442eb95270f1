"""``python -m sansa_probe.spatial_coherence``: how smooth are feature matches as continuity breaks? (paper app. G, table 12)

    python -m sansa_probe.spatial_coherence --frames frames/bedroom --checkpoint sansa.pt --out results/table12_bedroom
    python -m sansa_probe.spatial_coherence --frames davis/JPEGImages/480p/bear --masks davis/Annotations/480p/bear \\
        --independent tss_pairs/ --checkpoint sansa.pt --out results/table12
    python -m sansa_probe.spatial_coherence --backbone hiera_t --image-size 256 --sam2-checkpoint none   # offline smoke test
                                 # (synthetic pseudo-videos, random SAM2 weights; output in a new runs/spatial_coherence-* folder)

Three conditions with progressively weaker continuity (table 12), each a list of image pairs
(source, target) whose nearest-neighbour feature matches give a displacement field, scored by
its mean first-order gradient (:func:`~sansa_probe.probes.pair_smoothness`, sd-dino's
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

from sansa_probe.commands.grammar import model_from_args, positive_int, say
from sansa_probe.commands.probe import ProbeRun, probe_parser, run_probe
from sansa_probe.pipelines.spatial_coherence import compute, figures
from sansa_probe.probes.frame_pairs import folder_pairs, synthetic_pairs

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.spatial_coherence"


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
    tables = compute(run.encoders(), pair_set, layer=args.layer, restrict_to_target_mask=args.restrict_to_target_mask,
                     outside=args.outside)
    run.write(tables, figures)
    say(tables["table12"].to_string(index=False))


if __name__ == "__main__":
    raise SystemExit(main())
