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
leaves the previous results as they were and never a mix.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sansa_probe.inference import PROTOCOLS
from sansa_probe.cli import add_model_group, add_output_group, add_run_group, command_parser, check_model_args, model_from_args, positive_int, run_command
from sansa_probe.identity import identity_footnote, identity_line, model_identity, said_in_words
from sansa_probe.images import IMAGE_SUFFIXES, check_image_header, list_images, load_rgb
from sansa_probe.prompts.types import Box, Mask, Points, Scribble
from sansa_probe.utils.io import atomic_write_json, check_output_folder, staged_outputs
from sansa_probe.sanity import check_mask_areas, report
from sansa_probe.io.masks import encode_rle, load_binary_png, mask_bbox, overlay, save_png
from sansa_probe.utils.precision import inference_precision

__all__ = ["main", "build_parser", "parse_points", "parse_box", "collect_targets", "output_stem", "unique_output_name"]

PROG = "sansa_probe.segment"
OUTPUTS = ("masks", "overlays", "predictions.json", "preview.png", "preview.pdf", "summary.json")
PREVIEW_TARGETS = 4  # targets drawn in preview.png


class _PromptAction(argparse.Action):
    """Collect every prompt option into one ordered list ``args.prompts`` of ``(kind, value)``."""

    def __call__(self, parser, namespace, values, option_string=None):
        prompts = list(getattr(namespace, "prompts", None) or [])
        # with the number of --reference options before it: the pairing is checked in _run
        prompts.append((self.dest, values, len(getattr(namespace, "reference", None) or []), option_string))
        setattr(namespace, "prompts", prompts)


def parse_points(text: str, *, name: str = "--reference-points") -> Points:
    """``"x,y[,label];x,y[,label]"`` -> :class:`Points` (label defaults to 1)."""
    coords, labels = [], []
    for i, item in enumerate(part for part in text.replace(" ", "").split(";") if part):
        fields = item.split(",")
        if len(fields) not in (2, 3):
            raise ValueError(f"{name}: point {i} {item!r}: expected 'x,y' or 'x,y,label'")
        try:
            coords.append((float(fields[0]), float(fields[1])))
            labels.append(int(fields[2]) if len(fields) == 3 else 1)
        except ValueError:
            raise ValueError(f"{name}: point {i} {item!r} is not numeric") from None
    if not coords:
        raise ValueError(f"{name}: no point given in {text!r}")
    return Points(np.array(coords), np.array(labels))


def parse_box(text: str, *, name: str = "--reference-box") -> Box:
    fields = text.replace(" ", "").split(",")
    if len(fields) != 4:
        raise ValueError(f"{name}: {text!r}: expected 'x0,y0,x1,y1'")
    try:
        return Box(tuple(float(v) for v in fields))
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not numeric") from None


