"""Benchmark of ``sansa_probe.annotate`` (paper appendix C, table 6): speed, encoder reuse, flat memory.

    python experiments/bench_annotate.py                   # CPU: Hiera-T, 128 px, 3 classes, 100 and 1,000 targets
    python experiments/bench_annotate.py --quick           # CPU smoke run, about a minute
    python experiments/bench_annotate.py --device cuda     # GPU: Hiera-L, 1024 px, 20 classes (the COCO-20i fold size)

Prints one table measured in this run:

* the image-encoder forward per image, and encode + C classes per image through
  :func:`sansa_probe.annotation.segment_batch`, as a multiple of the encoder forward
  (the limit: encode once, then only memory attention + decoder per class, ``<= 1.0 + 0.2 C``);
* end-to-end images/s of :func:`sansa_probe.annotation.annotate` (decode in DataLoader workers,
  encode, C classes, upsampling, RLE, chunk files, merge) at each size, and its time per target
  as a multiple of the encoder forward;
* peak memory of each end-to-end run (RSS of the main process sampled from ``/proc``, or the
  CUDA allocator's peak on GPU): flat when it does not grow from 100 to 1,000 targets;
* the speed-up of batched encoder forwards over batch size 1 (model path and end to end).

Weights are random by default (``--sam2-checkpoint none``): speed and memory do not depend on them.
The targets are generated JPEGs (``--target-size``), the references one blob image per class.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from PIL import Image

from sansa_probe.annotation import AnnotateOptions, ClassReferences, TargetTable, annotate, class_memory, segment_batch
from sansa_probe.io.images import batch_to_model_input
from sansa_probe.inference import FewShotInference
from sansa_probe.model import load_sansa
from sansa_probe.prompts.types import Mask


def blob(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image with one coloured ellipse; returns (HxWx3 uint8, HxW bool)."""
    image = (rng.random((height, width, 3)) * 90).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    mask = ((yy - cy) / (0.25 * height)) ** 2 + ((xx - cx) / (0.25 * width)) ** 2 <= 1
    image[mask] = rng.integers(100, 255, size=3, dtype=np.uint8)
    return image, mask


