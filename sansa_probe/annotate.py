"""``python -m sansa_probe.annotate``: label thousands of images from a few references per class.

    python -m sansa_probe.annotate --references refs.yaml --targets photos/ --out labels/
    torchrun --nproc_per_node 4 -m sansa_probe.annotate --references refs.yaml --targets photos/ --out labels/

From Python (one model, many jobs)::

    from sansa_probe.annotate import annotate, collect_targets, load_references
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

Targets: ``--targets`` files and folders (folders recursively, image suffixes only) and/or
``--target-list`` text files (one path per line, relative to the list's folder, ``#``
comments). Targets are de-duplicated and sorted; image ``i`` of that order has id ``i + 1``.

Outputs in ``--out``:

* ``annotations.json`` -- COCO: ``images`` (id, file_name relative to ``info.image_root``,
  height, width), ``categories``, ``annotations`` (id, image_id, category_id, RLE
  ``segmentation`` at the image's own size, ``area``, ``bbox`` [x, y, w, h], ``score``: SAM2's
  predicted IoU, ``iscrowd`` 0), and ``skipped`` (unreadable targets, with the reason);
  ``pycocotools.coco.COCO`` loads it. One annotation per (image, class) whose mask is not
  empty, has ``score >= --min-score`` and ``area >= --min-area``.
* ``skipped.json`` -- the skipped targets again; ``parts/`` -- one atomically written chunk
  file per ``--chunk-size`` targets and ``manifest.json``; optional ``masks/<id>_<class>/<image>.png``
  and ``overlays/<image>.png``.

Resuming: rerun the same command. Finished chunks are kept, the rest is computed, and the
final merge gives the same file as an unbroken run (annotation ids are given at the merge in
chunk, image, class order). A rerun with other result-changing settings is refused unless
``--overwrite``. Under ``torchrun`` the pending chunks are shared among the ranks (all ranks
must see the same ``--out``) and rank 0 merges.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import yaml
from pycocotools import mask as mask_utils
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from sansa_probe.cli import add_model_arguments, model_from_args, run_main
from sansa_probe.images import IMAGE_SUFFIXES, batch_to_model_input, list_images, load_rgb, to_model_input
from sansa_probe.model.memory import MemoryEntry
from sansa_probe.model.prompting import prompt_to_inputs
from sansa_probe.model.sansa import SansaModel
from sansa_probe.prompts.types import Box, Mask, Points, Prompt, Scribble
from sansa_probe.segment import parse_box, parse_points
from sansa_probe.utils.distributed import DistInfo, barrier, distributed, shard_indices
from sansa_probe.utils.io import atomic_path, atomic_write_json
from sansa_probe.utils.masks import decode_rle, load_binary_png, overlay, save_png
from sansa_probe.utils.precision import inference_autocast, upsample_logits

__all__ = [
    "ClassReferences",
    "TargetTable",
    "AnnotateOptions",
    "AnnotateResult",
    "load_references",
    "collect_targets",
    "class_memory",
    "segment_batch",
    "annotate",
    "main",
]

log = logging.getLogger("sansa_probe.annotate")

_FORMAT_VERSION = 1
_PROMPT_FIELDS = ("mask", "points", "box", "scribble")
_REFERENCE_FIELDS = ("image", *_PROMPT_FIELDS)
_CLASS_FIELDS = ("name", "id", "references", "negatives")
_PALETTE = ((30, 144, 255), (255, 99, 71), (60, 179, 113), (238, 130, 238), (255, 215, 0), (0, 206, 209), (244, 164, 96), (147, 112, 219))


# ---------------------------------------------------------------------------------- references
@dataclass(frozen=True, eq=False)
class ClassReferences:
    """One class to annotate.

    ``images[j]`` (``HxWx3`` uint8) is annotated by ``prompts[j]`` (pixel coordinates of that
    image); ``negatives`` are images written to memory with an empty mask.
    """

    name: str
    category_id: int
    images: tuple[np.ndarray, ...]
    prompts: tuple[Prompt, ...]
    negatives: tuple[np.ndarray, ...] = ()

    def digest(self) -> str:
        """sha256 of the class's name, id, pixels and prompts (what its memory depends on)."""
        h = hashlib.sha256(f"{self.name}\0{self.category_id}\0".encode())
        for image, prompt in zip(self.images, self.prompts):
            h.update(str(image.shape).encode() + image.tobytes())
            h.update(type(prompt).__name__.encode())
            for value in vars(prompt).values():
                h.update(np.ascontiguousarray(np.asarray(value, dtype=np.float64)).tobytes())
        for image in self.negatives:
            h.update(b"negative" + str(image.shape).encode() + image.tobytes())
        return h.hexdigest()


