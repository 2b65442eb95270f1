"""Hostile catalogue, outputs of the paper scripts (issue 22, "Loss"): the ``experiments/`` scripts
(:func:`sansa_probe.paper.script.run_experiment`, :func:`sansa_probe.paper.probes.run_probe_script`,
the encoders script's ``encoders.csv``) replace in their ``--out`` only what a run of a paper
script wrote there (``sansa-manifest.json``); a folder holding anything else is refused in one
line before any work, and so is ``--out`` inside an input folder.

The cases drive the scripts' shared bodies with a stand-in for the expensive part (the table's
runs, the probe commands), so each costs milliseconds; one case runs a real script.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
from hostile_helpers import error_line, snapshot

from sansa_probe.io.manifest import MANIFEST
from sansa_probe.paper import encoders as paper_encoders
from sansa_probe.paper.probes import run_probe_script
from sansa_probe.paper.runs import Measurement, ours_frame
from sansa_probe.paper.script import run_experiment

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


class FakeTable:
    """A table's runs: records that it ran and writes a trained variant as ``train_variant`` does."""

    def __init__(self, table: str) -> None:
        self.table, self.calls = table, 0

    def __call__(self, config) -> pd.DataFrame:
        self.calls += 1
        variant = config.out / "train" / "adapters" / "fold0"
        variant.mkdir(parents=True, exist_ok=True)
        (variant / "final.pt").write_bytes(b"weights")
        return ours_frame(self.table, [Measurement("SANSA", "x", "coco20i", "0", 1, "miou", 50.0, "synthetic", "model: stand-in")])


class FakeCommand:
    """A probe command: ``main(argv)`` writes ``summary.csv`` into its ``--out``; ``build_parser``
    knows ``--out`` and the procedural benchmark's options the script adds."""

    __name__ = "sansa_probe.fake"

    def __init__(self) -> None:
        self.calls = 0

    def build_parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        for option in ("--out", "--dataset", "--dataset-option", "--frames"):
            parser.add_argument(option, action="append" if option in ("--dataset-option", "--frames") else "store")
        return parser

    def main(self, argv: list[str]) -> int:
        self.calls += 1
        args, _ = self.build_parser().parse_known_args(argv)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "summary.csv").write_text("metric,value\nx,1\n")
        return 0


def table_script(table: str, out: Path, capsys, *extra: str) -> tuple[int, str, FakeTable]:
    run = FakeTable(table)
    capsys.readouterr()
    code = run_experiment(table, run, ["--small", "--no-progress", "--out", str(out), *extra])
    return code, capsys.readouterr().err, run


def probe_script(out: Path, capsys, *extra: str, table: str = "fig8") -> tuple[int, str, FakeCommand]:
    command = FakeCommand()
    capsys.readouterr()
    code = run_probe_script(table, [(command, [], "pca", "probe")], ["--small", "--out", str(out), *extra],
                            ours=lambda out, on: ours_frame(table, []))
    return code, capsys.readouterr().err, command


def manifest_files(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())["files"]


# ---------------------------------------------------------------------------------- table scripts
def test_table_script_refuses_a_users_file_of_its_tables_name(tmp_path, capsys):
    """Was: the table's runs went ahead and the user's table9.csv was replaced, exit code 0."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "table9.csv").write_text("my,own\n1,2\n")
    before = snapshot(out)
    code, err, run = table_script("table9", out, capsys)
    assert code == 2 and run.calls == 0  # refused before any work
    line = error_line(err)
    assert "--out" in line and "table9.csv" in line, line
    assert snapshot(out) == before


def test_table_script_refuses_a_folder_holding_files_no_run_wrote(tmp_path, capsys):
    out = tmp_path / "photos"
    (out / "2024").mkdir(parents=True)
    (out / "2024" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    code, err, run = table_script("table11", out, capsys)
    assert code == 2 and run.calls == 0
    line = error_line(err)
    assert "notes.txt" in line or "cat.jpg" in line, line
    assert snapshot(out) == before


def test_table_script_refuses_out_inside_the_data_root(tmp_path, capsys):
    """Was: the runs wrote their tables and trained variants into the datasets' folder."""
    data = tmp_path / "data"
    (data / "coco").mkdir(parents=True)
    code, err, run = table_script("table9", data / "results", capsys, "--data-root", str(data))
    assert code == 2 and run.calls == 0
    line = error_line(err)
    assert "--out" in line and "--data-root" in line, line
    assert not (data / "results").exists()


def test_table_scripts_rerun_replace_their_own_files_share_an_out_and_keep_an_edited_one(tmp_path, capsys):
    out = tmp_path / "results"
    for table in ("table3", "table3", "table4"):  # a rerun; table4 shares table3's --out (and its trained variants)
        code, err, run = table_script(table, out, capsys)
        assert code == 0 and run.calls == 1, err
    files = manifest_files(out)
    for table in ("table3", "table4"):
        assert {f"{table}.csv", f"{table}_ours.csv", f"{table}.png", f"{table}.pdf"} <= set(files)
        assert files[f"{table}.csv"]["sha256"]  # recorded with its checksum
    assert "train/" in files  # the trained variants: train runs' folders, kept across reruns
    assert (out / "train" / "adapters" / "fold0" / "final.pt").is_file()
    (out / "table3.csv").write_text("edited by hand\n")  # now the user's
    before = snapshot(out)
    code, err, run = table_script("table3", out, capsys)
    assert code == 2 and run.calls == 0
    assert "table3.csv" in error_line(err)
    assert snapshot(out) == before


