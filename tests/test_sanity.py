"""Each sanity warning fires on a constructed degenerate case and stays silent on a healthy one."""

import io

import numpy as np
import pytest

from sansa_probe.sanity import (
    check_chance_accuracy,
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
