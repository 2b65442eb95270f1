"""``python -m sansa_probe.segment``: segment target images from k annotated references.

    python -m sansa_probe.segment \\
        --reference dog1.jpg --reference-mask dog1.png \\
        --reference dog2.jpg --reference-points "120,80;200,90" \\
        --target photos/ --checkpoint sansa.pt --out results/

Each ``--reference`` takes one prompt, given by the next prompt option in command-line order:
``--reference-mask PNG``, ``--reference-points "x,y[,label];..."`` (label 1 positive, 0
negative), ``--reference-box "x0,y0,x1,y1"`` or ``--reference-scribble PNG`` (a stroke mask).
Writes ``masks/<target>.png``, ``overlays/<target>.png`` (mask tinted and outlined),
``predictions.json`` (COCO results format: RLE via pycocotools), ``preview.{png,pdf}`` (the
references with their prompts above the first targets with their masks outlined, the model
under it) and ``summary.json`` (the model's identity: backbone, SAM2 weights and adapters with
their SHA-256 or "random"/"fresh" in words; the references; warnings) into ``--out``;
``<target>`` is the target's path in the folder it came from with its suffix (``sub/a.jpg`` ->
``masks/sub/a.jpg.png``). Outputs are complete or absent: they are written into a staging
folder and replace the previous ones only when every target succeeded, so a run that fails
leaves the previous results as they were and never a mix (:mod:`sansa_probe.annotation.segment`).
Targets are collected by the rule annotate shares (:func:`sansa_probe.io.images.collect_images`):
files as given, folders recursively, a folder without images is an error; ``--targets`` is
accepted as another spelling of ``--target``.
"""


from __future__ import annotations

import argparse
from pathlib import Path

from sansa_probe.annotation.segment import segment_targets
from sansa_probe.io.manifest import RunFolder
from sansa_probe.commands.grammar import (
    add_model_group,
    add_output_group,
    add_run_group,
    check_model_args,
    command_parser,
    finite_float,
    model_from_args,
    positive_int,
    run_command,
    say,
)
from sansa_probe.inference import PROTOCOLS
from sansa_probe.inference.predictor import SansaPredictor
from sansa_probe.io.images import check_image_header, collect_images, load_rgb
from sansa_probe.prompts.text import parse_box, parse_points
from sansa_probe.prompts.types import Mask, Prompt, Scribble
from sansa_probe.reporting.identity import identity_line, model_identity, said_in_words
from sansa_probe.reporting.sanity import report
from sansa_probe.io.masks import load_binary_png
from sansa_probe.utils.precision import inference_precision

__all__ = ["main", "build_parser"]

PROG = "sansa_probe.segment"


class _PromptAction(argparse.Action):
    """Collect every prompt option into one ordered list ``args.prompts`` of ``(kind, value)``."""

    def __call__(self, parser, namespace, values, option_string=None):
        prompts = list(getattr(namespace, "prompts", None) or [])
        # with the number of --reference options before it: the pairing is checked in _reference_prompts
        prompts.append((self.dest, values, len(getattr(namespace, "reference", None) or []), option_string))
        setattr(namespace, "prompts", prompts)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    images = parser.add_argument_group("images")
    images.add_argument("--reference", action="append", required=True, help="reference image (repeat for k shots)")
    images.add_argument("--reference-mask", dest="mask", action=_PromptAction, help="binary mask PNG of the preceding reference")
    images.add_argument("--reference-points", dest="points", action=_PromptAction, help="clicks 'x,y[,label];...' on the reference")
    images.add_argument("--reference-box", dest="box", action=_PromptAction, help="box 'x0,y0,x1,y1' on the reference")
    images.add_argument("--reference-scribble", dest="scribble", action=_PromptAction, help="scribble (stroke mask PNG) on the reference")
    images.add_argument("--negative-reference", action="append", default=[], help="semantic negative: an image written to memory with an empty mask")
    images.add_argument("--target", "--targets", dest="target", nargs="+", action="extend", required=True,
                        help="target image files and/or folders (recursive)")
    segmentation = parser.add_argument_group("segmentation")
    segmentation.add_argument("--threshold", type=finite_float, default=0.0, help="logit threshold of the masks (default 0 = probability 0.5)")
    segmentation.add_argument("--protocol", choices=list(PROTOCOLS), default="release",
                              help="how images and prompts enter the model: 'release' (default; the public SANSA release's: a 640 px "
                                   "square, then the model size) or 'hsnet' (straight to the model size); masks are at each image's size")
    segmentation.add_argument("--batch-size", type=positive_int, default=4, help="targets per encoder forward")
    segmentation.add_argument("--category-id", type=int, default=1, help="category_id written to predictions.json")
    segmentation.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    add_model_group(parser)
    add_output_group(parser, writes="masks/, overlays/ and predictions.json")
    add_run_group(parser)
    return parser


