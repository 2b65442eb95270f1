"""Few-shot evaluation: the episode loop (:mod:`.episodes`), HSNet's metric (:mod:`.metrics`), result
tables (:mod:`.tables`), a benchmark's folds for one or more adapter states (:mod:`.benchmark`), the
paired comparison of frozen SAM2 and SANSA (:mod:`.comparison`), negative prompts (:mod:`.negatives`)."""

from sansa_probe.evaluation.benchmark import Benchmark, evaluate_folds, write_evaluation
from sansa_probe.evaluation.comparison import compare_evaluations, comparison_summary, paired_bootstrap, plot_comparison
from sansa_probe.evaluation.episodes import EPISODE_COLUMNS, evaluate_episodes, merge_results, prepare_episode
from sansa_probe.evaluation.metrics import FewShotSegmentationMetric
from sansa_probe.evaluation.tables import FoldResult, episodes_table, results_table

__all__ = [
    "EPISODE_COLUMNS",
    "Benchmark",
    "FewShotSegmentationMetric",
    "FoldResult",
    "compare_evaluations",
    "comparison_summary",
    "episodes_table",
    "evaluate_episodes",
    "evaluate_folds",
    "merge_results",
    "paired_bootstrap",
    "plot_comparison",
    "prepare_episode",
    "results_table",
    "write_evaluation",
]
