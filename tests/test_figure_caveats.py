"""The caveats a figure carries on itself (sansa_probe.reporting.figures): chance lines, greyed and
hatched series with their reason, a palette that stays distinguishable, class labels, n on
intervals, the "not comparable" stamp, warnings and identity under the figure. Checked through the
artists and their gids, never pixels."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from sansa_probe.reporting.figures import (
    GIDS,
    QUALITATIVE,
    annotate_figure,
    chance_reason,
    class_styles,
    draw_chance,
    label_groups,
    mark_unreliable,
    near_chance,
    note_on_axes,
    stamp_not_comparable,
    texts_with_gid,
    with_n,
)


def _lab(hex_colour: str) -> np.ndarray:
    """sRGB (D65) -> CIELAB."""
    c = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_distance(colours) -> float:
    labs = [_lab(c) for c in colours]
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(labs, 2))


def test_the_palette_stays_distinguishable_for_16_and_20_classes_and_holds_no_grey():
    import matplotlib
    from matplotlib.colors import to_hex

    assert _min_distance(QUALITATIVE[:16]) >= 40 and _min_distance(QUALITATIVE[:20]) >= 40 and _min_distance(QUALITATIVE) >= 35
    tab20 = [to_hex(c) for c in matplotlib.colormaps["tab20"].colors]
    assert _min_distance(tab20[:16]) < 20  # what it replaces: pale pairs
    for colour in QUALITATIVE:  # grey is reserved for "unreliable"
        lab = _lab(colour)
        assert np.hypot(lab[1], lab[2]) > 30 and 25 <= lab[0] <= 80, colour


def test_class_styles_give_each_class_its_own_colour_and_marker_pair_and_are_stable():
    keys = [f"class {i}" for i in range(100)]
    styles = class_styles(keys)
    pairs = [(s["color"], s["marker"]) for s in styles.values()]
    assert len(set(pairs)) == 100
    for a, b in zip(pairs, pairs[1:]):  # neighbours differ in colour and in marker
        assert a[0] != b[0] and a[1] != b[1]
    assert class_styles(keys[:16]) == {k: styles[k] for k in keys[:16]}  # a class keeps its style whatever follows


def test_near_chance_catches_the_issues_cases_and_passes_real_signal():
    chance = 1 / 16
    assert near_chance(0.083, chance) and near_chance(0.089, chance)  # SAM2 / SANSA full-dimension accuracy on the miniature
    assert near_chance(0.032, chance)  # below chance
    assert near_chance(float("nan"), chance)
    assert not near_chance(0.45, chance)
    assert near_chance(10.0, 6.25) and not near_chance(40.0, 6.25)  # percent works the same
    with pytest.raises(ValueError, match="chance"):
        near_chance(0.5, 0.0)
    assert chance_reason(0.083, chance, what="full-dimension accuracy") == "full-dimension accuracy 8.3 % is near chance (6.25 %)"
    assert "below chance" in chance_reason(0.032, chance)


def test_chance_line_and_unreliable_series_are_drawn_with_their_reason():
    ax = Figure().add_subplot()
    good = ax.plot([1, 2, 3], [0.5, 0.9, 1.0], color="tab:blue", label="sansa")[0]
    bad = ax.plot([1, 2, 3], [1.1, 1.05, 1.0], color="tab:orange", label="sam2")[0]
    bars = ax.bar([0, 1], [5.0, 40.0])
    line = draw_chance(ax, 1 / 16, label="chance (1/16)")
    assert line.get_gid() == GIDS["chance"] and line.get_ydata()[0] == pytest.approx(1 / 16) and line.get_label() == "chance (1/16)"
    changed = mark_unreliable(bad, "sam2: full-dimension accuracy 8.3 % is near chance (6.25 %)", ax=ax)
    assert changed == [bad] and bad.get_gid() == GIDS["unreliable"] and bad.get_linestyle() == ":"
    assert good.get_gid() is None and good.get_color() == "tab:blue"
    mark_unreliable(bars[0], "n = 2", ax=ax)
    assert bars[0].get_hatch() == "///" and bars[0].get_gid() == GIDS["unreliable"] and bars[1].get_hatch() is None
    notes = texts_with_gid(ax, GIDS["caveat"])
    assert len(notes) == 1 and "near chance" in notes[0] and "n = 2" in notes[0]  # stacked in one box
    assert note_on_axes(ax, []) is None


def test_errorbar_containers_are_greyed_whole():
    ax = Figure().add_subplot()
    container = ax.errorbar([1.0], [0.0], xerr=[[0.5], [0.5]], fmt="o", color="tab:blue")
    changed = mark_unreliable(container, "")
    assert len(changed) >= 2 and all(a.get_gid() == GIDS["unreliable"] for a in changed)
    assert texts_with_gid(ax, GIDS["caveat"]) == []  # no ax: no note


def test_labels_interval_counts_and_the_not_comparable_stamp():
    ax = Figure().add_subplot()
    texts = label_groups(ax, {"striped-star": (0.0, 1.0), "dotted-ring": (2.0, 3.0), "lost": (float("nan"), 0.0)},
                         colors={"striped-star": "#ff0000"})
    assert [t.get_text() for t in texts] == ["striped-star", "dotted-ring"] and texts[0].get_color() == "#ff0000"
    assert sorted(texts_with_gid(ax, GIDS["class_label"])) == ["dotted-ring", "striped-star"]
    assert with_n("class 40", 2) == "class 40 (n=2)"
    stamp_not_comparable(ax, "ours: the miniature on the procedural benchmark; the paper: Hiera-L on COCO-20i")
    (stamp,) = texts_with_gid(ax, GIDS["not_comparable"])
    assert stamp.startswith("NOT COMPARABLE") and "miniature" in stamp


def test_warnings_and_identity_go_under_the_figure_and_the_axes_keep_clear():
    figure = Figure(figsize=(4.0, 3.0), layout="constrained")
    figure.add_subplot().plot([0, 1], [0, 1])
    annotate_figure(figure, "hiera_t SAM2 2.1 @128px | SAM2: the miniature", warnings=["PCA (sam2): accuracy at chance", "PCA (sam2): accuracy at chance"])
    (footnote,) = texts_with_gid(figure, GIDS["footnote"])
    (warning,) = texts_with_gid(figure, GIDS["warning"])
    assert "the miniature" in footnote and warning == "warning: PCA (sam2): accuracy at chance"  # once
    rect = figure.get_layout_engine().get()["rect"]
    assert rect[1] > 0.05
    empty = Figure()
    assert annotate_figure(empty, "") is empty and empty.texts == []
    plain = Figure(figsize=(4.0, 3.0))  # no layout engine: the subplots move up
    plain.add_subplot()
    annotate_figure(plain, "identity", warnings=["w"])
    assert plain.subplotpars.bottom > 0.1


def test_a_blue_object_is_not_tinted_blue_in_overlays_and_previews():
    from sansa_probe.io.masks import MASK_TINTS, contrasting_tint, overlay
    from sansa_probe.reporting.preview import plot_segmentation

    blue, red = np.zeros((20, 20, 3), dtype=np.uint8), np.zeros((20, 20, 3), dtype=np.uint8)
    blue[...] = (40, 90, 230)
    red[...] = (200, 60, 40)
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:15, 5:15] = True
    assert contrasting_tint(red, mask) == MASK_TINTS[0]  # blue where it shows
    tint = contrasting_tint(blue, mask)
    assert tint != MASK_TINTS[0] and np.linalg.norm(np.subtract(tint, (40, 90, 230))) >= 150
    assert tuple(overlay(blue, mask)[5, 5]) == tint  # the outline is drawn in it
    assert tuple(overlay(blue, mask, color=(1, 2, 3))[5, 5]) == (1, 2, 3)  # an explicit colour stays
    from sansa_probe.prompts.types import Mask

    axes = plot_segmentation([red], [Mask(mask)],
                             [red, blue], [mask, mask], target_names=["red.png", "blue.png"])
    legend = axes[0, 0].figure.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["reference prompt", "predicted mask (blue)", f"predicted mask ({dict(zip(MASK_TINTS, ['blue', 'yellow', 'magenta', 'green']))[tint]})"]


def test_the_segmentation_preview_legend_fits_inside_a_one_target_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from sansa_probe.prompts.types import Mask
    from sansa_probe.reporting.preview import plot_segmentation

    image = np.full((30, 40, 3), 128, dtype=np.uint8)
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:20, 5:30] = True
    figure = plot_segmentation([image], [Mask(mask)], [image], [mask])[0, 0].figure
    annotate_figure(figure, "hiera_t SAM2 2.1 @128px | SAM2: the miniature", warnings=["SAM2 is the shipped MINIATURE"])
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    box, frame = figure.legends[0].get_window_extent(canvas.get_renderer()), figure.bbox
    assert box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1  # not clipped
    assert texts_with_gid(figure, GIDS["warning"]) == ["warning: SAM2 is the shipped MINIATURE"]


def test_pca_rgb_colours_do_not_flip_between_two_fits_of_the_same_structure():
    from sansa_probe.probes import PCARGB

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(2 * 6 * 6, 3)) * np.array([5.0, 2.0, 1.0])

    def features(lead: np.ndarray) -> np.ndarray:
        """Pixels with three directions of decreasing variance, the first ``lead``, as [2, 8, 6, 6] maps."""
        basis = np.zeros((3, 8))
        basis[0, :2] = lead / np.linalg.norm(lead)
        basis[1, 2], basis[2, 3] = 1.0, 1.0
        return (codes @ basis).reshape(2, 6, 6, 8).transpose(0, 3, 1, 2)

    # frozen SAM2 and SANSA: almost the same leading direction, but its largest loading changes sides,
    # so a basis signed on its own inverts the red channel: an effect that is not there
    X, Y = features(np.array([1.0, -1.02])), features(np.array([1.0, -0.98]))
    frozen = PCARGB().fit(X)
    own = PCARGB().fit(Y)
    aligned = PCARGB(align_to=frozen).fit(Y)
    reference = np.stack(frozen.transform(X))
    assert np.abs(np.stack(own.transform(Y))[..., 0] - reference[..., 0]).mean() > 0.3  # inverted
    np.testing.assert_allclose(np.stack(aligned.transform(Y)), reference, atol=0.03)  # the same colours
    assert aligned.alignment_.min() > 0.99 and np.isnan(frozen.alignment_).all()
    with pytest.raises(ValueError, match="align_to"):
        PCARGB(align_to=frozen).fit(X[:, :5])


def _side_by_side(identity: str, ours_dataset: str):
    import pandas as pd

    from sansa_probe.paper import side_by_side

    rows = [dict(table="table9", method="SANSA", setting=s, dataset="coco20i", fold="mean", shots=1, metric="miou", value=v,
                 ours_dataset=ours_dataset, identity=identity) for s, v in (("J=1", 9.94), ("J=2", 58.0))]
    return side_by_side(pd.DataFrame(rows), "table9")


def test_paper_beside_the_miniature_is_stamped_not_comparable_with_no_difference_drawn():
    from sansa_probe.paper import format_side_by_side
    from sansa_probe.paper.compare import comparison_warnings, plot_side_by_side

    mini = _side_by_side("SANSA (adapters on) | hiera_t SAM2 2.1 @128px | SAM2 weights: the miniature SAM2 pretrained here", "synthetic (miniature, fold 0)")
    assert not mini["comparable"].any() and mini["difference"].isna().all()  # no "-47 points" anywhere
    assert "n/c" in format_side_by_side(mini, "table9") and "-47" not in format_side_by_side(mini, "table9")
    (warning,) = comparison_warnings(mini, "table9")
    assert "miniature" in warning and "synthetic" in warning
    ax = plot_side_by_side(mini)
    (stamp,) = texts_with_gid(ax, GIDS["not_comparable"])
    assert "the shipped miniature" in stamp and "coco20i" in stamp
    paper = [p for p in ax.patches if p.get_hatch() == "//"]
    assert len(paper) == 2 and all(p.get_facecolor()[3] == 0 for p in paper)  # empty outlines, not bars to compare
    assert not [t for t in ax.texts if t.get_text().strip().startswith(("+", "-"))]
    assert "miniature" in texts_with_gid(ax.figure, GIDS["footnote"])[0]


def test_paper_beside_the_same_model_and_data_shows_the_difference_and_no_stamp():
    from sansa_probe.paper.compare import comparison_warnings, plot_side_by_side

    real = _side_by_side("SANSA (adapters on) | hiera_l SAM2 2.1 @1024px | SAM2 weights: sam2.1_hiera_large.pt", "coco20i")
    assert real["comparable"].all() and real["difference"].round(2).tolist() == [-47.06, -0.9]
    assert comparison_warnings(real, "table9") == []
    ax = plot_side_by_side(real)
    assert texts_with_gid(ax, GIDS["not_comparable"]) == []
    assert sorted(t.get_text().strip() for t in ax.texts if t.get_gid() is None) == ["-0.9", "-47.1"]
    randomised = _side_by_side("SANSA (adapters on) | hiera_l SAM2 2.1 @1024px | SAM2 weights: RANDOM", "coco20i")
    assert not randomised["comparable"].any() and "random weights" in comparison_warnings(randomised, "table9")[0]


def test_an_evaluation_inside_a_paper_table_says_when_classes_were_never_sampled():
    from sansa_probe.miniature import load_miniature
    from sansa_probe.paper.runs import RunConfig, evaluate_run
    from sansa_probe.reporting.sanity import SanityWarning

    config = RunConfig(out=Path("unused"), episodes=2, progress=False)
    with pytest.warns(SanityWarning, match=r"14 of 16 classes were never sampled by 2 episodes .* over the 2 sampled ones"):
        run = evaluate_run(load_miniature(0), config, dataset="synthetic", fold=0)
    assert run["unsampled"] == 14 and run["n_episodes"] == 2


def test_the_compare_figure_shows_absolute_values_names_and_n_and_greys_thin_classes():
    import pandas as pd

    from sansa_probe.evaluation.comparison import plot_comparison

    table = pd.DataFrame([
        {"scope": "overall", "class_id": "", "class_name": "", "n_episodes": 100, "frozen": 27.65, "adapted": 28.53, "difference": 0.88, "ci_low": 0.6, "ci_high": 1.09},
        {"scope": "class", "class_id": 0.0, "class_name": "striped-star", "n_episodes": 5, "frozen": 27.43, "adapted": 28.57, "difference": 1.14, "ci_low": 0.5, "ci_high": 1.8},
        {"scope": "class", "class_id": 40.0, "class_name": "", "n_episodes": 2, "frozen": 20.0, "adapted": 21.2, "difference": 1.2, "ci_low": -1.5, "ci_high": 2.6},
    ])  # fmt: skip
    ax = plot_comparison(table)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["overall mIoU (n=100): 27.65 \u2192 28.53 %", "striped-star (n=5): 27.4 \u2192 28.6 %", "class 40 (n=2): 20.0 \u2192 21.2 %"]
    points = [line for line in ax.lines if line.get_marker() == "o"]  # one per row, then its caps
    grey = [line for line in points if line.get_gid() == GIDS["unreliable"]]
    assert len(points) == 3 and len(grey) == 1 and grey[0].get_ydata()[0] == 0  # class 40, drawn last (bottom), only
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["overall mIoU", "per class", "per class, < 5 episodes: too few to read"]


def test_compare_from_runs_names_classes_and_warns_about_thin_intervals(tmp_path):
    import pandas as pd

    from sansa_probe.evaluation.comparison import compare_evaluations

    for name, shift in (("frozen", 0), ("adapted", 5)):
        folder = tmp_path / name
        folder.mkdir()
        episodes = [{"episode": i, "class_id": c, "intersection": 10 + shift + i, "union": 100} for i, c in enumerate([3] * 6 + [7] * 2)]
        pd.DataFrame(episodes).to_csv(folder / "episodes.csv", index=False)
        pd.DataFrame([{"metric": "iou", "class_id": 3, "class_name": "dotted-ring", "value": 0.0},
                      {"metric": "iou", "class_id": 7, "class_name": "plain-moon", "value": 0.0}]).to_csv(folder / "results.csv", index=False)
    comparison = compare_evaluations(tmp_path / "frozen", tmp_path / "adapted", n_boot=200)
    assert comparison.table.set_index("class_id").loc[7, "class_name"] == "plain-moon"
    (thin,) = [w for w in comparison.warnings if "fewer than 5 episodes" in w]
    assert "plain-moon: 2" in thin and "dotted-ring" not in thin


# ============================================================================ the probe figures


def _pca_curve(fulls: dict[str, float]):
    import pandas as pd

    rows = []
    for model, full in fulls.items():
        for k in (1, 2, 4, 8):
            rows += [{"model": model, "n_components": k, "metric": "relative_accuracy", "value": min(1.09, k / 4)},
                     {"model": model, "n_components": k, "metric": "accuracy", "value": full * min(1.09, k / 4)}]
        rows.append({"model": model, "n_components": 64, "metric": "full_accuracy", "value": full})
    return pd.DataFrame(rows)


def test_the_pca_curve_names_its_base_and_greys_a_curve_relative_to_chance():
    """The issue's case: SAM2 at 8.3 % full-dimension accuracy on 16 classes (chance 6.25 %) "reaching 1.09x"."""
    from sansa_probe.probes.plots import plot_pca_concentration

    ax = plot_pca_concentration(_pca_curve({"sam2": 0.083, "sansa": 0.5}), chance=1 / 16)
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) >= {"sam2 (full dimension 8.3 %)", "sansa (full dimension 50.0 %)", "chance (6.25 %) for sam2", "chance (6.25 %) for sansa"}
    assert lines["sam2 (full dimension 8.3 %)"].get_gid() == GIDS["unreliable"] and lines["sam2 (full dimension 8.3 %)"].get_linestyle() == ":"
    assert lines["sansa (full dimension 50.0 %)"].get_gid() is None
    # each chance level on the relative scale: chance / that curve's full accuracy
    assert lines["chance (6.25 %) for sansa"].get_ydata()[0] == pytest.approx(0.0625 / 0.5)
    assert lines["chance (6.25 %) for sam2"].get_ydata()[0] == pytest.approx(0.0625 / 0.083)
    (caveat,) = texts_with_gid(ax, GIDS["caveat"])
    assert "sam2: full-dimension accuracy 8.3 % is near chance (6.25" in caveat.replace("\n  ", " ") and "sansa" not in caveat
    below = plot_pca_concentration(_pca_curve({"sansa": 0.032}), chance=1 / 16)
    assert "below chance" in texts_with_gid(below, GIDS["caveat"])[0]
    plain = plot_pca_concentration(_pca_curve({"sam2": 0.083}))  # no chance given: nothing judged
    assert texts_with_gid(plain, GIDS["caveat"]) == [] and all(line.get_gid() != GIDS["chance"] for line in plain.lines)