def _reference_prompts(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``(kind, value)`` of each ``--reference``'s prompt: exactly one prompt option right after each."""
    prompts = getattr(args, "prompts", None) or []
    for i, (_, value, seen, option) in enumerate(prompts):
        if seen == 0:
            problem = f"{option} {value} comes before any --reference"
        elif seen < i + 1:
            problem = f"{option} {value} is a second prompt for --reference #{seen} {args.reference[seen - 1]}"
        elif seen > i + 1:
            problem = f"--reference #{i + 1} {args.reference[i]} has no prompt before the next --reference"
        else:
            continue
        raise ValueError(f"{problem}; give exactly one prompt option right after each --reference")
    if len(prompts) != len(args.reference):
        raise ValueError(
            f"{len(args.reference)} --reference image(s) but {len(prompts)} prompt(s): give exactly one of "
            "--reference-mask/--reference-points/--reference-box/--reference-scribble per reference"
        )
    return [(kind, value) for kind, value, _, _ in prompts]


def _prompt_from(kind: str, value: str, index: int) -> Prompt:
    name = f"prompt of --reference #{index + 1}"
    if kind == "mask":
        return Mask(load_binary_png(value, name=name))
    if kind == "scribble":
        return Scribble(load_binary_png(value, name=name))
    if kind == "points":
        return parse_points(value, name=name)
    return parse_box(value, name=name)


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, _run, prog=PROG)


def _run(args: argparse.Namespace) -> int:
    prompts = _reference_prompts(args)
    out = Path(args.out)
    folder = RunFolder.open(out, command=PROG, inputs={"--target": [t for t in args.target if Path(t).is_dir()]})
    check_model_args(args)
    references = [load_rgb(path, name=f"--reference {path}") for path in args.reference]
    reference_prompts = [_prompt_from(kind, value, i) for i, (kind, value) in enumerate(prompts)]
    targets = collect_images(args.target, option="--target")
    for path in targets:  # headers only: a file that is no image fails now, before the model is built
        check_image_header(path, name=f"--target {path}")

    with said_in_words():
        model = model_from_args(args)
    identity = model_identity(model, precision=inference_precision(model.device, model.autocast), protocol=args.protocol)
    say(identity_line(identity))
    report(identity["warnings"])
    predictor = SansaPredictor(model, threshold=args.threshold, batch_size=args.batch_size, protocol=args.protocol)
    predictor.set_references(references, reference_prompts, negative_images=args.negative_reference)
    results = segment_targets(
        predictor, targets, folder, roots=[Path(t) for t in args.target], references=references, prompts=reference_prompts,
        identity=identity, category_id=args.category_id, overlays=not args.no_overlays, progress=not args.no_progress,
        record={"command": PROG, "references": [{"image": str(path), "prompt": kind} for path, (kind, _) in zip(args.reference, prompts)],
                "negative_references": [str(p) for p in args.negative_reference], "threshold": args.threshold},
    )  # fmt: skip
    say(f"wrote {len(results)} predictions to {out / 'predictions.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
