"""Every experiments/ script end to end offline on the shipped miniature (procedural benchmark,
small settings): each prints the paper beside ours, names the model behind ours, and writes its
table and figure. The miniature rows of table 1, fig. 8 and fig. 9, run with the settings of the
miniature's shipped measurement (read from its manifest), are checked against its shipped
``results.csv`` (read at test time: the checks hold for any retrained miniature)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pycocotools import mask as mask_utils

from sansa_probe.miniature import WEIGHTS_DIR
from sansa_probe.paper import paper_numbers
from sansa_probe.utils.hashing import file_sha256

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
COMMON = ["--small", "--no-progress", "--device", "cpu", "--episodes", "2"]
MINIATURE_SAM2 = "SAM2 weights: the miniature SAM2 pretrained here"
SAM2_SHA = file_sha256(WEIGHTS_DIR / "sam2.pt")[:12]  # as identity lines show it
TOLERANCE = 0.5  # mIoU points between the script's run and the shipped measurement (same settings, CPU float32)


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The miniature is tiny: one thread runs it fastest (two threads on a busy 2-core machine spin, ~50x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("paper")


@pytest.fixture(scope="module")
def shipped():
    """The miniature's shipped results (fold, model, metric, value) and the settings they were measured with."""
    results = pd.read_csv(WEIGHTS_DIR / "results.csv")
    results = results[results["fold"].astype(str) != "all"].astype({"fold": int})
    measure = json.loads((WEIGHTS_DIR / "manifest.json").read_text()).get("measure", {})
    return results, {"episodes": int(measure.get("episodes", 100)), "images_per_class": int(measure.get("probe_images_per_class", 12))}


def shipped_value(results: pd.DataFrame, fold: int, model: str, metric: str) -> float:
    return float(results.query("fold == @fold and model == @model and metric == @metric")["value"].item())


def check_identities(compared: pd.DataFrame, ours: pd.DataFrame, printed: str, *, sam2: str = MINIATURE_SAM2) -> None:
    """Every row of ours names its model (the miniature's SAM2, by name and checksum), in both CSVs and on stdout."""
    for table in (compared, ours):
        assert table["identity"].map(lambda i: isinstance(i, str) and sam2 in i and f"sha256 {SAM2_SHA}" in i).all()
    assert "ours by model" in printed and sam2 in printed


def run_table(name: str, table: str, out: Path, capsys, *extra: str) -> pd.DataFrame:
    code = load_script(name).main([*COMMON, "--out", str(out), *extra])
    assert code == 0
    printed = capsys.readouterr()
    assert "model: the shipped miniature" in printed.out  # a result: stdout
    compared = pd.read_csv(out / f"{table}.csv")
    ours = pd.read_csv(out / f"{table}_ours.csv")
    assert len(compared) == len(ours) > 0
    for suffix in (".png", ".pdf"):
        assert (out / f"{table}{suffix}").stat().st_size > 1000
    assert compared["ours"].map(math.isfinite).all()
    assert compared["reference_only"].all() and set(ours["ours_dataset"]) == {"synthetic (miniature, fold 0)"}
    assert "the paper's column is shown for reference only" in printed.out
    check_identities(compared, ours, printed.out)
    printed_numbers = paper_numbers(table).set_index(["method", "setting", "dataset", "fold", "shots", "metric"])["value"]
    for row in compared.itertuples():
        key = (row.method, row.setting, row.dataset, str(row.fold), row.shots, row.metric)
        if key in printed_numbers.index:  # the miniature beside the paper: no difference to read
            assert row.paper == printed_numbers[key] and math.isnan(row.difference) and not row.comparable
        else:
            assert math.isnan(row.paper)
    summary = json.loads((out / "summary.json").read_text())
    assert any(f"{table}: not comparable with the paper" in w for w in summary["warnings"])
    assert f"warning: {table}: not comparable with the paper" in printed.err and "n/c" in printed.out
    return compared


def _rows(table: pd.DataFrame, **where) -> pd.DataFrame:
    mask = np.ones(len(table), bool)
    for key, value in where.items():
        mask &= table[key].astype(str) == str(value)
    return table[mask]


def test_table1_on_the_miniature_reproduces_its_shipped_1_shot_results(workdir, shipped, capsys):
    results, settings = shipped
    table = run_table("table1_strict_fss", "table1", workdir / "table1", capsys, "--shots", "1", "--episodes", str(settings["episodes"]))
    assert set(zip(table["method"], table["shots"])) == {("SANSA", 1), ("SAM 2", 1)}
    assert _rows(table, method="SANSA", shots=1)["paper"].item() == 60.2
    for method, model in (("SANSA", "adapted"), ("SAM 2", "frozen")):
        row = _rows(table, method=method)
        assert row["ours"].item() == pytest.approx(shipped_value(results, 0, model, "few_shot_1shot_miou"), abs=TOLERANCE)
        assert ("adapters on" if model == "adapted" else "adapters off") in row["identity"].item()
        assert "miniature fold-0 adapters" in row["identity"].item()


