"""Hostile catalogue, inputs (issue 22, "Unbounded work from tiny files"): one image-size limit for
every image reader, checked from the header before decoding (``--max-image-pixels``, default
100 Mpx); one episode-count bound; sizes bounded in the data-pickle allow-list reader; every
argument range checked while parsing, before the model is built.

Time and memory are bounded inside the tests (a child process with a capped address space that
reports its peak RSS), never asserted as wall-clock speed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hostile_helpers import (MiniFiles, child_command, error_line, png_claiming, run_child, run_main, write_mini_files,
                             write_references_file, write_scene)
from PIL import Image

# a file that is no checkpoint: a command that builds its model before checking its options
# fails on this file instead of naming the option
BAD_CHECKPOINT = b"not a checkpoint"
SYNTHETIC = ["--dataset", "synthetic", "--dataset-option", "image_size=64", "--dataset-option", "n_classes=8",
             "--dataset-option", "images_per_class=4", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> MiniFiles:
    return write_mini_files(tmp_path_factory.mktemp("mini"))


@pytest.fixture
def scene(tmp_path) -> Path:
    return write_scene(tmp_path / "scene")


@pytest.fixture
def bad_checkpoint(tmp_path) -> Path:
    path = tmp_path / "bad.pt"
    path.write_bytes(BAD_CHECKPOINT)
    return path


# ---------------------------------------------------------------------------------- images
def test_segment_refuses_a_tiny_png_claiming_12000x12000_before_decoding_it(scene, mini, tmp_path):
    """Was: a PNG of a few hundred bytes whose header claims 12000 x 12000 (144 Mpx, under PIL's
    bomb limit) was decoded in full (gigabytes) after the model was built."""
    bomb = scene / "targets" / "huge.png"
    bomb.write_bytes(png_claiming(12000, 12000))
    assert bomb.stat().st_size < 1000
    argv = ["--reference", scene / "ref.png", "--reference-mask", scene / "ref_mask.png", "--target", scene / "targets",
            "--out", tmp_path / "out", *mini.args()]
    baseline = run_child(child_command("segment", ["--help"]), tmp_path)  # the command's imports, nothing decoded
    run = run_child(child_command("segment", argv), tmp_path)
    assert run.outcome is None and run.code == 2, (run.outcome, run.stderr[-2000:])
    line = error_line(run.stderr)
    assert "huge.png" in line and "12000" in line and "--max-image-pixels" in line, line
    assert "model:" not in run.stderr  # refused before the model was built
    assert run.rss_mb < baseline.rss_mb + 150, (run.rss_mb, baseline.rss_mb)  # an RGB decode alone is 432 MB


def test_max_image_pixels_sets_the_limit(scene, mini, tmp_path, capsys):
    (scene / "targets" / "wide.png").write_bytes(png_claiming(1500, 1000))  # 1.5 Mpx: fine by default
    argv = ["--reference", scene / "ref.png", "--reference-mask", scene / "ref_mask.png", "--target", scene / "targets",
            "--out", tmp_path / "out", *mini.args()]
    code, err = run_main("segment", [*argv, "--max-image-pixels", "1000000"], capsys)
    assert code == 2
    line = error_line(err)
    assert "wide.png" in line and "1500" in line and "--max-image-pixels" in line, line


@pytest.mark.parametrize("role", ["reference", "reference-mask"])
def test_segment_reference_and_mask_readers_check_the_size_first(role, scene, mini, tmp_path, capsys):
    bomb = tmp_path / "huge.png"
    bomb.write_bytes(png_claiming(12000, 12000))
    files = {"reference": scene / "ref.png", "reference-mask": scene / "ref_mask.png", role: bomb}
    code, err = run_main("segment", ["--reference", files["reference"], "--reference-mask", files["reference-mask"],
                                     "--target", scene / "targets", "--out", tmp_path / "out", *mini.args()], capsys)
    assert code == 2
    line = error_line(err)
    assert "huge.png" in line and "--max-image-pixels" in line, line


def test_annotate_reference_reader_checks_the_size_first(scene, mini, tmp_path, capsys):
    (scene / "ref.png").write_bytes(png_claiming(12000, 12000))
    code, err = run_main("annotate", ["--references", write_references_file(scene), "--targets", scene / "targets",
                                      "--out", tmp_path / "labels", "--num-workers", "0", *mini.args()], capsys)
    assert code == 2
    line = error_line(err)
    assert "ref.png" in line and "--max-image-pixels" in line, line


def test_folder_dataset_reader_checks_the_size_first(tmp_path):
    from sansa_probe.data import get_dataset

    root = tmp_path / "mydata"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    for name in ("a", "b"):
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        Image.fromarray(mask).save(root / "masks" / f"{name}_cat.png")
    (root / "images" / "b.png").write_bytes(png_claiming(12000, 12000))
    source = get_dataset("folder", root=root)
    with pytest.raises(ValueError, match=r"b\.png.*12000") as info:
        for image_id in source.image_ids():
            source.load_image(image_id)
    assert "pixels" in str(info.value)


# ---------------------------------------------------------------------------------- data pickles
class _Call:
    """Pickles as ``func(*args)``: what a crafted data pickle asks the allow-list reader to call."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def plant_lvis(root: Path, value) -> Path:
    """A Matcher-layout LVIS-92i root whose annotation pickle holds ``value``."""
    from fixtures.datasets import write_lvis

    write_lvis(root, layout="pkl")
    path = root / "LVIS" / "lvis_val.pkl"
    path.write_bytes(pickle.dumps(value, protocol=2))
    return path


