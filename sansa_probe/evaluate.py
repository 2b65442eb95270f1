"""``python -m sansa_probe.evaluate``: few-shot segmentation benchmarks as the paper reports them.

    python -m sansa_probe.evaluate --dataset coco20i --fold 0 --shots 1 --prompt mask \\
        --checkpoint sansa_coco_fold0.pt --data-root /data --out results/coco-f0
    python -m sansa_probe.evaluate --dataset coco20i --all-folds --checkpoint 'ckpt/fold{fold}.pt' ...
    python -m sansa_probe.evaluate --dataset synthetic --episodes 200 --adapters off --out results/sam2
    torchrun --standalone --nproc_per_node 8 -m sansa_probe.evaluate ...   # episodes sharded by rank

Per episode (paper eq. 1): the reference prompts are generated from the reference masks by
the seeded test-mode generators (seed ``(seed, episode, shot)``, appendix E.3); references,
semantic negatives and the target go through the image encoder in one forward; the
references (and negatives, with an empty mask) are written to memory; the target's low-res
logits are resized bilinearly to the target's own size and thresholded, as
:class:`~sansa_probe.inference.predictor.SansaPredictor` does
(the episode loop: :mod:`sansa_probe.evaluation.episodes`). Scores follow HSNet
(:class:`~sansa_probe.evaluation.metrics.FewShotSegmentationMetric`): per-class summed I / U, mIoU over
every class of the fold (an unsampled class counts as 0 and is reported), pooled FB-IoU.

Negative prompts (appendix F, table 11): ``--negative-clicks N`` simulates a user who clicks
the most interior pixel of the largest false-positive region N times, the target being
encoded once; ``--semantic-negatives N`` adds N images of other classes of the fold to memory
with an empty mask.

Writes into ``--out``: ``results.csv`` (tidy: one row per measurement, per-class IoU rows,
and the mean over folds with ``--all-folds``), ``episodes.csv`` (one row per episode) and
``summary.json`` (configuration, checkpoint SHA-256, versions, device, timing, results).
``--adapters off`` evaluates frozen SAM2 through the same code path. A folder holding a finished
evaluation is refused unless ``--overwrite``; files no evaluate run wrote are never replaced.
"""


from __future__ import annotations

import argparse
from pathlib import Path

from sansa_probe.commands.benchmark import add_benchmark_groups, open_output, run_benchmark
from sansa_probe.commands.grammar import command_parser, run_command

__all__ = ["build_parser", "main"]

PROG = "sansa_probe.evaluate"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, __doc__)
    add_benchmark_groups(parser, writes="results.csv, episodes.csv and summary.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, lambda args: _run(args, argv), prog=PROG)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    folder = open_output(args, prog=PROG)
    if run_benchmark(args, argv, prog=PROG, folder=folder, outs={args.adapters != "off": Path(args.out)}) is not None:
        folder.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
