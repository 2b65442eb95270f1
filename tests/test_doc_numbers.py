"""One source for every number in the docs (issue 23): the README's and experiments/README's
measured numbers stand in generated blocks, equal to what their sources give (the shipped
results.csv, docs/measured.json with the command line of each run); the commands the README shows
are the ones measured; no result number stands outside a block; docs/MINIATURE.md's results table
is the shipped results.csv."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from sansa_probe.miniature.weights import WEIGHTS_DIR
from sansa_probe.paper import documented
from sansa_probe.paper.documented import BLOCK, DOCS, INSTALL_CPU, MEASURED, RUNS, blocks, check, render

ROOT = Path(__file__).resolve().parents[1]
RECORD = json.loads(MEASURED.read_text())


def test_every_block_is_what_its_sources_give():
    assert check(RECORD) == [], "run: python -m sansa_probe.paper.documented --write"
    names = [name for doc in DOCS for name, _ in blocks((ROOT / doc).read_text())]
    assert {"main-job", "times", "miniature", "ablation", "experiments"} <= set(names) and len(names) == len(set(names))


def test_the_measured_runs_are_the_documented_commands():
    for name, entry in RECORD["runs"].items():
        expected = list(INSTALL_CPU) if name == "install" else list(RUNS[name].argv)
        assert entry["argv"] == expected, f"{name}: measured with another command line; measure it again"
    for name in ("main-job", "pca-fold0", "suite"):  # the times the README states
        assert RECORD["runs"][name]["seconds"].get("idle"), f"{name}: no idle time measured"
    install = RECORD["runs"]["install"]
    assert install["seconds"].get("idle") or install["note"].startswith("not measured: "), "install: a time, or why there is none"
    for name in ("main-job", "pca-fold0"):
        assert RECORD["runs"][name]["seconds"].get("busy"), f"{name}: no busy time measured"


def test_the_measured_runs_ran_on_the_shipped_miniature():
    """A run recorded on other weights (the miniature re-trained since) is stale: its numbers are not
    what the shipped model gives."""
    fingerprint = documented.miniature_fingerprint()
    stale = [name for name, entry in RECORD["runs"].items() if name not in ("install", "suite") and entry.get("miniature") != fingerprint]
    assert stale == [], f"measured on other weights; run: python -m sansa_probe.paper.documented --measure {' '.join(stale)} --write"


def test_the_readme_shows_the_measured_install_and_main_job():
    text = (ROOT / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert len(first) == 1, "the main job is one command a new user copies: install && run"
    install, run = first[0].rsplit(" && ", 1)
    assert install == " && ".join(INSTALL_CPU)  # the CPU-only wheels first
    assert shlex.split(run) == ["python", *RUNS["main-job"].argv]
    assert "python -m sansa_probe.ablation " + " ".join(RUNS["ablation"].argv[2:]) in text
    assert "python -m sansa_probe.pca --fold 0" in render("times", RECORD).replace("`", "")


_RESULT = re.compile(r"(?<![\w.])[+-]?\d+\.\d+ ?(?:%|points|mIoU|s\b)|\b\d+ s (?:on|idle|busy)")


def _outside_blocks(text: str) -> list[str]:
    return [line for line in BLOCK.sub("", text).splitlines()]


@pytest.mark.parametrize("doc", DOCS)
def test_no_result_number_stands_outside_a_block(doc):
    """Measured numbers (percentages, mIoU, points, seconds) only in generated blocks; the release's
    reported per-fold mIoU (its table) and the paper's numbers are quotes, not ours."""
    stray = [line for line in _outside_blocks((ROOT / doc).read_text())
             if _RESULT.search(line) and "drive.google.com" not in line and "reported by the release" not in line]
    assert stray == []


def _cells(text: str, header_has: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the first markdown table in ``text`` whose header line holds ``header_has``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and header_has in line)
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return header, rows


# a column of docs/MINIATURE.md's results table (its header holds the key) -> the results.csv rows it shows, how it is printed
_MINIATURE_COLUMNS = {
    "every-object oracle": ([("every_object_oracle", "few_shot_1shot_miou")], 1, 1.0),
    "frozen (other-class ref.)": ([("frozen", "few_shot_1shot_miou"), ("frozen", "few_shot_1shot_miou_other_class_reference")], 1, 1.0),
    "adapted (other-class ref.)": ([("adapted", "few_shot_1shot_miou"), ("adapted", "few_shot_1shot_miou_other_class_reference")], 1, 1.0),
    "linear probe frozen / adapted": ([("frozen", "linear_probe_miou"), ("adapted", "linear_probe_miou")], 1, 1.0),
    "PCA area frozen / adapted": ([("frozen", "pca_auc_relative_accuracy"), ("adapted", "pca_auc_relative_accuracy")], 3, 1.0),
    "NCC acc. frozen / adapted": ([("frozen", "pca_full_accuracy"), ("adapted", "pca_full_accuracy")], 1, 100.0),
}


def test_miniature_doc_table_is_the_shipped_results():
    results = pd.read_csv(WEIGHTS_DIR / "results.csv")
    value = results.set_index(["fold", "model", "metric"])["value"]
    header, rows = _cells((ROOT / "docs" / "MINIATURE.md").read_text(), "| fold |")
    assert rows, "docs/MINIATURE.md: no results table found"
    checked = 0
    for column, name in enumerate(header):
        spec = next((v for k, v in _MINIATURE_COLUMNS.items() if k in name), None)
        if spec is None:
            continue
        keys, decimals, scale = spec
        for row in rows:
            shown = [float(x) for x in re.findall(r"\d+\.\d+", row[column])]
            assert len(shown) == len(keys), f"docs/MINIATURE.md fold {row[0]}, {name!r}: {row[column]!r}"
            for number, (model, metric) in zip(shown, keys):
                assert number == round(scale * float(value[(row[0], model, metric)]), decimals), f"docs/MINIATURE.md fold {row[0]} {model} {metric}"
                checked += 1
    assert checked >= 16  # both 1-shot columns of four folds at least


