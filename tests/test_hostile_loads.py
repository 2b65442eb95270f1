"""Hostile catalogue, loads (issue 22, "Silently converted or trusted" and "Tracebacks"): every load
checks what it reads. Checkpoint tensors have the expected dtype and finite values; absurd adapter
weights are warned about in words; a release checkpoint's ``args`` are checked by type and range,
naming the file and the field; feature caches carry a checksum of their arrays; the Python API
spells ``"none"`` as the CLI does; ``predict_batch`` refuses a single image; an error raised after
Ctrl-C in the training loop is not passed off as the interruption.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hostile_helpers import MiniFiles, error_line, run_main, write_mini_files, write_scene

from sansa_probe import SansaPredictor, load_sansa

KEY = "image_encoder.trunk.blocks.3.adapter.down_proj.weight"  # an adapter of the miniature
SAM2_KEY = "sam_mask_decoder.iou_prediction_head.layers.0.weight"


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> MiniFiles:
    return write_mini_files(tmp_path_factory.mktemp("mini"))


def quiet_load(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_sansa(device="cpu", **kwargs)


def crafted_adapters(mini: MiniFiles, path: Path, change) -> Path:
    payload = torch.load(mini.adapters, weights_only=True)
    change(payload["state_dict"])
    torch.save(payload, path)
    return path


def crafted_sam2(mini: MiniFiles, path: Path, change) -> Path:
    payload = torch.load(mini.sam2, weights_only=True)
    change(payload["model"])
    torch.save(payload, path)
    return path


DTYPES = [pytest.param(torch.int64, id="int64"), pytest.param(torch.bool, id="bool"), pytest.param(torch.complex64, id="complex64")]


# ---------------------------------------------------------------------------------- dtypes and values
@pytest.mark.parametrize("dtype", DTYPES)
def test_adapter_tensor_of_another_dtype_is_refused(dtype, mini, tmp_path):
    """Was: cast to float32 and used (an int64 adapter of zeros, a bool one, a complex one losing its imaginary part)."""
    path = crafted_adapters(mini, tmp_path / "adapters.pt", lambda state: state.__setitem__(KEY, (state[KEY] * 100).to(dtype)))
    with pytest.raises(ValueError, match=rf"adapters\.pt.*{KEY}.*{str(dtype).removeprefix('torch.')}"):
        quiet_load(sam2_checkpoint=None, adapters=path)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sam2_tensor_of_another_dtype_is_refused(dtype, mini, tmp_path):
    path = crafted_sam2(mini, tmp_path / "sam2.pt", lambda state: state.__setitem__(SAM2_KEY, (state[SAM2_KEY] * 100).to(dtype)))
    with pytest.raises(ValueError, match=rf"sam2\.pt.*{SAM2_KEY}.*{str(dtype).removeprefix('torch.')}"):
        quiet_load(sam2_checkpoint=path, adapters=mini.adapters)


def test_sam2_checkpoint_with_a_string_for_a_tensor_is_one_clear_error(mini, tmp_path):
    """Was: AttributeError ('str' object has no attribute 'shape')."""
    path = crafted_sam2(mini, tmp_path / "sam2.pt", lambda state: state.__setitem__(SAM2_KEY, "a string"))
    with pytest.raises(ValueError, match=rf"sam2\.pt.*{SAM2_KEY}.*str"):
        quiet_load(sam2_checkpoint=path, adapters=mini.adapters)


def test_absurd_adapter_weights_are_warned_about_naming_the_largest_value(mini, tmp_path, capsys):
    """Was: adapters x 1e30 (finite) loaded and segmented with exit code 0 and no word."""
    path = crafted_adapters(mini, tmp_path / "absurd.pt", lambda state: state.__setitem__(KEY, state[KEY] * 1e30))
    with pytest.warns(UserWarning, match=rf"{KEY}.*e\+(29|30)"):
        load_sansa(sam2_checkpoint=mini.sam2, adapters=path)
    scene = write_scene(tmp_path / "scene")
    code, err = run_main("segment", ["--reference", scene / "ref.png", "--reference-mask", scene / "ref_mask.png",
                                     "--target", scene / "targets", "--out", tmp_path / "out", "--sam2-checkpoint", mini.sam2,
                                     "--checkpoint", path, "--device", "cpu", "--no-progress"], capsys)
    assert code == 0, err
    assert any(line.startswith("warning:") and KEY in line for line in err.splitlines()), err


def test_adapter_checkpoint_with_an_extra_and_a_missing_key_names_both(mini, tmp_path):
    """Was: only the missing key was named."""
    extra = KEY.replace("blocks.3", "blocks.99")
    path = crafted_adapters(mini, tmp_path / "renamed.pt", lambda state: state.__setitem__(extra, state.pop(KEY)))
    with pytest.raises(ValueError) as info:
        quiet_load(sam2_checkpoint=None, adapters=path)
    assert KEY in str(info.value) and extra in str(info.value)


# ---------------------------------------------------------------------------------- release checkpoints
def release_file(mini: MiniFiles, path: Path, **args) -> Path:
    """The miniature's adapters in the public release's layout, with ``args`` as the release's Namespace."""
    state = torch.load(mini.adapters, weights_only=True)["state_dict"]
    torch.save({"model": {f"sam.{k}": v for k, v in state.items()}, "epoch": 1, "args": argparse.Namespace(**args)}, path)
    return path


