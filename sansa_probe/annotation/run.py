"""The annotation run: class memories once, each target batch encoded once, chunked resumable output, merge."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sansa_probe.inference import FewShotInference, get_protocol, prepare_references
from sansa_probe.model.memory import MemoryEntry
from sansa_probe.model.sansa import SansaModel
from sansa_probe.utils.distributed import DistInfo, barrier, shard_indices
from sansa_probe.io.atomic import atomic_path, atomic_write_json
from sansa_probe.io.manifest import RunFolder
from sansa_probe.io.masks import encode_rle, overlay, rle_area, rle_bbox, save_png
from sansa_probe.reporting.identity import identity_line, model_identity
from sansa_probe.utils.precision import inference_precision

from sansa_probe.annotation.references import ClassReferences
from sansa_probe.annotation.targets import TargetImages, TargetTable, collate_targets

log = logging.getLogger("sansa_probe.annotate")

COMMAND = "sansa_probe.annotate"  # the command recorded in the output folder's manifest

_FORMAT_VERSION = 1
_PALETTE = ((30, 144, 255), (255, 99, 71), (60, 179, 113), (238, 130, 238), (255, 215, 0), (0, 206, 209), (244, 164, 96), (147, 112, 219))


# ---------------------------------------------------------------------------------- model
def class_memory(path: FewShotInference, references: ClassReferences) -> list[MemoryEntry]:
    """The class's reference memory (k + negatives entries of batch 1), as ``SansaPredictor`` builds it."""
    prepared = prepare_references(path.protocol, references.images, references.prompts, negative_images=references.negatives)
    return path.memory(prepared)


