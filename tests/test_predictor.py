"""SansaPredictor: inputs of any kind and size, cached memory, outputs, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import blob_image, randomized_adapters
from PIL import Image

from sansa_probe.inference.predictor import Prediction, SansaPredictor
from sansa_probe.prompts import Box, Mask, Points, Scribble


@pytest.fixture
def predictor(tiny_model):
    return SansaPredictor(tiny_model, batch_size=2)


def test_predict_any_input_kind_and_odd_sizes(predictor, rng, tmp_path):
    ref, ref_mask = blob_image(rng, 203, 317)
    predictor.set_references([ref], [ref_mask])  # a bare bool array is a mask prompt
    target, _ = blob_image(rng, 97, 151)
    path = tmp_path / "target.png"
    Image.fromarray(target).save(path)
    for given in (target, Image.fromarray(target), path, str(path)):
        prediction = predictor.predict(given)
        assert isinstance(prediction, Prediction)
        assert prediction.mask.shape == (97, 151) and prediction.mask.dtype == bool
        assert prediction.logits.shape == (97, 151) and prediction.logits.dtype == np.float32
        assert isinstance(prediction.score, float)
        np.testing.assert_array_equal(prediction.mask, prediction.logits > 0)
    first = predictor.predict(target)
    np.testing.assert_array_equal(first.logits, predictor.predict(path).logits)


def test_zero_one_array_counts_as_mask(predictor, rng):
    ref, ref_mask = blob_image(rng, 128, 128)
    predictor.set_references([ref], [ref_mask.astype(np.uint8)])
    a = predictor.predict(ref).logits
    predictor.set_references([ref], [Mask(ref_mask)])
    np.testing.assert_array_equal(a, predictor.predict(ref).logits)


def test_predict_batch_equals_predict_and_reuses_memory(predictor, tiny_model, rng, monkeypatch):
    refs = [blob_image(rng, 120, 160) for _ in range(2)]
    predictor.set_references([r for r, _ in refs], [m for _, m in refs])
    targets = [blob_image(rng, 100 + 7 * i, 90 + 5 * i)[0] for i in range(3)]
    calls = []
    original = tiny_model.reference_memory
    monkeypatch.setattr(tiny_model, "reference_memory", lambda *a, **k: calls.append(1) or original(*a, **k))
    batch = predictor.predict_batch(targets)
    single = [predictor.predict(t) for t in targets]
    assert calls == []  # the reference memory was encoded once, at set_references
    assert [p.mask.shape for p in batch] == [t.shape[:2] for t in targets]
    for a, b in zip(batch, single):
        np.testing.assert_allclose(a.logits, b.logits, atol=1e-4)


def test_memory_is_cached_per_adapter_state(tiny_model, rng):
    ref, mask = blob_image(rng, 128, 128)
    target, _ = blob_image(rng, 128, 128)
    with randomized_adapters(tiny_model, seed=5):
        predictor = SansaPredictor(tiny_model)
        predictor.set_references([ref], [mask])
        adapted = predictor.predict(target).logits
        with tiny_model.adapters(False):
            frozen = predictor.predict(target).logits
            fresh = SansaPredictor(tiny_model)
            fresh.set_references([ref], [mask])
            np.testing.assert_array_equal(frozen, fresh.predict(target).logits)
        np.testing.assert_array_equal(adapted, predictor.predict(target).logits)
    assert not np.array_equal(adapted, frozen)


def test_every_prompt_kind_and_negatives(predictor, rng):
    ref, mask = blob_image(rng, 160, 160)
    rows, cols = np.nonzero(mask)
    stroke = np.zeros_like(mask)
    stroke[rows.min() + 3 : rows.max() - 3, int(np.median(cols))] = True
    prompts = [
        Mask(mask),
        Points(np.array([[cols[0], rows[0]]], dtype=float)),
        Box((float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))),
        Scribble(stroke & mask),
    ]
    predictor.set_references([ref] * 4, prompts, negative_images=[blob_image(rng, 90, 90)[0]])
    assert predictor.num_references == 5
    target, _ = blob_image(rng, 140, 150)
    plain = predictor.predict(target)
    corrected = predictor.predict(target, negative_points=[[10.0, 12.0], [140.0, 100.0]])
    assert corrected.mask.shape == (140, 150)
    assert not np.array_equal(plain.logits, corrected.logits)


def test_bad_inputs_name_the_argument(predictor, rng, tmp_path):
    ref, mask = blob_image(rng, 100, 120)
    with pytest.raises(ValueError, match=r"prompts\[0\].*100x120"):
        predictor.set_references([ref], [np.zeros((50, 60), bool)])
    with pytest.raises(ValueError, match=r"prompts\[0\].*empty"):
        predictor.set_references([ref], [np.zeros((100, 120), bool)])
    with pytest.raises(ValueError, match=r"prompts\[0\].*binary"):
        predictor.set_references([ref], [np.full((100, 120), 7, np.uint8)])
    with pytest.raises(ValueError, match=r"prompts\[0\].*outside the image"):
        predictor.set_references([ref], [Points(np.array([[130.0, 10.0]]))])
    with pytest.raises(ValueError, match=r"box"):
        predictor.set_references([ref], [Box((10.0, 10.0, 200.0, 50.0))])
    with pytest.raises(ValueError, match="zero references"):
        predictor.set_references([], [])
    with pytest.raises(ValueError, match="2 prompts for 1 reference"):
        predictor.set_references([ref], [mask, mask])
    with pytest.raises(ValueError, match=r"images\[0\].*HxWx3"):
        predictor.set_references([ref[..., 0]], [mask])
    with pytest.raises(ValueError, match=r"images\[0\].*uint8"):
        predictor.set_references([ref.astype(np.float32)], [mask])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=r"broken\.jpg cannot be decoded"):
        predictor.set_references([broken], [mask])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        predictor.set_references([tmp_path / "missing.png"], [mask])
    fresh = SansaPredictor(predictor.model)
    with pytest.raises(RuntimeError, match="set_references"):
        fresh.predict(ref)
    predictor.set_references([ref], [mask])
    with pytest.raises(ValueError, match="negative_points.*outside"):
        predictor.predict(ref, negative_points=[[500.0, 5.0]])


def test_grayscale_file_is_read_as_rgb(predictor, rng, tmp_path):
    ref, mask = blob_image(rng, 80, 80)
    gray = tmp_path / "gray.png"
    Image.fromarray(ref[..., 0]).save(gray)
    predictor.set_references([gray], [mask])
    assert predictor.predict(gray).mask.shape == (80, 80)


def test_model_images_shape_error(tiny_model):
    with pytest.raises(ValueError, match=r"images: expected a \(B, 3, 256, 256\)"):
        tiny_model.encode_images(torch.zeros(1, 3, 128, 128))
