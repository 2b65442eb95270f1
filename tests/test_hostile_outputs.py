"""Hostile catalogue, outputs (issue 22, "Loss"): a command removes or replaces only what a run
of the same command wrote there; a folder holding anything else is refused (one line naming a
few of its files); ``--out`` inside an input folder is refused; ``evaluate`` and ``compare``
refuse a finished run's folder unless ``--overwrite``; ``train --resume`` without a checkpoint
names what is missing.

Every case runs the real command (``main(argv)``) on the miniature written to files, on tiny
images, and asserts that the user's files are byte for byte as they were.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hostile_helpers import MiniFiles, error_line, run_main, snapshot, write_mini_files, write_references_file, write_scene


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> MiniFiles:
    return write_mini_files(tmp_path_factory.mktemp("mini"))


@pytest.fixture
def scene(tmp_path) -> Path:
    return write_scene(tmp_path / "scene")


def segment_argv(scene: Path, out: Path, mini: MiniFiles, *extra: str) -> list[str]:
    return ["--reference", scene / "ref.png", "--reference-mask", scene / "ref_mask.png", "--target", scene / "targets",
            "--out", out, *mini.args(), *extra]


def user_folder_dataset(root: Path) -> dict[str, bytes]:
    """A user's folder in the layout of the ``folder`` dataset (``images/`` + ``masks/``) plus their
    own ``summary.json``: exactly the names segment writes."""
    write_scene(root / "tmp-scene")
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shutil.copy(root / "tmp-scene" / "ref.png", root / "images" / "cat.png")
    shutil.copy(root / "tmp-scene" / "ref_mask.png", root / "masks" / "cat_1.png")
    shutil.rmtree(root / "tmp-scene")
    (root / "summary.json").write_text('{"my": "notes"}\n')
    return snapshot(root)


# ---------------------------------------------------------------------------------- segment
def test_segment_refuses_a_folder_holding_the_users_masks_and_summary(scene, mini, tmp_path, capsys):
    """Was: the user's masks/ and summary.json deleted, exit code 0."""
    data = tmp_path / "data"
    before = user_folder_dataset(data)
    code, err = run_main("segment", segment_argv(scene, data, mini), capsys)
    assert code == 2
    line = error_line(err)
    assert "--out" in line and ("masks" in line or "summary.json" in line or "images" in line), line
    assert snapshot(data) == before


def test_segment_no_overlays_leaves_an_overlays_folder_it_did_not_write(scene, mini, tmp_path, capsys):
    """Was: staging removed every output name, also ``overlays/`` that this run (``--no-overlays``)
    did not write; here it holds the user's own file beside a previous run of ours."""
    out = tmp_path / "out"
    code, err = run_main("segment", segment_argv(scene, out, mini, "--no-overlays"), capsys)
    assert code == 0, err
    (out / "overlays").mkdir()
    (out / "overlays" / "mine.png").write_bytes(b"the user's own picture")
    code, err = run_main("segment", segment_argv(scene, out, mini, "--no-overlays"), capsys)
    assert (out / "overlays" / "mine.png").read_bytes() == b"the user's own picture"
    assert code == 2 and "overlays/mine.png" in error_line(err)


def test_segment_rerun_replaces_its_own_outputs(scene, mini, tmp_path, capsys):
    """The other side of the rule: a folder holding only a previous segment run is reused, its
    files replaced (a second target set leaves no mask of the first)."""
    out = tmp_path / "out"
    assert run_main("segment", segment_argv(scene, out, mini), capsys)[0] == 0
    first = sorted(p.name for p in (out / "masks").iterdir())
    (scene / "targets" / "t0.png").rename(scene / "targets" / "renamed.png")
    code, err = run_main("segment", segment_argv(scene, out, mini), capsys)
    assert code == 0, err
    assert first == ["t0.png.png", "t1.png.png"] and sorted(p.name for p in (out / "masks").iterdir()) == ["renamed.png.png", "t1.png.png"]
    assert json.loads((out / "summary.json").read_text())["n_targets"] == 2


def test_segment_refuses_out_inside_the_target_folder(scene, mini, capsys):
    """Was: accepted, and the next run segmented its own outputs as targets."""
    before = snapshot(scene / "targets")
    out = scene / "targets" / "results"
    code, err = run_main("segment", segment_argv(scene, out, mini), capsys)
    assert code == 2
    line = error_line(err)
    assert "--out" in line and "--target" in line, line
    assert snapshot(scene / "targets") == before and not out.exists()


