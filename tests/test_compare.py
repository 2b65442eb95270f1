"""python -m sansa_probe.compare: both models on the same episodes, paired bootstrap, files and one line."""

import json

import pandas as pd
import pytest
import torch

from sansa_probe import compare

DATA = ["--dataset", "synthetic", "--dataset-option", "image_size=128", "--dataset-option", "images_per_class=4",
        "--episodes", "6", "--num-workers", "0", "--no-progress", "--device", "cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("compare")
    try:
        assert compare.main([*DATA, "--bootstrap", "200", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_compare_runs_both_models_and_matches_their_mious(compared, capsys):
    assert {p.name for p in compared.iterdir()} >= {"frozen", "adapted", "comparison.csv", "comparison.png", "comparison.pdf", "summary.json"}
    table = pd.read_csv(compared / "comparison.csv")
    miou = {}
    for name in ("frozen", "adapted"):
        results = pd.read_csv(compared / name / "results.csv")
        miou[name] = results.loc[(results["metric"] == "miou") & (results["fold"].astype(str) == "0"), "value"].item()
    overall = table[table["scope"] == "overall"].iloc[0]
    assert overall["frozen"] == pytest.approx(miou["frozen"]) and overall["adapted"] == pytest.approx(miou["adapted"])
    assert overall["ci_low"] <= overall["difference"] <= overall["ci_high"]
    frozen_eps = pd.read_csv(compared / "frozen" / "episodes.csv")
    adapted_eps = pd.read_csv(compared / "adapted" / "episodes.csv")
    assert frozen_eps["target_id"].tolist() == adapted_eps["target_id"].tolist()  # the same episodes
    assert (frozen_eps["adapters"] == "off").all() and (adapted_eps["adapters"] == "on").all()
    summary = json.loads((compared / "summary.json").read_text())
    assert "paired bootstrap CI" in summary["result"]
    # the model under the table and the figure: the shipped miniature and its fold-0 adapters, named with their hashes
    assert table["identity"].str.startswith("hiera_t SAM2 2.1 @128px | SAM2: the miniature SAM2 pretrained here (sha256 ").all()
    assert "adapters: miniature fold-0 adapters (sha256 " in summary["identity"] and isinstance(summary["warnings"], list)
    assert not any("RANDOM" in w or "FRESH" in w for w in summary["warnings"])  # trained weights: nothing to flag


def test_from_runs_recomputes_the_same_table(compared, tmp_path, capsys):
    out = tmp_path / "again"
    argv = ["--from-runs", str(compared / "frozen"), str(compared / "adapted"), "--bootstrap", "200", "--out", str(out)]
    assert compare.main(argv) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "comparison.csv"), pd.read_csv(compared / "comparison.csv"))
    # stdout alone (cmd > log.txt) says the verdict holds for these episodes and that warnings go with it
    stdout = capsys.readouterr().out
    warned = json.loads((out / "summary.json").read_text())["warnings"]
    assert any("MINIATURE" in w for w in warned)
    assert f"read it with the {len(warned)} warning(s) printed on stderr" in stdout
    assert "on these episodes (interval" in stdout or "no significant difference" in stdout


def test_errors_are_one_line(compared, tmp_path, capsys):
    assert compare.main([*DATA, "--adapters", "on", "--out", str(tmp_path / "a")]) == 2
    assert "compare runs both" in capsys.readouterr().err
    assert compare.main(["--from-runs", str(tmp_path), str(compared / "adapted"), "--out", str(tmp_path / "b")]) == 2
    assert "expected an evaluate output folder" in capsys.readouterr().err
    assert compare.main([*DATA, "--bootstrap", "5", "--out", str(tmp_path / "c")]) == 2


def test_identical_models_are_warned_about_in_words(compared, tmp_path, capsys):
    """The same run twice (as with untrained adapters): the difference is exactly 0, and it says why that is suspicious."""
    out = tmp_path / "same"
    assert compare.main(["--from-runs", str(compared / "frozen"), str(compared / "frozen"), "--bootstrap", "200", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert any("frozen SAM2 and SANSA give the same value" in w for w in summary["warnings"])
    assert "warning: compare, overall mIoU: frozen SAM2 and SANSA give the same value" in capsys.readouterr().err
    healthy = json.loads((compared / "summary.json").read_text())
    assert not any("same value" in w for w in healthy["warnings"])