def test_the_projection_scatter_tells_16_classes_apart_and_names_them_on_the_points():
    import pandas as pd
    from matplotlib.colors import to_hex

    from sansa_probe.probes.plots import plot_projection

    rng = np.random.default_rng(0)
    names = [f"class-{i:02d}" for i in range(16)]
    frame = pd.DataFrame({"x": rng.normal(size=160), "y": rng.normal(size=160), "class": [names[i % 16] for i in range(160)]})
    ax = plot_projection(frame)
    colours = [to_hex(collection.get_facecolor()[0]) for collection in ax.collections]
    assert len(set(colours)) == 16 and _min_distance(colours) >= 40  # tab20's pale pairs differ by < 20
    assert sorted(texts_with_gid(ax, GIDS["class_label"])) == names
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names
    many = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300), "class": [f"c{i % 30:02d}" for i in range(300)]})
    crowded = plot_projection(many)
    assert crowded.get_legend() is None and len(texts_with_gid(crowded, GIDS["class_label"])) == 30


def test_a_collapsed_linear_probe_bar_is_greyed_with_its_reason():
    import pandas as pd

    from sansa_probe.probes.plots import plot_linear_probe

    rows = [{"model": m, "layer": "L", "metric": "miou", "value": v, "class_id": -1, "class_name": None} for m, v in (("sam2", 0.057), ("sansa", 0.2))]
    for model, shares in (("sam2", (0.995, 0.005)), ("sansa", (0.6, 0.4))):
        rows += [{"model": model, "layer": "L", "metric": "predicted_share", "value": s, "class_id": i, "class_name": n}
                 for i, (s, n) in enumerate(zip(shares, ("background", "striped-star")))]
    ax = plot_linear_probe(pd.DataFrame(rows), x="layer")
    bars = {container.get_label(): list(container) for container in ax.containers}
    assert [bar.get_gid() for bar in bars["sam2"]] == [GIDS["unreliable"]] and bars["sam2"][0].get_hatch() == "///"
    assert [bar.get_gid() for bar in bars["sansa"]] == [None]
    (caveat,) = texts_with_gid(ax, GIDS["caveat"])
    assert "sam2: predicts background for 99.5 % of the pixels" in caveat.replace("\n  ", " ")


