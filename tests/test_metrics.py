"""FewShotSegmentationMetric against hand-computed episodes (HSNet's evaluation)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from sansa_probe.evaluation.metrics import FewShotSegmentationMetric
from sansa_probe.prompts import Mask


def m(rows):
    return np.array(rows, dtype=bool)


# Three hand-made 2x3 episodes of classes 1, 1, 2.
#   ep0 (class 1): fg I = 1, U = 3;  bg I = 3, U = 5
#   ep1 (class 1): fg I = 3, U = 5;  bg I = 1, U = 3
#   ep2 (class 2): fg I = 0, U = 2;  bg I = 4, U = 6
EPISODES = [
    (1, m([[1, 1, 0], [0, 0, 0]]), m([[1, 0, 0], [1, 0, 0]])),
    (1, m([[1, 1, 1], [1, 0, 0]]), m([[1, 1, 0], [1, 1, 0]])),
    (2, m([[0, 0, 0], [0, 0, 0]]), m([[0, 0, 1], [0, 0, 1]])),
]


def filled(class_ids=(1, 2)):
    metric = FewShotSegmentationMetric(list(class_ids))
    for class_id, pred, target in EPISODES:
        metric.update(class_id, pred, target)
    return metric


def test_sums_intersections_and_unions_over_episodes():
    result = filled().compute()
    # class 1: (1 + 3) / (3 + 5) = 50 %, not the per-episode mean (1/3 + 3/5) / 2 = 46.7 %
    assert result["per_class"] == {1: pytest.approx(50.0), 2: pytest.approx(0.0)}
    assert result["miou"] == pytest.approx(25.0)
    # FB-IoU pools all episodes: fg 4 / 10, bg (3 + 1 + 4) / (5 + 3 + 6) = 8 / 14
    assert result["fb_iou"] == pytest.approx(100 * (4 / 10 + 8 / 14) / 2)
    assert result["n_episodes"] == 3
    assert result["unsampled"] == []


def test_episode_rows():
    rows = filled().episode_rows()
    assert list(rows.columns) == ["episode", "class_id", "intersection", "union", "iou", "bg_intersection", "bg_union"]
    assert rows["episode"].tolist() == [0, 1, 2]
    assert rows["class_id"].tolist() == [1, 1, 2]
    assert rows["intersection"].tolist() == [1, 3, 0]
    assert rows["union"].tolist() == [3, 5, 2]
    assert rows["bg_intersection"].tolist() == [3, 1, 4]
    assert rows["bg_union"].tolist() == [5, 3, 6]
    assert rows["iou"].tolist() == pytest.approx([100 / 3, 60.0, 0.0])


def test_ignore_pixels_are_excluded_from_foreground_and_background():
    metric = FewShotSegmentationMetric([7])
    pred = m([[1, 1], [0, 0]])
    target = m([[1, 0], [0, 0]])
    ignore = m([[0, 1], [0, 0]])  # the only false positive is ignored
    metric.update(7, pred, target, ignore=ignore)
    result = metric.compute()
    assert result["per_class"][7] == pytest.approx(100.0)
    assert result["fb_iou"] == pytest.approx(100.0)
    row = metric.episode_rows().iloc[0]
    assert (row["intersection"], row["union"], row["bg_intersection"], row["bg_union"]) == (1, 1, 2, 2)
    metric_no_ignore = FewShotSegmentationMetric([7])
    metric_no_ignore.update(7, pred, target)
    assert metric_no_ignore.compute()["per_class"][7] == pytest.approx(50.0)


def test_unsampled_class_warns_and_counts_as_zero():
    metric = filled(class_ids=(1, 2, 3))
    with pytest.warns(UserWarning, match="never sampled"):
        result = metric.compute()
    assert result["unsampled"] == [3]
    assert math.isnan(result["per_class"][3])
    assert result["miou"] == pytest.approx((50.0 + 0.0 + 0.0) / 3)  # HSNet: 0 / max(0, 1)
    assert result["fb_iou"] == pytest.approx(100 * (4 / 10 + 8 / 14) / 2)  # unaffected


def test_torch_and_numeric_inputs():
    metric = FewShotSegmentationMetric([1, 2])
    for class_id, pred, target in EPISODES:
        metric.update(torch.tensor(class_id), torch.from_numpy(pred), torch.from_numpy(target.astype(np.uint8)))
    assert metric.compute()["miou"] == pytest.approx(25.0)


def test_masks_follow_the_rule_of_prompts():
    """One rule for every mask: bool, 0/1 or 0/255 (a PNG mask) count the same; other values are refused alike."""
    as_png = FewShotSegmentationMetric([1, 2])
    for class_id, pred, target in EPISODES:
        as_png.update(class_id, pred.astype(np.uint8) * 255, target.astype(np.uint8) * 255, ignore=np.zeros_like(pred, np.uint8))
    assert as_png.compute()["miou"] == pytest.approx(25.0)
    three = np.array([[0, 3], [3, 0]], np.uint8)
    with pytest.raises(ValueError, match=r"^target: expected a binary mask") as metric_error:
        FewShotSegmentationMetric([1]).update(1, three > 0, three)
    with pytest.raises(ValueError, match=r"^Mask\.mask: expected a binary mask") as prompt_error:
        Mask(three)
    assert str(metric_error.value).replace("target", "Mask.mask", 1) == str(prompt_error.value)


def test_merge_of_shards_equals_single_process():
    rng = np.random.default_rng(0)
    class_ids = [3, 5, 9, 11]
    episodes = []
    for i in range(23):
        target = rng.random((9, 7)) < 0.4
        pred = rng.random((9, 7)) < 0.5
        ignore = rng.random((9, 7)) < 0.1 if i % 3 == 0 else None
        episodes.append((i, class_ids[rng.integers(len(class_ids))], pred, target, ignore))
    single = FewShotSegmentationMetric(class_ids)
    for i, c, p, t, ig in episodes:
        single.update(c, p, t, ig, episode=i)
    shards = [FewShotSegmentationMetric(class_ids) for _ in range(3)]
    for i, c, p, t, ig in episodes:
        shards[(7 * i) % 3].update(c, p, t, ig, episode=i)  # interleaved, like a distributed sampler
    merged = FewShotSegmentationMetric(class_ids)
    for shard in reversed(shards):  # order does not matter
        merged.merge(pickle.loads(pickle.dumps(shard.state_dict())))
    assert merged.compute() == single.compute()
    assert merged.episode_rows().equals(single.episode_rows())
    restored = FewShotSegmentationMetric.from_state_dict(single.state_dict())
    assert restored.compute() == single.compute()


def test_errors_name_the_argument():
    metric = FewShotSegmentationMetric([1, 2])
    pred, target = EPISODES[0][1], EPISODES[0][2]
    with pytest.raises(ValueError, match="^class_id"):
        metric.update(4, pred, target)
    with pytest.raises(ValueError, match="^pred: shape"):
        metric.update(1, pred[:, :2], target)
    with pytest.raises(ValueError, match="^ignore: shape"):
        metric.update(1, pred, target, ignore=pred[:1])
    with pytest.raises(ValueError, match="^target: expected a binary"):
        metric.update(1, pred, target.astype(np.int64) * 2)
    with pytest.raises(ValueError, match="^pred: expected a 2-D"):
        metric.update(1, pred[None], target)
    with pytest.raises(ValueError, match="^other: class_ids"):
        metric.merge(FewShotSegmentationMetric([1, 3]))
    with pytest.raises(ValueError, match="^class_ids"):
        FewShotSegmentationMetric([])
    assert metric.n_episodes == 0  # failed updates leave no trace
