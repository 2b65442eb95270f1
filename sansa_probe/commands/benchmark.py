"""The options and the run of the benchmark commands, ``evaluate`` and ``compare``.

Both read a benchmark's folds with the same options (:func:`add_benchmark_groups`) and run the
same evaluation (:func:`run_benchmark`): one model, built once, evaluated with its adapters in
each asked state (``evaluate``: the one ``--adapters`` says; ``compare``: off, then on), each
state's results written as an evaluate output folder. Both refuse a folder holding a finished run
unless ``--overwrite`` (:func:`open_output`), and anything a run of theirs did not write.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch

from sansa_probe.commands.grammar import (
    add_data_group,
    add_model_group,
    add_output_group,
    add_overwrite_option,
    add_run_group,
    check_model_args,
    data_inputs,
    dataset_options,
    episode_count,
    finite_float,
    model_from_args,
    model_record,
    non_negative_int,
    positive_int,
    say,
)
from sansa_probe.data import get_spec
from sansa_probe.evaluation.benchmark import Benchmark, evaluate_folds, evaluation_summary, result_warnings, write_evaluation
from sansa_probe.evaluation.tables import FoldResult
from sansa_probe.inference import PROTOCOLS
from sansa_probe.io.manifest import RunFolder
from sansa_probe.prompts import PROMPT_TYPES
from sansa_probe.reporting.identity import identity_line, model_identity, said_in_words
from sansa_probe.reporting.sanity import report
from sansa_probe.utils.distributed import distributed
from sansa_probe.utils.precision import inference_precision

__all__ = ["EVALUATION_FILES", "add_benchmark_groups", "benchmark_from_args", "checkpoint_for", "open_output", "run_benchmark"]

EVALUATION_FILES = ("results.csv", "episodes.csv", "summary.json")  # an evaluate output folder


def add_benchmark_groups(parser: argparse.ArgumentParser, *, writes: str) -> None:
    """The ``data``, ``benchmark``, ``evaluation``, ``model``, ``output`` and ``run`` groups of a benchmark command."""
    add_data_group(parser)
    benchmark = parser.add_argument_group("benchmark")
    benchmark.add_argument("--all-folds", action="store_true", help="evaluate every fold and report the mean (--checkpoint may contain {fold})")
    benchmark.add_argument("--shots", type=positive_int, default=1, help="annotated references per episode, k >= 1 (default 1)")
    benchmark.add_argument("--prompt", choices=PROMPT_TYPES, default="mask", help="reference annotation (default mask)")
    benchmark.add_argument("--split", choices=["test", "val", "train"], default="test", help="split to evaluate (default test)")
    benchmark.add_argument("--episodes", type=episode_count, default=None, help="episodes per fold (default: the dataset's literature default)")
    benchmark.add_argument("--seed", type=non_negative_int, default=0, help="seed of episodes, prompts and semantic negatives (default 0)")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--protocol", choices=list(PROTOCOLS), default="release",
                            help="preprocessing and scoring: 'release' (default; the public SANSA release's, which the paper's tables "
                                 "come from: a per-dataset square, 640 or 518 px, scored there) or 'hsnet' (straight to the model "
                                 "size, scored at each image's own resolution)")
    evaluation.add_argument("--threshold", type=finite_float, default=0.0, help="logit threshold of the masks (default 0 = probability 0.5)")
    evaluation.add_argument("--negative-clicks", type=non_negative_int, default=0, help="simulated negative clicks on each target (appendix F)")
    evaluation.add_argument("--semantic-negatives", type=non_negative_int, default=0,
                            help="images of other classes added to memory with an empty mask (appendix F)")
    evaluation.add_argument("--num-workers", type=non_negative_int, default=2, help="DataLoader workers loading episodes (default 2)")
    add_overwrite_option(evaluation, what="the finished run")
    add_model_group(parser, checkpoint_help="with --all-folds it may contain {fold}, formatted per fold")
    add_output_group(parser, writes=writes)
    add_run_group(parser)


def open_output(args: argparse.Namespace, *, prog: str) -> RunFolder:
    """``--out`` checked before any work: a finished run of ``prog`` there is refused unless
    ``--overwrite``, and so is anything no run of ``prog`` wrote, or ``--out`` inside the data root."""
    return RunFolder.open(args.out, command=prog, finished="refuse", overwrite=args.overwrite, inputs=data_inputs(args))


def checkpoint_for(template: str | None, fold: int) -> str | None:
    """``--checkpoint`` for ``fold`` (``{fold}`` replaced)."""
    return None if template is None else template.replace("{fold}", str(fold))


def benchmark_from_args(args: argparse.Namespace) -> tuple[Benchmark, list[str | None]]:
    """The benchmark the options describe and each fold's checkpoint, validated before anything expensive."""
    spec = get_spec(args.dataset)
    if not math.isfinite(args.threshold):
        raise ValueError(f"--threshold {args.threshold}: expected a finite number")
    if not args.all_folds and not 0 <= args.fold < spec.folds:
        raise ValueError(f"--fold {args.fold} is out of range for {spec.name}: expected 0..{spec.folds - 1}")
    folds = tuple(range(spec.folds)) if args.all_folds else (args.fold,)
    checkpoints = [checkpoint_for(args.checkpoint, fold) for fold in folds]
    for fold, path in zip(folds, checkpoints):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--checkpoint: file {path} (fold {fold}) does not exist")
    benchmark = Benchmark(dataset=args.dataset, folds=folds, split=args.split, shots=args.shots, prompt=args.prompt,
                          episodes=args.episodes, seed=args.seed, root=args.data_root, options=dataset_options(args),
                          threshold=args.threshold, negative_clicks=args.negative_clicks, semantic_negatives=args.semantic_negatives,
                          num_workers=args.num_workers, protocol=args.protocol)  # fmt: skip
    return benchmark, checkpoints


