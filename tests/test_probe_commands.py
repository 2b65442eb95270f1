"""The probe commands end to end on the tiny model and the procedural benchmark (issue 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, randomized_adapters

from sansa_probe import linear_probe, part_matching, pca, pca_rgb, projection, spatial_coherence

COMMANDS = [pca, projection, pca_rgb, linear_probe, part_matching, spatial_coherence]
TINY = ["--backbone", "hiera_t", "--image-size", "256", "--sam2-checkpoint", "none", "--device", "cpu", "--checkpoint", "none", "--no-progress"]
# 8 classes: fold 0 evaluates classes 0 and 4 (training images from fold 1's training split)
SYNTHETIC = ["--dataset", "synthetic", "--dataset-option", "image_size=64", "--dataset-option", "n_classes=8",
             "--dataset-option", "images_per_class=2"]
SAMPLE = ["--images-per-class", "2"]  # pca, projection and linear_probe sample images per class


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One feature cache for the module: pca's val-split objects serve projection too."""
    return tmp_path_factory.mktemp("feature_cache")


@pytest.fixture(autouse=True)
def tiny(tiny_model, monkeypatch):
    """Every command reuses the session model, with random adapters so that SANSA differs from SAM2."""
    for command in COMMANDS:
        monkeypatch.setattr(command, "model_from_args", lambda args, **overrides: tiny_model)
    with randomized_adapters(tiny_model, seed=1):
        yield tiny_model


def run(command, tmp_path, *args, cache=None):
    out = tmp_path / "out"
    extra = ["--cache-dir", str(cache)] if cache is not None else []
    code = command.main([*args, *TINY, *extra, "--out", str(out)])
    assert code == 0
    return out


def read(out: Path, name: str) -> pd.DataFrame:
    table = pd.read_csv(out / f"{name}.csv")
    records = json.loads((out / f"{name}.json").read_text())
    assert len(records) == len(table) > 0 and set(records[0]) == set(table.columns)
    return table


def assert_figure(out: Path, stem: str) -> None:
    for suffix in (".png", ".pdf"):
        path = out / f"{stem}{suffix}"
        assert path.is_file() and path.stat().st_size > 1000, path


def assert_identity(out: Path, *tables: str) -> dict:
    """config.json names every model run (random SAM2 weights and fresh adapters flagged in
    words), its warnings list says so, and each of ``tables`` has the identity in every row."""
    config = json.loads((out / "config.json").read_text())
    identity = config["identity"]
    assert set(identity) <= {"sam2", "sansa"} and identity
    for name, record in identity.items():
        assert record["sam2_weights"] == "random" and record["adapters"] == "fresh" and record["backbone"] == "hiera_t"
        assert record["adapters_enabled"] == (name == "sansa") and record["versions"]["torch"]
    assert any("RANDOM weights" in w for w in config["warnings"])
    assert any("FRESH" in w for w in config["warnings"]) == ("sansa" in identity)
    for name in tables:
        column = pd.read_csv(out / f"{name}.csv")["identity"]
        assert column.str.contains("RANDOM").all() and column.str.contains("hiera_t").all(), name
    return config


def assert_redrawn_from_csv(command, out: Path, stem: str) -> None:
    """``--redraw`` draws the figure again from the files on disk alone (no model is built)."""
    (out / f"{stem}.png").unlink()
    (out / f"{stem}.pdf").unlink()
    build = command.model_from_args
    command.model_from_args = lambda *args, **kwargs: pytest.fail("--redraw must not build a model")
    try:
        assert command.main(["--redraw", str(out)]) == 0
    finally:
        command.model_from_args = build
    assert_figure(out, stem)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__.rsplit(".", 1)[-1])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--layer" in text and "--adapters" in text and "--out" in text


