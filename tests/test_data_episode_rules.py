"""The literature's episode rules of the part benchmarks: PACO-Part's class draw, eligibility and
mIoU classes (Matcher / SANSA release), Pascal-Part's episode count (Matcher)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from sansa_probe.data import EpisodeSampler, fold_classes, get_dataset
from sansa_probe.evaluation.metrics import FewShotSegmentationMetric

try:
    from tests.fixtures import datasets_extra as fx
except ImportError:  # pragma: no cover - tests/ not importable as a package
    from fixtures import datasets_extra as fx

# fold 0's slot classes of the fixture and their numbers of val photos
PHOTOS = {200: 2, 204: 3, 208: 4, 212: 6}

pytestmark = pytest.mark.filterwarnings("ignore:.*Matcher's PACO-Part has 448:UserWarning")


@pytest.fixture(scope="module")
def paco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paco")
    fx.write_paco_part_photos(root, {**PHOTOS, 201: 5})  # 201 is a fold-1 slot
    return root


@pytest.mark.parametrize(("shots", "eligible"), [(1, [200, 204, 208, 212]), (2, [204, 208, 212]), (3, [208, 212]), (5, [212])])
def test_paco_eligible_classes_follow_the_shot_count(paco_root, shots, eligible):
    """Matcher keeps a test class when the val pickle shows it in more than ``shot`` photos."""
    sampler = EpisodeSampler("paco_part", 0, "test", shots, root=paco_root)
    assert sampler.source.class_ids() == eligible == sampler.scored_classes()
    assert fold_classes("paco_part", 0, root=paco_root, shots=shots) == eligible
    assert len(sampler) == 2500 and sampler.policy == "random_class"


def test_paco_class_of_each_episode_is_uniformly_random(paco_root):
    sampler = EpisodeSampler("paco_part", 0, "test", 1, root=paco_root)
    counts = Counter(sampler[i].class_id for i in range(len(sampler)))
    assert sorted(counts) == [200, 204, 208, 212]
    assert all(560 <= n <= 690 for n in counts.values()), counts  # 625 each; +-65 is > 4 standard deviations
    firsts = [sampler[i].class_id for i in range(8)]
    assert firsts != sorted(firsts) and len(set(firsts)) > 1  # not cycled
    for i in range(40):
        episode = sampler[i]
        assert episode.target_id in sampler.source.image_ids(episode.class_id)
        assert sampler.photo(episode.target_id) not in {sampler.photo(r) for r in episode.reference_ids}


def test_paco_perfect_predictions_score_100_at_5_shots(paco_root):
    """Classes the sampler cannot draw are not averaged in (they used to count as IoU 0)."""
    loose = get_dataset("paco_part", fold=0, root=paco_root, min_samples=2)  # a user override keeps small classes
    sampler = EpisodeSampler(loose, shots=5, n_episodes=6, seed=3)
    assert loose.class_ids() == [200, 204, 208, 212] and sampler.scored_classes() == [212]
    metric = FewShotSegmentationMetric(sampler.scored_classes())
    for i in range(len(sampler)):
        data = sampler.load(i)
        assert data.target_mask.any() and len(data.reference_masks) == 5
        metric.update(data.class_id, data.target_mask, data.target_mask, data.target_ignore, episode=i)
    assert metric.compute()["miou"] == pytest.approx(100.0)
    one_shot = EpisodeSampler("paco_part", 0, "test", 1, n_episodes=40, root=paco_root)
    metric = FewShotSegmentationMetric(one_shot.scored_classes())
    for i in range(len(one_shot)):
        data = one_shot.load(i)
        metric.update(data.class_id, data.target_mask, data.target_mask, episode=i)
    assert metric.compute()["miou"] == pytest.approx(100.0) and metric.compute()["unsampled"] == []


def test_pascal_part_runs_min_of_val_pairs_and_2500_episodes(tmp_path):
    fx.write_pascal_part(tmp_path)
    # animals: bird FACE 3 + TAIL 1 + WINGS 1 (not a class, counted as Matcher does) + cat FACE 1
    assert len(EpisodeSampler("pascal_part", 0, "test", 1, root=tmp_path)) == 6
    assert len(EpisodeSampler("pascal_part", 3, "test", 1, root=tmp_path)) == 2  # aeroplane BODY + TAIL (dropped class)
    assert len(EpisodeSampler("pascal_part", 0, "test", 1, 50, root=tmp_path)) == 50  # an explicit count wins
    index_path = tmp_path / "Pascal-Part" / "VOCdevkit" / "VOC2010" / "all_obj_part_to_image.json"
    index = json.loads(index_path.read_text())
    index["animals"]["object"]["bird"]["part"]["WINGS"]["val"] = ["2008_000002"] * 3000
    index_path.write_text(json.dumps(index))
    sampler = EpisodeSampler("pascal_part", 0, "test", 1, root=tmp_path)
    assert len(sampler) == 2500 and sampler.policy == "cycle_classes"
    assert sampler.scored_classes() == ["bird+FACE"]  # the only class with two val photos
    assert {sampler[i].class_id for i in range(0, 2500, 97)} == {"bird+FACE"}
