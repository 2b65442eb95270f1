"""Hostile catalogue, outputs of ``python -m sansa_probe.miniature`` (issue 22, "Loss"): the
pipeline replaces in its ``--out`` only what a miniature run wrote there (``sansa-manifest.json``);
a folder holding anything else, another command's run, or lying inside the package's weights
folder is refused in one line before the first stage; ``--ship`` writes only the package's weights
folder, under its own checksum manifest.

The stages are replaced by stand-ins that write a few bytes where the real ones write weights
(pretraining, adapters, measurements), so each case costs milliseconds; the command's ``main`` and
the pipeline's folder handling are the real ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from hostile_helpers import error_line, run_main, snapshot

from sansa_probe.io.manifest import MANIFEST
from sansa_probe.miniature import pipeline
from sansa_probe.miniature.stages import DEFAULT_STAGES
from sansa_probe.miniature.weights import FOLDS

ARGS = ["--jobs", "1", "--threads", "1", "--no-progress"]


class Stages:
    """Stand-ins for the expensive stages; ``calls`` counts the pretraining runs (the first stage)."""

    def __init__(self) -> None:
        self.calls = 0

    def run_stages(self, stages, *, out, processes=1, progress=True):
        self.calls += 1
        for stage in stages:
            folder = Path(out) / stage.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "sam2.pt").write_bytes(b"stage weights")
        return [(stages[-1], {})]

    @staticmethod
    def train_fold(weights, out, fold, recipe, *, progress=True, loader_workers=1):
        (out / f"fold{fold}").mkdir(parents=True, exist_ok=True)
        (out / f"fold{fold}" / "adapters.pt").write_bytes(b"adapters")
        (weights / f"fold{fold}.pt").write_bytes(b"adapters")
        return weights / f"fold{fold}.pt"


class _Sam:
    def load_state_dict(self, state):
        return None


@pytest.fixture
def stages(monkeypatch, tmp_path) -> Stages:
    fake = Stages()
    monkeypatch.setattr(pipeline, "run_stages", fake.run_stages)
    monkeypatch.setattr(pipeline, "train_fold", fake.train_fold)
    monkeypatch.setattr(pipeline, "build_miniature_sam2", lambda seed=0: _Sam())
    monkeypatch.setattr(pipeline, "export_sam2", lambda sam, path: Path(path).write_bytes(b"float16 weights"))
    monkeypatch.setattr(pipeline, "stage_rows", lambda *args, **kwargs: [])
    table = pd.DataFrame([{"fold": 0, "model": "adapted", "metric": "few_shot_1shot_miou", "value": 0.5}])
    monkeypatch.setattr(pipeline, "measure", lambda *args, **kwargs: table)
    monkeypatch.setattr(pipeline, "WEIGHTS_DIR", tmp_path / "package" / "weights")
    threads = torch.get_num_threads()
    yield fake
    torch.set_num_threads(threads)


def test_user_files_in_out_are_refused_before_the_first_stage(stages, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my,own\n1,2\n")
    (out / "notes.txt").write_text("keep me")
    before = snapshot(out)
    code, err = run_main("miniature.__main__", ["--out", out, *ARGS], capsys)
    assert code == 2
    line = error_line(err)
    assert "results.csv" in line and "notes.txt" in line
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.csv"]
    assert stages.calls == 0


def test_a_run_records_its_files_and_a_rerun_replaces_only_those(stages, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main("miniature.__main__", ["--out", out, *ARGS], capsys)[0] == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["command"] == "sansa_probe.miniature" and manifest["state"] == "complete"
    assert {"results.csv", "run.json", "weights/sam2.pt", *(f"weights/fold{f}.pt" for f in FOLDS)} <= set(manifest["files"])
    assert run_main("miniature.__main__", ["--out", out, *ARGS], capsys)[0] == 0  # a rerun of the same command: accepted
    assert stages.calls == 2

    (out / "results.csv").write_text("edited by the user\n")  # a listed file changed since: the user's now
    before = snapshot(out)
    code, err = run_main("miniature.__main__", ["--out", out, *ARGS], capsys)
    assert code == 2 and "results.csv" in error_line(err)
    assert snapshot(out) == before and stages.calls == 2


def test_another_commands_run_folder_is_refused(stages, tmp_path, capsys):
    out = tmp_path / "segmented"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / MANIFEST).write_text(json.dumps({"format": "sansa-probe/outputs", "version": 1, "command": "sansa_probe.segment",
                                            "state": "complete", "files": {"summary.json": None}}))
    before = snapshot(out)
    code, err = run_main("miniature.__main__", ["--out", out, *ARGS], capsys)
    assert code == 2 and "sansa_probe.segment" in error_line(err)
    assert snapshot(out) == before and stages.calls == 0


def test_out_inside_the_package_weights_folder_is_refused(stages, tmp_path, capsys):
    package = pipeline.WEIGHTS_DIR
    package.mkdir(parents=True)
    code, err = run_main("miniature.__main__", ["--out", package / "run", *ARGS, "--ship"], capsys)
    assert code == 2 and "weights folder" in error_line(err)
    assert not any(package.iterdir()) and stages.calls == 0


def test_ship_writes_only_the_package_weights_folder_and_a_rerun_ships_again(stages, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main("miniature.__main__", ["--out", out, *ARGS, "--ship"], capsys)[0] == 0
    package = pipeline.WEIGHTS_DIR
    shipped = {"manifest.json", "results.csv", "sam2.pt", *(f"fold{f}.pt" for f in FOLDS)}
    assert {p.name for p in package.iterdir()} == shipped
    assert set(json.loads((package / "manifest.json").read_text())["files"]) == shipped - {"manifest.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["package", "run"]  # nothing written beside them
    assert run_main("miniature.__main__", ["--out", out, *ARGS, "--ship"], capsys)[0] == 0  # a finished run ships again
    assert {p.name for p in package.iterdir()} == shipped and stages.calls == 2


def test_a_killed_run_and_an_earlier_versions_folder_resume(stages, tmp_path, capsys):
    killed = tmp_path / "killed"
    pretrain = killed / "pretrain" / DEFAULT_STAGES[0].name
    pretrain.mkdir(parents=True)
    (pretrain / "last.pt").write_bytes(b"half a stage")
    (killed / MANIFEST).write_text(json.dumps({"format": "sansa-probe/outputs", "version": 1, "command": "sansa_probe.miniature",
                                               "state": "running", "files": {"pretrain/": None, "weights/": None}}))
    assert run_main("miniature.__main__", ["--out", killed, *ARGS], capsys)[0] == 0
    assert json.loads((killed / MANIFEST).read_text())["state"] == "complete"

    legacy = tmp_path / "legacy"  # written before the pipeline kept a manifest: its own files only
    (legacy / "pretrain" / DEFAULT_STAGES[0].name).mkdir(parents=True)
    (legacy / "pretrain" / DEFAULT_STAGES[0].name / "log.jsonl").write_text("{}\n")
    (legacy / "weights").mkdir()
    (legacy / "weights" / "sam2.pt").write_bytes(b"old")
    (legacy / "results.csv").write_text("fold,model\n")
    assert run_main("miniature.__main__", ["--out", legacy, *ARGS], capsys)[0] == 0
    assert json.loads((legacy / MANIFEST).read_text())["command"] == "sansa_probe.miniature"

    mixed = tmp_path / "mixed"  # the same, with a file of the user's beside it: refused
    (mixed / "pretrain" / DEFAULT_STAGES[0].name).mkdir(parents=True)
    (mixed / "pretrain" / DEFAULT_STAGES[0].name / "log.jsonl").write_text("{}\n")
    (mixed / "thesis.tex").write_text("mine")
    before = snapshot(mixed)
    code, err = run_main("miniature.__main__", ["--out", mixed, *ARGS], capsys)
    assert code == 2 and "thesis.tex" in error_line(err)
    assert snapshot(mixed) == before