def test_pca_writes_fig8_tables_for_both_models(tmp_path, shared_cache, capsys):
    out = run(pca, tmp_path, *SYNTHETIC, *SAMPLE, "--fold", "0", cache=shared_cache)
    printed = capsys.readouterr()
    lines, err = printed.out.splitlines(), printed.err.splitlines()  # results on stdout, warnings on stderr
    assert lines[0].startswith("model: frozen SAM2 (adapters off) | hiera_t") and "SAM2 weights: RANDOM" in lines[0]
    assert lines[1].startswith("model: SANSA (adapters on)") and err[0].startswith("warning: SAM2 has RANDOM weights")
    assert lines[-1] == f"wrote {out}" and "warning:" not in printed.out
    config = assert_identity(out, "pca_concentration", "projection", "summary", "objects_train")
    from sansa_probe.pipelines import pca as pipeline

    measured = pipeline.check({"summary": pd.read_csv(out / "summary.csv")})  # the sanity checks, from the table on disk
    assert config["warnings"][2:] == measured and all(f"warning: {m}" in err for m in measured)
    curve = read(out, "pca_concentration")
    assert list(curve.columns) == ["model", "layer", "n_components", "metric", "value", "identity"]
    assert set(curve["model"]) == {"sam2", "sansa"} and set(curve["layer"]) == {"image_encoder.neck[2]"}
    assert {"accuracy", "relative_accuracy", "explained_variance", "full_accuracy"} <= set(curve["metric"])
    summary = read(out, "summary")
    assert set(summary["metric"]) >= {"auc_relative_accuracy", "full_accuracy", "n_components_variance", "n_test_objects"}
    projection_table = read(out, "projection")
    assert {"model", "x", "y", "class", "image_id", "instance_id"} <= set(projection_table.columns)
    sam2, sansa = (projection_table[projection_table["model"] == m][["x", "y"]].to_numpy() for m in ("sam2", "sansa"))
    assert sam2.shape == sansa.shape and not np.allclose(np.abs(sam2), np.abs(sansa))  # the adapters act
    objects = read(out, "objects_train")
    assert set(objects["class_id"]) <= {0, 4} and objects["image_id"].str.startswith("train-f1-").all()
    assert read(out, "objects_test")["image_id"].str.startswith("val-f0-").all()
    assert_figure(out, "fig8")
    config = json.loads((out / "config.json").read_text())
    assert config["train_fold"] == 1 and config["dataset"] == "synthetic" and config["command"] == "sansa_probe.pca"
    assert_redrawn_from_csv(pca, out, "fig8")


def test_projection_writes_png_pdf_and_html_with_hover(tmp_path, shared_cache):
    out = run(projection, tmp_path, *SYNTHETIC, *SAMPLE, cache=shared_cache)
    table = read(out, "projection")
    assert list(table.columns)[:4] == ["model", "layer", "method", "x"] and table["identity"].str.contains("RANDOM").all()
    assert set(table["model"]) == {"sam2", "sansa"} and table["image_id"].str.startswith("val-f0-").all()
    scores = read(out, "scores")
    assert set(scores["metric"]) == {"silhouette_2d", "n_objects"} and scores["value"].between(-1, 1e6).all()
    assert_figure(out, "projection")
    assert_identity(out, "projection", "scores")
    for name in ("sam2", "sansa"):
        html = (out / f"projection_{name}.html").read_text()
        assert "plotly" in html and "image_id" in html and "val-f0-" in html


def test_pca_rgb_dataset_and_file_modes(tmp_path):
    out = run(pca_rgb, tmp_path, *SYNTHETIC, "--n-images", "2", "--split", "val")
    table = read(out, "pca_rgb")
    assert list(table.columns) == ["model", "layer", "image", "image_id", "row", "col", "r", "g", "b", "in_mask"]
    assert set(table["model"]) == {"sam2", "sansa"} and table[["r", "g", "b"]].stack().between(0, 1).all()
    assert len(table) == 2 * 2 * 16 * 16 and table["in_mask"].any()
    scores = read(out, "scores")
    assert set(scores["metric"]) == {"variance_captured_3pc"} and scores["value"].between(0, 1).all()
    assert_figure(out, "pca_rgb")
    assert "identity" not in table.columns  # one row per feature cell: config.json names the model
    assert_identity(out, "scores")
    index = json.loads((out / "images" / "index.json").read_text())
    assert sorted(row["image_id"] for row in index) == sorted(set(table["image_id"]))  # the figure's images are kept
    assert_redrawn_from_csv(pca_rgb, out, "pca_rgb")

    rng = np.random.default_rng(0)
    from PIL import Image

    image = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    files = tmp_path / "files"
    code = pca_rgb.main(["--image", str(tmp_path / "a.png"), "--adapters", "off", *TINY, "--out", str(files)])
    assert code == 0
    table = pd.read_csv(files / "pca_rgb.csv")
    assert set(table["model"]) == {"sam2"} and table["in_mask"].all() and set(table["image_id"]) == {"a"}
    assert_identity(files, "scores")  # frozen SAM2 only: no fresh-adapter warning