def lvis_classes_code(root: Path) -> str:
    return f"from sansa_probe.data import get_dataset\nget_dataset('lvis92i', fold=0, root={str(root)!r}).class_ids()\n"


@pytest.mark.parametrize("request_", [
    pytest.param(_Call(bytes, 2**62), id="bytes(2**62)"),
    pytest.param(_Call(bytearray, 3 * 2**30), id="bytearray(3 GiB)"),
    pytest.param(_Call(np.ndarray, (2**31,), np.dtype(np.float64)), id="ndarray(16 GiB)"),
])  # fmt: skip
def test_data_pickle_reader_bounds_what_a_tiny_pickle_may_ask_for(request_, tmp_path):
    """Was: a 50-byte pickle could ask the allow-list reader for ``bytes(2**62)`` (a MemoryError
    traceback) or, below the machine's memory, have gigabytes allocated."""
    path = plant_lvis(tmp_path, {1: {"x.jpg": {"annotations": [request_]}}})
    assert path.stat().st_size < 200
    run = run_child(lvis_classes_code(tmp_path), tmp_path, address_space_mb=6000)
    assert run.outcome is not None and run.outcome.split(":")[0] in ("ValueError", "UnsafePickleError", "DataPickleTooLarge"), run.outcome
    assert "lvis_val.pkl" in run.outcome, run.outcome
    assert run.rss_mb < 1500, run.rss_mb


def test_data_pickle_reader_bounds_the_expanded_size_of_shared_references(tmp_path):
    """A few hundred bytes of shared references expanding to 2 * 10**8 annotation entries
    ("billion laughs"): refused by the reader, not walked by the dataset for minutes."""
    annotations = [{"segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]}] * 2_000
    images = {f"{i:012d}.jpg": {"annotations": annotations} for i in range(100)}
    path = plant_lvis(tmp_path, {cid: images for cid in range(1, 1001)})
    assert path.stat().st_size < 20_000
    run = run_child(lvis_classes_code(tmp_path), tmp_path, address_space_mb=6000, timeout=600)
    assert run.outcome is not None and "lvis_val.pkl" in run.outcome, run.outcome
    assert run.outcome.split(":")[0] in ("ValueError", "DataPickleTooLarge"), run.outcome


# ---------------------------------------------------------------------------------- counts and ranges
@pytest.mark.parametrize("command, option", [("evaluate", "--episodes"), ("compare", "--episodes"), ("ablation", "--episodes"),
                                             ("train", "--episodes-per-epoch")])
@pytest.mark.parametrize("count", [10**8, 10**12])
def test_episode_counts_are_bounded_before_the_model_is_built(command, option, count, bad_checkpoint, tmp_path, capsys):
    """Was: ``--episodes 10**12`` a MemoryError traceback, ``10**8`` accepted and run."""
    code, err = run_main(command, [*SYNTHETIC, option, str(count), "--checkpoint", bad_checkpoint, "--out", tmp_path / "out"], capsys)
    assert code == 2
    line = error_line(err)
    assert option in line and str(count) in line, line


SCENE_ARGS = lambda scene: ["--reference", scene / "ref.png", "--reference-mask", scene / "ref_mask.png", "--target", scene / "targets"]  # noqa: E731


@pytest.mark.parametrize("command, option, values", [
    ("pca", "--variance", ["2"]),
    ("pca", "--variance", ["0"]),
    ("pca", "--variance", ["nan"]),
    ("pca_rgb", "--quantile", ["0.7"]),
    ("projection", "--min-dist", ["-1"]),
    ("linear_probe", "--lr", ["nan"]),
    ("linear_probe", "--lr", ["-1"]),
    ("linear_probe", "--weight-decay", ["-1"]),
    ("train", "--lr", ["nan"]),
    ("train", "--lr", ["0"]),
    ("train", "--clip", ["-1"]),
    ("train", "--weight-decay", ["inf"]),
    ("train", "--ratio", ["0"]),
    ("train", "--loss-weights", ["nan", "1"]),
    ("train", "--stages", ["7"]),
    ("segment", "--threshold", ["nan"]),
])  # fmt: skip
def test_argument_ranges_are_checked_before_the_model_is_built(command, option, values, scene, bad_checkpoint, tmp_path, capsys):
    """Was (``--variance 2``): refused only after the model was built and the features computed."""
    data = SCENE_ARGS(scene) if command == "segment" else SYNTHETIC
    extra = ["--method", "umap"] if option == "--min-dist" else []
    code, err = run_main(command, [*data, *extra, option, *values, "--checkpoint", bad_checkpoint, "--out", tmp_path / "out",
                                   "--device", "cpu"], capsys)
    assert code == 2
    line = error_line(err)
    assert option in line and "bad.pt" not in line, line
