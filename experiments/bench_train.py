"""Training cost per backbone, image size and J, measured in one run.

    python experiments/bench_train.py                                   # CPU: Hiera-T at 256 px, J = 1..4
    python experiments/bench_train.py --device cuda --backbones hiera_t hiera_l --sizes 512 1024

Each configuration runs in its own process (so peak memory is its own): a few optimizer steps
of one clip (1 reference + J targets) with adapters training, after one warm-up step. Printed:
median step time, its ratio to J = 1 of the same backbone and size, and peak memory (CUDA max
allocated on GPU, process max RSS on CPU).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings


def measure(backbone: str, size: int, targets: int, device: str, steps: int) -> dict:
    import torch

    from sansa_probe.model import load_sansa, prompt_to_inputs
    from sansa_probe.prompts import Mask
    from sansa_probe.training.losses import segmentation_loss

    torch.manual_seed(0)
    dev = torch.device(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = load_sansa(backbone, sam2_checkpoint=None, image_size=size, device=dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    prompt = prompt_to_inputs(Mask(mask.numpy()), height=size, width=size, image_size=size).to(dev)
    reference = torch.randn(1, 3, size, size, device=dev)
    clip = [torch.randn(1, 3, size, size, device=dev) for _ in range(targets)]
    target = mask[None, None].float().expand(targets, 1, size, size).to(dev)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            logits = model(reference, [prompt], clip)[:, 0]
        segmentation_loss(logits.flatten(0, 1), target[:, 0])["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"backbone": backbone, "size": size, "J": targets, "step_s": statistics.median(times), "peak_mib": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["hiera_t"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256])
    parser.add_argument("--targets", nargs="+", type=int, default=[1, 2, 3, 4])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--one", nargs=3, metavar=("BACKBONE", "SIZE", "J"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]), args.device, args.steps)))
        return 0
    rows = []
    for backbone in args.backbones:
        for size in args.sizes:
            for j in args.targets:
                out = subprocess.run([sys.executable, __file__, "--one", backbone, str(size), str(j), "--device", args.device,
                                      "--steps", str(args.steps)], capture_output=True, text=True, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"# bench_train: 1 reference + J targets per step, adapters training, {args.device}, median of {args.steps} steps")
    print(f"{'backbone':<9} {'size':>5} {'J':>2} {'step (s)':>9} {'/ J=1':>6} {'peak MiB':>9}")
    for row in rows:
        base = next(r for r in rows if r["backbone"] == row["backbone"] and r["size"] == row["size"] and r["J"] == min(args.targets))
        print(f"{row['backbone']:<9} {row['size']:>5} {row['J']:>2} {row['step_s']:>9.3f} {row['step_s'] / base['step_s']:>6.2f} {row['peak_mib']:>9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