def test_linear_probe_trains_and_scores_both_models(tmp_path):
    out = run(linear_probe, tmp_path, *SYNTHETIC, "--images-per-class", "1", "--epochs", "2", "--label-size", "32")
    table = read(out, "linear_probe")
    assert list(table.columns) == ["model", "layer", "class_id", "class_name", "metric", "value", "identity"]
    assert set(table["model"]) == {"sam2", "sansa"}
    ious = table[table["metric"] == "iou"]
    assert set(ious["class_id"]) == {0, 1, 2} and "background" in set(ious["class_name"])
    miou = table[table["metric"] == "miou"].set_index("model")["value"]
    assert miou.between(0, 1).all()
    history = read(out, "history")
    assert history.groupby("model")["epoch"].max().tolist() == [2, 2]
    summary = read(out, "summary")
    assert set(summary["metric"]) == {"miou_percent", "n_train_images", "n_test_images"}
    shares = table[table["metric"] == "predicted_share"].groupby("model")["value"].sum()
    np.testing.assert_allclose(shares, 1.0)  # each model's test pixels, shared among the classes
    assert_figure(out, "linear_probe")
    assert_identity(out, "linear_probe", "history", "summary")


def test_part_matching_on_synthetic_pairs(tmp_path):
    out = run(part_matching, tmp_path, *SYNTHETIC, "--max-pairs", "2", "--feature-size", "32", "--clusters", "3")
    table = read(out, "part_matching")
    assert {"model", "pair", "class_id", "class_name", "image_a", "image_b", "cluster", "part_a", "part_b", "metric", "value"} <= set(table.columns)
    assert set(table["model"]) == {"sam2", "sansa"} and set(table["pair"]) == {0, 1}
    matched = table[table["metric"] == "matched_cosine"]
    assert len(matched) == 2 * 2 * 3 and matched["value"].between(-1, 1).all()
    assert table.loc[table["metric"] == "part_agreement", "value"].isna().all()  # no part annotations here
    summary = read(out, "summary")
    assert set(summary["metric"]) == {"mean_matched_cosine", "part_agreement", "n_pairs", "n_skipped"}
    pixels = read(out, "pixels")
    assert set(pixels["image"]) == {0, 1} and pixels["cluster"].max() == 2
    assert_figure(out, "part_matching")
    assert_identity(out, "part_matching", "summary")
    assert_redrawn_from_csv(part_matching, out, "part_matching")


def test_spatial_coherence_on_synthetic_pseudo_videos(tmp_path):
    out = run(spatial_coherence, tmp_path, "--videos", "2", "--frames-per-video", "2", "--video-size", "64")
    table = read(out, "spatial_coherence")
    assert list(table.columns) == ["model", "layer", "setting", "pair", "source", "target", "metric", "value", "n_mask_pixels", "identity"]
    assert set(table["setting"]) == {"video", "flipped", "independent"} and set(table["model"]) == {"sam2", "sansa"}
    assert (table["value"] >= 0).all() and table["target"].str.endswith(":flipped")[table["setting"] == "flipped"].all()
    table12 = read(out, "table12")
    assert table12["setting"].tolist() == ["video", "flipped", "independent"]
    assert list(table12.columns) == ["setting", "appearance_continuity", "spatial_continuity", "sam2", "sansa", "identity"]
    assert table12["identity"].str.contains("SAM2: RANDOM weights").all()  # no model column: the footnote covering both
    assert table12["appearance_continuity"].tolist() == [True, True, False]
    assert_figure(out, "spatial_coherence")
    assert_identity(out, "spatial_coherence", "summary", "table12")


@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED_DATA / "bedroom").is_dir(), reason="../shared/data/bedroom is not present")
def test_spatial_coherence_on_real_bedroom_frames(tmp_path, capsys):
    out = run(spatial_coherence, tmp_path, "--frames", str(SHARED_DATA / "bedroom"), "--max-pairs", "2")
    table = read(out, "spatial_coherence")
    assert set(table["setting"]) == {"video", "flipped"}  # one video, no --independent folder
    assert table.groupby(["model", "setting"]).size().tolist() == [2, 2, 2, 2]
    assert (table["n_mask_pixels"] == 960 * 540).all()  # no masks: the whole frame
    assert table["source"].str.startswith("bedroom/").all()
    assert "left out" in capsys.readouterr().err