class PeakMemory:
    """Peak resident memory of this process (``/proc/self/statm`` every 10 ms) or of CUDA, over a ``with`` block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0
        self._stop = threading.Event()

    @staticmethod
    def rss_bytes() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_bytes = max(self.peak_bytes, self.rss_bytes())

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak_bytes = self.rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes, self.rss_bytes())


def seconds_per_call(fns: dict[str, Callable[[], object]], *, reps: int, device: torch.device) -> dict[str, float]:
    """Median wall time of each ``fn()`` over ``reps`` rounds after one warm-up; the functions are
    interleaved within each round so that load from other processes hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(reps + 1):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_ > 0:
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--backbone", default=None, help="default hiera_t on CPU, hiera_l on CUDA")
    parser.add_argument("--image-size", type=int, default=None, help="default 128 on CPU, 1024 on CUDA")
    parser.add_argument("--sam2-checkpoint", default="none", help="'none' (random weights, default) or a path to Meta's .pt")
    parser.add_argument("--classes", type=int, default=None, help="number of classes (default 3 on CPU, 20 on CUDA)")
    parser.add_argument("--sizes", default="100,1000", help="numbers of targets of the end-to-end runs (default 100,1000)")
    parser.add_argument("--batch-size", type=int, default=8, help="targets per encoder forward (default 8)")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default 1 on CPU, 8 on CUDA)")
    parser.add_argument("--target-size", default=None, help="WxH of the generated targets (default 160x120 on CPU, 640x480 on CUDA)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of the timed model calls (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's; 1 is faster on a busy shared CPU)")
    parser.add_argument("--quick", action="store_true", help="sizes 20,100 and 3 repetitions")
    parser.add_argument("--model-path-only", action="store_true", help="only the encoder / per-class timings (no end-to-end runs)")
    parser.add_argument("--csv", default=None, help="also write the table as CSV here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    backbone = args.backbone or ("hiera_l" if gpu else "hiera_t")
    image_size = args.image_size or (1024 if gpu else 128)
    num_classes = args.classes or (20 if gpu else 3)
    workers = args.num_workers if args.num_workers is not None else (8 if gpu else 1)
    width, height = (int(v) for v in (args.target_size or ("640x480" if gpu else "160x120")).lower().split("x"))
    sizes = [20, 100] if args.quick else [int(v) for v in args.sizes.split(",")]
    reps = 3 if args.quick else args.reps
    batch = args.batch_size
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = load_sansa(backbone, sam2_checkpoint=None if args.sam2_checkpoint == "none" else args.sam2_checkpoint,
                           image_size=image_size, device=device)
    rng = np.random.default_rng(0)
    classes = []
    for c in range(num_classes):
        image, mask = blob(rng, 240, 320)
        classes.append(ClassReferences(f"class{c}", c + 1, (image,), (Mask(mask),)))

    rows: list[dict] = []

    def add(measure: str, value: float, unit: str, targets: int | None = None, batch_size: int | None = None, limit: str = "") -> None:
        rows.append({"measure": measure, "targets": targets, "batch": batch_size, "value": value, "unit": unit, "limit": limit})

    # ------------------------------------------------------------ model path: encoder once, then per class
    path = FewShotInference(model)
    memories = [class_memory(path, c) for c in classes]
    frames = batch_to_model_input([blob(rng, height, width)[0] for _ in range(batch)], image_size).to(device)

    def encode(x: torch.Tensor):
        with torch.no_grad(), (torch.autocast("cuda", dtype=torch.bfloat16) if gpu else contextlib.nullcontext()):
            return model.encode_images(x)

    timed = seconds_per_call({
        "encode 1": lambda: encode(frames[:1]),
        "encode B": lambda: encode(frames),
        "full 1": lambda: segment_batch(path, frames[:1], memories),
        "full B": lambda: segment_batch(path, frames, memories),
    }, reps=reps, device=device)
    encoder = {1: timed["encode 1"], batch: timed["encode B"] / batch}
    full = {1: timed["full 1"], batch: timed["full B"] / batch}
    ratio = full[batch] / encoder[batch]
    limit = 1.0 + 0.2 * num_classes
    add("image encoder forward, per image", encoder[batch] * 1e3, "ms", batch_size=batch)
    add(f"encode + {num_classes} classes, per image", full[batch] * 1e3, "ms", batch_size=batch)
    add("  / one encoder forward", ratio, "x", batch_size=batch, limit=f"<= {limit:.1f} {'ok' if ratio <= limit else 'OVER'}")
    add("  each class / one encoder forward", (full[batch] - encoder[batch]) / num_classes / encoder[batch], "x", batch_size=batch, limit="<= 0.2")
    add("batching speed-up, model path", full[1] / full[batch], "x", batch_size=batch)

    # ------------------------------------------------------------ end to end
    if args.model_path_only:
        sizes = []
    with tempfile.TemporaryDirectory(prefix="bench_annotate_") as tmp:
        folder = Path(tmp) / "targets"
        folder.mkdir()
        paths = []
        for i in range(max(sizes, default=0)):
            path = folder / f"{i:06d}.jpg"
            Image.fromarray(blob(rng, height, width)[0]).save(path, quality=90)
            paths.append(path)
        runs = [(n, batch) for n in sizes] + [(sizes[0], 1)] if sizes else []
        speed = {}
        for n, b in runs:
            options = AnnotateOptions(batch_size=b, num_workers=workers, progress=False)
            before = seconds_per_call({"encode B": lambda: encode(frames)}, reps=2, device=device)["encode B"]
            with PeakMemory(device) as memory:
                start = time.perf_counter()
                result = annotate(model, classes, TargetTable.from_paths(paths[:n]), Path(tmp) / f"out_{n}_{b}", options=options)
                seconds = time.perf_counter() - start
            after = seconds_per_call({"encode B": lambda: encode(frames)}, reps=2, device=device)["encode B"]
            encoder_now = (before + after) / 2 / batch  # the encoder timed around this run: same load as the run
            speed[(n, b)] = n / seconds
            add("end to end", n / seconds, "img/s", n, b)
            add("  per target / one encoder forward", seconds / n / encoder_now, "x", n, b, limit=f"<= {limit:.1f} (model path)")
            add("  peak CUDA memory" if gpu else "  peak RSS (main process)", memory.peak_bytes / 2**20, "MiB", n, b)
            print(f"[{n} targets, batch {b}: {seconds:.1f} s, {result.num_annotations} annotations]", file=sys.stderr, flush=True)
        if sizes:
            add("batching speed-up, end to end", speed[(sizes[0], batch)] / speed[(sizes[0], 1)], "x", sizes[0], batch)

    table = pd.DataFrame(rows).astype({"targets": "Int64", "batch": "Int64"})
    header = (f"device {device} ({torch.get_num_threads()} threads), {backbone} at {image_size} px, {num_classes} classes, "
              f"targets {width}x{height} JPEG, {workers} DataLoader workers, random weights: {args.sam2_checkpoint == 'none'}")
    print(header)
    shown = table.astype({"targets": object, "batch": object}).fillna("")
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