def test_table1_5_shot_runs(workdir, capsys):
    table = run_table("table1_strict_fss", "table1", workdir / "table1_5shot", capsys, "--shots", "5")
    assert set(zip(table["method"], table["shots"])) == {("SANSA", 5), ("SAM 2", 5)}
    assert _rows(table, method="SANSA")["paper"].item() == 64.3


def test_fig6_every_prompt_type(workdir, capsys):
    table = run_table("fig6_prompt_types", "fig6", workdir / "fig6", capsys)
    assert sorted(set(table["setting"])) == ["box", "mask", "point", "scribble"]
    assert _rows(table, method="SANSA", setting="point")["paper"].item() == 53.4


def test_table11_negative_prompts(workdir, capsys):
    table = run_table("table11_negative_prompts", "table11", workdir / "table11", capsys)
    assert list(table["setting"]) == ["baseline", "+1 negative click", "+3 negative clicks", "+5 negative clicks",
                                      "semantic negatives, training-free"]  # fmt: skip
    assert (table["ours"] >= 0).all() and (table["ours"] <= 100).all()


def test_table10_and_table8_the_miniature_is_the_only_offline_backbone(workdir, capsys):
    from sansa_probe.miniature import load_miniature

    table10 = run_table("table10_pascal", "table10", workdir / "table10", capsys)
    assert set(table10["fold"].astype(str)) == {"0", "mean"} and table10["ours"].nunique() == 1  # one fold: its mean is itself
    assert table10["identity"].str.endswith("protocol: release").all()  # the release's evaluation, as the paper's tables
    hsnet = run_table("table10_pascal", "table10", workdir / "table10_hsnet", capsys, "--protocol", "hsnet")
    assert hsnet["identity"].str.endswith("protocol: hsnet").all()
    code = load_script("table8_backbones").main([*COMMON, "--out", str(workdir / "table8")])
    assert code == 0
    assert "the shipped miniature (a shrunk Hiera-T SAM2 at 128 px) is the only backbone" in capsys.readouterr().out
    table8 = pd.read_csv(workdir / "table8" / "table8.csv")
    assert set(table8["method"]) == {"SANSA Tiny"}  # beside the paper's Tiny row
    values = table8.set_index("metric")["ours"]
    model = load_miniature(0)
    assert values["params_m"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
    assert values["trainable_params_m"] == pytest.approx(sum(p.numel() for n, p in model.sam.named_parameters() if n in set(model.adapter_names)) / 1e6)
    assert values["img_s"] > 0
    assert load_script("table8_backbones").main([*COMMON, "--out", str(workdir / "table8"), "--sizes", "Large"]) == 2
    assert "sizes ['Large']: offline the shipped miniature" in capsys.readouterr().err


def test_table3_and_table4_train_variants_on_the_miniature_and_share_them(workdir, capsys):
    from sansa_probe.miniature import load_miniature

    out = workdir / "ablations"
    table3 = run_table("table3_ablations", "table3", out, capsys, "--variants", "decoder_ft")
    params = _rows(table3, metric="trainable_params_m").set_index("method")["ours"]
    decoder = sum(p.numel() for p in load_miniature(None).sam.sam_mask_decoder.parameters()) / 1e6
    assert params["Frozen"] == 0 and params["Decoder FT"] == pytest.approx(decoder)  # the miniature's decoder
    variant = _rows(table3, method="Decoder FT", metric="miou")["identity"].item()
    assert "adapters: decoder_ft fold0 final.pt, trained on the miniature" in variant
    first = (out / "train" / "decoder_ft" / "fold0" / "final.pt").stat().st_mtime_ns
    table4 = run_table("table4_adaptation", "table4", out, capsys, "--variants", "decoder_ft")
    assert (out / "train" / "decoder_ft" / "fold0" / "final.pt").stat().st_mtime_ns == first  # reused, not retrained
    assert set(table4["setting"]) == {"in-domain", "out-of-domain"}
    assert (out / "train" / "decoder_ft_in_domain" / "fold0" / "final.pt").is_file()


def test_table9_and_table2_train_their_variants_on_the_miniature(workdir, capsys):
    table9 = run_table("table9_sequence_length", "table9", workdir / "table9", capsys, "--lengths", "1")
    assert list(table9["setting"]) == ["J=1"] and table9["paper"].item() == 57.0
    assert "adapters: J1 fold0 final.pt, trained on the miniature" in table9["identity"].item()
    table2 = run_table("table2_generalist", "table2", workdir / "table2", capsys)
    assert _rows(table2, method="SANSA", shots=5)["paper"].item() == 77.1
    assert "adapters: generalist fold0 final.pt, trained on the miniature" in _rows(table2, method="SANSA", shots=5)["identity"].item()


def test_table6_annotation_study(workdir, capsys):
    table = run_table("table6_annotation", "table6", workdir / "table6", capsys, "--targets", "3")
    values = table.set_index("metric")["ours"]
    assert 0 <= values["miou"] <= 100 and values["minutes"] > 0
    assert len(list((workdir / "table6" / "annotation" / "synthetic" / "fold0" / "targets").glob("*.png"))) == 3


def test_fig8_and_fig9_on_the_miniature_reproduce_its_shipped_results(workdir, shipped, capsys):
    results, settings = shipped
    shipped_settings = ["--images-per-class", str(settings["images_per_class"])]
    out = workdir / "fig8"
    assert load_script("fig8_pca_concentration").main(["--small", "--no-progress", "--out", str(out), *shipped_settings]) == 0
    fig8 = pd.read_csv(out / "fig8.csv").set_index(["method", "metric"])
    printed = capsys.readouterr().out
    check_identities(fig8, pd.read_csv(out / "fig8_ours.csv"), printed)
    assert fig8.loc[("SAM2 and SANSA", "max_components"), "paper"] == 450
    for method, model in (("SAM2", "frozen"), ("SANSA", "adapted")):
        assert fig8.loc[(method, "auc"), "ours"] == pytest.approx(shipped_value(results, 0, model, "pca_auc_relative_accuracy"), abs=0.01)
    out = workdir / "fig9"
    assert load_script("fig9_linear_probe").main(["--small", "--no-progress", "--out", str(out), *shipped_settings,
                                                  "--episodes", str(settings["episodes"])]) == 0  # fmt: skip
    fig9 = pd.read_csv(out / "fig9.csv")
    check_identities(fig9, pd.read_csv(out / "fig9_ours.csv"), capsys.readouterr().out)
    assert sorted(fig9["paper"]) == [28.9, 57.5, 65.8, 69.2] and fig9["reference_only"].all()
    fig9 = fig9.set_index(["method", "setting"])["ours"]
    for method, model in (("SAM2", "frozen"), ("SANSA", "adapted")):
        assert fig9[(method, "linear probe")] == pytest.approx(shipped_value(results, 0, model, "linear_probe_miou"), abs=TOLERANCE)
        assert fig9[(method, "few-shot")] == pytest.approx(shipped_value(results, 0, model, "few_shot_1shot_miou"), abs=TOLERANCE)


@pytest.mark.parametrize("name, table, subfolders", [
    ("table12_spatial_coherence", "table12", ["spatial_coherence"]),
    ("fig2_pca_rgb", None, ["pca_rgb"]),
    ("fig4_feature_space", None, ["a", "b", "c"]),
])  # fmt: skip
def test_probe_scripts_run_offline_on_the_miniature(workdir, name, table, subfolders, capsys):
    out = workdir / name
    code = load_script(name).main(["--small", "--no-progress", "--out", str(out)])
    assert code == 0
    for folder in subfolders:
        assert any((out / folder).iterdir())
        assert SAM2_SHA in (out / folder / "config.json").read_text()  # the command ran on the miniature's SAM2
    printed = capsys.readouterr()
    if table is None:
        assert "the paper prints no numbers" in printed.out
        return
    compared = pd.read_csv(out / f"{table}.csv")
    check_identities(compared, pd.read_csv(out / f"{table}_ours.csv"), printed.out, sam2="SAM2 weights: sam2.pt")
    assert set(compared["ours_dataset"]) == {"synthetic videos (miniature, fold 0)"}
    printed_rows = compared.dropna(subset=["paper"])
    assert len(printed_rows) == 6 and (printed_rows["ours"] >= 0).all()


def test_missing_checkpoints_in_the_paper_setting_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    code = load_script("table11_negative_prompts").main(["--data-root", str(tmp_path / "data"), "--checkpoints", str(tmp_path / "ckpt"),
                                                          "--out", str(tmp_path / "out"), "--device", "cpu"])  # fmt: skip
    assert code == 2
    assert f"checkpoint {tmp_path / 'ckpt' / 'strict' / 'coco20i' / 'fold0.pt'} (SANSA strict, coco20i fold 0) does not exist" in capsys.readouterr().err


def test_annotation_miou_is_100_for_the_ground_truth_and_0_for_nothing():
    from sansa_probe.data.synthetic import SyntheticSource
    from sansa_probe.paper.annotation_study import annotation_miou

    source = SyntheticSource(fold=0, split="test", image_size=64, images_per_class=2, n_classes=8)
    classes = sorted(source.class_ids())
    category_to_class = {k + 1: c for k, c in enumerate(classes)}
    images = sorted(source.image_ids())
    image_of_file = {f"{k}.png": image_id for k, image_id in enumerate(images)}
    records, annotations = [], []
    for k, (name, image_id) in enumerate(image_of_file.items()):
        records.append({"id": k + 1, "file_name": name})
        for category, class_id in category_to_class.items():
            mask = source.load_mask(image_id, class_id)
            if mask.any():
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                annotations.append({"image_id": k + 1, "category_id": category, "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    perfect = annotation_miou({"images": records, "annotations": annotations}, source, image_of_file, category_to_class)
    assert perfect.compute()["miou"] == pytest.approx(100.0)
    empty = annotation_miou({"images": records, "annotations": []}, source, image_of_file, category_to_class)
    assert empty.compute()["miou"] == 0.0 and empty.n_episodes == perfect.n_episodes > 0