def segment_batch(path: FewShotInference, images: torch.Tensor, memories: Sequence[Sequence[MemoryEntry]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ``(B, 3, S, S)`` targets once, then segment them for every class from that encoding.

    Returns low-resolution logits ``(B, C, S/4, S/4)`` float32 and scores (predicted IoU) ``(B, C)``.
    """
    feats = path.encode(images)
    outputs = [path.segment(feats, memory) for memory in memories]
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
    autocast: bool | None = None  # None: the model's precision option (float32 unless built with bfloat16)
    protocol: str = "release"
    overwrite: bool = False  # (*)
    progress: bool = True  # (*)

    def __post_init__(self) -> None:
        for name, low in (("chunk_size", 1), ("batch_size", 1), ("num_workers", 0), ("min_area", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {getattr(self, name)}")
        for name in ("threshold", "min_score"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"--{name.replace('_', '-')}: expected a finite number, got {getattr(self, name)}")


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
        "precision": inference_precision(device, model.autocast if options.autocast is None else options.autocast),
        "protocol": options.protocol,
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


def _prepare_out(folder: RunFolder, settings: dict, num_chunks: int, info: DistInfo, overwrite: bool) -> None:
    """Check ``out/parts/manifest.json`` against this run's settings (every rank), then (rank 0)
    remove a previous run's files when it is replaced (those the folder's manifest lists, nothing
    else), claim this run's and write the parts manifest."""
    out = folder.path
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
        if stale:  # the previous run's outputs go (only what its manifest lists), so none is left beside this run's
            folder.remove_previous()
        folder.claim("parts/", "annotations.json", "skipped.json", *(["masks/"] if settings["save_masks"] else []),
                     *(["overlays/"] if settings["save_overlays"] else []))
        parts = out / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        for leftover in parts.glob(".*.tmp"):  # temporary files of a killed run (parts/ is claimed: ours)
            leftover.unlink(missing_ok=True)
        atomic_write_json(manifest_path, {"fingerprint": fingerprint, "num_chunks": num_chunks, "settings": settings})
    barrier()


def open_output(out: str | os.PathLike, *, info: DistInfo = DistInfo(), inputs: dict | None = None) -> RunFolder:
    """``out`` opened for an annotate run (before any work): refused when it holds files no annotate
    run wrote or lies inside one of ``inputs`` (option -> target folders)."""
    return RunFolder.open(out, command=COMMAND, inputs=inputs, legacy=legacy_outputs, writer=info.is_main)


def legacy_outputs(out: Path) -> dict[str, None] | None:
    """What an annotate run of a version without ``sansa-manifest.json`` wrote in ``out``: ``parts/``,
    ``annotations.json``, ``skipped.json``, and ``masks/``/``overlays/`` only where its recorded
    settings saved them (read from ``parts/manifest.json``); ``None`` when there is no such run."""
    try:
        settings = json.loads((out / "parts" / "manifest.json").read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    names = ["parts/", "annotations.json", "skipped.json", *(["masks/"] if settings.get("save_masks") else []),
             *(["overlays/"] if settings.get("save_overlays") else [])]
    return {name: None for name in names}


def _annotations_of_image(
    path: FewShotInference, logits: torch.Tensor, scores: Sequence[float], peaks: Sequence[float], size: tuple[int, int], options: AnnotateOptions
) -> list[tuple[int, dict, np.ndarray]]:
    """One image's kept predictions ``(class position, COCO fields, HxW uint8 mask)``.

    ``logits`` ``(C, h, w)`` low resolution, ``scores`` the C rounded scores, ``peaks`` the C
    maxima of ``logits``. As ``SansaPredictor``, logits go to the output size of ``size`` by
    ``path.protocol`` and are thresholded there by ``path``; a class whose low-resolution peak is
    not above the threshold is dropped before upsampling (a bilinear value never exceeds the
    maximum of its inputs).
    """
    positions = [c for c, (score, peak) in enumerate(zip(scores, peaks)) if score >= options.min_score and peak > path.threshold]
    if not positions:
        return []
    up = path.protocol.logits(logits[positions][:, None], size=size)[:, 0]  # (K, 1, h, w) -> (K, H, W), as the predictor
    # (K, W, H) C-contiguous, so that mask.T is the Fortran-ordered (H, W) array pycocotools wants
    masks = path.mask(up).transpose(1, 2).to(torch.uint8).contiguous().cpu().numpy()
    kept = []
    for position, mask_t in zip(positions, masks):
        mask = mask_t.T
        rle = encode_rle(mask)
        area = rle_area(rle)
        if area == 0 or area < options.min_area:
            continue
        fields = {
            "segmentation": rle,
            "area": area,
            "bbox": rle_bbox(rle),
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
    protocol = get_protocol(options.protocol, image_size=model.image_size, output="image")
    path = FewShotInference(model, protocol=protocol, threshold=options.threshold, autocast=options.autocast)
    memories = [class_memory(path, c) for c in classes]
    n, size = len(table), options.chunk_size
    batches: list[list[int]] = []
    for chunk in chunks:
        stop = min(n, (chunk + 1) * size)
        batches.extend(list(range(s, min(stop, s + options.batch_size))) for s in range(chunk * size, stop, options.batch_size))
    loader = DataLoader(
        TargetImages(table.paths, path.protocol, keep_images=options.save_overlays),
        batch_sampler=batches,
        num_workers=options.num_workers,
        collate_fn=collate_targets,
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
                logits, scores = segment_batch(path, batch["tensor"].to(device, non_blocking=True), memories)
                # the written score (6 decimals) is the one compared with --min-score
                score_rows = [[round(v, 6) for v in row] for row in scores.cpu().tolist()]
                peak_rows = logits.flatten(2).amax(dim=2).cpu().tolist()  # (B, C)
                for b, (index, hw) in enumerate(zip(batch["good"], batch["sizes"])):
                    records["images"].append({"index": index, "height": hw[0], "width": hw[1]})
                    kept = _annotations_of_image(path, logits[b], score_rows[b], peak_rows[b], hw, options)
                    for position, fields, mask in kept:
                        records["annotations"].append({"index": index, "category_id": classes[position].category_id, **fields})
                        if options.save_masks:
                            save_png(out / "masks" / _class_folder(classes[position]) / table.stems[index], mask.astype(bool))
                    if options.save_overlays:
                        picture = batch["images"][b]
                        for position, _, mask in kept:
                            picture = overlay(picture, mask.astype(bool), color=_PALETTE[position % len(_PALETTE)])
                        save_png(out / "overlays" / table.stems[index], picture)
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
    out: str | os.PathLike | RunFolder,
    *,
    options: AnnotateOptions = AnnotateOptions(),
    info: DistInfo = DistInfo(),
) -> AnnotateResult:
    """Annotate ``targets`` for every class into ``out`` (resuming what is there); rank 0 merges.

    ``out``: a folder, or the :class:`~sansa_probe.io.manifest.RunFolder` the command opened (:func:`open_output`):
    a folder holding anything no annotate run wrote is refused, and ``--overwrite`` removes only
    what an earlier annotate run recorded there. Under a process group every rank calls this with
    the same arguments; each annotates its share of the pending chunks.
    """
    if not classes:
        raise ValueError("classes: at least one class with references is needed")
    folder = out if isinstance(out, RunFolder) else open_output(out, info=info)
    out = folder.path
    device = model.device
    num_chunks = -(-len(targets) // options.chunk_size)
    settings = _settings(model, classes, targets, options, device)
    _prepare_out(folder, settings, num_chunks, info, options.overwrite)
    fingerprint = json.loads((out / "parts" / "manifest.json").read_text())["fingerprint"]
    pending = [c for c in range(num_chunks) if not _chunk_path(out, c).is_file()]
    barrier()  # every rank sees the same pending list before any writes a chunk
    mine = [pending[i] for i in shard_indices(len(pending), info)]
    start = time.perf_counter()
    try:
        processed = _process_chunks(model, classes, targets, mine, out, options, fingerprint, options.progress and info.is_main) if mine else 0
    except KeyboardInterrupt:
        saved = sum(_chunk_path(out, c).is_file() for c in range(num_chunks))
        raise KeyboardInterrupt(
            f"interrupted; {saved} of {num_chunks} chunks are saved in {out / 'parts'}: rerun the same command to resume"
        ) from None
    seconds = time.perf_counter() - start
    barrier()
    if not info.is_main:
        return AnnotateResult(None, processed, seconds)
    identity = model_identity(model, precision=settings["precision"])
    info_fields = {
        "description": "sansa_probe.annotate: few-shot annotation with SANSA (SAM2 + adapters)",
        "model": identity_line(identity).removeprefix("model: "),
        "identity": identity,
        "warnings": identity["warnings"],
        "image_root": str(targets.root),
        "score": "SAM2 predicted IoU of the mask",
        "settings": {k: settings[k] for k in ("image_size", "precision", "threshold", "min_score", "min_area")},
        "fingerprint": fingerprint,
    }
    num_images, num_annotations, num_skipped = _merge(out, classes, targets, num_chunks, fingerprint, info_fields)
    folder.finish()
    return AnnotateResult(out / "annotations.json", processed, seconds, num_images, num_annotations, num_skipped)