def collect_targets(items: list[str]) -> list[Path]:
    """Files as given (in order), folders expanded recursively to their images (sorted)."""
    targets: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise FileNotFoundError(f"--target: folder {path} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            targets.extend(found)
        elif path.is_file():
            targets.append(path)
        else:
            raise FileNotFoundError(f"--target: {path} does not exist")
    return targets


def output_stem(path: Path, roots: list[Path]) -> str:
    """A target's output file name: its path relative to the folder it came from, suffix kept
    (``sub/a.jpg`` -> ``sub/a.jpg.png``), or its file name when it was given as a file."""
    for root in roots:
        if root.is_dir():
            try:
                return path.relative_to(root).as_posix() + ".png"
            except ValueError:
                continue
    return path.name + ".png"


def unique_output_name(name: str, used: set[str]) -> str:
    """``name``, or ``<name without .png>~2.png``, ``~3``... : the first not in ``used`` (which it joins)."""
    candidate, n = name, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{name[:-4]}~{n}.png"
    used.add(candidate.lower())
    return candidate


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    images = parser.add_argument_group("images")
    images.add_argument("--reference", action="append", required=True, help="reference image (repeat for k shots)")
    images.add_argument("--reference-mask", dest="mask", action=_PromptAction, help="binary mask PNG of the preceding reference")
    images.add_argument("--reference-points", dest="points", action=_PromptAction, help="clicks 'x,y[,label];...' on the reference")
    images.add_argument("--reference-box", dest="box", action=_PromptAction, help="box 'x0,y0,x1,y1' on the reference")
    images.add_argument("--reference-scribble", dest="scribble", action=_PromptAction, help="scribble (stroke mask PNG) on the reference")
    images.add_argument("--negative-reference", action="append", default=[], help="semantic negative: an image written to memory with an empty mask")
    images.add_argument("--target", nargs="+", action="extend", required=True, help="target image files and/or folders (recursive)")
    segmentation = parser.add_argument_group("segmentation")
    segmentation.add_argument("--threshold", type=float, default=0.0, help="logit threshold of the masks (default 0 = probability 0.5)")
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


def _prompt_from(kind: str, value: str, index: int):
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
    from sansa_probe.predictor import SansaPredictor

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
    prompts = [(kind, value) for kind, value, _, _ in prompts]
    if len(prompts) != len(args.reference):
        raise ValueError(
            f"{len(args.reference)} --reference image(s) but {len(prompts)} prompt(s): give exactly one of "
            "--reference-mask/--reference-points/--reference-box/--reference-scribble per reference"
        )
    out = Path(args.out)
    check_output_folder(out, name="--out")
    check_model_args(args)
    references = [load_rgb(path, name=f"--reference {path}") for path in args.reference]
    reference_prompts = [_prompt_from(kind, value, i) for i, (kind, value) in enumerate(prompts)]
    roots = [Path(t) for t in args.target]
    targets = collect_targets(args.target)
    for path in targets:  # headers only: a file that is no image fails now, before the model is built
        check_image_header(path, name=f"--target {path}")

    with said_in_words():
        model = model_from_args(args)
    identity = model_identity(model, precision=inference_precision(model.device, model.autocast), protocol=args.protocol)
    print(identity_line(identity), file=sys.stderr, flush=True)
    report(identity["warnings"])
    predictor = SansaPredictor(model, threshold=args.threshold, batch_size=args.batch_size, protocol=args.protocol)
    predictor.set_references(references, reference_prompts, negative_images=args.negative_reference)

    with staged_outputs(out, OUTPUTS) as staging:  # complete or absent: moved into place only when every target is done
        results, image_areas = [], []
        shown: list[tuple[str, np.ndarray, np.ndarray]] = []  # (name, image, mask) of the preview's targets
        names: set[str] = set()
        with tqdm(total=len(targets), desc="segment", unit="img", file=sys.stderr, disable=args.no_progress) as bar:
            for start in range(0, len(targets), args.batch_size):
                chunk = targets[start : start + args.batch_size]
                images = [load_rgb(path, name=f"--target {path}") for path in chunk]
                for offset, (path, image, prediction) in enumerate(zip(chunk, images, predictor.predict_batch(images))):
                    name = unique_output_name(output_stem(path, roots), names)
                    save_png(staging / "masks" / name, prediction.mask)
                    if not args.no_overlays:
                        save_png(staging / "overlays" / name, overlay(image, prediction.mask))
                    if len(shown) < PREVIEW_TARGETS:
                        shown.append((name.removesuffix(".png"), image, prediction.mask))
                    image_areas.append(int(prediction.mask.size))
                    results.append({
                        "image_id": start + offset + 1,
                        "file_name": str(path),
                        "mask_file": f"masks/{name}",
                        "category_id": args.category_id,
                        "segmentation": encode_rle(prediction.mask),
                        "bbox": mask_bbox(prediction.mask),
                        "area": int(prediction.mask.sum()),
                        "score": prediction.score,
                    })
                bar.update(len(chunk))
        atomic_write_json(staging / "predictions.json", results)
        measured = report(check_mask_areas([r["area"] for r in results], image_areas, what="segment masks"))
        _write_preview(staging / "preview", references, reference_prompts, shown, footnote=identity_footnote(identity))
        atomic_write_json(staging / "summary.json", {
            "command": PROG,
            "identity": identity,
            "model": identity_line(identity).removeprefix("model: "),
            "warnings": [*identity["warnings"], *measured],
            "references": [{"image": str(path), "prompt": kind} for path, (kind, _) in zip(args.reference, prompts)],
            "negative_references": [str(p) for p in args.negative_reference],
            "threshold": args.threshold,
            "n_targets": len(results),
            "files": {"predictions": "predictions.json", "masks": "masks/", "overlays": None if args.no_overlays else "overlays/",
                      "preview": "preview.png"},
        })  # fmt: skip
    print(f"wrote {len(results)} predictions to {out / 'predictions.json'}", file=sys.stderr)
    return 0


def _write_preview(stem: Path, references, prompts, shown, *, footnote: str) -> None:
    from sansa_probe.preview import plot_segmentation
    from sansa_probe.probes.plots import add_footnote, save_figure

    axes = plot_segmentation(references, prompts, [image for _, image, _ in shown], [mask for _, _, mask in shown],
                             target_names=[name for name, _, _ in shown], max_targets=PREVIEW_TARGETS)
    save_figure(add_footnote(axes[0, 0].figure, footnote), stem, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
