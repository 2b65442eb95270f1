"""A training run's folder is never mixed with another run, nothing NaN is saved, Ctrl-C saves a resumable state."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
from pathlib import Path

import pytest
import torch

from sansa_probe import train
from sansa_probe.training import trainer as trainer_module

SIZE = 128
TINY_CLI = ["--backbone", "hiera_t", "--image-size", str(SIZE), "--sam2-checkpoint", "none", "--device", "cpu",
            "--dataset", "synthetic", "--dataset-option", f"image_size={SIZE}", "--dataset-option", "images_per_class=4", "--num-workers", "0",
            "--no-progress", "--epochs", "1", "--batch-size", "2", "--micro-batch", "2", "--targets", "1", "--save-every", "1"]


def _train(out: Path, *extra: str, steps: int = 2) -> int:
    return train.main([*TINY_CLI, "--episodes-per-epoch", str(2 * steps), "--out", str(out), *extra])


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _losses(out: Path) -> list[tuple[str, str]]:
    with open(out / "log.csv", newline="") as handle:
        return [(row["step"], row["loss"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "finished"
    assert _train(out, steps=2) == 0
    return out


def test_a_new_run_never_overwrites_a_finished_run(finished_run, tmp_path, capsys):
    """Case 1: train into a finished run's --out without --resume: refused, nothing changed; --overwrite replaces it."""
    before = _hashes(finished_run)
    assert {"run.json", "log.csv", "final.pt", "adapters.pt", "checkpoints/last.pt"} <= set(before)
    capsys.readouterr()
    assert _train(finished_run, steps=1) == 2
    err = capsys.readouterr().err
    assert f"--out {finished_run} already holds a training run (adapters.pt, checkpoints, final.pt, log.csv, run.json)" in err
    assert "--overwrite" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _hashes(finished_run) == before

    copy = tmp_path / "copy"
    copy.mkdir()
    for name, _ in before.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((finished_run / name).read_bytes())
    (copy / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert _train(copy, "--overwrite", "--max-steps", "1", steps=3) == 2  # a file no run wrote: refused even so (issue 22)
    err = capsys.readouterr().err
    assert "notes.txt" in err and len(err.strip().splitlines()) == 1 and _hashes(copy) == {**before, "notes.txt": _hashes(copy)["notes.txt"]}
    (copy / "notes.txt").rename(tmp_path / "notes.txt")
    assert _train(copy, "--overwrite", "--max-steps", "1", steps=3) == 0
    assert [step for step, _ in _losses(copy)] == ["1"]  # the old history is gone, not mixed in
    assert not (copy / "final.pt").exists() and not (copy / "adapters.pt").exists()  # the old run's results too
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == ["last.pt"]


@pytest.mark.parametrize(
    "extra, setting, recorded, current",
    [
        (["--fold", "1"], "--fold", "0", "1"),
        (["--prompt", "box"], "--prompt", "mask", "box"),
        (["--dataset-option", "images_per_class=5"], "--dataset-option", "image_size=128 images_per_class=4", "image_size=128 images_per_class=5"),
        (["--lr", "0.001"], "--lr", "0.0001", "0.001"),
    ],
)
def test_resume_names_the_setting_that_differs(finished_run, capsys, extra, setting, recorded, current):
    """Case 2: --resume with another fold, prompt or dataset option is refused before any work, naming it."""
    before = _hashes(finished_run)
    capsys.readouterr()
    args = [*TINY_CLI, "--episodes-per-epoch", "4", "--out", str(finished_run), "--resume"]
    if "=" in extra[1]:  # a --dataset-option: replace the one with that key
        key = extra[1].split("=")[0]
        position = next(i for i, a in enumerate(args) if a.startswith(key + "=")) - 1
    else:
        position = args.index(extra[0]) if extra[0] in args else None
    if position is not None:
        args[position + 1] = extra[1]
    else:
        args += extra
    assert train.main(args) == 2
    err = capsys.readouterr().err
    assert f"--resume: {finished_run} was trained with {setting} {recorded}, this run has {setting} {current}" in err
    assert "Traceback" not in err
    assert _hashes(finished_run) == before


def test_resume_checks_the_checkpoint_it_is_given(finished_run, tmp_path, capsys):
    """An explicit --resume checkpoint carries the run settings too: another fold is refused."""
    capsys.readouterr()
    code = train.main([*TINY_CLI, "--episodes-per-epoch", "4", "--fold", "2", "--out", str(tmp_path / "elsewhere"),
                       "--resume", str(finished_run / "checkpoints" / "last.pt")])
    assert code == 2
    assert "was trained with --fold 0, this run has --fold 2" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere" / "log.csv").exists()


def test_a_nan_loss_stops_training_and_nothing_nan_is_saved(tmp_path, capsys, monkeypatch):
    """Case 6: the loss turns NaN at step 2: rc 2, one line, step 1's checkpoint intact, no final.pt/adapters.pt."""
    real = trainer_module.segmentation_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        terms = real(*args, **kwargs)
        return {k: v * float("nan") for k, v in terms.items()} if calls["n"] >= 2 else terms

    monkeypatch.setattr(trainer_module, "segmentation_loss", poisoned)
    out = tmp_path / "nan"
    assert _train(out, steps=3) == 2
    err = capsys.readouterr().err
    assert "training stopped at step 2: non-finite loss or gradient (loss=nan" in err
    assert f"the last checkpoint is {out / 'checkpoints' / 'last.pt'} (step 1)" in err and "Traceback" not in err
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 1 and all(torch.isfinite(t).all() for t in state["trainable"].values())
    assert not (out / "final.pt").exists() and not (out / "adapters.pt").exists()
    assert [step for step, _ in _losses(out)] == ["1"]


def test_ctrl_c_saves_and_resume_equals_the_unbroken_run(tmp_path, capsys, monkeypatch):
    """SIGINT during step 2: the step finishes, last.pt is saved, one line, rc 130; --resume gives the unbroken run."""
    unbroken = tmp_path / "unbroken"
    assert _train(unbroken, steps=4) == 0
    real = trainer_module.segmentation_loss
    calls = {"n": 0}

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered inside step 2
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "segmentation_loss", interrupting)
    broken = tmp_path / "broken"
    capsys.readouterr()
    assert _train(broken, steps=4) == 130
    printed = capsys.readouterr()
    err = printed.err.strip().splitlines()
    assert printed.out.startswith("model (before training): ") and all(line.startswith("warning: ") for line in err[:-1])  # then one line
    assert err[-1] == f"sansa_probe.train: interrupted at step 2 of 4; saved {broken / 'checkpoints' / 'last.pt'}: rerun with --resume to continue"
    assert torch.load(broken / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is not left behind
    monkeypatch.setattr(trainer_module, "segmentation_loss", real)
    assert _train(broken, "--resume", steps=4) == 0
    assert _losses(broken) == _losses(unbroken)
    resumed = torch.load(broken / "final.pt", weights_only=True)["trainable"]
    reference = torch.load(unbroken / "final.pt", weights_only=True)["trainable"]
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