@pytest.mark.parametrize("field, value", [
    ("sam2_version", ["tiny"]),
    ("sam2_version", 3),
    ("channel_factor", float("nan")),
    ("channel_factor", "0.3"),
    ("channel_factor", -1.0),
    ("channel_factor", 1e9),
])  # fmt: skip
def test_release_args_are_checked_by_type_and_range_naming_file_and_field(field, value, mini, tmp_path):
    """Was: a list sam2_version a TypeError; a NaN channel_factor "cannot convert float NaN to
    integer" naming no file or field; a string or absurd factor silently ignored."""
    args = {"sam2_version": "tiny", "channel_factor": 0.3, field: value}
    path = release_file(mini, tmp_path / "release.pth", **args)
    architecture = torch.load(mini.adapters, weights_only=True)["config"]
    with pytest.raises(ValueError, match=rf"release\.pth.*{field}"):
        quiet_load(sam2_checkpoint=None, adapters=path, backbone="hiera_t", image_size=architecture["image_size"],
                   sam2_overrides=architecture["sam2_overrides"])


# ---------------------------------------------------------------------------------- the Python API
def test_load_sansa_takes_none_spelled_as_the_cli_does(mini):
    """Was: ``sam2_checkpoint="none"`` -> "none does not exist", while ``--sam2-checkpoint none`` works."""
    with pytest.warns(UserWarning, match="random"):
        spelled = load_sansa(sam2_checkpoint="none", adapters=mini.adapters)
    reference = quiet_load(sam2_checkpoint=None, adapters=mini.adapters)
    for (name, a), b in zip(spelled.sam.state_dict().items(), reference.sam.state_dict().values()):
        assert torch.equal(a, b), name
    fresh = quiet_load(backbone="hiera_t", image_size=spelled.image_size, sam2_overrides=spelled.config.sam2_overrides,
                       sam2_checkpoint="none", adapters="none")
    assert fresh.provenance["adapters"] is None and fresh.provenance["sam2_checkpoint"] is None


def test_predict_batch_refuses_a_single_image_or_a_string(mini, tmp_path):
    """Was: one array iterated by rows, a string by characters."""
    scene = write_scene(tmp_path / "scene")
    predictor = SansaPredictor(quiet_load(sam2_checkpoint=mini.sam2, adapters=mini.adapters))
    image = np.zeros((40, 56, 3), np.uint8)
    mask = np.zeros((40, 56), bool)
    mask[10:30, 10:40] = True
    from sansa_probe import Mask

    predictor.set_references([image], [Mask(mask)])
    for single in (image, str(scene / "targets" / "t0.png"), scene / "targets" / "t0.png"):
        with pytest.raises((TypeError, ValueError)) as info:
            predictor.predict_batch(single)
        message = str(info.value)
        assert "\n" not in message and "predict(" in message and "list" in message, message
    assert len(predictor.predict_batch([image, str(scene / "targets" / "t0.png")])) == 2