def test_missing_checkpoint_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pca, "model_from_args", lambda args, **overrides: pytest.fail("the model must not be built"))
    args = TINY[: TINY.index("--checkpoint")] + TINY[TINY.index("--checkpoint") + 2 :]
    code = pca.main([*SYNTHETIC, *args, "--checkpoint", str(tmp_path / "fold0.pt"), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"sansa_probe.pca: error: argument --checkpoint: file {tmp_path / 'fold0.pt'} does not exist\n"
    assert not (tmp_path / "out").exists()


def test_without_checkpoint_sansa_is_frozen_sam2_and_says_so(tmp_path, tiny_model, capsys):
    """No hidden per-fold default: without --checkpoint the adapters are fresh, i.e. both models are frozen SAM2."""
    args = TINY[: TINY.index("--checkpoint")] + TINY[TINY.index("--checkpoint") + 2 :]
    with randomized_adapters(tiny_model, seed=0, scale=0.0):  # fresh adapters are exact no-ops
        code = projection.main([*SYNTHETIC, *SAMPLE, *args, "--no-cache", "--out", str(tmp_path / "out")])
    assert code == 0
    err = capsys.readouterr().err
    assert "adapters are FRESH" in err and "'SANSA' here is frozen SAM2" in err
    table = read(tmp_path / "out", "projection")
    sam2, sansa = (table[table["model"] == m][["x", "y"]].to_numpy() for m in ("sam2", "sansa"))
    np.testing.assert_allclose(sam2, sansa, atol=1e-5)


def test_missing_dataset_says_where_and_how_to_run_on_synthetic(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SANSA_DATA", raising=False)
    code = linear_probe.main(["--dataset", "coco20i", *TINY, "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "SANSA_DATA" in err and "python -m sansa_probe.linear_probe --dataset synthetic" in err


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    assert pca.main([*SYNTHETIC, *TINY, "--layer", "image_encoder.trunk.block.3", "--out", str(tmp_path / "o")]) == 2
    assert "did you mean image_encoder.trunk.blocks.3" in capsys.readouterr().err
    assert pca_rgb.main(["--image", str(tmp_path / "missing.jpg"), *TINY, "--out", str(tmp_path / "o")]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    assert pca_rgb.main([*SYNTHETIC, *TINY, "--images-per-class", "2"]) == 2  # pca_rgb samples --n-images, no per-class sample
    assert "unrecognized arguments: --images-per-class 2" in capsys.readouterr().err
    assert part_matching.main([*SYNTHETIC, *TINY, "--clusters", "0"]) == 2
    assert "argument --clusters: expected an integer >= 1, got '0'" in capsys.readouterr().err
    assert pca.main([*SYNTHETIC, *TINY, "--encoders", "sam2,dino"]) == 2  # checked while parsing, before any model
    assert "argument --encoders: 'dino' is not an encoder; expected sam2, sansa, timm:" in capsys.readouterr().err
    assert pca.main([*SYNTHETIC, *TINY, "--layer", "sam3=norm", "--out", str(tmp_path / "o")]) == 2
    assert "layer sam3=norm: 'sam3' is not one of the encoders (sam2, sansa)" in capsys.readouterr().err


def test_list_layers(capsys):
    assert spatial_coherence.main(["--list-layers", *TINY]) == 0
    out = capsys.readouterr().out
    assert "image_encoder.trunk.blocks.11" in out and "memory_attention.layers.3" in out


def test_encoder_specs():
    from sansa_probe.commands.probe import encoder_specs

    parser = pca.build_parser()
    names = lambda *argv: [s.name for s in encoder_specs(parser.parse_args(list(argv)))]  # noqa: E731
    assert names() == ["sam2", "sansa"]
    assert names("--adapters", "off") == ["sam2"] and names("--adapters", "on") == ["sansa"]
    assert names("--encoders", "sansa, timm:vit_small_patch14_dinov2.lvd142m:random") == ["sansa", "timm:vit_small_patch14_dinov2.lvd142m:random"]
    assert parser.parse_args(["--encoders", "sam2, sansa"]).encoders == "sam2,sansa"  # written back in one form (config.json)
    with pytest.raises(ValueError, match="--adapters off: with --encoders"):
        encoder_specs(parser.parse_args(["--adapters", "off", "--encoders", "sam2"]))


def test_redraw_names_what_is_missing(tmp_path):
    from sansa_probe.pipelines import redraw

    with pytest.raises(FileNotFoundError, match="no config.json"):
        redraw(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"command": "sansa_probe.linear_probe"}))
    with pytest.raises(FileNotFoundError, match="no linear_probe.csv"):
        redraw(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"command": "sansa_probe.evaluate"}))
    with pytest.raises(ValueError, match="not a probe command with figures"):
        redraw(tmp_path)
