"""What a command prints and records cannot mislead (issue 23): results on stdout and progress and
warnings on stderr, warnings where the numbers mean nothing (classes never sampled, the miniature),
``--model miniature`` in one word for any command, ``--help`` saying what the default runs, and
the run's files recording what actually ran (never ``"auto"``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sansa_probe import evaluate, pca, segment
from sansa_probe.commands.grammar import model_choice

MINI_EVAL = ["--dataset", "synthetic", "--fold", "0", "--episodes", "2", "--num-workers", "0", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def own_images(tmp_path_factory) -> Path:
    """A user's folder: one reference with its mask, two targets (no dataset layout)."""
    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    (root / "targets").mkdir()
    for name in ("ref.png", "targets/a.png", "targets/b.png"):
        image = (rng.random((72, 96, 3)) * 60).astype(np.uint8)
        image[20:50, 30:70] = (200, 60, 40)
        Image.fromarray(image).save(root / name)
    mask = np.zeros((72, 96), dtype=np.uint8)
    mask[20:50, 30:70] = 255
    Image.fromarray(mask).save(root / "ref_mask.png")
    return root


def test_evaluate_on_the_miniature_prints_results_on_stdout_and_warns_where_the_mean_counts_unsampled_classes(tmp_path, capsys):
    out = tmp_path / "eval"
    assert evaluate.main([*MINI_EVAL, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert lines[0].startswith("model: the miniature SAM2 shipped in the package") and "--model sam2 runs Meta's SAM2" in lines[0]
    assert lines[1].startswith("model: SANSA (adapters on) | hiera_t SAM2 2.1 @128px | SAM2 weights: the miniature")
    assert any(line.startswith("synthetic fold 0 1-shot mask: mIoU") for line in lines) and lines[-1].startswith("wrote ")
    assert "warning:" not in printed.out
    err = [line for line in printed.err.splitlines() if line.strip()]
    assert err and all(line.startswith("warning: ") for line in err), err  # nothing else: no Python warning with a source line
    summary = json.loads((out / "summary.json").read_text())
    (unsampled,) = [w for w in summary["warnings"] if "never sampled" in w]
    assert "14 of 16 classes were never sampled by 2 episodes" in unsampled and "over the 2 sampled ones" in unsampled
    assert f"warning: {unsampled}" in printed.err
    assert any("MINIATURE" in w for w in summary["warnings"])  # not the paper's model, in the summary too
    config = summary["config"]  # what ran, not the options' defaults
    assert config["model"] == "miniature" and config["sam2_checkpoint"].endswith("sam2.pt") and config["image_size"] == 128
    assert config["checkpoint"].endswith("fold0.pt") and config["backbone"] == "hiera_t"


def test_segment_runs_the_miniature_on_ones_own_images_with_one_word(own_images, tmp_path, capsys):
    out = tmp_path / "seg"
    code = segment.main(["--model", "miniature", "--reference", str(own_images / "ref.png"), "--reference-mask",
                         str(own_images / "ref_mask.png"), "--target", str(own_images / "targets"), "--out", str(out), "--no-progress",
                         "--device", "cpu"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines()[0] == ("model: the miniature SAM2 shipped in the package (128 px, offline) + its SANSA adapters "
                                           "of fold 0 [--model miniature]")
    assert "MINIATURE" in printed.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identity"]["image_size"] == 128 and "miniature" in summary["identity"]["sam2_weights"]["label"]
    assert summary["n_targets"] == 2 and len(list((out / "masks").iterdir())) == 2


@pytest.mark.parametrize("extra, named", [(["--backbone", "hiera_t"], "--backbone"), (["--image-size", "256"], "--image-size"),
                                          (["--sam2-checkpoint", "none"], "--sam2-checkpoint")])
def test_model_miniature_with_another_sam2_option_is_one_clear_line(own_images, tmp_path, capsys, monkeypatch, extra, named):
    monkeypatch.setattr(segment, "model_from_args", lambda args: pytest.fail("the model must not be built"))
    code = segment.main(["--model", "miniature", *extra, "--reference", str(own_images / "ref.png"), "--reference-mask",
                         str(own_images / "ref_mask.png"), "--target", str(own_images / "targets"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--model miniature" in err and named in err and "Traceback" not in err


def test_model_choice_names_what_runs():
    def args(**kw):
        base = dict(dataset="synthetic", sam2_checkpoint="auto", backbone=None, sam2_version=None, image_size=None, sam2_overrides=None,
                    checkpoint=None, model=None)
        return argparse.Namespace(**{**base, **kw})

    assert model_choice(args()) == "miniature"  # the embedded default
    assert model_choice(args(dataset="coco20i")) == "sam2"
    assert model_choice(args(backbone="hiera_t")) == "sam2"
    assert model_choice(args(model="sam2")) == "sam2"
    assert model_choice(args(dataset="coco20i", model="miniature")) == "miniature"


def test_help_says_what_the_default_runs():
    def model_group_text(parser) -> str:
        (group,) = [g for g in parser._action_groups if g.title == "model"]
        return " ".join(group.description.split())

    probe = model_group_text(pca.build_parser())
    assert "with --dataset synthetic (the default) and no SAM2 option, the miniature SAM2 shipped in the package" in probe
    assert "not the paper's model" in probe and "Hiera-L at 1024 px" in probe
    own = model_group_text(segment.build_parser())
    assert own.startswith("What runs by default: Meta's SAM2 2.1 Hiera-L at 1024 px") and "--model miniature runs the miniature" in own
    text = " ".join(pca.build_parser().format_help().split())
    assert "--model {miniature,sam2}" in text and "the miniature's shipped file instead" in text


def test_quickstart_table_leaves_out_a_score_that_is_the_same_for_every_target():
    from types import SimpleNamespace

    from sansa_probe.notebook_support.quickstart import FewShotExample, target_table

    mask = np.zeros((8, 8), dtype=bool)
    mask[2:6, 2:6] = True
    example = FewShotExample(class_name="c", reference_ids=["r"], reference_images=[], reference_masks=[], prompts=[],
                             target_ids=["a", "b", "c"], target_images=[], target_masks=[mask, mask, None])
    constant = [SimpleNamespace(mask=mask, score=0.232), SimpleNamespace(mask=~mask, score=0.2321), SimpleNamespace(mask=mask, score=0.232)]
    varying = [SimpleNamespace(mask=mask, score=s) for s in (0.9, 0.4, 0.1)]
    table = target_table(example, {"miniature": constant, "real": varying})
    assert list(table.columns) == ["target", "IoU miniature", "IoU real", "score real"]
    assert table["IoU miniature"].tolist()[:2] == [100.0, 0.0] and table["IoU miniature"].isna().tolist()[2]
    assert table.attrs["notes"] == ["score miniature: 0.232 for every target (SAM2's IoU estimate does not vary here: left out, it says nothing)"]


def test_notebook_figures_carry_the_identity_and_warnings(tiny_model):
    from matplotlib.figure import Figure

    from sansa_probe.notebook_support.figures import footnoted
    from sansa_probe.reporting.figures import GIDS, texts_with_gid

    figure = Figure()
    figure.add_subplot().plot([0, 1])
    assert footnoted(figure, tiny_model, warnings=["PCA (sam2): accuracy near chance"]) is figure
    (footnote,) = texts_with_gid(figure, GIDS["footnote"])
    (warnings,) = texts_with_gid(figure, GIDS["warning"])
    assert "RANDOM weights" in footnote and "SAM2 has RANDOM weights" in warnings and "accuracy near chance" in warnings


def test_a_notebook_s_encoders_figure_carries_every_encoder_s_identity():
    from matplotlib.figure import Figure

    from sansa_probe.notebook_support.figures import footnoted
    from sansa_probe.reporting.figures import GIDS, texts_with_gid

    class Encoder:
        def __init__(self, identity):
            self._identity = identity

        def identity(self):
            return self._identity

    vit = {"encoder": "timm:vit_small_patch14_dinov2.lvd142m:random", "weights": "random", "warnings": ["timm:vit_small_patch14_dinov2.lvd142m:random has RANDOM weights"]}
    figure = Figure()
    figure.add_subplot().plot([0, 1], [0, 1])
    footnoted(figure, {"dinov2": Encoder(vit)}, warnings=["linear probe (dinov2): predicts one class"])
    (footnote,) = texts_with_gid(figure, GIDS["footnote"])
    (warnings,) = texts_with_gid(figure, GIDS["warning"])
    assert footnote.startswith("timm:vit_small_patch14_dinov2.lvd142m:random: ") and "RANDOM" in footnote
    assert "has RANDOM weights" in warnings and "predicts one class" in warnings


def test_every_figure_a_notebook_shows_goes_through_footnoted():
    import importlib.util
    import re

    spec = importlib.util.spec_from_file_location("make_notebooks", Path(__file__).resolve().parents[1] / "notebooks" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    drawn = 0
    for name, nb in module.NOTEBOOKS.items():
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for call in re.findall(r"(?:\w+\.figures\(|plot_few_shot\()", cell.source):
                drawn += 1
                assert "footnoted(" in cell.source, f"{name}: a figure ({call}) without the identity footnote"
    assert drawn >= 11  # the encoders notebook's four figures included
