"""``python -m sansa_probe.annotate``: label thousands of images from a few references per class.

    python -m sansa_probe.annotate --references refs.yaml --targets photos/ --checkpoint sansa.pt --out labels/
    torchrun --nproc_per_node 4 -m sansa_probe.annotate --references refs.yaml --targets photos/ --out labels/

From Python (one model, many jobs)::

    from sansa_probe.annotation import annotate, collect_targets, load_references
    result = annotate(model, load_references("refs.yaml"), collect_targets(["photos/"]), "labels/")

The large-scale annotation of paper appendix C (table 6): every class's reference memory is
computed once; every target is encoded once and segmented for every class from that one
encoding (memory attention + mask decoder per class).

References file (JSON or YAML; relative paths are resolved against the file's own folder)::

    classes:
      - name: dog                      # required, unique
        id: 1                          # optional COCO category id (default 1, 2, ... in file order)
        references:                    # k >= 1 annotated reference images
          - image: refs/dog1.jpg
            mask: refs/dog1.png        # exactly one of mask | points | box | scribble
          - image: refs/dog2.jpg
            points: [[120, 80], [40, 30, 0]]   # [x, y] or [x, y, label]; label 1 positive, 0 negative
          - image: refs/dog3.jpg
            box: [30, 20, 200, 180]    # x0, y0, x1, y1 in pixels
          - image: refs/dog4.jpg
            scribble: refs/dog4_strokes.png
        negatives: [refs/cat.jpg]      # optional semantic negatives (paper appendix F)
      - name: frisbee
        references:
          - {image: refs/f1.jpg, mask: {size: [427, 640], counts: "..."}}   # COCO RLE also works

    # shorthand: class name -> list of references (ids 1, 2, ... in file order)
    dog:
      - {image: refs/dog1.jpg, mask: refs/dog1.png}

``mask`` and ``scribble`` are binary PNGs (0/255 or 0/1) of the reference's size, or COCO RLE
(``{size: [H, W], counts: str}``); ``points`` and ``box`` may also be the strings of
``sansa_probe.segment`` (``"x,y[,label];..."``, ``"x0,y0,x1,y1"``).

Targets: ``--targets`` (or ``--target``) files and folders (folders recursively, image suffixes
only; a folder without images is an error, as in ``segment``) and/or ``--target-list`` text files
(one path per line, relative to the list's folder, ``#`` comments). Targets are de-duplicated and
sorted; image ``i`` of that order has id ``i + 1``.

Outputs in ``--out``:

* ``annotations.json`` -- COCO: ``info`` (the model in words and as ``identity``: backbone,
  SAM2 weights and adapters with their SHA-256, or "random"/"fresh" flagged under ``warnings``;
  the settings), ``images`` (id, file_name relative to ``info.image_root``,
  height, width), ``categories``, ``annotations`` (id, image_id, category_id, RLE
  ``segmentation`` at the image's own size, ``area``, ``bbox`` [x, y, w, h], ``score``: SAM2's
  predicted IoU, ``iscrowd`` 0), and ``skipped`` (unreadable targets, with the reason);
  ``pycocotools.coco.COCO`` loads it. One annotation per (image, class) whose mask is not
  empty, has ``score >= --min-score`` and ``area >= --min-area``.
* ``skipped.json`` -- the skipped targets again; ``parts/`` -- one atomically written chunk
  file per ``--chunk-size`` targets and ``manifest.json``; optional ``masks/<id>_<class>/<image>.png``
  and ``overlays/<image>.png``, where ``<image>`` is the target's ``file_name`` with its folders
  and suffix (``sub/a.jpg`` -> ``sub/a.jpg.png``), so no two targets share a file.

Resuming: rerun the same command. Finished chunks are kept, the rest is computed, and the
final merge gives the same file as an unbroken run (annotation ids are given at the merge in
chunk, image, class order). A rerun with other result-changing settings is refused unless
``--overwrite``, which first removes the previous run's chunks, ``annotations.json``,
``skipped.json``, ``masks/`` and ``overlays/`` -- the files its ``sansa-manifest.json`` lists, nothing
else: a folder holding files no annotate run wrote, or lying inside a ``--targets`` folder, is
refused (:mod:`sansa_probe.io.manifest`). Ctrl-C keeps the finished chunks and says how
many (exit code 130). Under ``torchrun`` the pending chunks are shared among the ranks (all ranks
must see the same ``--out``) and rank 0 merges.
"""


