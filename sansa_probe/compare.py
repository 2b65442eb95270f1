"""``python -m sansa_probe.compare``: frozen SAM2 against SANSA on the same episodes, with a paired
bootstrap confidence interval of the mIoU difference (overall and per class).

It takes every option of ``python -m sansa_probe.evaluate`` and evaluates one model twice on the
same episodes, seeds and prompts, adapters off (frozen SAM2) and on (SANSA), into ``<out>/frozen``
and ``<out>/adapted`` (evaluate's files); then it writes ``comparison.csv`` (one row overall, one
per class: both IoUs, the difference, its interval, a one-sided bootstrap p-value),
``comparison.png``/``.pdf`` (a forest plot) and ``summary.json``, and prints the result in one line.

    python -m sansa_probe.compare --dataset synthetic --fold 0 --episodes 100
    python -m sansa_probe.compare --from-runs runs/eval_frozen runs/eval_adapted --out cmp/

``--from-runs FROZEN ADAPTED`` compares two existing ``evaluate`` folders instead (their
``episodes.csv`` must hold the same episodes). A folder holding a finished comparison is refused
unless ``--overwrite``; files no compare run wrote are never replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sansa_probe.commands.benchmark import add_benchmark_groups, open_output, run_benchmark
from sansa_probe.commands.grammar import command_parser, number_in, positive_int, run_command, say
from sansa_probe.evaluation.comparison import COMPARISON_FILES, compare_evaluations, write_comparison
from sansa_probe.reporting.sanity import report

PROG = "sansa_probe.compare"
__all__ = ["build_parser", "main"]


def _replicates(text: str) -> int:
    value = positive_int(text)
    if value < 100:
        raise argparse.ArgumentTypeError(f"expected an integer >= 100, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """evaluate's options (every option means the same) plus the comparison group; ``--adapters`` is set here."""
    parser = command_parser(PROG, __doc__)
    add_benchmark_groups(parser, writes="frozen/ and adapted/ (evaluate's files), comparison.csv, comparison.png/.pdf and summary.json")
    group = parser.add_argument_group("comparison")
    group.add_argument("--from-runs", nargs=2, metavar=("FROZEN", "ADAPTED"), default=None,
                       help="compare two existing evaluate output folders instead of running the evaluation")
    group.add_argument("--bootstrap", type=_replicates, default=2000, help="bootstrap replicates (default 2000, at least 100)")
    group.add_argument("--confidence", type=number_in(0, 1, low_open=True, high_open=True), default=0.95, help="interval coverage (default 0.95)")
    return parser


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    if any(a == "--adapters" or a.startswith("--adapters=") for a in argv):
        raise ValueError("--adapters: compare runs both (off = frozen SAM2, on = SANSA); do not set it")
    out = Path(args.out)
    folder = open_output(args, prog=PROG)
    runs = [Path(p) for p in args.from_runs] if args.from_runs else [out / "frozen", out / "adapted"]
    if not args.from_runs and run_benchmark(args, argv, prog=PROG, folder=folder, outs=dict(zip((False, True), runs))) is None:
        return 0  # another torchrun rank: rank 0 compares
    comparison = compare_evaluations(*runs, n_boot=args.bootstrap, confidence=args.confidence, seed=args.seed)
    folder.claim(*COMPARISON_FILES)
    write_comparison(out, comparison, command=PROG, argv=argv, bootstrap={
        "replicates": args.bootstrap, "confidence": args.confidence, "seed": args.seed,
        "resampling": "episodes within each class, the same draw for both models"})  # fmt: skip
    folder.finish()
    report([*comparison.inherited, *comparison.warnings] if args.from_runs else comparison.warnings)  # the evaluations printed theirs
    say(comparison.line)
    warned = json.loads((out / "summary.json").read_text()).get("warnings") or []
    if warned:  # the verdict's caveats, where a log of stdout alone keeps them
        say(f"read it with the {len(warned)} warning(s) printed on stderr, listed in summary.json and written under the figure")
    say(f"wrote {out / 'comparison.csv'}, {out / 'comparison.png'} and {out / 'summary.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(build_parser(), argv, lambda args: _run(args, argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