def test_table_script_refuses_a_commands_run_folder(tmp_path, capsys):
    """A folder an evaluate run wrote is that command's: a paper script does not mix its files in."""
    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.csv").write_text("metric,value\n")
    (out / MANIFEST).write_text(json.dumps({"format": "sansa-probe/outputs", "version": 1, "command": "sansa_probe.evaluate",
                                            "state": "complete", "files": {"results.csv": None}}))  # fmt: skip
    before = snapshot(out)
    code, err, run = table_script("table1", out, capsys)
    assert code == 2 and run.calls == 0
    assert "sansa_probe.evaluate" in error_line(err)
    assert snapshot(out) == before


def test_a_real_table_script_refuses_the_users_table_before_any_work(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("experiments_table11", EXPERIMENTS / "table11_negative_prompts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "out"
    out.mkdir()
    (out / "table11.csv").write_text("numbers I typed\n")
    before = snapshot(out)
    capsys.readouterr()
    assert module.main(["--small", "--no-progress", "--device", "cpu", "--episodes", "2", "--out", str(out)]) == 2
    assert "table11.csv" in error_line(capsys.readouterr().err)
    assert snapshot(out) == before


# ---------------------------------------------------------------------------------- probe scripts
def test_probe_script_refuses_a_users_file_of_its_tables_name(tmp_path, capsys):
    """Was: the probe commands ran and the user's fig8.csv was replaced, exit code 0."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "fig8.csv").write_text("mine\n")
    before = snapshot(out)
    code, err, command = probe_script(out, capsys)
    assert code == 2 and command.calls == 0
    assert "fig8.csv" in error_line(err)
    assert snapshot(out) == before


def test_probe_script_refuses_out_inside_the_frames_folder(tmp_path, capsys):
    frames = tmp_path / "video"
    frames.mkdir()
    (frames / "00000.jpg").write_bytes(b"\xff\xd8 frame")
    code, err, command = probe_script(frames / "results", capsys, "--frames", str(frames), table="table12")
    assert code == 2 and command.calls == 0
    line = error_line(err)
    assert "--out" in line and "--frames" in line, line
    assert sorted(p.name for p in frames.iterdir()) == ["00000.jpg"]


def test_probe_script_rerun_replaces_its_own_files_and_records_them(tmp_path, capsys):
    out = tmp_path / "fig8"
    for _ in range(2):
        code, err, command = probe_script(out, capsys)
        assert code == 0 and command.calls == 1, err
    files = manifest_files(out)
    assert {"fig8.csv", "fig8_ours.csv", "pca/"} <= set(files)  # the command's folder: judged by its own manifest
    assert files["fig8.csv"]["sha256"]
    (out / "stray.txt").write_text("mine\n")
    before = snapshot(out)
    code, err, command = probe_script(out, capsys)
    assert code == 2 and command.calls == 0 and "stray.txt" in error_line(err)
    assert snapshot(out) == before


def test_encoders_script_refuses_a_users_encoders_csv(tmp_path, capsys, monkeypatch):
    """Was: the six probes ran and ``encoders.csv`` was written over the user's file."""
    command = FakeCommand()
    monkeypatch.setattr(paper_encoders, "STEPS", [(command, [], "pca", "probe")])
    out = tmp_path / "mine"
    out.mkdir()
    (out / "encoders.csv").write_text("my comparison\n")
    before = snapshot(out)
    capsys.readouterr()
    code = paper_encoders.compare_encoders(["--small", "--no-progress", "--out", str(out), "--encoders", "sam2,sansa"])
    assert code == 2 and command.calls == 0
    assert "encoders.csv" in error_line(capsys.readouterr().err)
    assert snapshot(out) == before


def test_a_nested_run_folder_is_never_emptied_by_the_outer_run(tmp_path):
    """The outer run records a folder of other runs as nested: a later run that does not write it
    again removes its own stale files, not the nested runs' ones."""
    from sansa_probe.io.manifest import NESTED, RunFolder

    out = tmp_path / "out"
    folder = RunFolder.open(out, command="sansa_probe.paper").claim("a.csv", "pca/")
    (out / "a.csv").write_text("a\n")
    (out / "pca").mkdir()
    (out / "pca" / "summary.csv").write_text("s\n")
    folder.finish(nested=["pca"])
    assert manifest_files(out)["pca/"] == NESTED and "pca/summary.csv" not in manifest_files(out)
    again = RunFolder.open(out, command="sansa_probe.paper").claim("b.csv")
    (out / "b.csv").write_text("b\n")
    again.finish()  # removes stale files of earlier runs: a.csv, never what is under pca/
    assert sorted(snapshot(out)) == ["b.csv", "pca/summary.csv", MANIFEST]
    assert manifest_files(out)["pca/"] == NESTED