# ---------------------------------------------------------------------------------- annotate
def annotate_argv(scene: Path, out: Path, mini: MiniFiles, *extra: str) -> list[str]:
    return ["--references", write_references_file(scene), "--targets", scene / "targets", "--out", out,
            "--num-workers", "0", "--save-masks", *mini.args(), *extra]


def test_annotate_overwrite_keeps_a_masks_folder_no_annotate_run_wrote(scene, mini, tmp_path, capsys):
    """Was: ``--overwrite`` deleted a ``masks/`` folder that no annotate run ever wrote."""
    out = tmp_path / "labels"
    (out / "masks").mkdir(parents=True)
    (out / "masks" / "by-hand.png").write_bytes(b"hours of work")
    before = snapshot(out)
    code, err = run_main("annotate", annotate_argv(scene, out, mini, "--overwrite"), capsys)
    assert code == 2 and "masks/by-hand.png" in error_line(err)
    assert snapshot(out) == before


def test_annotate_refuses_out_inside_the_targets_folder(scene, mini, capsys):
    before = snapshot(scene / "targets")
    code, err = run_main("annotate", annotate_argv(scene, scene / "targets" / "labels", mini), capsys)
    assert code == 2
    line = error_line(err)
    assert "--out" in line and "--targets" in line, line
    assert snapshot(scene / "targets") == before


# ---------------------------------------------------------------------------------- train
TRAIN = ["--dataset", "synthetic", "--dataset-option", "image_size=64", "--dataset-option", "n_classes=8",
         "--dataset-option", "images_per_class=2", "--epochs", "1", "--episodes-per-epoch", "2", "--batch-size", "2",
         "--micro-batch", "2", "--targets", "1", "--num-workers", "0", "--save-every", "1"]


def test_train_resume_of_a_finished_run_without_last_pt_is_an_error(mini, tmp_path, capsys):
    """Was: restarted at step 0 and replaced ``adapters.pt`` and ``log.csv``."""
    out = tmp_path / "run"
    code, err = run_main("train", [*TRAIN, *mini.args(), "--out", out], capsys)
    assert code == 0, err
    (out / "checkpoints" / "last.pt").unlink()
    before = snapshot(out)
    code, err = run_main("train", [*TRAIN, *mini.args(), "--out", out, "--resume"], capsys)
    assert code == 2
    line = error_line(err)
    assert "--resume" in line and "last.pt" in line, line
    assert snapshot(out) == before


def test_train_resume_on_a_new_or_mistyped_out_is_an_error(mini, tmp_path, capsys):
    """Was: silently started a fresh run."""
    out = tmp_path / "run-typo"
    code, err = run_main("train", [*TRAIN, *mini.args(), "--out", out, "--resume"], capsys)
    assert code == 2
    line = error_line(err)
    assert "--resume" in line and "last.pt" in line, line
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------------------------- evaluate, compare
EVALUATE = ["--dataset", "synthetic", "--dataset-option", "image_size=64", "--dataset-option", "n_classes=8",
            "--dataset-option", "images_per_class=2", "--episodes", "2", "--num-workers", "0", "--no-progress", "--device", "cpu"]


def test_evaluate_refuses_a_finished_runs_folder_unless_overwrite(tmp_path, capsys):
    """Was: a second evaluate into the same --out replaced the first one's results without a word."""
    out = tmp_path / "eval"
    code, err = run_main("evaluate", [*EVALUATE, "--out", out], capsys)
    assert code == 0, err
    before = snapshot(out)
    code, err = run_main("evaluate", [*EVALUATE, "--seed", "1", "--out", out], capsys)
    assert code == 2 and "--overwrite" in error_line(err)
    assert snapshot(out) == before
    code, err = run_main("evaluate", [*EVALUATE, "--seed", "1", "--out", out, "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["seed"] == 1


def test_compare_refuses_a_finished_runs_folder_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = [*EVALUATE, "--bootstrap", "100", "--out", out]
    code, err = run_main("compare", argv, capsys)
    assert code == 0, err
    before = snapshot(out)
    code, err = run_main("compare", argv, capsys)
    assert code == 2 and "--overwrite" in error_line(err)
    assert snapshot(out) == before
    code, err = run_main("compare", [*argv, "--overwrite"], capsys)
    assert code == 0, err


def test_evaluate_refuses_a_folder_holding_files_no_run_wrote(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "results.csv").write_text("my,own,table\n")
    for extra in ([], ["--overwrite"]):  # was: replaced by evaluate's own results.csv, exit code 0
        code, err = run_main("evaluate", [*EVALUATE, "--out", out, *extra], capsys)
        assert code == 2 and "results.csv" in error_line(err)
        assert (out / "results.csv").read_text() == "my,own,table\n"
