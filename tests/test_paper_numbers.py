"""The paper's printed numbers (transcribed by hand) against the paper's text, and ours beside them."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from conftest import shared_dir

from sansa_probe.paper import TABLE_IDS, format_side_by_side, paper_numbers, side_by_side


SHARED = shared_dir() if shared_dir() and (shared_dir() / "paper" / "sansa-neurips2025.txt").is_file() else None
needs_paper = pytest.mark.skipif(SHARED is None, reason="../shared/paper/sansa-neurips2025.txt is absent")

# where each table's rows start in the text: the caption (rows follow) or, for fig. 6, its inset's header
ANCHORS = {"table1": "Table 1:", "table2": "Table 2:", "table4": "Table 4:", "table6": "Table 6:", "table8": "Table 8:",
           "table9": "Table 9:", "table10": "Table 10:", "table11": "Table 11:", "table12": "Table 12:", "fig6": "Params\tVRP-SAM"}
_SUFFIX = re.compile(r"(\*| min| M| B|M|%)$")


def _numbers(cells: list[str]) -> list[float]:
    out = []
    for cell in cells:
        cell = _SUFFIX.sub("", cell.strip())
        if re.fullmatch(r"[+-]?\d+(\.\d+)?", cell):
            out.append(float(cell))
    return out


def _is_subsequence(values: list[float], tokens: list[float]) -> bool:
    it = iter(tokens)
    return all(any(math.isclose(v, t) for t in it) for v in values)


@pytest.fixture(scope="module")
def paper_lines() -> list[str]:
    return (SHARED / "paper" / "sansa-neurips2025.txt").read_text(encoding="utf-8").splitlines()


@needs_paper
@pytest.mark.parametrize("table", sorted(ANCHORS))
def test_every_row_matches_the_paper_text_in_order(paper_lines, table):
    start = next(i for i, line in enumerate(paper_lines) if line.startswith(ANCHORS[table]))
    window = paper_lines[start : start + 40]
    numbers = paper_numbers(table)
    assert len(numbers) > 0
    for label, rows in numbers.groupby("label", sort=False):
        line = next((line for line in window if line.startswith(label)), None)
        assert line is not None, f"{table}: no line starting with {label!r} after {ANCHORS[table]!r}"
        tokens = _numbers(line[len(label):].split("\t"))
        assert _is_subsequence(list(rows["value"]), tokens), f"{table} {label!r}: {list(rows['value'])} not in {tokens}"


@needs_paper
def test_table3_and_figures_match_the_text(paper_lines):
    text = "\n".join(paper_lines)
    line = next(line for line in paper_lines if line.startswith("Frozen\t0\t32.2"))
    assert "LoRA [32]\t58.0" in line
    for label, value in [("Full FT", "224 M\t51.6"), ("Decoder FT", "4 M\t52.1"), ("QKV FT", "50 M\t55.3"),
                         ("Backbone FT", "210 M\t55.2"), ("Adapter [31]", "59.4"), ("MONA [80]", "56.9"),
                         ("Bottleneck 0.8× channel dim", "58.2"), ("Bottleneck 0.5× channel dim", "59.6"), ("Bottleneck 0.3× channel dim", "60.2")]:
        assert f"{label}\t{value}" in text, label
    t3 = paper_numbers("table3").set_index(["method", "setting", "metric"])["value"]
    assert t3[("Full FT", "fine-tuning", "miou")] == 51.6 and t3[("Full FT", "fine-tuning", "trainable_params_m")] == 224
    assert t3[("AdaptFormer", "bottleneck ratio 0.5", "miou")] == 59.6
    for phrase in ("SAM2 achieves 65.8% mIoU", "improvement to 69.2% mIoU", "SAM2 achieves 28.9% mIoU, while SANSA reaches 57.5%",
                   "from 2 up to 450"):
        assert phrase in text
    fig9 = paper_numbers("fig9").set_index(["method", "setting"])["value"]
    assert (fig9[("SAM2", "linear probe")], fig9[("SANSA", "linear probe")], fig9[("SAM2", "few-shot")], fig9[("SANSA", "few-shot")]) == (65.8, 69.2, 28.9, 57.5)


def test_numbers_are_tidy_and_complete():
    numbers = paper_numbers()
    assert set(numbers["table"]) == set(TABLE_IDS) - {"fig2", "fig4"}
    assert not numbers.duplicated(["table", "method", "setting", "dataset", "fold", "shots", "metric"]).any()
    sansa = numbers[(numbers["method"] == "SANSA") & (numbers["metric"] == "miou")]
    # the headline number, printed in five tables
    headline = sansa[(sansa["dataset"] == "coco20i") & (sansa["shots"] == 1) & sansa["setting"].isin(["strict", "J=3", "mask", "baseline", "out-of-domain"])]
    assert sorted(headline["table"]) == ["fig6", "table1", "table11", "table4", "table9"] and set(headline["value"]) == {60.2}
    table10 = numbers[(numbers["table"] == "table10") & (numbers["method"] == "SANSA")]
    assert len(table10) == 10 and table10[table10["fold"] == "mean"]["value"].tolist() == [73.1, 72.5]
    assert paper_numbers("fig2").empty
    with pytest.raises(ValueError, match="table 'table5': expected one of"):
        paper_numbers("table5")


def _ours(rows):
    base = dict(table="table9", method="SANSA", dataset="coco20i", fold="mean", shots=1, metric="miou", ours_dataset="coco20i")
    return pd.DataFrame([{**base, **row} for row in rows])


def test_side_by_side_puts_the_paper_beside_ours_with_the_difference():
    ours = _ours([dict(setting="J=3", value=58.7), dict(setting="J=1", value=57.5), dict(method="SAM2", setting="J=3", value=30.0)])
    table = side_by_side(ours, "table9")
    row = table[(table["method"] == "SANSA") & (table["setting"] == "J=3")].iloc[0]
    assert (row["paper"], row["ours"], round(row["difference"], 6)) == (60.2, 58.7, -1.5)
    assert round(table[table["setting"] == "J=1"]["difference"].iloc[0], 6) == 0.5
    frozen = table[table["method"] == "SAM2"].iloc[0]
    assert math.isnan(frozen["paper"]) and frozen["ours"] == 30.0  # the paper prints no frozen row in table 9
    assert not table["reference_only"].any()
    assert len(side_by_side(ours, "table9", all_paper_rows=True)) == 13  # 12 printed + our frozen row
    text = format_side_by_side(table, "table9")
    assert "60.2" in text and "58.7" in text and "-1.5" in text and "reference only" not in text


def test_synthetic_rows_are_flagged_reference_only():
    table = side_by_side(_ours([dict(setting="J=3", value=4.0, ours_dataset="synthetic")]), "table9")
    assert table["reference_only"].tolist() == [True]
    assert "ours measured on synthetic: the paper's column is shown for reference only" in format_side_by_side(table, "table9")


def test_side_by_side_refuses_bad_input():
    with pytest.raises(ValueError, match=r"missing column\(s\) \['ours_dataset'\]"):
        side_by_side(_ours([dict(setting="J=3", value=1.0)]).drop(columns="ours_dataset"), "table9")
    with pytest.raises(ValueError, match="two values for one row of table9"):
        side_by_side(_ours([dict(setting="J=3", value=1.0), dict(setting="J=3", value=2.0)]), "table9")


def test_run_config_resolves_checkpoints_folds_and_means(tmp_path, monkeypatch):
    from sansa_probe.paper.runs import RunConfig, checkpoint_path, measure

    monkeypatch.delenv("SANSA_CHECKPOINTS", raising=False)
    paper = RunConfig(out=tmp_path, data_root="/data", checkpoints=str(tmp_path / "ckpt"))
    assert checkpoint_path(paper, "coco20i", 2) == tmp_path / "ckpt" / "strict" / "coco20i" / "fold2.pt"
    single = RunConfig(out=tmp_path, data_root="/data", checkpoints=str(tmp_path / "f{fold}.pt"))
    assert checkpoint_path(single, "coco20i", 3) == tmp_path / "f3.pt"
    monkeypatch.setenv("SANSA_CHECKPOINTS", str(tmp_path / "env"))
    assert checkpoint_path(RunConfig(out=tmp_path, data_root="/d"), "lvis92i", 0, "generalist") == tmp_path / "env" / "generalist" / "lvis92i" / "fold0.pt"
    assert paper.folds_of("coco20i") == [0, 1, 2, 3] and paper.folds_of("lvis92i") == list(range(10))
    with pytest.raises(ValueError, match=r"folds \[4\]: out of range for coco20i \(0..3\)"):
        RunConfig(out=tmp_path, data_root="/d", folds=(4,)).folds_of("coco20i")
    full = measure(paper, "coco20i", {0: 50.0, 1: 60.0, 2: 70.0, 3: 80.0}, method="SANSA", setting="strict", shots=1, metric="miou")
    assert (full.fold, full.value, full.ours_dataset) == ("mean", 65.0, "coco20i")
    partial = measure(paper, "coco20i", {1: 60.0}, method="SANSA", setting="strict", shots=1, metric="miou")
    assert partial.fold == "1"  # not the paper's mean over folds: it stays beside nothing
    from sansa_probe.miniature import WEIGHTS_DIR

    synthetic = RunConfig(out=tmp_path)  # offline, no model option: the shipped miniature
    assert synthetic.dataset("lvis92i") == "synthetic" and synthetic.folds_of("coco20i") == [0] and synthetic.miniature
    assert synthetic.sam2_weights == str(WEIGHTS_DIR / "sam2.pt") and synthetic.model_image_size == 128 and synthetic.test_episodes() == 100
    assert "--sam2-override" in synthetic.model_args() and synthetic.miniature_adapters(2) == WEIGHTS_DIR / "fold2.pt"
    stand_in = measure(synthetic, "coco20i", {0: 3.0}, method="SANSA", setting="strict", shots=1, metric="miou", identities={0: "m"})
    assert (stand_in.fold, stand_in.dataset, stand_in.ours_dataset, stand_in.identity) == ("mean", "coco20i", "synthetic (miniature, fold 0)", "m")
    random_init = RunConfig(out=tmp_path, sam2_checkpoint="none")  # a model option: exactly what it says
    assert not random_init.miniature and random_init.sam2_weights is None and random_init.model_backbone == "hiera_t"
    assert measure(random_init, "coco20i", {0: 3.0}, method="SANSA", setting="strict", shots=1, metric="miou").ours_dataset == "synthetic (fold 0)"


def test_side_by_side_names_the_model_behind_ours():
    one = side_by_side(_ours([dict(setting="J=3", value=58.7, identity="SANSA (adapters on) | m1")]), "table9")
    assert one["identity"].tolist() == ["SANSA (adapters on) | m1"]
    text = format_side_by_side(one, "table9", notes=["only one backbone"])
    assert "  note: only one backbone" in text and "  ours by model: SANSA (adapters on) | m1" in text and "model\n" not in text
    two = side_by_side(_ours([dict(setting="J=3", value=58.7, identity="a"), dict(setting="J=1", value=57.0, identity="b")]), "table9")
    lines = format_side_by_side(two, "table9").splitlines()
    assert "  ours by model [1]: a" in lines and "  ours by model [2]: b" in lines
    assert lines[-3].split()[-1] == "model" and [line.split()[-1] for line in lines[-2:]] == ["[1]", "[2]"]
    assert side_by_side(_ours([dict(setting="J=3", value=1.0)]), "table9")["identity"].tolist() == [""]  # optional column
