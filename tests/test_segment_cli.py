"""``python -m sansa_probe.segment`` end to end: files written, COCO results, prompts, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, blob_image
from PIL import Image
from pycocotools import mask as mask_utils

from sansa_probe import segment
from sansa_probe.annotation.segment import OUTPUTS, output_stem
from sansa_probe.prompts.text import parse_box, parse_points
from sansa_probe.io.masks import decode_rle

TINY_ARGS = ["--backbone", "hiera_t", "--image-size", "256", "--sam2-checkpoint", "none", "--device", "cpu"]


@pytest.fixture
def scene(tmp_path, rng):
    ref, mask = blob_image(rng, 90, 130)
    Image.fromarray(ref).save(tmp_path / "ref.jpg")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "ref_mask.png")
    targets = tmp_path / "targets"
    (targets / "sub").mkdir(parents=True)
    for i, (h, w) in enumerate([(70, 95), (101, 77)]):
        Image.fromarray(blob_image(rng, h, w)[0]).save(targets / f"t{i}.jpg")
    Image.fromarray(blob_image(rng, 64, 64)[0]).save(targets / "sub" / "t0.png")
    return tmp_path


@pytest.fixture(autouse=True)
def shared_model(tiny_model, monkeypatch):
    """Reuse the session model instead of building one per command."""
    monkeypatch.setattr(segment, "model_from_args", lambda args: tiny_model)


def test_segment_writes_masks_overlays_and_coco_results(scene, capsys):
    out = scene / "out"
    code = segment.main(["--reference", str(scene / "ref.jpg"), "--reference-mask", str(scene / "ref_mask.png"),
                         "--target", str(scene / "targets"), "--out", str(out), *TINY_ARGS])
    assert code == 0
    printed = capsys.readouterr()
    out_lines, err = printed.out.splitlines(), printed.err.splitlines()  # results on stdout, warnings on stderr
    assert out_lines[0].startswith("model: SANSA (adapters on) | hiera_t SAM2 2.1 @256px | SAM2 weights: RANDOM | adapters: fresh")
    assert out_lines[-1] == f"wrote 3 predictions to {out / 'predictions.json'}" and "warning:" not in printed.out
    assert err[0].startswith("warning: SAM2 has RANDOM weights")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identity"]["sam2_weights"] == "random" and summary["identity"]["adapters"] == "fresh"
    assert any("RANDOM" in w for w in summary["warnings"]) and any("FRESH" in w for w in summary["warnings"])
    assert summary["references"] == [{"image": str(scene / "ref.jpg"), "prompt": "mask"}] and summary["n_targets"] == 3
    assert (out / "preview.png").stat().st_size > 1000 and (out / "preview.pdf").is_file()
    masks = sorted(p.relative_to(out / "masks").as_posix() for p in (out / "masks").rglob("*.png"))
    assert masks == ["sub/t0.png.png", "t0.jpg.png", "t1.jpg.png"]  # a subfolder's file does not clash with t0.jpg
    assert sorted(p.relative_to(out / "overlays").as_posix() for p in (out / "overlays").rglob("*.png")) == masks
    results = json.loads((out / "predictions.json").read_text())
    assert len(results) == 3 and not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left
    for result in results:
        name = output_stem(Path(result["file_name"]), [scene / "targets"])
        assert result["mask_file"] == f"masks/{name}"
        written = np.asarray(Image.open(out / "masks" / name)) > 0
        decoded = decode_rle(result["segmentation"])
        np.testing.assert_array_equal(decoded, written)
        assert result["area"] == int(written.sum())
        assert set(result) >= {"image_id", "category_id", "segmentation", "score", "bbox"}
        assert mask_utils.area({"size": result["segmentation"]["size"], "counts": result["segmentation"]["counts"].encode()}) == result["area"]
    assert Image.open(out / "masks" / "t1.jpg.png").size == (77, 101)


def test_segment_with_k_references_of_mixed_prompt_kinds(scene):
    out = scene / "out2"
    stroke = np.zeros((90, 130), np.uint8)
    stroke[40:50, 60:62] = 255
    Image.fromarray(stroke).save(scene / "stroke.png")
    code = segment.main([
        "--reference", str(scene / "ref.jpg"), "--reference-points", "65,45;5,5,0",
        "--reference", str(scene / "ref.jpg"), "--reference-box", "30,20,100,70",
        "--reference", str(scene / "ref.jpg"), "--reference-scribble", str(scene / "stroke.png"),
        "--reference", str(scene / "ref.jpg"), "--reference-mask", str(scene / "ref_mask.png"),
        "--negative-reference", str(scene / "targets" / "t0.jpg"),
        "--target", str(scene / "targets" / "t1.jpg"), "--out", str(out), "--no-overlays", *TINY_ARGS,
    ])
    assert code == 0
    assert len(json.loads((out / "predictions.json").read_text())) == 1
    assert not (out / "overlays").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--reference-points", "500,5"], "outside the image"),
        (["--reference-box", "1,2,3"], "expected 'x0,y0,x1,y1'"),
        (["--reference-points", "a,b"], "not numeric"),
        ([], "1 --reference image(s) but 0 prompt(s)"),
        (["--reference-mask", "MISSING"], "does not exist"),
    ],
)
def test_segment_bad_arguments_give_one_clear_line(scene, capsys, extra, message):
    extra = [str(scene / "nope.png") if e == "MISSING" else e for e in extra]
    code = segment.main(["--reference", str(scene / "ref.jpg"), *extra, "--target", str(scene / "targets"),
                         "--out", str(scene / "bad"), *TINY_ARGS])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_parse_helpers():
    points = parse_points("1,2;3,4,0")
    assert points.coords.tolist() == [[1.0, 2.0], [3.0, 4.0]] and points.labels.tolist() == [1, 0]
    assert parse_box("1, 2, 3, 4").xyxy == (1.0, 2.0, 3.0, 4.0)


def test_segment_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "sansa_probe.segment", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--reference-mask" in result.stdout


@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED_DATA / "sansa_demo").is_dir(), reason="../shared/data/sansa_demo is absent")
def test_segment_on_the_real_demo_photographs(tmp_path):
    demo = SHARED_DATA / "sansa_demo"
    targets = [str(demo / "images" / f"image00{i}.jpg") for i in (2, 3, 4)]
    out = tmp_path / "demo"
    code = segment.main(["--reference", str(demo / "images" / "image001.jpg"), "--reference-mask", str(demo / "masks" / "image001_dog.png"),
                         "--target", *targets, "--out", str(out), *TINY_ARGS])
    assert code == 0
    results = json.loads((out / "predictions.json").read_text())
    assert [r["file_name"] for r in results] == targets
    for target, result in zip(targets, results):
        width, height = Image.open(target).size
        assert result["segmentation"]["size"] == [height, width]
        stem = target.rsplit("/", 1)[1] + ".png"  # the suffix is kept: image002.jpg.png
        assert Image.open(out / "masks" / stem).size == (width, height)
        assert Image.open(out / "overlays" / stem).size == (width, height)


def test_without_out_each_run_writes_a_new_folder_under_runs(scene, monkeypatch, capsys):
    monkeypatch.chdir(scene)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args = ["--reference", str(scene / "ref.jpg"), "--reference-mask", str(scene / "ref_mask.png"),
            "--target", str(scene / "targets" / "t0.jpg"), "--no-overlays", "--no-progress", *TINY_ARGS]
    outs = []
    for _ in range(2):
        assert segment.main(args) == 0
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith("out: runs/segment-")
        outs.append(scene / first.removeprefix("out: "))
    assert outs[0] != outs[1]
    assert all(len(json.loads((out / "predictions.json").read_text())) == 1 for out in outs)


def _tree_hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_bad_target_in_a_later_batch_leaves_the_previous_results_untouched(scene, capsys):
    """Case 4: a truncated target in the second batch: rc 2, one line naming it, the previous
    predictions.json and masks exactly as they were (no new mask mixed in, no staging left)."""
    out = scene / "out"
    common = ["--reference", str(scene / "ref.jpg"), "--reference-mask", str(scene / "ref_mask.png"), "--out", str(out), *TINY_ARGS]
    assert segment.main([*common, "--target", str(scene / "targets" / "t0.jpg")]) == 0
    before = _tree_hashes(out)
    good = (scene / "targets" / "t1.jpg").read_bytes()
    (scene / "targets" / "z_truncated.jpg").write_bytes(good[: len(good) // 3])  # a valid header, cut data
    capsys.readouterr()
    assert segment.main([*common, "--target", str(scene / "targets"), "--batch-size", "1"]) == 2
    err = capsys.readouterr().err
    assert f"--target {scene / 'targets' / 'z_truncated.jpg'}" in err and "cannot be decoded" in err and "Traceback" not in err
    assert _tree_hashes(out) == before and sorted(p.name for p in out.iterdir()) == sorted([*OUTPUTS, "sansa-manifest.json"])
    (scene / "targets" / "z_truncated.jpg").unlink()
    assert segment.main([*common, "--target", str(scene / "targets")]) == 0  # a complete run replaces it all
    names = sorted(p.relative_to(out / "masks").as_posix() for p in (out / "masks").rglob("*.png"))
    assert names == ["sub/t0.png.png", "t0.jpg.png", "t1.jpg.png"]
    assert [r["mask_file"] for r in json.loads((out / "predictions.json").read_text())] == [f"masks/{n}" for n in ("sub/t0.png.png", "t0.jpg.png", "t1.jpg.png")]


def test_targets_that_are_no_images_or_bombs_fail_before_the_model_is_built(scene, capsys, monkeypatch):
    """A decompression bomb or a text file among the targets: one line naming it, nothing written, no model built."""
    built = []
    monkeypatch.setattr(segment, "model_from_args", lambda args: built.append(args))
    Image.new("L", (200, 200)).save(scene / "big.png")
    (scene / "notes.jpg").write_text("not an image")
    out = scene / "bomb_out"
    for target, message in (("big.png", "big.png is 200 x 200 pixels by its header"), ("notes.jpg", "notes.jpg cannot be decoded")):
        code = segment.main(["--reference", str(scene / "ref.jpg"), "--reference-mask", str(scene / "ref_mask.png"),
                             "--target", str(scene / "targets"), str(scene / target), "--out", str(out), *TINY_ARGS,
                             "--max-image-pixels", "24000"])  # the limit scaled down: 40,000 pixels > 24,000 > the reference
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not built and not out.exists()


def test_same_named_targets_from_two_folders_get_distinct_files(scene):
    other = scene / "other"
    other.mkdir()
    (other / "t0.jpg").write_bytes((scene / "targets" / "t0.jpg").read_bytes())
    out = scene / "two"
    assert segment.main(["--reference", str(scene / "ref.jpg"), "--reference-mask", str(scene / "ref_mask.png"), "--no-overlays",
                         "--target", str(scene / "targets" / "t0.jpg"), str(other / "t0.jpg"), "--out", str(out), *TINY_ARGS]) == 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["t0.jpg.png", "t0.jpg~2.png"]


@pytest.mark.parametrize(
    "order, message",
    [
        (["--reference-mask", "M", "--reference", "R"], "--reference-mask {M} comes before any --reference"),
        (["--reference", "R", "--reference", "R", "--reference-mask", "M", "--reference-box", "1,2,30,40"],
         "--reference #1 {R} has no prompt before the next --reference"),
        (["--reference", "R", "--reference-mask", "M", "--reference-box", "1,2,30,40"], "--reference-box 1,2,30,40 is a second prompt for --reference #1 {R}"),
    ],
)
def test_a_prompt_not_right_after_its_reference_is_refused(scene, capsys, order, message):
    """Case 10: a prompt option before its --reference would be paired with another image."""
    names = {"M": str(scene / "ref_mask.png"), "R": str(scene / "ref.jpg")}
    order = [names.get(item, item) for item in order]
    code = segment.main([*order, "--target", str(scene / "targets"), "--out", str(scene / "paired"), *TINY_ARGS])
    err = capsys.readouterr().err
    assert code == 2 and message.format(**names) in err and "Traceback" not in err
    assert not (scene / "paired").exists()