def run_benchmark(args: argparse.Namespace, argv: Sequence[str] | None, *, prog: str, folder: RunFolder,
                  outs: Mapping[bool, Path]) -> dict[bool, list[FoldResult]] | None:  # fmt: skip
    """Evaluate the model the options describe with its adapters in each state of ``outs`` (off =
    frozen SAM2, on = SANSA) on the same episodes, write each state's evaluate folder into
    ``outs[state]`` (``folder`` or folders inside it, :func:`open_output`) and print each fold's
    scores. Returns ``{state: results}`` on rank 0, ``None`` on the other torchrun ranks."""
    started, clock = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    check_model_args(args)
    benchmark, checkpoints = benchmark_from_args(args)
    first = benchmark.sampler(benchmark.folds[0])  # data errors surface before the model is built
    with distributed(args.device) as (info, device):
        torch.manual_seed(args.seed)  # random-init SAM2 (--sam2-checkpoint none) is then identical on every rank
        with said_in_words():  # the identity's warnings say it in words below
            model = model_from_args(args, adapters=checkpoints[0], device=device)
        precision = inference_precision(device, model.autocast)
        identities = {state: model_identity(model, adapters_enabled=state, precision=precision, protocol=args.protocol) for state in outs}
        if info.is_main:
            for identity in identities.values():
                say(identity_line(identity))
            report(list(dict.fromkeys(w for identity in identities.values() for w in identity["warnings"])))
        with warnings.catch_warnings():  # unsampled classes are said in words below (result_warnings), with both means
            warnings.filterwarnings("ignore", message=".*were never sampled", category=UserWarning)
            results = evaluate_folds(model, benchmark, checkpoints=checkpoints, states=tuple(outs), info=info,
                                     progress=not args.no_progress, first_sampler=first)  # fmt: skip
        if not info.is_main:
            return None
        seconds = time.perf_counter() - clock
        folder.claim(*(Path(out) / name for out in outs.values() for name in EVALUATION_FILES))
        for state, out in outs.items():
            labels = {**benchmark.labels(adapters=state), "model": identity_line(identities[state]).removeprefix("model: ")}
            summary = evaluation_summary(benchmark, results[state], model, labels, device=device, world_size=info.world_size, command=prog,
                                         argv=list(sys.argv[1:] if argv is None else argv),
                                         config={**vars(args), **model_record(args, model), "adapters": "on" if state else "off",
                                                 "out": str(out)},
                                         started=started.isoformat(timespec="seconds"), seconds=round(seconds, 3))  # fmt: skip
            measured = result_warnings(results[state], dataset=labels["dataset"])
            summary.update(identity=identities[state], warnings=[*identities[state]["warnings"], *measured])
            table = write_evaluation(out, results[state], labels=labels, summary=summary)
            report(measured)
            _print_scores(results[state], table, labels, shots=args.shots, prompt=args.prompt)
            say(f"wrote {out / 'results.csv'}, {out / 'episodes.csv'} and {out / 'summary.json'}")
    return results


def _print_scores(results: Sequence[FoldResult], table: pd.DataFrame, labels: Mapping, *, shots: int, prompt: str) -> None:
    name = labels["dataset"]
    for result in results:
        s = result.scores
        say(f"{name} fold {result.fold} {shots}-shot {prompt}: mIoU {s['miou']:.2f}%  FB-IoU {s['fb_iou']:.2f}%  "
            f"({s['n_episodes']} episodes)")  # fmt: skip
    if len(results) > 1:
        mean = table[table["fold"] == "mean"].set_index("metric")["value"]
        say(f"{name} mean over {len(results)} folds: mIoU {mean['miou']:.2f}%  FB-IoU {mean['fb_iou']:.2f}%")
