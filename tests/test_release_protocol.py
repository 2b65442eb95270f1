"""The public release's preprocessing and scoring (``ReleaseProtocol``) against HSNet's, and the
commands that choose between them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sansa_probe.io.images import to_model_input
from sansa_probe.data import get_spec, list_datasets
from sansa_probe.inference import HsnetProtocol, ReleaseProtocol, get_protocol
from sansa_probe.inference.predictor import SansaPredictor
from sansa_probe.prompts import Box, Mask

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def test_release_square_per_dataset():
    squares = {n: get_protocol("release", image_size=256, dataset=n).square
               for n in ("coco20i", "lvis92i", "paco_part", "ade20k", "folder", "pascal5i", "fss1000", "pascal_part")}  # fmt: skip
    assert squares == {"coco20i": 640, "lvis92i": 640, "paco_part": 640, "ade20k": 640, "folder": 640, "pascal5i": 640,
                       "fss1000": 518, "pascal_part": 518}  # fmt: skip
    assert get_protocol("release", image_size=256, dataset="synthetic").square is None and get_spec("synthetic").release_square is None
    assert all(get_protocol("release", image_size=256, dataset=n).square == get_spec(n).release_square for n in list_datasets())
    assert get_protocol("release", image_size=256, dataset="my_photos").square == 640  # not registered: the release's other images
    assert isinstance(get_protocol("hsnet", image_size=256, dataset="coco20i"), HsnetProtocol)
    assert get_protocol("release", image_size=256, dataset="coco20i").output_size((300, 500)) == (640, 640)
    assert get_protocol("release", image_size=256, output="image").output_size((300, 500)) == (300, 500)
    assert get_protocol("hsnet", image_size=256).output_size((300, 500)) == (300, 500)
    with pytest.raises(ValueError, match="protocol 'matcher'"):
        get_protocol("matcher", image_size=256)
    with pytest.raises(ValueError, match="output"):
        ReleaseProtocol(image_size=256, output="native")
    with pytest.raises(ValueError, match="square"):
        ReleaseProtocol(image_size=256, square=0)


def test_release_image_is_pil_bilinear_to_the_square_then_torch_bilinear():
    image = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    ours = get_protocol("release", image_size=256, dataset="fss1000").image(image)
    square = np.asarray(Image.fromarray(image).resize((518, 518), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    normalised = torch.from_numpy(((square - MEAN) / STD).astype(np.float32)).permute(2, 0, 1)
    expected = F.interpolate(normalised[None], size=(256, 256), mode="bilinear", align_corners=False, antialias=True)[0]
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    hsnet = HsnetProtocol(image_size=256).image(image)
    assert torch.equal(hsnet, to_model_input(image, 256))  # bicubic straight to the model size
    assert float((hsnet - ours).abs().mean()) > 1e-3  # the two preprocessings really differ


def test_release_masks_and_scoring():
    mask = np.zeros((300, 500), bool)
    mask[100:200, 100:400] = True
    protocol = get_protocol("release", image_size=256, dataset="coco20i")
    gt = protocol.ground_truth(mask)
    expected = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((640, 640), Image.Resampling.NEAREST)).astype(bool)
    assert gt.dtype == bool and np.array_equal(gt, expected)
    assert protocol.ground_truth(None) is None
    inputs = protocol.prompt(Mask(mask), size=(300, 500))
    square = torch.from_numpy(expected.astype(np.float32))[None, None]
    assert torch.equal(inputs.mask_inputs, (F.interpolate(square, size=(256, 256), mode="bilinear", align_corners=False, antialias=True) > 0).float())
    # "> 0" keeps every pixel the bilinear touches: the release's reference mask is larger than HSNet's ">= 0.5"
    assert inputs.mask_inputs.sum() > HsnetProtocol(image_size=256).prompt(Mask(mask), size=(300, 500)).mask_inputs.sum()
    logits = torch.randn(1, 1, 64, 64)
    assert protocol.logits(logits, size=(300, 500)).shape == (1, 1, 640, 640)
    assert ReleaseProtocol(image_size=256, output="image").logits(logits, size=(300, 500)).shape == (1, 1, 300, 500)
    box = protocol.prompt(Box((50, 100, 250, 200)), size=(300, 500))  # coordinates scale linearly through the square
    torch.testing.assert_close(box.point_inputs["point_coords"], HsnetProtocol(image_size=256).prompt(Box((50, 100, 250, 200)), size=(300, 500)).point_inputs["point_coords"])
    same = ReleaseProtocol(image_size=256, square=None)
    assert torch.equal(same.prompt(Mask(np.ones((256, 256), bool)), size=(256, 256)).mask_inputs, torch.ones(1, 1, 256, 256))


def test_predictor_protocols_differ_and_return_the_image_size(tiny_model, rng):
    from conftest import blob_image

    (ref, ref_mask), (target, _) = blob_image(rng, 200, 300), blob_image(rng, 180, 240)
    outputs = {}
    for name in ("release", "hsnet"):
        predictor = SansaPredictor(tiny_model, protocol=name)
        predictor.set_references([ref], [Mask(ref_mask)])
        outputs[name] = predictor.predict(target)
        assert outputs[name].mask.shape == (180, 240)
    assert isinstance(SansaPredictor(tiny_model).path.protocol, ReleaseProtocol)  # the release's is the default
    assert not np.allclose(outputs["release"].logits, outputs["hsnet"].logits)


def test_evaluate_records_the_protocol_and_defaults_to_the_release(tmp_path):
    from sansa_probe import evaluate

    common = ["--dataset", "synthetic", "--episodes", "4", "--num-workers", "0", "--no-progress",
              "--dataset-option", "image_size=96", "--dataset-option", "images_per_class=3"]  # fmt: skip
    assert evaluate.main([*common, "--out", str(tmp_path / "release")]) == 0
    assert evaluate.main([*common, "--protocol", "hsnet", "--out", str(tmp_path / "hsnet")]) == 0
    for name in ("release", "hsnet"):
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["protocol"] == name and summary["identity"]["protocol"] == name
        assert summary["identity"]["behaviour"]["reference_memory"] == "release"
        assert set(pd.read_csv(tmp_path / name / "results.csv")["protocol"]) == {name}
        assert set(pd.read_csv(tmp_path / name / "episodes.csv")["protocol"]) == {name}


def test_training_clips_follow_the_protocol():
    from sansa_probe.data.episodes import TrainingEpisodeSampler
    from sansa_probe.training.data import ClipDataset

    sampler = TrainingEpisodeSampler("synthetic", 0, n_episodes=2, seed=0, targets=1, image_size=96, images_per_class=3)
    data = sampler.load(0)
    release = ClipDataset(sampler, image_size=64)[0]
    hsnet = ClipDataset(sampler, image_size=64, protocol="hsnet")[0]
    torch.testing.assert_close(release["reference"], ReleaseProtocol(image_size=64, square=None).image(data.reference_images[0]))
    torch.testing.assert_close(hsnet["reference"], to_model_input(data.reference_images[0], 64))
    assert torch.equal(release["target_masks"], hsnet["target_masks"])
    with pytest.raises(ValueError, match="protocol 'square'"):
        ClipDataset(sampler, image_size=64, protocol="square")


def test_ablation_command_writes_one_paired_row_per_option(tmp_path):
    from sansa_probe import ablation
    from sansa_probe.evaluation.ablation import ABLATION_ROWS

    code = ablation.main(["--dataset", "synthetic", "--episodes", "2", "--no-progress", "--out", str(tmp_path),
                          "--dataset-option", "image_size=96", "--dataset-option", "images_per_class=4"])  # fmt: skip
    assert code == 0
    table = pd.read_csv(tmp_path / "ablation.csv")
    assert [(r.option, r.value) for r in ABLATION_ROWS] == list(zip(table["option"], table["value"]))
    np.testing.assert_allclose(table["delta"], table["miou_option"] - table["miou_release"], atol=1e-9)
    assert table.loc[table["option"] == "precision", "delta"].abs().max() < 1e-9  # float32 either way on the CPU
    assert table["model"].str.contains("miniature").all()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["identity"]["behaviour"]["temporal_slots"] == "release"
