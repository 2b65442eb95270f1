"""Each sanity warning fires on a constructed degenerate case and stays silent on a healthy one."""

import io

import numpy as np
import pandas as pd
import pytest

from sansa_probe.reporting.sanity import (
    check_against_paper,
    check_chance_accuracy,
    check_small_groups,
    check_unsampled,
    check_identical,
    check_mask_areas,
    check_single_class,
    check_skipped,
    report,
)


def test_chance_accuracy():
    assert check_chance_accuracy(0.052, n_classes=20, what="pca") != []
    assert "chance" in check_chance_accuracy(0.05, n_classes=20, what="pca")[0]
    assert check_chance_accuracy(0.45, n_classes=20, what="pca") == []
    assert check_chance_accuracy(float("nan"), n_classes=20, what="pca") != []


def test_chance_accuracy_catches_the_issues_pca_runs():
    # pca --fold 0 on the miniature: 8.3 % (SAM2) and 8.9 % (SANSA) full-dimension accuracy on 16 classes, chance 6.25 %
    for accuracy in (0.083, 0.089, 0.032):
        (message,) = check_chance_accuracy(accuracy, n_classes=16, what="PCA concentration (sam2)")
        assert "chance (6.25 %)" in message and "mean nothing" in message
    assert check_chance_accuracy(0.30, n_classes=16, what="pca") == []


def test_unsampled_classes_counted_as_zero_are_said_with_both_means():
    # table9 --small: 8 episodes over 16 classes; the printed 9.94 is the mean over all 16
    (message,) = check_unsampled(list(range(11)), 16, what="table9 J=1", miou=9.94, sampled_miou=31.8, episodes=8)
    assert "11 of 16 classes were never sampled by 8 episodes" in message
    assert "9.94 % over all 16 classes, 31.80 % over the 5 sampled ones" in message
    assert check_unsampled([], 16, what="x") == []


def test_small_groups_name_the_classes_behind_thin_intervals():
    (message,) = check_small_groups({"striped-star": 5, "dotted-ring": 2, "plain-moon": 9}, what="compare, per-class intervals")
    assert "1 of 3" in message and "dotted-ring: 2" in message and "striped-star" not in message
    assert check_small_groups({"a": 5, "b": 7}, what="x") == []


def test_against_paper_fires_for_the_miniature_random_weights_or_other_data():
    assert check_against_paper(what="table9") == []
    assert check_against_paper(what="table9", ours_dataset="coco20i", paper_dataset="coco20i") == []
    (message,) = check_against_paper(what="table9", miniature=True, ours_dataset="synthetic", paper_dataset="coco20i")
    assert "miniature" in message and "synthetic" in message and "not comparable" in message
    assert "random weights" in check_against_paper(what="t", random_weights=True)[0]


def test_single_class():
    collapsed = np.zeros((4, 32, 32), dtype=np.int64)
    collapsed[0, 0, 0] = 3
    messages = check_single_class(collapsed, what="linear probe", names={0: "background"})
    assert len(messages) == 1 and "background" in messages[0]
    healthy = np.random.default_rng(0).integers(0, 5, size=(4, 32, 32))
    assert check_single_class(healthy, what="linear probe") == []


def test_skipped():
    assert "5 of 8" in check_skipped(5, 8, what="part pairs", reason="no shared part")[0]
    assert check_skipped(0, 8, what="part pairs") == []
    assert check_skipped(0, 0, what="part pairs") != []


def test_mask_areas():
    image = [1000] * 10
    assert "empty" in check_mask_areas([0] * 8 + [300, 400], image)[0]
    assert "cover" in check_mask_areas([990] * 9 + [10], image)[0]
    assert check_mask_areas([100, 200, 300, 0, 50, 700, 400, 300, 10, 20], image) == []
    with pytest.raises(ValueError, match="one area per prediction"):
        check_mask_areas([1, 2], [3])


def test_identical_and_report():
    assert check_identical(5.65, 5.65, what="linear probe mIoU") != []
    assert check_identical(5.65, 7.1, what="linear probe mIoU") == []
    stream = io.StringIO()
    assert report(["a", "b"], stream=stream) == ["a", "b"]
    assert stream.getvalue() == "warning: a\nwarning: b\n"


def test_single_class_from_counts():
    from sansa_probe.reporting.sanity import check_class_counts

    assert "background" in check_class_counts({0: 9990, 1: 10}, what="probe", names={0: "background"})[0]
    assert check_class_counts({0: 600, 1: 400}, what="probe") == []
    assert check_class_counts({0: 0}, what="probe") == ["probe: no prediction at all"]


def _summary(rows):
    return pd.DataFrame([{"model": m, "layer": "l", "metric": k, "value": float(v)} for m, k, v in rows])


def test_pca_probe_warns_when_full_accuracy_is_near_chance():
    from sansa_probe.pipelines import pca

    chance = _summary([("sam2", "full_accuracy", 0.26), ("sam2", "n_classes", 4), ("sansa", "full_accuracy", 0.8), ("sansa", "n_classes", 4)])
    messages = pca.check({"summary": chance})
    assert len(messages) == 1 and messages[0].startswith("PCA concentration (sam2)") and "chance" in messages[0]
    healthy = _summary([("sam2", "full_accuracy", 0.7), ("sam2", "n_classes", 4)])
    assert pca.check({"summary": healthy}) == []


def test_linear_probe_warns_when_it_predicts_one_class():
    from sansa_probe.pipelines import linear_probe

    def table(shares):
        return pd.DataFrame([{"model": "sam2", "layer": "l", "class_id": c, "class_name": n, "metric": "predicted_share", "value": v}
                             for c, n, v in shares] + [{"model": "sam2", "layer": "l", "class_id": None, "class_name": None, "metric": "miou", "value": 0.0565}])

    collapsed = linear_probe.check({"linear_probe": table([(0, "background", 1.0), (1, "dog", 0.0), (2, "cat", 0.0)])})
    assert len(collapsed) == 1 and "linear probe (sam2)" in collapsed[0] and "(background) for 100.0%" in collapsed[0]
    assert linear_probe.check({"linear_probe": table([(0, "background", 0.7), (1, "dog", 0.2), (2, "cat", 0.1)])}) == []


def test_part_matching_says_how_many_pairs_were_skipped_and_why():
    from sansa_probe.pipelines import part_matching

    summary = _summary([("sam2", "n_pairs", 3), ("sam2", "n_skipped", 5)])
    skipped = pd.DataFrame([{"model": "sam2", "layer": "l", "pair": p, "class_id": "1", "class_name": "dog", "image_a": "a", "image_b": "b",
                             "cells_a": 2 + p, "cells_b": 9, "grid": "16x16", "n_clusters": 5, "reason": "..."} for p in range(5)],
                           columns=part_matching.SKIPPED_COLUMNS)
    messages = part_matching.check({"summary": summary, "skipped": skipped})
    assert len(messages) == 1 and "5 of 8 were skipped" in messages[0]
    assert "5 clusters on the 16x16 grid" in messages[0] and "--feature-size" in messages[0]
    healthy = _summary([("sam2", "n_pairs", 8), ("sam2", "n_skipped", 0)])
    assert part_matching.check({"summary": healthy, "skipped": skipped.iloc[:0]}) == []