def test_blocks_render_the_settings_beside_the_numbers():
    record = {"machine": {"cpus": 2}, "runs": {
        "main-job": {"values": {"frozen": 27.651, "adapted": 28.529, "difference": 0.878, "ci_low": 0.599, "ci_high": 1.091,
                                "episodes": 100, "n_classes": 16, "fold": 0, "shots": 1, "prompt": "mask", "protocol": "release",
                                "seed": 0, "model_size": 128, "data_size": 256, "confidence": 0.95}},
        "pca-fold0": {"seconds": {"idle": 250.0, "busy": 731.0}, "date": "2026-12-07"},
        "suite": {"seconds": {"idle": 420.4}, "values": {"passed": 700}, "date": "2026-12-08", "commit": "abc1234"},
    }}  # fmt: skip
    text = render("main-job", record)
    assert "frozen SAM2 27.65 % vs SANSA 28.53 % mIoU, +0.88 points, 95 % CI [+0.60, +1.09]" in text
    assert "100 1-shot mask episodes of fold 0's 16 novel classes, seed 0" in text and "drawn at 256 px" in text and "128 px" in text
    times = render("times", record)
    assert "2-core" in times and "2026-12-07 to 2026-12-08" in times and "4 min 10 s idle, 12 min 11 s busy" in times
    assert "the CPU-only install not measured;" in times and "7 min 00 s idle (at abc1234)" in times
    with pytest.raises(ValueError, match="block 'nope'"):
        render("nope", record)
    assert documented.blocks("a\n<!-- numbers: x -->\nold\n<!-- /numbers -->\nb") == [("x", "old\n")]


def test_every_experiment_script_has_its_measured_row():
    missing = [script for _, script, _, _ in documented.EXPERIMENTS if script not in RECORD["runs"]]
    assert missing == [], f"measure them: python -m sansa_probe.paper.documented --measure {' '.join(missing)}"
    assert {script for _, script, _, _ in documented.EXPERIMENTS} == {p.stem for p in (ROOT / "experiments").glob("*.py") if not p.stem.startswith("bench_")} - {"ablation_release_options"}


def test_the_experiments_table_cells_come_from_the_rows():
    run = {"seconds": {"idle": 12.3}, "date": "2026-12-06",
           "values": {"rows": [{"method": "SANSA", "setting": "strict", "shots": 1, "metric": "miou", "ours": 32.33},
                               {"method": "SAM 2", "setting": "", "shots": 5, "metric": "img/s", "ours": 2.25}]}}
    text = render("experiments", {"machine": {"cpus": 2}, "runs": {"table1_strict_fss": run, "fig2_pca_rgb": {**run, "values": {"rows": []}}}})
    row = next(line for line in text.splitlines() if "`table1_strict_fss.py`" in line)
    assert "SANSA strict 32.3; SAM 2 5-shot img/s 2.25 (`--small --episodes 100`)" in row
    assert "figure only" in next(line for line in text.splitlines() if "`fig2_pca_rgb.py`" in line)
    assert "not measured" in next(line for line in text.splitlines() if "`table9_sequence_length.py`" in line)
    assert "each script took 12-12 s" in text


def test_measure_spells_out_experiments_and_stale_runs():
    record = {"runs": {"main-job": {"miniature": "old"}, "ablation": {"miniature": documented.miniature_fingerprint()}, "suite": {}}}
    assert documented.expand(["stale"], record) == ["main-job"]
    assert documented.expand(["main-job", "experiments", "stale"], record) == ["main-job", *(s for _, s, _, _ in documented.EXPERIMENTS)]


def test_keep_times_records_new_numbers_beside_the_old_times(tmp_path, monkeypatch):
    path = tmp_path / "measured.json"
    path.write_text(json.dumps({"runs": {"main-job": {"seconds": {"idle": 33.2}, "argv": list(RUNS["main-job"].argv), "values": {"frozen": 1.0},
                                                      "commit": "old"}}}))
    monkeypatch.setattr(documented, "_one", lambda run: (99.0, {"frozen": 2.0}, list(run.argv)))
    monkeypatch.setattr(documented, "_commit", lambda: "new")
    entry = documented.measure(["main-job"], path=path, keep_times=True)["runs"]["main-job"]
    assert entry["values"] == {"frozen": 2.0} and entry["seconds"] == {"idle": 33.2} and entry["times_commit"] == "old" and entry["commit"] == "new"
    entry = documented.measure(["main-job"], path=path)["runs"]["main-job"]
    assert entry["seconds"] == {"idle": 99.0} and "times_commit" not in entry


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_busy_machine_s_burners_end_with_the_measuring_process():
    """Killed by a timeout, the measuring process runs no cleanup: its burners must end by themselves."""
    import subprocess
    import sys
    import time

    code = "from sansa_probe.paper.documented import _burners; import os; print(' '.join(str(b.pid) for b in _burners(2)), flush=True); os._exit(0)"
    pids = [int(p) for p in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()]
    assert len(pids) == 2
    deadline = time.time() + 10
    while time.time() < deadline and any(map(_running, pids)):
        time.sleep(0.1)
    assert not any(map(_running, pids))
