"""``python -m sansa_probe.compare``: frozen SAM2 against SANSA on the same episodes, with a paired
bootstrap confidence interval of the mIoU difference (overall and per class).

It takes every option of ``python -m sansa_probe.evaluate`` and runs that evaluation twice, adapters
off (frozen SAM2) and on (SANSA), on the same episodes, seeds and prompts, into ``<out>/frozen`` and
``<out>/adapted``; then it writes ``comparison.csv`` (one row overall, one per class: both IoUs,
the difference, its interval, a one-sided bootstrap p-value), ``comparison.png``/``.pdf`` (a forest
plot) and ``summary.json``, and prints the result in one line.

    python -m sansa_probe.compare --dataset synthetic --fold 0 --episodes 100
    python -m sansa_probe.compare --from-runs runs/eval_frozen runs/eval_adapted --out cmp/

``--from-runs FROZEN ADAPTED`` compares two existing ``evaluate`` folders instead (their
``episodes.csv`` must hold the same episodes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from sansa_probe import evaluate
from sansa_probe.commands.grammar import run_command
from sansa_probe.evaluation.comparison import comparison_summary, paired_bootstrap, plot_comparison
from sansa_probe.reporting.identity import identity_footnote
from sansa_probe.reporting.sanity import check_identical, report
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text

PROG = "sansa_probe.compare"
__all__ = ["build_parser", "main"]


def _add_compare_group(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("comparison")
    group.add_argument("--from-runs", nargs=2, metavar=("FROZEN", "ADAPTED"), default=None,
                       help="compare two existing evaluate output folders instead of running the evaluation")
    group.add_argument("--bootstrap", type=int, default=2000, help="bootstrap replicates (default 2000, at least 100)")
    group.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")


def build_parser() -> argparse.ArgumentParser:
    """evaluate's parser (every option means the same) plus the comparison group; ``--adapters`` is set here."""
    parser = evaluate.build_parser()
    parser.prog = f"python -m {PROG}"
    parser.description = __doc__
    _add_compare_group(parser)
    return parser


def _forwarded(argv: list[str]) -> list[str]:
    """``argv`` without the comparison options: what evaluate receives."""
    only = argparse.ArgumentParser(add_help=False)
    _add_compare_group(only)
    _, rest = only.parse_known_args(argv)
    return rest


def _episodes(folder: Path) -> tuple[pd.DataFrame, list, dict[str, Any]]:
    """An evaluate folder's episodes, the classes its mIoU averages over, and its summary."""
    table_path, results_path, summary_path = folder / "episodes.csv", folder / "results.csv", folder / "summary.json"
    for path in (table_path, results_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; expected an evaluate output folder")
    results = pd.read_csv(results_path)
    classes = results.loc[results["metric"] == "iou", "class_id"].tolist()
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return pd.read_csv(table_path), classes, summary


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    if args.bootstrap < 100:
        raise ValueError(f"--bootstrap {args.bootstrap}: expected an integer >= 100")
    if not 0.0 < args.confidence < 1.0:
        raise ValueError(f"--confidence {args.confidence}: expected a number in (0, 1)")
    if any(a == "--adapters" or a.startswith("--adapters=") for a in argv):
        raise ValueError("--adapters: compare runs both (off = frozen SAM2, on = SANSA); do not set it")
    out = Path(args.out)
    if args.from_runs:
        runs = [Path(p) for p in args.from_runs]
    else:
        runs = [out / "frozen", out / "adapted"]
        forwarded = _forwarded(argv)
        for state, folder in zip(("off", "on"), runs):
            code = evaluate.main([*forwarded, "--adapters", state, "--out", str(folder)])
            if code != 0:
                return code
    (frozen, classes, frozen_summary), (adapted, adapted_classes, adapted_summary) = _episodes(runs[0]), _episodes(runs[1])
    if sorted(map(str, classes)) != sorted(map(str, adapted_classes)):
        raise ValueError(f"--from-runs: {runs[0]} and {runs[1]} score different classes; expected the same benchmark and fold")
    table = paired_bootstrap(frozen, adapted, class_ids=classes or None, n_boot=args.bootstrap, confidence=args.confidence, seed=args.seed)
    line = comparison_summary(table, confidence=args.confidence)
    identities = {name: summary["identity"] for name, summary in (("frozen", frozen_summary), ("adapted", adapted_summary))
                  if summary.get("identity")}
    footnote = identity_footnote(identities)
    overall = table.iloc[0]
    inherited = list(dict.fromkeys(w for summary in (frozen_summary, adapted_summary) for w in summary.get("warnings", [])))
    own = check_identical(float(overall["frozen"]), float(overall["adapted"]), what="compare, overall mIoU")
    messages = [*inherited, *own]
    table = table.assign(identity=footnote) if footnote else table
    atomic_write_text(out / "comparison.csv", table.to_csv(index=False))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plot_comparison(table, title="frozen SAM2 vs SANSA, same episodes")
    ax.figure.text(0.01, 0.005, line + (f"\nmodel: {footnote}" if footnote else ""), fontsize=6, wrap=True)
    ax.figure.tight_layout(rect=(0, 0.08 if footnote else 0.04, 1, 1))
    for suffix in ("png", "pdf"):
        ax.figure.savefig(out / f"comparison.{suffix}", dpi=150)
    plt.close(ax.figure)
    summary = {
        "command": PROG,
        "argv": list(argv),
        "runs": {"frozen": str(runs[0]), "adapted": str(runs[1])},
        "result": line,
        "overall": table.iloc[0].to_dict(),
        "bootstrap": {"replicates": args.bootstrap, "confidence": args.confidence, "seed": args.seed,
                      "resampling": "episodes within each class, the same draw for both models"},
        "models": {"frozen": frozen_summary.get("identity", frozen_summary.get("model")),
                   "adapted": adapted_summary.get("identity", adapted_summary.get("model"))},
        "identity": footnote,
        "warnings": messages,
        "files": {"table": "comparison.csv", "figure": "comparison.png"},
    }  # fmt: skip
    atomic_write_json(out / "summary.json", summary)
    report(messages if args.from_runs else own)  # the evaluate runs printed theirs already
    print(line, file=sys.stderr)
    print(f"wrote {out / 'comparison.csv'}, {out / 'comparison.png'} and {out / 'summary.json'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(build_parser(), argv, lambda args: _run(args, argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