from __future__ import annotations

import argparse
import os
from pathlib import Path

from sansa_probe.annotation import AnnotateOptions, annotate, collect_targets, load_references
from sansa_probe.annotation.run import open_output
from sansa_probe.commands.grammar import (
    add_model_group,
    add_output_group,
    add_run_group,
    check_model_args,
    command_parser,
    finite_float,
    model_from_args,
    non_negative_int,
    positive_int,
    run_command,
    say,
)
from sansa_probe.inference import PROTOCOLS
from sansa_probe.reporting.identity import identity_line, model_identity, said_in_words
from sansa_probe.reporting.sanity import report
from sansa_probe.utils.distributed import distributed
from sansa_probe.utils.precision import inference_precision

__all__ = ["build_parser", "main"]

PROG = "sansa_probe.annotate"


# ---------------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    images = parser.add_argument_group("images")
    images.add_argument("--references", required=True, help="references file (JSON or YAML, schema above)")
    images.add_argument("--targets", "--target", dest="targets", nargs="+", action="extend", default=[],
                        help="target image files and/or folders (recursive)")
    images.add_argument("--target-list", action="append", default=[], help="text file listing target images, one per line (repeatable)")
    annotation = parser.add_argument_group("annotation")
    annotation.add_argument("--min-score", type=finite_float, default=0.0, help="drop predictions whose predicted IoU is below this (default 0)")
    annotation.add_argument("--min-area", type=non_negative_int, default=0, help="drop predictions with fewer pixels than this (empty ones are always dropped)")
    annotation.add_argument("--threshold", type=finite_float, default=0.0, help="logit threshold of the masks (default 0 = probability 0.5)")
    annotation.add_argument("--batch-size", type=positive_int, default=8, help="targets per image-encoder forward (default 8)")
    annotation.add_argument("--num-workers", type=non_negative_int, default=min(4, os.cpu_count() or 1), help="DataLoader processes decoding and resizing targets")
    annotation.add_argument("--chunk-size", type=positive_int, default=128, help="targets per chunk file in out/parts (the unit of resuming; default 128)")
    annotation.add_argument("--save-masks", action="store_true", help="also write masks/<id>_<class>/<image>.png")
    annotation.add_argument("--save-overlays", action="store_true", help="also write overlays/<image>.png (every class in its colour)")
    annotation.add_argument("--protocol", choices=list(PROTOCOLS), default="release",
                            help="how images and prompts enter the model: 'release' (default; the public SANSA release's: a 640 px "
                                 "square, then the model size) or 'hsnet' (straight to the model size); masks are at each image's size")
    annotation.add_argument("--overwrite", action="store_true", help="discard parts/ written with other settings instead of refusing")
    add_model_group(parser)
    add_output_group(parser, writes="annotations.json, skipped.json, parts/, masks/ and overlays/ (give the same --out to resume)")
    add_run_group(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, _run, prog=PROG)


def _run(args: argparse.Namespace) -> int:
    options = AnnotateOptions(
        threshold=args.threshold,
        min_score=args.min_score,
        min_area=args.min_area,
        chunk_size=args.chunk_size,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        save_masks=args.save_masks,
        save_overlays=args.save_overlays,
        protocol=args.protocol,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    check_model_args(args)
    classes = load_references(args.references)  # fail on a bad file before building the model
    targets = collect_targets(args.targets, args.target_list)
    with distributed(args.device) as (info, device):
        folder = open_output(args.out, info=info, inputs={"--targets": [t for t in args.targets if Path(t).is_dir()]})
        with said_in_words():
            model = model_from_args(argparse.Namespace(**{**vars(args), "device": str(device)}))
        if info.is_main:
            identity = model_identity(model, precision=inference_precision(device, model.autocast), protocol=args.protocol)
            say(identity_line(identity))
            report(identity["warnings"])
        result = annotate(model, classes, targets, folder, options=options, info=info)
    if info.is_main:
        say(
            f"annotated {result.num_images} images ({result.num_skipped} skipped), {result.num_annotations} annotations "
            f"-> {result.output}" + (f" ({result.images_per_second:.2f} img/s on rank 0)" if result.processed else " (nothing left to compute)")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
