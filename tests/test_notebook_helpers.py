"""What the notebooks call: parameters from the environment, the quickstart's examples, the
miniature's numbers beside the paper's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sansa_probe.notebook_support.params import build_model, from_environment, parse_value
from sansa_probe.prompts.types import Box, Mask, Points, Scribble
from sansa_probe.notebook_support.quickstart import few_shot_example, mask_iou, plot_few_shot, prompt_from_spec

# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("3", 0, 3),
        ("0.5", 1.0, 0.5),
        ("2", 1.0, 2.0),
        ("no", True, False),
        ("ON", False, True),
        ("box", "mask", "box"),
        ("None", "mask", None),
        ("none", 4, None),
        ("[1, 2]", [0], [1, 2]),
        ("(1, 2)", [0], [1, 2]),
        ("[1, 2]", (0,), (1, 2)),
        ('{"image_size": 96}', {"image_size": 128}, {"image_size": 96}),
        ("3", None, 3),
        ("['a', 'b']", None, ["a", "b"]),
        ("/data/my images", None, "/data/my images"),
    ],
)
def test_parse_value_reads_the_defaults_type(text, default, expected):
    value = parse_value(text, default)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "default", "message"),
    [
        ("four", 4, "SANSA_NB_X='four': expected an integer"),
        ("1.5", 4, "expected an integer"),
        ("maybe", True, "expected a boolean"),
        ("x", 0.5, "expected a number"),
        ("1", [0], "expected a Python list literal"),
        ("[1]", {"a": 1}, "expected a Python dict literal"),
    ],
)
def test_parse_value_names_the_variable_and_what_was_expected(text, default, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_value(text, default, name="SANSA_NB_X")


def test_from_environment_overrides_only_the_notebooks_parameters(capsys):
    namespace = {"FOLD": 0, "PROMPT": "mask", "lower": 1, "In": [], "np": np, "OPTIONS": {"a": 1}}
    environ = {"SANSA_NB_FOLD": "2", "SANSA_NB_OPTIONS": "{'a': 2}", "SANSA_NB_OTHER": "1", "SANSA_NB_lower": "5", "FOLD": "9"}
    assert from_environment(namespace, environ=environ) == {"FOLD": 2, "OPTIONS": {"a": 2}}
    assert "parameters from the environment: FOLD=2, OPTIONS={'a': 2}" in capsys.readouterr().out
    assert from_environment(namespace, environ={}) == {}
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="SANSA_NB_FOLD='x'"):
        from_environment(namespace, environ={"SANSA_NB_FOLD": "x"})


def test_build_model_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint: file .*missing\.pt does not exist"):
        build_model(checkpoint=str(tmp_path / "missing.pt"))
    with pytest.raises(FileNotFoundError, match="sam2_checkpoint: file nowhere.pt"):
        build_model(sam2_checkpoint="nowhere.pt")


def test_build_model_is_the_miniature_by_default_on_the_procedural_benchmark(capsys):
    model = build_model(dataset="synthetic", fold=1, device="cpu", adapters=False)
    assert model.provenance["adapters_label"] == "miniature fold-1 adapters"
    assert not model.adapters_enabled
    assert "the default for --dataset synthetic" in capsys.readouterr().out
    own = build_model(dataset=None, model="miniature", device="cpu")  # one word, for images of one's own
    assert own.provenance["adapters_label"] == "miniature fold-0 adapters" and own.image_size == 128
    assert "[--model miniature]" in capsys.readouterr().out


# ----------------------------------------------------------------------------- quickstart


def test_prompt_from_spec():
    points = prompt_from_spec({"points": [[3, 4], [5, 6]], "labels": [1, 0]})
    assert isinstance(points, Points) and points.coords.tolist() == [[3, 4], [5, 6]] and points.labels.tolist() == [1, 0]
    assert prompt_from_spec({"box": [1, 2, 3, 4]}).xyxy == (1.0, 2.0, 3.0, 4.0)
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    assert isinstance(prompt_from_spec({"scribble": mask}), Scribble)
    assert prompt_from_spec({"mask": mask}).mask.sum() == 1
    box = Box((0, 0, 1, 1))
    assert prompt_from_spec(box) is box
    with pytest.raises(ValueError, match="prompts\\[1\\]: expected exactly one of mask, points, box, scribble"):
        prompt_from_spec({"box": [0, 0, 1, 1], "points": [[0, 0]]}, name="prompts[1]")
    with pytest.raises(ValueError, match="got keys \\['circle'\\]"):
        prompt_from_spec({"circle": 3})
    with pytest.raises(TypeError, match="expected a dict"):
        prompt_from_spec([0, 0, 1, 1])


def test_few_shot_example_on_the_procedural_benchmark():
    example = few_shot_example(fold=0, shots=2, targets=3, prompt="box", image_size=64, seed=1)
    assert len(example.reference_images) == len(example.prompts) == 2 and len(example.target_images) == 3
    assert set(example.reference_ids).isdisjoint(example.target_ids)
    for image, mask, prompt in zip(example.reference_images, example.reference_masks, example.prompts):
        assert image.shape == (64, 64, 3) and mask.shape == (64, 64) and mask.any()
        assert isinstance(prompt, Box)  # around the mask's largest component
        x0, y0, x1, y1 = (int(v) for v in prompt.xyxy)
        edges = (mask[y0:y1, x0], mask[y0:y1, x1 - 1], mask[y0, x0:x1], mask[y1 - 1, x0:x1])
        assert all(edge.any() for edge in edges)  # tight: every side touches the object
    assert all(m is not None and m.any() for m in example.target_masks)
    assert "prompted by (box, box); 3 target(s), 3 with ground truth" in example.summary()
    again = few_shot_example(fold=0, shots=2, targets=3, prompt="box", image_size=64, seed=1)
    assert again.reference_ids == example.reference_ids and again.target_ids == example.target_ids
    by_name = few_shot_example(fold=0, class_id=example.class_name, shots=1, targets=1, image_size=64)
    assert by_name.class_name == example.class_name and isinstance(by_name.prompts[0], Mask)


def test_few_shot_example_refuses_bad_requests():
    with pytest.raises(ValueError, match="class_id 'no-such-class': not a class"):
        few_shot_example(class_id="no-such-class", image_size=64)
    with pytest.raises(ValueError, match="prompts: 1 given for 2 reference"):
        few_shot_example(shots=2, prompts=[{"box": [0, 0, 5, 5]}], image_size=64)
    with pytest.raises(ValueError, match="shots: expected an integer >= 1"):
        few_shot_example(shots=0, image_size=64)


def test_few_shot_example_from_a_folder_of_your_own(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "more").mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(tmp_path / "images" / f"im{i}.png")
        mask = np.zeros((20, 30), np.uint8)
        mask[5:10, 3 + i : 12 + i] = 255
        Image.fromarray(mask).save(tmp_path / "masks" / f"im{i}_cat.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "more" / "new.png")
    example = few_shot_example(tmp_path, shots=1, targets=5, prompts=[{"points": [[6, 7]]}], extra_targets=tmp_path / "more")
    assert example.class_name == "cat" and isinstance(example.prompts[0], Points)
    assert len(example.target_ids) == 3 and example.target_masks[-1] is None and example.target_images[-1].shape == (8, 8, 3)
    fig = plot_few_shot(example, {"SANSA": [np.zeros(image.shape[:2], bool) for image in example.target_images]})
    assert len(fig.axes) == 2 * 3
    assert "IoU 0.0 %" in fig.axes[3].get_title() and "IoU" not in fig.axes[5].get_title()


def test_mask_iou():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 100.0
    a[0, :2] = True
    b[0, 1:3] = True
    assert mask_iou(a, b) == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="expected the same HxW"):
        mask_iou(a, np.zeros((2, 2), bool))


# ----------------------------------------------------------------------------- the miniature beside the paper


def test_shipped_ours_stands_beside_the_papers_rows(tmp_path):
    from sansa_probe.paper import side_by_side
    from sansa_probe.paper.miniature import shipped_ours

    rows = [("all", "pretrained", "tracking_miou", 25.0)]
    for fold, (frozen, adapted) in enumerate([(30.0, 32.0), (34.0, 38.0)]):
        rows += [(fold, "frozen", "few_shot_1shot_miou", frozen), (fold, "adapted", "few_shot_1shot_miou", adapted),
                 (fold, "frozen", "linear_probe_miou", 5.0), (fold, "adapted", "linear_probe_miou", 6.0),
                 (fold, "frozen", "pca_auc_relative_accuracy", 0.9), (fold, "adapted", "pca_auc_relative_accuracy", 0.8)]  # fmt: skip
    pd.DataFrame(rows, columns=["fold", "model", "metric", "value"]).to_csv(tmp_path / "results.csv", index=False)
    ours = shipped_ours(tmp_path / "results.csv")
    table1 = side_by_side(ours, "table1").set_index("method")
    assert table1.loc["SAM 2", "ours"] == 32.0 and table1.loc["SAM 2", "paper"] == 32.2  # mean over the folds
    assert table1.loc["SANSA", "ours"] == 35.0 and math.isnan(table1.loc["SANSA", "difference"])  # the miniature: not comparable
    assert not table1["comparable"].any()
    assert table1["reference_only"].all() and (table1["ours_dataset"] == "synthetic (miniature, fold 0,1)").all()
    fig9 = side_by_side(ours, "fig9").set_index(["method", "setting"])
    assert fig9.loc[("SANSA", "linear probe"), "ours"] == 6.0 and fig9.loc[("SAM2", "few-shot"), "ours"] == 30.0  # fold 0
    assert side_by_side(ours, "fig8").set_index("method").loc["SANSA", "ours"] == 0.8
    pd.DataFrame({"fold": [0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="missing column"):
        shipped_ours(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="nothing.csv does not exist"):
        shipped_ours(tmp_path / "nothing.csv")


def test_the_shipped_table_holds_the_rows_the_notebook_shows():
    from sansa_probe.paper.miniature import shipped_ours

    ours = shipped_ours()
    assert set(ours["table"]) == {"table1", "fig9", "fig8"}
    assert ours["value"].notna().all()