# ---------------------------------------------------------------------------------- feature caches
PCA = ["--dataset", "synthetic", "--dataset-option", "image_size=64", "--dataset-option", "n_classes=8",
       "--dataset-option", "images_per_class=2", "--images-per-class", "2", "--device", "cpu", "--no-progress"]


def test_feature_cache_with_nan_features_in_the_valid_format_is_recomputed(tmp_path, capsys):
    """Was: used as it was (only its config was compared), and the NaN reached the probe."""
    cache = tmp_path / "cache"
    code, err = run_main("pca", [*PCA, "--cache-dir", cache, "--out", tmp_path / "first"], capsys)
    assert code == 0, err
    files = sorted(cache.rglob("*.pt"))
    assert files
    for path in files:  # tampered in place: the format and config stay valid, the features become NaN
        payload = torch.load(path, weights_only=True)
        payload["features"] = torch.full_like(payload["features"], float("nan"))
        torch.save(payload, path)
    code, err = run_main("pca", [*PCA, "--cache-dir", cache, "--out", tmp_path / "second"], capsys)
    assert code == 0, err
    first, second = (pd.read_csv(tmp_path / name / "pca_concentration.csv") for name in ("first", "second"))
    pd.testing.assert_frame_equal(first, second)
    for path in files:  # and the cache was written again, valid
        assert torch.isfinite(torch.load(path, weights_only=True)["features"]).all()


# ---------------------------------------------------------------------------------- training loop
def test_an_error_after_ctrl_c_in_the_training_loop_is_not_called_an_interruption(tmp_path):
    """Was: any exception raised after Ctrl-C was requested was swallowed as the interruption."""
    from sansa_probe import load_miniature
    from sansa_probe.data import get_dataset
    from sansa_probe.data.episodes import TrainingEpisodeSampler
    from sansa_probe.training import ClipDataset, TrainConfig, Trainer

    class FailingAfterCtrlC(ClipDataset):
        def __getitem__(self, index):
            if index == 0:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: the loop is asked to stop after this step
            if index == 1:
                raise RuntimeError("a bug in clip 1, not the user's Ctrl-C")
            return super().__getitem__(index)

    source = get_dataset("synthetic", fold=0, split="train", image_size=64, images_per_class=4)
    dataset = FailingAfterCtrlC(TrainingEpisodeSampler(source, targets=1, n_episodes=4, seed=0), image_size=128, prompt="mask", seed=0)
    trainer = Trainer(model=load_miniature(fold=0), dataset=dataset, out=tmp_path, device=torch.device("cpu"), progress=False,
                      config=TrainConfig(epochs=1, steps_per_epoch=2, global_batch=2, micro_batch=2, targets=1))
    raised: BaseException | None = None
    try:
        trainer.fit()
    except BaseException as exc:  # noqa: BLE001 - today a KeyboardInterrupt subclass escapes: caught to assert on it
        raised = exc
    assert isinstance(raised, RuntimeError) and "a bug in clip 1" in str(raised), repr(raised)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_training_checkpoint_with_a_foreign_dtype_is_refused_on_resume(tmp_path):
    """--resume reads last.pt's trained tensors through the same checks as every other load."""
    from sansa_probe import load_miniature
    from sansa_probe.data import get_dataset
    from sansa_probe.data.episodes import TrainingEpisodeSampler
    from sansa_probe.training import ClipDataset, TrainConfig, Trainer

    source = get_dataset("synthetic", fold=0, split="train", image_size=64, images_per_class=4)
    dataset = ClipDataset(TrainingEpisodeSampler(source, targets=1, n_episodes=4, seed=0), image_size=128, prompt="mask", seed=0)
    trainer = Trainer(model=load_miniature(fold=0), dataset=dataset, out=tmp_path, device=torch.device("cpu"), progress=False,
                      config=TrainConfig(epochs=1, steps_per_epoch=2, global_batch=2, micro_batch=2, targets=1))
    trainer.save(tmp_path / "last.pt", full=True)
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    payload["trainable"][KEY] = payload["trainable"][KEY].to(torch.int64)
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(ValueError, match=rf"tampered\.pt.*{KEY}.*int64"):
        trainer.resume(tmp_path / "tampered.pt")
