"""Probes on constructed features with known answers (issue 6)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sansa_probe.probes import (
    PCARGB,
    LinearProbe,
    match_parts,
    PCAConcentration,
    Projection2D,
    pair_smoothness,
    confusion_iou,
    displacement_smoothness,
    nearest_neighbour_flow,
    plot_linear_probe,
    plot_part_matching,
    plot_pca_concentration,
    plot_pca_rgb,
    plot_projection,
    plot_spatial_coherence,
    save_figure,
    write_projection_html,
)


# ----------------------------------------------------------------------------- data
def clusters(rng, *, n_classes=4, n_per_class=60, dim=40, entangled=False):
    """Class means in 2 dims (sd 3), isotropic noise sd 0.3. ``entangled``: the 2 class dims are
    rotated into 20 dims and 20 nuisance dims of sd 3 are added, so the leading principal
    components carry mostly nuisance variance."""
    means = rng.normal(size=(n_classes, 2)) * 3
    rotation, _ = np.linalg.qr(rng.normal(size=(20, 20)))

    def split():
        X = rng.normal(scale=0.3, size=(n_classes * n_per_class, dim))
        y = np.repeat(np.arange(n_classes), n_per_class)
        X[:, :2] += means[y]
        if entangled:
            X[:, :20] = X[:, :20] @ rotation
            X[:, 20:] += rng.normal(scale=3.0, size=(X.shape[0], dim - 20))
        return X, y

    return split(), split()


# ----------------------------------------------------------------------------- PCAConcentration
def test_pca_concentration_concentrated_vs_entangled():
    rng = np.random.default_rng(0)
    (Xa, ya), (Xa_test, ya_test) = clusters(rng)
    (Xb, yb), (Xb_test, yb_test) = clusters(rng, entangled=True)
    concentrated = PCAConcentration().fit(Xa, ya)
    entangled = PCAConcentration().fit(Xb, yb)

    curve = concentrated.accuracy_curve(Xa_test, ya_test, model="concentrated")
    rel = curve[curve.metric == "relative_accuracy"].set_index("n_components")["value"]
    assert rel.index[0] == 2 and rel.index[-1] == concentrated.n_components_variance_
    assert rel.min() > 0.97  # ~1.0 from 2 components on
    score_a = concentrated.score(Xa_test, ya_test)
    score_b = entangled.score(Xb_test, yb_test)
    assert score_a > 0.97
    assert score_b < score_a - 0.2  # rises slowly
    rel_b = entangled.accuracy_curve(Xb_test, yb_test).query("metric == 'relative_accuracy'")["value"].to_numpy()
    assert rel_b[0] < 0.6 and rel_b[-1] > 0.95

    assert list(curve.columns) == ["model", "n_components", "metric", "value"]
    assert set(curve.metric) == {"accuracy", "relative_accuracy", "explained_variance", "full_accuracy"}
    explained = curve[curve.metric == "explained_variance"]["value"].to_numpy()
    assert np.all(np.diff(explained) >= 0) and explained[-1] >= 0.99


def test_pca_concentration_options_and_errors():
    rng = np.random.default_rng(1)
    (X, y), (Xt, yt) = clusters(rng, n_per_class=30, dim=12)
    est = PCAConcentration(n_components=[2, 5, 9], centroids="kmeans", average="micro").fit(X, y)
    assert est.grid_.tolist() == [2, 5, 9]
    assert est.score(Xt, yt) == pytest.approx(1.0, abs=0.03)
    assert PCAConcentration(n_grid=3).fit(X, y).grid_.size <= 3
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        PCAConcentration().score(Xt, yt)
    with pytest.raises(ValueError, match="^y: expected 120 labels"):
        PCAConcentration().fit(X, y[:-1])
    with pytest.raises(ValueError, match="^n_components"):
        PCAConcentration(n_components=[2, 99]).fit(X, y)
    with pytest.raises(ValueError, match="^X: expected 12 features"):
        est.score(Xt[:, :5], yt)
    with pytest.raises(TypeError):
        PCAConcentration(0.9)  # keyword-only


# ----------------------------------------------------------------------------- Projection2D
def test_projection_pca_frame_score_and_html(tmp_path):
    rng = np.random.default_rng(2)
    (X, y), _ = clusters(rng, n_per_class=10, dim=8)
    image_ids = [f"img{i:03d}" for i in range(len(y))]
    proj = Projection2D().fit(torch.from_numpy(X), y, image_ids=image_ids, instance_ids=np.arange(len(y)))
    frame = proj.to_frame(model="sansa")
    assert list(frame.columns) == ["model", "x", "y", "class", "image_id", "instance_id"]
    assert len(frame) == len(y) and frame["image_id"].iloc[3] == "img003"
    assert proj.score() > 0.7  # well-separated classes in the first two PCs
    assert proj.transform(X[:5]) == pytest.approx(proj.embedding_[:5])
    path = write_projection_html(frame, tmp_path / "proj.html", include_plotlyjs="cdn")
    html = path.read_text()
    assert "img003" in html and "plotly" in html.lower()
    with pytest.raises(ValueError, match="^image_ids"):
        Projection2D().fit(X, y, image_ids=image_ids[:-1])
    with pytest.raises(ValueError, match="^method"):
        Projection2D(method="tsne").fit(X, y)
    with pytest.raises(NotFittedError):
        Projection2D().to_frame()


@pytest.mark.slow
def test_projection_umap_tiny():
    rng = np.random.default_rng(3)
    (X, y), _ = clusters(rng, n_classes=2, n_per_class=12, dim=6)
    proj = Projection2D(method="umap", n_neighbors=5, random_state=0).fit(X, y)
    assert proj.embedding_.shape == (24, 2) and np.all(np.isfinite(proj.embedding_))
    assert proj.score() > 0.5


# ----------------------------------------------------------------------------- PCARGB
def test_pca_rgb_range_and_cross_image_consistency():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(16, 6, 5)).astype(np.float32)
    b = rng.normal(size=(16, 4, 7)).astype(np.float32)  # other size, same channels
    b[:, 1, 2] = a[:, 3, 4]  # the same feature vector in both images
    b[:, 0, 0] = a[:, 0, 1]
    maps = PCARGB().fit_transform([a, torch.from_numpy(b)])
    assert [m.shape for m in maps] == [(6, 5, 3), (4, 7, 3)]
    for rgb in maps:
        assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert np.array_equal(maps[1][1, 2], maps[0][3, 4])
    assert np.array_equal(maps[1][0, 0], maps[0][0, 1])
    # the joint normalisation spans [0, 1] over all images together, not per image
    stacked = np.concatenate([m.reshape(-1, 3) for m in maps])
    assert stacked.min(0) == pytest.approx(np.zeros(3)) and stacked.max(0) == pytest.approx(np.ones(3))


def test_pca_rgb_masks_frame_and_errors():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 8, 6, 6)).astype(np.float32)
    masks = np.zeros((2, 6, 6), dtype=bool)
    masks[:, 1:5, 2:5] = True
    est = PCARGB(background=1.0, quantile=0.02).fit(X, masks)
    maps = est.transform(X, masks)
    assert np.all(maps[0][~masks[0]] == 1.0)
    assert 0.0 < est.score(X, masks) <= 1.0
    frame = est.to_frame(X, masks, model="sam2")
    assert list(frame.columns) == ["model", "image", "row", "col", "r", "g", "b", "in_mask"]
    assert len(frame) == 2 * 36 and frame["in_mask"].sum() == masks.sum()
    with pytest.raises(ValueError, match=r"^masks\[1\]: mask shape \(6, 5\)"):
        est.transform(X, [masks[0], masks[1][:, :5]])
    with pytest.raises(ValueError, match="^masks: expected 2 masks"):
        PCARGB().fit(X, masks[:1])
    with pytest.raises(ValueError, match="^X: expected"):
        PCARGB().fit(X[0])
    with pytest.raises(NotFittedError):
        PCARGB().transform(X)


# ----------------------------------------------------------------------------- LinearProbe
def separable_pixels(rng, n=6, c=6, h=8, w=8, n_classes=3):
    """Per-pixel features = class prototype + small noise; labels at feature size."""
    prototypes = rng.normal(size=(n_classes, c)) * 2
    labels = rng.integers(0, n_classes, size=(n, h, w))
    X = prototypes[labels].transpose(0, 3, 1, 2) + rng.normal(scale=0.1, size=(n, c, h, w))
    return X.astype(np.float32), labels


def test_linear_probe_separable_pixels_reach_miou_one():
    rng = np.random.default_rng(6)
    X, y = separable_pixels(rng)
    y_train = y.copy()
    y_train[:, 0, :] = 255  # ignored pixels do not disturb training
    probe = LinearProbe(epochs=40, lr=0.05, batch_size=4, seed=0, device="cpu").fit(torch.from_numpy(X), y_train)
    assert probe.loss_history_[-1] < probe.loss_history_[0]
    assert probe.score(X, y) > 0.99
    assert probe.n_classes_ == 3 and probe.weight_.shape == (3, 6)
    frame = probe.to_frame(X, y, model="sam2", layer="trunk.blocks.11")
    assert list(frame.columns) == ["model", "layer", "class_id", "metric", "value"]
    assert frame.query("metric == 'miou'")["value"].item() == pytest.approx(probe.score(X, y))
    assert probe.predict(X, size=(16, 16)).shape == (6, 16, 16)
    again = LinearProbe(epochs=40, lr=0.05, batch_size=4, seed=0).fit(X, y_train)
    assert torch.equal(again.weight_, probe.weight_)  # seeded
    sgd = LinearProbe(epochs=30, lr=0.5, optimizer="sgd", batch_size=2).fit(X, y)
    assert sgd.score(X, y) > 0.95


def test_linear_probe_metric_and_errors():
    # rows: ground truth, cols: prediction; class 2 absent everywhere -> NaN, excluded
    iou = confusion_iou(np.array([[2, 1, 0], [0, 3, 0], [0, 0, 0]]))
    assert iou[:2] == pytest.approx([2 / 3, 3 / 4]) and math.isnan(iou[2])
    rng = np.random.default_rng(7)
    X, y = separable_pixels(rng, n=2, h=4, w=4)
    with pytest.raises(ValueError, match="^y: expected 2 label maps"):
        LinearProbe(epochs=1).fit(X, y[:1])
    with pytest.raises(ValueError, match="^X: expected a 4-D"):
        LinearProbe(epochs=1).fit(X[0], y)
    with pytest.raises(ValueError, match=r"^y: label values must be in \[0, 1\]"):
        LinearProbe(n_classes=2, epochs=1).fit(X, np.full_like(y, 2))
    with pytest.raises(NotFittedError):
        LinearProbe().score(X, y)


# ----------------------------------------------------------------------------- part matching
def test_part_matching_recovers_a_known_permutation():
    rng = np.random.default_rng(8)
    centres = np.eye(3, 8) * 3 + 0.5  # three distinct directions
    layout_a = np.repeat(np.arange(3), 2)[:, None].repeat(6, 1)  # rows 0-1: part 0, 2-3: 1, 4-5: 2
    permutation = np.array([2, 0, 1])
    layout_b = permutation[layout_a]  # the same parts, laid out in another order
    Xa = centres[layout_a].transpose(2, 0, 1) + rng.normal(scale=0.05, size=(8, 6, 6))
    Xb = centres[layout_b].transpose(2, 0, 1) + rng.normal(scale=0.05, size=(8, 6, 6))
    mask = np.ones((6, 6), dtype=bool)
    mask[:, 5] = False
    names = ["head", "body", "tail"]
    parts_a = {n: (layout_a == i) & mask for i, n in enumerate(names)}
    parts_b = {n: (layout_b == i) & mask for i, n in enumerate(names)}
    scores, pixels = match_parts(Xa, torch.from_numpy(Xb), mask_a=mask, mask_b=mask, parts_a=parts_a, parts_b=parts_b,
                                 n_clusters=3, random_state=0)
    la, lb = (pixels[pixels["image"] == i].pivot(index="row", columns="col", values="cluster").to_numpy() for i in (0, 1))
    assert np.all(la[~mask] == -1) and np.all(lb[~mask] == -1)
    for part in range(3):  # every true part gets one shared cluster id in both images
        ids_a = np.unique(la[(layout_a == part) & mask])
        ids_b = np.unique(lb[(layout_b == part) & mask])
        assert ids_a.size == 1 and ids_a.tolist() == ids_b.tolist()
    assert list(scores.columns) == ["cluster", "part_a", "part_b", "metric", "value"]
    matched = scores.query("metric == 'matched_cosine'")
    assert matched["cluster"].tolist() == [0, 1, 2] and (matched["value"] > 0.99).all()
    assert scores.query("metric == 'mean_matched_cosine'")["value"].item() == pytest.approx(matched["value"].mean())
    assert scores.query("metric == 'mean_matched_cosine'")["value"].item() > 0.99
    assert scores.query("metric == 'part_agreement'")["value"].item() == 1.0
    assert matched["part_a"].tolist() == matched["part_b"].tolist() and sorted(matched["part_a"]) == sorted(names)

    wrong_names = {"head": parts_b["body"], "body": parts_b["tail"], "tail": parts_b["head"]}
    wrong, _ = match_parts(Xa, Xb, mask_a=mask, mask_b=mask, parts_a=parts_a, parts_b=wrong_names, n_clusters=3)
    assert wrong.query("metric == 'part_agreement'")["value"].item() == 0.0
    unnamed, _ = match_parts(Xa, Xb, mask_a=mask, mask_b=mask, n_clusters=3)
    assert math.isnan(unnamed.query("metric == 'part_agreement'")["value"].item())

    assert list(pixels.columns) == ["image", "row", "col", "cluster"] and len(pixels) == 72
    axes = plot_part_matching(pixels, images=[np.zeros((24, 24, 3), np.uint8)] * 2)
    assert axes.shape == (1, 2)


def test_part_matching_errors():
    X = np.random.default_rng(9).normal(size=(4, 5, 5))
    mask = np.ones((5, 5), dtype=bool)
    with pytest.raises(ValueError, match=r"^mask_b\[0\]: mask shape \(4, 5\)"):
        match_parts(X, X, mask_a=mask, mask_b=mask[:4], n_clusters=2)
    with pytest.raises(ValueError, match="^parts_a/parts_b"):
        match_parts(X, X, mask_a=mask, mask_b=mask, parts_a={"a": mask}, n_clusters=2)
    with pytest.raises(ValueError, match="^mask_a: has 1 pixels"):
        match_parts(X, X, mask_a=np.eye(5, dtype=bool) & (np.arange(5) == 0), mask_b=mask, n_clusters=2)
    with pytest.raises(ValueError, match="^n_clusters: expected a positive int"):
        match_parts(X, X, mask_a=mask, mask_b=mask, n_clusters=0)


# ----------------------------------------------------------------------------- spatial coherence
def sd_dino_smoothness_oracle(flow, mask):
    """Test oracle written from the definition (replicate-padded forward differences of the
    zeroed-out field, summed, over the mask size), in torch as sd-dino computes it."""
    f = torch.as_tensor(flow, dtype=torch.float64)[None] * torch.as_tensor(mask)[None, None]
    gx = F.pad(f, (0, 1, 0, 0), mode="replicate")
    gy = F.pad(f, (0, 0, 0, 1), mode="replicate")
    gx = gx[..., :-1] - gx[..., 1:]
    gy = gy[..., :-1, :] - gy[..., 1:, :]
    return float((gx.abs().sum() + gy.abs().sum()) / torch.as_tensor(mask).sum())


def test_displacement_smoothness_hand_values():
    full = np.ones((3, 3), dtype=bool)
    assert displacement_smoothness(np.zeros((2, 3, 3)), full) == 0.0  # identity
    assert displacement_smoothness(np.stack([np.full((3, 3), 5.0), np.full((3, 3), -2.0)]), full) == 0.0
    ramp = np.stack([np.tile([0.0, 1.0, 2.0], (3, 1)), np.zeros((3, 3))])
    assert displacement_smoothness(ramp, full) == pytest.approx(6 / 9)  # 3 rows x (1 + 1)
    left = np.zeros((3, 3), dtype=bool)
    left[:, :2] = True  # field zeroed in column 2: rows read 0, 1, 0 -> 2 per row
    assert displacement_smoothness(ramp, left) == pytest.approx(6 / 6)
    assert displacement_smoothness(ramp, left, outside="exclude") == pytest.approx(3 / 6)
    assert displacement_smoothness(ramp, None) == pytest.approx(6 / 18)  # sd-dino's unmasked branch: / (2 H W)

    # constant translation t = (3, -1) on a 2x2 block inside a 4x4 image: 0 between mask
    # pixels, but sd-dino's zeroing makes each border crossing cost |3| + |-1| = 4:
    # 2 rows x 2 crossings + 2 columns x 2 crossings = 8 crossings -> 32 / 4 pixels = 8
    block = np.zeros((4, 4), dtype=bool)
    block[1:3, 1:3] = True
    shift = np.stack([np.full((4, 4), 3.0), np.full((4, 4), -1.0)])
    assert displacement_smoothness(shift, block, outside="exclude") == 0.0
    assert displacement_smoothness(shift, block) == pytest.approx(8.0)
    corner = np.zeros((4, 4), dtype=bool)
    corner[:2, :2] = True  # at the image border the replicated edge adds nothing: 4 crossings
    assert displacement_smoothness(shift, corner) == pytest.approx(16 / 4)

    rng = np.random.default_rng(10)
    flow = rng.normal(size=(2, 9, 11)) * 4
    mask = rng.random((9, 11)) < 0.5
    assert displacement_smoothness(flow, mask) == pytest.approx(sd_dino_smoothness_oracle(flow, mask))


def test_displacement_smoothness_errors():
    with pytest.raises(ValueError, match="^flow: expected a"):
        displacement_smoothness(np.zeros((3, 4, 4)), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="^mask: shape"):
        displacement_smoothness(np.zeros((2, 4, 4)), np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="^mask: is empty"):
        displacement_smoothness(np.zeros((2, 4, 4)), np.zeros((4, 4), bool))


def test_nearest_neighbour_flow_in_image_pixels():
    rng = np.random.default_rng(11)
    source = rng.normal(size=(16, 8, 8)).astype(np.float32)
    target = rng.normal(size=(16, 8, 8)).astype(np.float32)
    target[:, :, 2:] = source[:, :, :-2]  # source cell (i, j) reappears at (i, j + 2), j <= 5
    flow = nearest_neighbour_flow(source, target, (32, 16))  # grid stride: 4 px in y, 2 px in x
    assert flow.shape == (2, 32, 16)
    mask = np.zeros((32, 16), dtype=bool)
    mask[8:24, 2:10] = True  # image pixels whose bilinear neighbours are grid columns 0..5
    assert np.allclose(flow[0][mask], 4.0) and np.allclose(flow[1][mask], 0.0)
    assert displacement_smoothness(flow, mask, outside="exclude") == pytest.approx(0.0)
    # zeroed outside, each border crossing costs |4| + |0|: (16 rows x 2 + 8 columns x 2) x 4
    # = 192 over 128 mask pixels
    assert displacement_smoothness(flow, mask) == pytest.approx(1.5)

    frame = pair_smoothness([source, source], [source, target], source_masks=[mask, mask])
    assert list(frame.columns) == ["pair", "metric", "value", "n_mask_pixels"]
    assert frame["value"].tolist() == pytest.approx([0.0, 1.5])  # identity field, translation
    assert frame["value"].mean() == pytest.approx(0.75) and frame["n_mask_pixels"].tolist() == [128, 128]
    assert frame["pair"].tolist() == [0, 1] and set(frame["metric"]) == {"smoothness"}

    # restricted matching lands inside the target mask (grid = image size: 1 px per cell)
    target_mask = np.zeros((8, 8), dtype=bool)
    target_mask[2:5, 3:7] = True
    field = nearest_neighbour_flow(source, source, (8, 8), target_mask=target_mask)
    rows, cols = np.mgrid[0:8, 0:8]
    assert np.all(target_mask[(rows + field[1]).astype(int), (cols + field[0]).astype(int)])
    restricted = pair_smoothness([source], [source], source_masks=[mask], target_masks=[np.ones((32, 16), bool)],
                                 restrict_to_target_mask=True)
    assert restricted["value"].tolist() == pytest.approx([0.0])


def test_spatial_coherence_errors():
    x = np.zeros((4, 6, 6), dtype=np.float32)
    mask = np.ones((12, 12), dtype=bool)
    with pytest.raises(ValueError, match=r"^X_target\[0\]: feature grid"):
        pair_smoothness([x], [x[:, :5]], source_masks=[mask])
    with pytest.raises(ValueError, match="^target_masks: required"):
        pair_smoothness([x], [x], source_masks=[mask], restrict_to_target_mask=True)
    with pytest.raises(ValueError, match="^source_masks: expected 1 masks"):
        pair_smoothness([x], [x], source_masks=[mask, mask])
    with pytest.raises(ValueError, match="^outside: expected"):
        pair_smoothness([x], [x], source_masks=[mask], outside="clip")


# ----------------------------------------------------------------------------- plots
def test_plots_are_functions_of_tables(tmp_path):
    rng = np.random.default_rng(12)
    (X, y), (Xt, yt) = clusters(rng, n_per_class=15, dim=10)
    curves = pd.concat([PCAConcentration().fit(X, y).accuracy_curve(Xt, yt, model=m) for m in ("sam2", "sansa")])
    ax = plot_pca_concentration(curves)
    assert isinstance(ax, Axes) and len(ax.get_lines()) == 3  # two curves + the reference line
    projection = Projection2D().fit(X, y).to_frame(model="sam2")
    assert isinstance(plot_projection(projection), Axes)
    probe_rows = pd.DataFrame({"model": ["sam2", "sansa"], "metric": "miou", "value": [0.658, 0.692]})
    ax = plot_linear_probe(probe_rows)
    assert [round(p.get_height(), 1) for p in ax.patches] == [65.8, 69.2]
    coherence = pd.DataFrame({"model": ["sam2", "sam2", "sansa", "sansa"], "setting": ["davis", "tss"] * 2,
                              "metric": "smoothness", "value": [1.5, 9.1, 1.7, 4.1]})
    ax = plot_spatial_coherence(coherence)
    assert sorted(round(p.get_height(), 1) for p in ax.patches) == [1.5, 1.7, 4.1, 9.1]
    maps = rng.normal(size=(2, 8, 4, 4)).astype(np.float32)
    axes = plot_pca_rgb(PCARGB().fit(maps).to_frame(maps), images=[np.zeros((16, 16, 3), np.uint8)] * 2)
    assert axes.shape == (2, 2)
    paths = save_figure(ax.figure, tmp_path / "figs" / "coherence")
    assert [p.name for p in paths] == ["coherence.png", "coherence.pdf"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert sorted(q.name for q in (tmp_path / "figs").iterdir()) == ["coherence.pdf", "coherence.png"]


# ----------------------------------------------------------------------------- devices
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_is_passed_in():
    rng = np.random.default_rng(13)
    X, y = separable_pixels(rng, n=4)
    probe = LinearProbe(epochs=20, lr=0.05, device="cuda").fit(torch.from_numpy(X).cuda(), y)
    assert probe.weight_.device.type == "cpu" and probe.score(X, y) > 0.99
    source = rng.normal(size=(8, 6, 6)).astype(np.float32)
    target = rng.normal(size=(8, 6, 6)).astype(np.float32)
    assert np.allclose(nearest_neighbour_flow(source, target, (12, 12), device="cuda"),
                       nearest_neighbour_flow(source, target, (12, 12)))
