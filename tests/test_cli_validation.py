"""Everything is validated before the model is built or any work starts: one line, exit code 2."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from sansa_probe import evaluate, pca, segment
from sansa_probe.commands import benchmark
from sansa_probe.evaluation import Benchmark

TINY = ["--backbone", "hiera_t", "--sam2-checkpoint", "none"]


@pytest.fixture
def refs(tmp_path):
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "ref.jpg")
    Image.fromarray(np.eye(40, 50, dtype=np.uint8) * 255).save(tmp_path / "ref.png")
    return ["--reference", str(tmp_path / "ref.jpg"), "--reference-mask", str(tmp_path / "ref.png"), "--target", str(tmp_path / "ref.jpg")]


@pytest.fixture
def no_model(monkeypatch):
    built = []
    for module in (segment, benchmark):
        monkeypatch.setattr(module, "model_from_args", lambda *a, **k: built.append(a) or pytest.fail("the model was built"))
    return built


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_device_cuda_without_a_gpu_fails_before_the_model(refs, tmp_path, capsys, no_model):
    spec = "cuda:99" if torch.cuda.is_available() else "cuda"
    assert segment.main([*refs, "--out", str(tmp_path / "o"), *TINY, "--image-size", "256", "--device", spec]) == 2
    err = _one_line(capsys)
    assert f"--device {spec}: " in err and ("no CUDA GPU is available" in err or "CUDA device(s)" in err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("size", [80, 112, 1008])
def test_image_size_not_a_multiple_of_32_fails_before_the_model(refs, tmp_path, capsys, no_model, size):
    assert segment.main([*refs, "--out", str(tmp_path / "o"), *TINY, "--device", "cpu", "--image-size", str(size)]) == 2
    assert f"--image-size {size}: expected a multiple of 32" in _one_line(capsys)
    from sansa_probe.model import SansaConfig

    with pytest.raises(ValueError, match=f"image_size {size}: expected a multiple of 32"):
        SansaConfig(image_size=size)


def test_a_folder_as_checkpoint_fails_before_the_model(refs, tmp_path, capsys, no_model):
    assert segment.main([*refs, "--out", str(tmp_path / "o"), *TINY, "--device", "cpu", "--checkpoint", str(tmp_path)]) == 2
    err = _one_line(capsys)
    assert "--checkpoint" in err and f"{tmp_path} is a folder; expected a checkpoint file" in err


def test_evaluate_and_pca_refuse_a_file_out_before_any_work(tmp_path, capsys, no_model, monkeypatch):
    """Case 5: a file (or a path under a file) as --out fails at once, not after the episodes."""
    blocker = tmp_path / "results.txt"
    blocker.write_text("mine")
    monkeypatch.setattr(Benchmark, "sampler", lambda *a, **k: pytest.fail("data was read"))
    assert evaluate.main(["--dataset", "synthetic", "--fold", "0", "--episodes", "2", "--device", "cpu", *TINY, "--image-size", "256",
                          "--out", str(blocker)]) == 2
    assert f"--out {blocker} is a file; expected an output folder" in _one_line(capsys)
    assert pca.main(["--dataset", "synthetic", "--fold", "0", "--device", "cpu", *TINY, "--image-size", "256",
                     "--out", str(blocker / "sub")]) == 2
    assert f"--out {blocker / 'sub'}: {blocker} is a file, so the output folder cannot be created" in _one_line(capsys)
    assert blocker.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_an_unwritable_out_fails_before_any_work(tmp_path, capsys, no_model, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setattr(Benchmark, "sampler", lambda *a, **k: pytest.fail("data was read"))
    try:
        assert evaluate.main(["--dataset", "synthetic", "--fold", "0", "--device", "cpu", *TINY, "--image-size", "256",
                              "--out", str(locked / "eval")]) == 2
    finally:
        locked.chmod(0o700)
    assert f"the folder {locked} is not writable" in _one_line(capsys)


@pytest.mark.parametrize("command", ["part_matching", "pca_rgb"])
@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_bad_probe_arguments_are_one_line(command, value, tmp_path, capsys):
    import importlib

    module = importlib.import_module(f"sansa_probe.{command}")
    out = tmp_path / "out"
    assert module.main(["--feature-size", value, "--out", str(out), *TINY]) == 2
    err = _one_line(capsys)
    assert "--feature-size" in err and value in err
    assert not out.exists()  # nothing started


def test_run_main_turns_expected_failures_into_one_line(capsys):
    from sansa_probe.commands.grammar import run_main

    def out_of_memory() -> int:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.3 GiB total)")

    assert run_main(out_of_memory, prog="sansa_probe.evaluate") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "out of memory" in err and "--batch-size" in err and "Traceback" not in err

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_main(interrupted, prog="sansa_probe.evaluate") == 130
    assert "interrupted" in capsys.readouterr().err

    def bug() -> int:
        raise RuntimeError("a bug keeps its traceback")

    with pytest.raises(RuntimeError, match="a bug"):
        run_main(bug, prog="sansa_probe.evaluate")