def _read_structured(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"--references: file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None


def _resolve(value: Any, base: Path, *, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a file path (string), got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _binary_mask(value: Any, base: Path, *, where: str) -> np.ndarray:
    if isinstance(value, dict):
        if set(value) != {"size", "counts"}:
            raise ValueError(f"{where}: expected a PNG path or COCO RLE {{size: [H, W], counts: ...}}, got keys {sorted(value)}")
        try:
            return decode_rle(value)
        except Exception as exc:  # pycocotools raises bare Exceptions on malformed RLE
            raise ValueError(f"{where}: malformed COCO RLE ({exc})") from None
    return load_binary_png(_resolve(value, base, where=where), name=where)


def _points(value: Any, *, where: str) -> Points:
    if isinstance(value, str):
        return parse_points(value, name=where)
    rows = value
    if isinstance(rows, (list, tuple)) and len(rows) in (2, 3) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rows):
        rows = [rows]  # a single point [x, y] or [x, y, label]
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError(f"{where}: expected a non-empty list of [x, y] or [x, y, label], got {value!r}")
    coords, labels = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) not in (2, 3) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in row
        ):
            raise ValueError(f"{where}: point {i} {row!r}: expected [x, y] or [x, y, label] numbers")
        coords.append((float(row[0]), float(row[1])))
        labels.append(int(row[2]) if len(row) == 3 else 1)
    try:
        return Points(np.array(coords), np.array(labels))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _box(value: Any, *, where: str) -> Box:
    if isinstance(value, str):
        return parse_box(value, name=where)
    if not isinstance(value, (list, tuple)) or len(value) != 4 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"{where}: expected 4 numbers [x0, y0, x1, y1], got {value!r}")
    return Box(tuple(float(v) for v in value))


