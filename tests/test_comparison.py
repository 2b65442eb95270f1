"""Paired bootstrap of frozen vs adapted mIoU on constructed episode tables with known answers."""

import numpy as np
import pandas as pd
import pytest

from sansa_probe.evaluation.comparison import comparison_summary, paired_bootstrap, plot_comparison


def _episodes(ious_by_class: dict[int, list[float]], union: int = 1000) -> pd.DataFrame:
    rows, episode = [], 0
    for class_id, ious in ious_by_class.items():
        for iou in ious:
            rows.append({"episode": episode, "class_id": class_id, "intersection": int(round(iou * union)), "union": union})
            episode += 1
    return pd.DataFrame(rows)


def test_constant_shift_gives_exact_difference_and_degenerate_interval():
    frozen = _episodes({0: [0.2, 0.2, 0.2], 1: [0.4, 0.4]})
    adapted = _episodes({0: [0.7, 0.7, 0.7], 1: [0.5, 0.5]})
    table = paired_bootstrap(frozen, adapted, n_boot=200)
    overall = table[table["scope"] == "overall"].iloc[0]
    assert overall["frozen"] == pytest.approx(30.0)
    assert overall["adapted"] == pytest.approx(60.0)
    assert overall["difference"] == pytest.approx(30.0)
    assert overall["ci_low"] == pytest.approx(30.0) and overall["ci_high"] == pytest.approx(30.0)
    assert overall["p_not_better"] == 0.0
    per_class = table[table["scope"] == "class"].set_index("class_id")["difference"]
    assert per_class[0] == pytest.approx(50.0) and per_class[1] == pytest.approx(10.0)


def test_pairing_narrows_the_interval_and_covers_the_true_difference():
    rng = np.random.default_rng(1)
    base = {c: list(rng.uniform(0.1, 0.8, size=40)) for c in range(4)}
    frozen = _episodes(base)
    adapted = _episodes({c: [min(v + 0.05 + rng.normal(0, 0.01), 1.0) for v in vals] for c, vals in base.items()})
    table = paired_bootstrap(frozen, adapted, n_boot=500, seed=3)
    overall = table.iloc[0]
    assert 3.0 < overall["ci_low"] < 5.0 < overall["ci_high"] < 7.0  # ~5 points, tight thanks to pairing
    assert "SANSA is better" in comparison_summary(table)


def test_identical_models_show_no_difference():
    frozen = _episodes({0: [0.1, 0.9, 0.5], 1: [0.3, 0.6]})
    table = paired_bootstrap(frozen, frozen.copy(), n_boot=100)
    assert (table["difference"] == 0).all() and (table["ci_low"] == 0).all() and (table["ci_high"] == 0).all()
    assert "no significant difference" in comparison_summary(table)


def test_unsampled_class_divides_the_mean_as_in_hsnet():
    frozen = _episodes({0: [0.2]})
    adapted = _episodes({0: [0.6]})
    table = paired_bootstrap(frozen, adapted, class_ids=[0, 1], n_boot=100)
    assert table.iloc[0]["difference"] == pytest.approx(20.0)  # (40 + 0) / 2
    assert table[table["class_id"] == 1].iloc[0]["n_episodes"] == 0


def test_mismatched_episodes_are_refused():
    frozen = _episodes({0: [0.2, 0.3]})
    adapted = _episodes({0: [0.2, 0.3, 0.4]})
    with pytest.raises(ValueError, match="different episodes"):
        paired_bootstrap(frozen, adapted)
    shuffled = frozen.assign(class_id=[1, 1])
    with pytest.raises(ValueError, match="class_id"):
        paired_bootstrap(frozen, shuffled)
    with pytest.raises(ValueError, match="missing column"):
        paired_bootstrap(frozen.drop(columns="union"), frozen)
    with pytest.raises(ValueError, match="n_boot"):
        paired_bootstrap(frozen, frozen, n_boot=5)


def test_plot_has_one_marker_per_row():
    import matplotlib

    matplotlib.use("Agg")
    table = paired_bootstrap(_episodes({0: [0.2, 0.3], 1: [0.5, 0.1]}), _episodes({0: [0.4, 0.3], 1: [0.6, 0.2]}), n_boot=100)
    ax = plot_comparison(table, title="t")
    assert len(ax.get_yticklabels()) == len(table)
    assert ax.get_yticklabels()[0].get_text().startswith("overall mIoU (n=4): ")  # with its episodes and both absolute mIoUs