def test_the_footnote_says_the_adapters_are_sansa_s_only():
    from sansa_probe.reporting.identity import identity_footnote

    base = {"backbone": "hiera_t", "sam2_version": "2.1", "image_size": 128, "sam2_weights": None, "precision": "float32",
            "adapters": {"label": "miniature fold-0 adapters", "sha256": "0" * 64}}
    both = {"sam2": {**base, "adapters_enabled": False, "model_run": "frozen SAM2 (adapters off)"},
            "sansa": {**base, "adapters_enabled": True, "model_run": "SANSA (adapters on)"}}
    assert "on for SANSA only (frozen SAM2 runs without them)" in identity_footnote(both)
    assert "on for SANSA only" not in identity_footnote({"sansa": both["sansa"]})


def test_fig8_through_the_pca_pipeline_judges_each_curve_against_the_folds_chance():
    """`pca --fold 0` on the miniature: SAM2 8.3 %, SANSA 8.9 % against 6.25 % for 16 classes; both
    curves greyed with their reason on the figure, a DINOv2 curve at 60 % left as it is."""
    import pandas as pd

    from sansa_probe.pipelines import pca

    fulls = {"sam2": 0.083, "sansa": 0.089, "dinov2": 0.6}
    summary = pd.DataFrame([{"model": m, "layer": "l", "metric": metric, "value": v}
                            for m, full in fulls.items() for metric, v in (("full_accuracy", full), ("n_classes", 16.0))])
    rng = np.random.default_rng(0)
    projection = pd.DataFrame({"model": np.repeat(list(fulls), 32), "layer": "l", "x": rng.normal(size=96), "y": rng.normal(size=96),
                               "class": [f"class-{i % 16:02d}" for i in range(96)]})
    figure = pca.figures({"pca_concentration": _pca_curve(fulls), "projection": projection, "summary": summary})["fig8"]
    curve_ax = figure.axes[0]
    grey = sorted(line.get_label() for line in curve_ax.lines if line.get_gid() == GIDS["unreliable"])
    assert grey == ["sam2 (full dimension 8.3 %)", "sansa (full dimension 8.9 %)"]
    caveat = texts_with_gid(curve_ax, GIDS["caveat"])[0].replace("\n  ", " ")
    assert "sam2: full-dimension accuracy 8.3 % is near chance (6.25 %)" in caveat and "dinov2" not in caveat
    assert all(len(texts_with_gid(ax, GIDS["class_label"])) == 16 for ax in figure.axes[1:4])
