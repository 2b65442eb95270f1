"""The one few-shot inference path: every command predicts the same logits; memory cached once;
the protocol decides preprocessing and the resolution of scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import randomized_adapters

from sansa_probe.evaluation import episodes as episode_loop
from sansa_probe.annotation import ClassReferences, class_memory, segment_batch
from sansa_probe.data import EpisodeSampler
from sansa_probe.features.hooks import HookExtractor
from sansa_probe.inference import FewShotInference, HsnetProtocol, check_threshold, get_protocol, prepare_references
from sansa_probe.inference.predictor import SansaPredictor
from sansa_probe.prompts import Mask

DATA = dict(image_size=96, images_per_class=4)


@pytest.fixture(scope="module")
def episode():
    sampler = EpisodeSampler("synthetic", fold=0, shots=2, n_episodes=1, seed=0, **DATA)
    return sampler, episode_loop.prepare_episode(sampler, 0, prompt="mask", seed=0, image_size=256, semantic_negatives=1)


def test_evaluate_annotate_predictor_and_hooks_give_identical_logits(tiny_model, episode):
    sampler, prepared = episode
    data = prepared.data
    prompts = episode_loop.episode_prompts(data, "mask", seed=0)
    negatives = [sampler.source.load_image(i) for i in prepared.negative_ids]
    size = data.target_image.shape[:2]
    with randomized_adapters(tiny_model):
        path = FewShotInference(tiny_model, protocol=get_protocol("release", image_size=256, dataset="synthetic"))  # as prepared
        evaluated = episode_loop._segment_episode(path, prepared, negative_clicks=0)["logits"]

        predictor = SansaPredictor(tiny_model, protocol=path.protocol)
        predictor.set_references(data.reference_images, prompts, negative_images=negatives)
        predicted = torch.from_numpy(predictor.predict(data.target_image).logits)

        references = ClassReferences("c", 1, tuple(data.reference_images), tuple(prompts), tuple(negatives))
        low_res, _ = segment_batch(path, path.protocol.images([data.target_image]), [class_memory(path, references)])
        annotated = path.logits(low_res, [size])[0]

        # the hooks' few-shot forward records the mask decoder's M candidate logits, of which sam2
        # keeps the one of highest predicted IoU (object scores are off in the tiny model)
        empty = [HsnetProtocol(image_size=256).prompt(Mask(np.zeros(n.shape[:2], bool)), size=n.shape[:2]) for n in negatives]
        candidates = HookExtractor(tiny_model, protocol=path.protocol).extract(
            [data.target_image], "sam_mask_decoder", references=[*data.reference_images, *negatives], reference_prompts=[*prompts, *empty]
        )["sam_mask_decoder"]
        hooked = [path.logits(candidates[:, m : m + 1], [size])[0] for m in range(candidates.shape[1])]
    assert evaluated.shape == size and evaluated.dtype == torch.float32
    assert evaluated.abs().max() > 0
    for other in (predicted, annotated):
        assert torch.equal(other, evaluated)
    assert sum(torch.equal(h, evaluated) for h in hooked) == 1
    # and the adapters matter on this episode (the comparison is not between four copies of frozen SAM2)
    assert not torch.equal(episode_loop._segment_episode(path, prepared, negative_clicks=0)["logits"], evaluated)


def test_reference_memory_is_computed_once_per_reference_set_and_adapter_state(tiny_model, episode, monkeypatch):
    _, prepared = episode
    data = prepared.data
    calls = []
    original = tiny_model.reference_memory
    monkeypatch.setattr(tiny_model, "reference_memory", lambda *a, **k: calls.append(1) or original(*a, **k))
    path = FewShotInference(tiny_model)
    references = prepare_references(path.protocol, data.reference_images, [Mask(m) for m in data.reference_masks])
    frames = path.protocol.images([data.target_image] * 3)
    first = path.predict(references, frames[:1], [data.target_image.shape[:2]])
    again = path.predict(references, frames, [data.target_image.shape[:2]] * 3)
    assert len(calls) == 1
    for p in again:  # a batch of 3 is not bitwise a batch of 1 on CPU
        torch.testing.assert_close(p.logits, first[0].logits, atol=1e-4, rtol=0)
    assert torch.equal(first[0].mask, first[0].logits > 0)
    with tiny_model.adapters(False):
        path.memory(references)
        path.memory(references)
    assert len(calls) == 2
    references.clear_memory()
    path.memory(references)
    assert len(calls) == 3


class _SquareProtocol(HsnetProtocol):
    """A protocol scoring at a fixed 48 x 48 square (ground truth resized nearest), as a release-style one would."""

    name = "square48"

    def output_size(self, size):
        return (48, 48)

    def ground_truth(self, mask):
        if mask is None:
            return None
        rows = (np.arange(48) * mask.shape[0] / 48).astype(int)
        cols = (np.arange(48) * mask.shape[1] / 48).astype(int)
        return mask[rows][:, cols]


def test_the_protocol_decides_where_evaluate_scores(tiny_model):
    sampler = EpisodeSampler("synthetic", fold=0, shots=1, n_episodes=2, seed=0, **DATA)
    _, rows = episode_loop.evaluate_episodes(tiny_model, sampler, protocol=_SquareProtocol(image_size=256), negative_clicks=1)
    _, plain = episode_loop.evaluate_episodes(tiny_model, sampler, protocol="hsnet")
    for i in range(2):
        square = _SquareProtocol(image_size=256).ground_truth(sampler.load(i).target_mask)
        assert rows.loc[i, "target_area"] == square.sum() and plain.loc[i, "target_area"] == sampler.load(i).target_mask.sum()
    assert (rows["intersection"] + rows["union"] <= 2 * 48 * 48).all()


def test_protocol_and_threshold_errors(tiny_model):
    with pytest.raises(ValueError, match="protocol 'release2': expected one of release, hsnet"):
        get_protocol("release2", image_size=256)
    assert isinstance(get_protocol("hsnet", image_size=256), HsnetProtocol)
    with pytest.raises(ValueError, match="protocol: built for image size 512, the model takes 256"):
        FewShotInference(tiny_model, protocol=HsnetProtocol(image_size=512))
    for bad in (float("nan"), float("inf"), "x", None, True):
        with pytest.raises(ValueError, match="threshold: expected a finite number"):
            check_threshold(bad)
    assert check_threshold(-1) == -1.0
    with pytest.raises(ValueError, match="negative_points: point 0 at"):
        FewShotInference(tiny_model).negative_clicks([[300, 5]], (100, 120))