def _reference(entry: Any, base: Path, *, where: str) -> tuple[np.ndarray, Prompt]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with 'image' and one of {', '.join(_PROMPT_FIELDS)}, got {entry!r}")
    unknown = sorted(set(entry) - set(_REFERENCE_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; expected 'image' and one of {', '.join(_PROMPT_FIELDS)}")
    if "image" not in entry:
        raise ValueError(f"{where}: field 'image' is missing (the path of the reference image)")
    image_where = f"{where}, field 'image'"
    image = load_rgb(_resolve(entry["image"], base, where=image_where), name=image_where)
    given = [f for f in _PROMPT_FIELDS if f in entry]
    if len(given) != 1:
        raise ValueError(f"{where}: expected exactly one prompt field of {', '.join(_PROMPT_FIELDS)}, got {given or 'none'}")
    field = given[0]
    value, field_where = entry[field], f"{where}, field {field!r}"
    if field == "mask":
        prompt: Prompt = Mask(_binary_mask(value, base, where=field_where))
    elif field == "scribble":
        prompt = Scribble(_binary_mask(value, base, where=field_where))
    elif field == "points":
        prompt = _points(value, where=field_where)
    else:
        prompt = _box(value, where=field_where)
    prompt.validate(*image.shape[:2], name=field_where)
    return image, prompt


def _class_entries(data: Any, path: Path) -> list[tuple[str, dict]]:
    """The file's classes as ``(name, fields)`` in file order, either layout."""
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a mapping 'classes: [...]' or 'class name: [references]', got {type(data).__name__ if data is not None else 'an empty file'}")
    if set(data) == {"classes"} and isinstance(data["classes"], list):
        entries = []
        for i, item in enumerate(data["classes"]):
            if not isinstance(item, dict) or "name" not in item:
                raise ValueError(f"{path}: classes[{i}]: expected a mapping with 'name' and 'references', got {item!r}")
            if not isinstance(item["name"], str) or not item["name"].strip():
                raise ValueError(f"{path}: classes[{i}], field 'name': expected a non-empty string, got {item['name']!r}")
            entries.append((item["name"], item))
        if not entries:
            raise ValueError(f"{path}: 'classes' is empty; at least one class is needed")
        return entries
    entries = []
    for name, value in data.items():
        if isinstance(value, list):
            value = {"references": value}
        if not isinstance(value, dict):
            raise ValueError(f"{path}: class {name!r}: expected a list of references or a mapping with 'references', got {value!r}")
        entries.append((str(name), {"name": str(name), **value}))
    return entries


def load_references(path: str | os.PathLike) -> list[ClassReferences]:
    """Read and validate a references file (schema in the module docstring); images are loaded.

    Errors name the file, the class, the reference (1-based) and the field.
    """
    path = Path(path)
    base = path.resolve().parent
    classes: list[ClassReferences] = []
    names: set[str] = set()
    ids: set[int] = set()
    for position, (name, item) in enumerate(_class_entries(_read_structured(path), path)):
        where = f"{path}: class {name!r}"
        unknown = sorted(set(item) - set(_CLASS_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(_CLASS_FIELDS)}")
        if name in names:
            raise ValueError(f"{where}: the class name appears twice")
        category_id = item.get("id", position + 1)
        if not isinstance(category_id, int) or isinstance(category_id, bool) or category_id < 1:
            raise ValueError(f"{where}, field 'id': expected a positive integer category id, got {category_id!r}")
        if category_id in ids:
            raise ValueError(f"{where}, field 'id': category id {category_id} is used by another class")
        references = item.get("references")
        if not isinstance(references, list) or not references:
            raise ValueError(f"{where}, field 'references': expected a non-empty list of references, got {references!r}")
        pairs = [_reference(entry, base, where=f"{where}, reference {j + 1}") for j, entry in enumerate(references)]
        negatives = item.get("negatives") or []
        if not isinstance(negatives, list):
            raise ValueError(f"{where}, field 'negatives': expected a list of image paths, got {negatives!r}")
        negative_images = tuple(
            load_rgb(_resolve(p, base, where=f"{where}, field 'negatives'[{j}]"), name=f"{where}, field 'negatives'[{j}]")
            for j, p in enumerate(negatives)
        )
        names.add(name)
        ids.add(category_id)
        classes.append(ClassReferences(name, category_id, tuple(i for i, _ in pairs), tuple(p for _, p in pairs), negative_images))
    return classes


# ---------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class TargetTable:
    """The sorted, de-duplicated targets: ``paths[i]`` is image id ``i + 1``.

    ``file_names[i]`` is the path relative to ``root`` (posix), ``stems[i]`` a unique flat file
    stem for mask and overlay PNGs.
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
        stems = [str(Path(name).with_suffix("")).replace("/", "__") for name in file_names]
        seen: dict[str, int] = {}
        for stem in stems:
            seen[stem] = seen.get(stem, 0) + 1
        stems = [f"{stem}__{i + 1}" if seen[stem] > 1 else stem for i, stem in enumerate(stems)]
        return cls(tuple(Path(p) for p in unique), file_names, tuple(stems), root)

    def __len__(self) -> int:
        return len(self.paths)

    def digest(self) -> str:
        return hashlib.sha256("\n".join(map(str, self.paths)).encode()).hexdigest()


def collect_targets(items: Sequence[str | os.PathLike] = (), lists: Sequence[str | os.PathLike] = ()) -> TargetTable:
    """Targets from files and folders (recursive, image suffixes) and list files (one path per line).

    A path given directly must exist; list entries that are missing are kept and reported as
    skipped when read, like unreadable images.
    """
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            paths.extend(list_images(path))
        elif path.is_file():
            paths.append(path)
        else:
            raise FileNotFoundError(f"--targets: {path} does not exist (expected an image file or a folder)")
    for listing in lists:
        listing = Path(listing)
        if not listing.is_file():
            raise FileNotFoundError(f"--target-list: file {listing} does not exist")
        base = listing.resolve().parent
        for line in listing.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                entry = Path(line).expanduser()
                paths.append(entry if entry.is_absolute() else base / entry)
    if not paths:
        where = ", ".join([*(f"--targets {i}" for i in items), *(f"--target-list {i}" for i in lists)]) or "no --targets or --target-list"
        raise ValueError(f"no target images found ({where}); folders are searched for {', '.join(IMAGE_SUFFIXES)}")
    return TargetTable.from_paths(paths)


class _TargetImages(Dataset):
    """Decodes and resizes targets in DataLoader workers; an unreadable file becomes an error item."""

    def __init__(self, paths: Sequence[Path], image_size: int, *, keep_images: bool) -> None:
        self.paths = paths
        self.image_size = image_size
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
            "tensor": to_model_input(image, self.image_size),  # (3, S, S)
            "size": (int(image.shape[0]), int(image.shape[1])),
            "image": image if self.keep_images else None,
        }


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    good = [item for item in items if item["error"] is None]
    return {
        "indices": [item["index"] for item in items],
        "errors": [(item["index"], item["error"]) for item in items if item["error"] is not None],
        "good": [item["index"] for item in good],
        "sizes": [item["size"] for item in good],
        "images": [item["image"] for item in good],
        "tensor": torch.stack([item["tensor"] for item in good]) if good else None,  # (B, 3, S, S)
    }


# ---------------------------------------------------------------------------------- model
def class_memory(model: SansaModel, references: ClassReferences, *, autocast: bool = True) -> list[MemoryEntry]:
    """The class's reference memory (k + negatives entries of batch 1), as ``SansaPredictor`` builds it."""
    size = model.image_size
    inputs = [prompt_to_inputs(p, height=im.shape[0], width=im.shape[1], image_size=size) for im, p in zip(references.images, references.prompts)]
    inputs += [
        prompt_to_inputs(Mask(np.zeros(im.shape[:2], bool)), height=im.shape[0], width=im.shape[1], image_size=size)
        for im in references.negatives
    ]
    frames = batch_to_model_input([*references.images, *references.negatives], size).to(model.device)
    with torch.no_grad(), inference_autocast(model.device, autocast):
        memory = model.reference_memory(frames, inputs)
    return [entry.detach() for entry in memory]


def segment_batch(
    model: SansaModel, images: torch.Tensor, memories: Sequence[Sequence[MemoryEntry]], *, autocast: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ``(B, 3, S, S)`` targets once, then segment them for every class from that encoding.

    Returns low-resolution logits ``(B, C, S/4, S/4)`` float32 and scores (predicted IoU) ``(B, C)``.
    """
    with torch.no_grad(), inference_autocast(model.device, autocast):
        feats = model.encode_images(images)
        outputs = [model.segment(feats, memory) for memory in memories]
    logits = torch.cat([o.low_res_logits.float() for o in outputs], dim=1)
    scores = torch.stack([o.iou.float() for o in outputs], dim=1)
    return logits, scores


# ---------------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class AnnotateOptions:
    """How to annotate (see ``--help``); the fields marked (*) may change between a run and its resume."""

    threshold: float = 0.0
    min_score: float = 0.0
    min_area: int = 0
    chunk_size: int = 128
    batch_size: int = 8  # (*)
    num_workers: int = 2  # (*)
    save_masks: bool = False
    save_overlays: bool = False
    autocast: bool = True
    overwrite: bool = False  # (*)
    progress: bool = True  # (*)

    def __post_init__(self) -> None:
        for name, low in (("chunk_size", 1), ("batch_size", 1), ("num_workers", 0), ("min_area", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {getattr(self, name)}")


@dataclass(frozen=True)
class AnnotateResult:
    """What one call did: ``processed`` targets on this rank in ``seconds`` (0 when all was done)."""

    output: Path | None
    processed: int
    seconds: float
    num_images: int | None = None
    num_annotations: int | None = None
    num_skipped: int | None = None

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")


def _model_digest(model: SansaModel) -> str:
    """Architecture, adapter state and a checksum of every weight (device independent to 9 digits)."""
    sums = torch.stack([p.detach().double().sum() for p in model.sam.parameters()]).cpu().tolist()
    text = repr(model.config) + f"|adapters={model.adapters_enabled}|" + ",".join(f"{v:.9e}" for v in sums)
    return hashlib.sha256(text.encode()).hexdigest()


def _settings(model: SansaModel, classes: Sequence[ClassReferences], table: TargetTable, options: AnnotateOptions, device: torch.device) -> dict:
    """Everything a chunk's content depends on; a resume must match it."""
    return {
        "format": _FORMAT_VERSION,
        "targets": table.digest(),
        "num_targets": len(table),
        "classes": [[c.category_id, c.name, c.digest()] for c in classes],
        "model": _model_digest(model),
        "image_size": model.image_size,
        "precision": "bf16" if options.autocast and device.type == "cuda" else "fp32",
        "threshold": options.threshold,
        "min_score": options.min_score,
        "min_area": options.min_area,
        "chunk_size": options.chunk_size,
        "save_masks": options.save_masks,
        "save_overlays": options.save_overlays,
    }


def _chunk_path(out: Path, chunk: int) -> Path:
    return out / "parts" / f"chunk-{chunk:06d}.json"


def _class_folder(c: ClassReferences) -> str:
    return f"{c.category_id}_{re.sub(r'[^A-Za-z0-9._-]+', '_', c.name)}"


def _prepare_out(out: Path, settings: dict, num_chunks: int, info: DistInfo, overwrite: bool) -> None:
    """Check ``out/parts/manifest.json`` against this run's settings (every rank), then (rank 0) write it."""
    manifest_path = out / "parts" / "manifest.json"
    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    stale = False
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text())
        if previous.get("fingerprint") != fingerprint:
            if not overwrite:
                old = previous.get("settings", {})
                changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
                raise ValueError(
                    f"--out {out}: its parts/ were written by a run with other settings (changed: {', '.join(changed)}); "
                    "rerun with the same settings to resume, or pass --overwrite, or use another --out"
                )
            stale = True
    elif (out / "parts").is_dir() and any((out / "parts").glob("chunk-*.json")) and not overwrite:
        raise ValueError(f"--out {out}: parts/ holds chunk files but no manifest.json; pass --overwrite or use another --out")
    else:
        stale = overwrite
    barrier()  # every rank has read the manifest before rank 0 touches it
    if info.is_main:
        parts = out / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        for leftover in parts.glob(".*.tmp"):  # temporary files of a killed run
            leftover.unlink(missing_ok=True)
        if stale:
            for old in parts.glob("chunk-*.json"):
                old.unlink()
            (out / "annotations.json").unlink(missing_ok=True)
        atomic_write_json(manifest_path, {"fingerprint": fingerprint, "num_chunks": num_chunks, "settings": settings})
    barrier()


def _annotations_of_image(
    logits: torch.Tensor, scores: Sequence[float], peaks: Sequence[float], size: tuple[int, int], options: AnnotateOptions
) -> list[tuple[int, dict, np.ndarray]]:
    """One image's kept predictions ``(class position, COCO fields, HxW uint8 mask)``.

    ``logits`` ``(C, h, w)`` low resolution, ``scores`` the C rounded scores, ``peaks`` the C
    maxima of ``logits``. As ``SansaPredictor``, logits go bilinearly to ``size`` and are
    thresholded there; a class whose low-resolution peak is not above the threshold is dropped
    before upsampling (a bilinear value never exceeds the maximum of its inputs).
    """
    positions = [c for c, (score, peak) in enumerate(zip(scores, peaks)) if score >= options.min_score and peak > options.threshold]
    if not positions:
        return []
    up = upsample_logits(logits[positions][:, None], size)[:, 0]  # (K, 1, h, w) -> (K, H, W), as the predictor
    # (K, W, H) C-contiguous, so that mask.T is the Fortran-ordered (H, W) array pycocotools wants
    masks = (up > options.threshold).transpose(1, 2).to(torch.uint8).contiguous().cpu().numpy()
    kept = []
    for position, mask_t in zip(positions, masks):
        mask = mask_t.T
        rle = mask_utils.encode(mask)
        area = int(mask_utils.area(rle))
        if area == 0 or area < options.min_area:
            continue
        fields = {
            "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": area,
            "bbox": [float(v) for v in mask_utils.toBbox(rle)],
            "score": scores[position],
        }
        kept.append((position, fields, mask))
    return kept


def _process_chunks(
    model: SansaModel,
    classes: Sequence[ClassReferences],
    table: TargetTable,
    chunks: Sequence[int],
    out: Path,
    options: AnnotateOptions,
    fingerprint: str,
    show_progress: bool,
) -> int:
    """Annotate the targets of ``chunks`` and write one chunk file each; returns the targets done."""
    device = model.device
    memories = [class_memory(model, c, autocast=options.autocast) for c in classes]
    n, size = len(table), options.chunk_size
    batches: list[list[int]] = []
    for chunk in chunks:
        stop = min(n, (chunk + 1) * size)
        batches.extend(list(range(s, min(stop, s + options.batch_size))) for s in range(chunk * size, stop, options.batch_size))
    loader = DataLoader(
        _TargetImages(table.paths, model.image_size, keep_images=options.save_overlays),
        batch_sampler=batches,
        num_workers=options.num_workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    remaining = {chunk: min(n, (chunk + 1) * size) - chunk * size for chunk in chunks}
    records: dict[str, list] = {"images": [], "annotations": [], "skipped": []}
    done = 0
    with tqdm(total=sum(remaining.values()), unit="img", desc="annotate", file=sys.stderr, disable=not show_progress, dynamic_ncols=True) as bar:
        for batch in loader:
            for index, reason in batch["errors"]:
                log.warning("skipping %s: %s", table.paths[index], reason)
                records["skipped"].append({"index": index, "reason": reason})
            if batch["tensor"] is not None:
                logits, scores = segment_batch(model, batch["tensor"].to(device, non_blocking=True), memories, autocast=options.autocast)
                # the written score (6 decimals) is the one compared with --min-score
                score_rows = [[round(v, 6) for v in row] for row in scores.cpu().tolist()]
                peak_rows = logits.flatten(2).amax(dim=2).cpu().tolist()  # (B, C)
                for b, (index, hw) in enumerate(zip(batch["good"], batch["sizes"])):
                    records["images"].append({"index": index, "height": hw[0], "width": hw[1]})
                    kept = _annotations_of_image(logits[b], score_rows[b], peak_rows[b], hw, options)
                    for position, fields, mask in kept:
                        records["annotations"].append({"index": index, "category_id": classes[position].category_id, **fields})
                        if options.save_masks:
                            save_png(out / "masks" / _class_folder(classes[position]) / f"{table.stems[index]}.png", mask.astype(bool))
                    if options.save_overlays:
                        picture = batch["images"][b]
                        for position, _, mask in kept:
                            picture = overlay(picture, mask.astype(bool), color=_PALETTE[position % len(_PALETTE)])
                        save_png(out / "overlays" / f"{table.stems[index]}.png", picture)
            chunk = batch["indices"][0] // size
            remaining[chunk] -= len(batch["indices"])
            if remaining[chunk] == 0:  # batches never straddle chunks, and the loader keeps their order
                atomic_write_json(_chunk_path(out, chunk), {"chunk": chunk, "fingerprint": fingerprint, **records}, indent=None)
                records = {"images": [], "annotations": [], "skipped": []}
            done += len(batch["indices"])
            bar.update(len(batch["indices"]))
    return done


def _read_chunk(out: Path, chunk: int, fingerprint: str) -> dict:
    path = _chunk_path(out, chunk)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: chunk file missing at merge (was a rank killed? rerun the command to finish)")
    data = json.loads(path.read_text())
    if data.get("chunk") != chunk or data.get("fingerprint") != fingerprint:
        raise ValueError(f"{path}: chunk file of another run (chunk {data.get('chunk')}, fingerprint differs); rerun with --overwrite")
    return data


def _merge(out: Path, classes: Sequence[ClassReferences], table: TargetTable, num_chunks: int, fingerprint: str, info_fields: dict) -> tuple[int, int, int]:
    """Stream every chunk file, in order, into ``out/annotations.json``; returns (images, annotations, skipped)."""
    categories = [{"id": c.category_id, "name": c.name, "supercategory": ""} for c in classes]
    skipped: list[dict] = []
    num_images = num_annotations = 0
    dump = lambda obj: json.dumps(obj, separators=(", ", ": "))  # noqa: E731 - one format for every record
    with atomic_path(out / "annotations.json") as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write('{"info": ' + dump(info_fields) + ',\n"categories": [\n' + ",\n".join(map(dump, categories)) + '\n],\n"images": [')
        for chunk in range(num_chunks):  # pass 1: images and skipped targets
            data = _read_chunk(out, chunk, fingerprint)
            for image in data["images"]:
                i = image["index"]
                record = {"id": i + 1, "file_name": table.file_names[i], "height": image["height"], "width": image["width"]}
                handle.write(("\n" if num_images == 0 else ",\n") + dump(record))
                num_images += 1
            skipped.extend({"id": s["index"] + 1, "file_name": table.file_names[s["index"]], "reason": s["reason"]} for s in data["skipped"])
        handle.write('\n],\n"annotations": [')
        for chunk in range(num_chunks):  # pass 2: annotations, ids in chunk, image, class order
            for annotation in _read_chunk(out, chunk, fingerprint)["annotations"]:
                num_annotations += 1
                record = {"id": num_annotations, "image_id": annotation["index"] + 1, "category_id": annotation["category_id"], "iscrowd": 0,
                          "area": annotation["area"], "bbox": annotation["bbox"], "score": annotation["score"], "segmentation": annotation["segmentation"]}
                handle.write(("\n" if num_annotations == 1 else ",\n") + dump(record))
        handle.write('\n],\n"skipped": [' + ",".join("\n" + dump(s) for s in skipped) + "\n]}\n")
    atomic_write_json(out / "skipped.json", skipped)
    return num_images, num_annotations, len(skipped)


def annotate(
    model: SansaModel,
    classes: Sequence[ClassReferences],
    targets: TargetTable,
    out: str | os.PathLike,
    *,
    options: AnnotateOptions = AnnotateOptions(),
    info: DistInfo = DistInfo(),
) -> AnnotateResult:
    """Annotate ``targets`` for every class into ``out`` (resuming what is there); rank 0 merges.

    Under a process group every rank calls this with the same arguments; each annotates its
    share of the pending chunks.
    """
    if not classes:
        raise ValueError("classes: at least one class with references is needed")
    out = Path(out)
    device = model.device
    num_chunks = -(-len(targets) // options.chunk_size)
    settings = _settings(model, classes, targets, options, device)
    _prepare_out(out, settings, num_chunks, info, options.overwrite)
    fingerprint = json.loads((out / "parts" / "manifest.json").read_text())["fingerprint"]
    pending = [c for c in range(num_chunks) if not _chunk_path(out, c).is_file()]
    barrier()  # every rank sees the same pending list before any writes a chunk
    mine = [pending[i] for i in shard_indices(len(pending), info)]
    start = time.perf_counter()
    processed = _process_chunks(model, classes, targets, mine, out, options, fingerprint, options.progress and info.is_main) if mine else 0
    seconds = time.perf_counter() - start
    barrier()
    if not info.is_main:
        return AnnotateResult(None, processed, seconds)
    info_fields = {
        "description": "sansa_probe.annotate: few-shot annotation with SANSA (SAM2 + adapters)",
        "image_root": str(targets.root),
        "score": "SAM2 predicted IoU of the mask",
        "settings": {k: settings[k] for k in ("image_size", "precision", "threshold", "min_score", "min_area")},
        "fingerprint": fingerprint,
    }
    num_images, num_annotations, num_skipped = _merge(out, classes, targets, num_chunks, fingerprint, info_fields)
    return AnnotateResult(out / "annotations.json", processed, seconds, num_images, num_annotations, num_skipped)


# ---------------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sansa_probe.annotate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--references", required=True, help="references file (JSON or YAML, schema above)")
    parser.add_argument("--targets", nargs="+", action="extend", default=[], help="target image files and/or folders (recursive)")
    parser.add_argument("--target-list", action="append", default=[], help="text file listing target images, one per line (repeatable)")
    parser.add_argument("--out", required=True, help="output folder (annotations.json, skipped.json, parts/, masks/, overlays/)")
    parser.add_argument("--min-score", type=float, default=0.0, help="drop predictions whose predicted IoU is below this (default 0)")
    parser.add_argument("--min-area", type=int, default=0, help="drop predictions with fewer pixels than this (empty ones are always dropped)")
    parser.add_argument("--threshold", type=float, default=0.0, help="logit threshold of the masks (default 0 = probability 0.5)")
    parser.add_argument("--batch-size", type=int, default=8, help="targets per image-encoder forward (default 8)")
    parser.add_argument("--num-workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader processes decoding and resizing targets")
    parser.add_argument("--chunk-size", type=int, default=128, help="targets per chunk file in out/parts (the unit of resuming; default 128)")
    parser.add_argument("--save-masks", action="store_true", help="also write masks/<id>_<class>/<image>.png")
    parser.add_argument("--save-overlays", action="store_true", help="also write overlays/<image>.png (every class in its colour)")
    parser.add_argument("--no-autocast", action="store_true", help="float32 on CUDA too (default: bfloat16 autocast on CUDA)")
    parser.add_argument("--overwrite", action="store_true", help="discard parts/ written with other settings instead of refusing")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights (only with --sam2-checkpoint none / fresh adapters)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_main(lambda: _run(args), prog="sansa_probe.annotate")


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
        autocast=not args.no_autocast,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    classes = load_references(args.references)  # fail on a bad file before building the model
    targets = collect_targets(args.targets, args.target_list)
    with distributed(args.device) as (info, device):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = model_from_args(argparse.Namespace(**{**vars(args), "device": str(device)}))
        result = annotate(model, classes, targets, args.out, options=options, info=info)
    if info.is_main:
        print(
            f"annotated {result.num_images} images ({result.num_skipped} skipped), {result.num_annotations} annotations "
            f"-> {result.output}" + (f" ({result.images_per_second:.2f} img/s on rank 0)" if result.processed else " (nothing left to compute)"),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
