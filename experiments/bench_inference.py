"""Inference cost of SANSA, as ratios measured in one run.

    python experiments/bench_inference.py                       # CPU, Hiera-T at 256 px
    python experiments/bench_inference.py --device cuda --backbone hiera_l --image-size 1024

Rows:
* adapted / frozen time per target (same model, adapters on vs off; target <= 1.05);
* per-target time with cached reference memory / image-encoder-only time (target <= 1.2);
* per-target time at k = 1, 2, 5 references, relative to k = 1 (at most linear in k);
* reference-memory encoding time at k = 1, 2, 5 relative to k = 1;
* peak memory (CUDA max allocated, or process max RSS on CPU).
Times are medians over ``--repeats`` runs after warm-up.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import warnings

import numpy as np
import torch

from sansa_probe.model import load_sansa, prompt_to_inputs
from sansa_probe.prompts import Mask


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, *, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="hiera_t")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1, help="targets per forward")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = load_sansa(args.backbone, sam2_checkpoint=None, image_size=args.image_size, device=device)
    # non-zero adapters, so that the adapted path really computes them
    with torch.no_grad():
        for p in model.adapter_parameters().values():
            p.normal_(0, 0.02)
    size = args.image_size
    rng = np.random.default_rng(0)
    targets = torch.from_numpy(rng.standard_normal((args.batch, 3, size, size)).astype(np.float32)).to(device)
    mask = np.zeros((size, size), bool)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    prompt = prompt_to_inputs(Mask(mask), height=size, width=size, image_size=size)
    refs = {k: torch.from_numpy(rng.standard_normal((k, 3, size, size)).astype(np.float32)).to(device) for k in (1, 2, 5)}
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(device_type="cpu", enabled=False)

    rows = []
    with torch.no_grad(), autocast:
        memory = {k: model.reference_memory(refs[k], [prompt] * k) for k in refs}

        def per_target(k: int = 1) -> None:
            model.segment(model.encode_images(targets), memory[k])

        def encoder_only() -> None:
            model.encode_images(targets)

        adapted = median_time(per_target, repeats=args.repeats, device=device)
        with model.adapters(False):
            frozen = median_time(per_target, repeats=args.repeats, device=device)
        encoder = median_time(encoder_only, repeats=args.repeats, device=device)
        rows.append(("adapted / frozen time per target", adapted / frozen, "<= 1.05"))
        rows.append(("per target (cached memory) / encoder only", adapted / encoder, "<= 1.2"))
        by_k = {k: median_time(lambda k=k: per_target(k), repeats=args.repeats, device=device) for k in refs}
        for k in (2, 5):
            rows.append((f"per-target time k={k} / k=1", by_k[k] / by_k[1], f"<= {k} (linear)"))
        ref_time = {k: median_time(lambda k=k: model.reference_memory(refs[k], [prompt] * k), repeats=args.repeats, device=device) for k in refs}
        for k in (2, 5):
            rows.append((f"reference encoding k={k} / k=1", ref_time[k] / ref_time[1], f"<= {k} (linear)"))

    print(f"# bench_inference: {args.backbone} at {size} px on {device} ({torch.get_num_threads()} threads), batch {args.batch}, "
          f"median of {args.repeats}")
    print(f"# absolute: per target {adapted * 1000:.1f} ms, encoder {encoder * 1000:.1f} ms, frozen {frozen * 1000:.1f} ms")
    print(f"{'measure':<46} {'ratio':>8}  target")
    for name, value, target in rows:
        print(f"{name:<46} {value:>8.3f}  {target}")
    print(f"{'peak memory (MiB)':<46} {peak_memory_mb(device):>8.0f}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
