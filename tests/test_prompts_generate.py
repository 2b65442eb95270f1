"""Invariants of the seeded prompt generators (paper appendix E.3) on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from sansa_probe.prompts import (
    PROMPT_TYPES,
    Box,
    Mask,
    Points,
    Scribble,
    box_from_mask,
    make_prompt,
    sample_points,
    sample_scribble,
)


def _two_components() -> np.ndarray:
    """64x80: a 20x30 rectangle (rows 5..24, cols 10..39) and a smaller L-shaped blob."""
    mask = np.zeros((64, 80), dtype=bool)
    mask[5:25, 10:40] = True
    mask[40:60, 50:55] = True
    mask[55:60, 55:70] = True
    return mask


def _ring() -> np.ndarray:
    """A thin annulus: strokes that leave it would be caught by the clipping check."""
    yy, xx = np.mgrid[:96, :96]
    r = np.hypot(yy - 48, xx - 48)
    return (r >= 30) & (r <= 34)


MASKS = {"two_components": _two_components(), "ring": _ring(), "single_pixel": np.eye(1, 1, dtype=bool)}


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("train", [False, True])
def test_points_lie_on_distinct_foreground_pixels(name: str, train: bool) -> None:
    mask = MASKS[name]
    for seed in range(10):
        points = sample_points(mask, seed=seed, train=train)
        x, y = points.coords[:, 0].astype(int), points.coords[:, 1].astype(int)
        assert np.array_equal(points.coords, np.stack([x, y], axis=1))  # whole pixels
        assert mask[y, x].all()
        assert len({(a, b) for a, b in zip(x, y)}) == len(x)
        assert 1 <= len(x) <= 20
        assert np.all(points.labels == 1)
        points.validate(*mask.shape)


def test_point_counts_follow_the_protocol() -> None:
    mask = _two_components()
    assert all(len(sample_points(mask, seed=s).coords) == 20 for s in range(5))  # test: all 20
    train_counts = {len(sample_points(mask, seed=s, train=True).coords) for s in range(200)}
    assert train_counts <= set(range(1, 21)) and len(train_counts) > 10 and {1, 20} & train_counts
    assert len(sample_points(mask, seed=0, n=7).coords) == 7
    tiny = np.zeros((8, 8), dtype=bool)
    tiny[2, 3] = tiny[5, 6] = True
    assert len(sample_points(tiny, seed=0).coords) == 2  # min(20, area)
    assert sorted(map(tuple, sample_points(tiny, seed=0).coords.tolist())) == [(3.0, 2.0), (6.0, 5.0)]


def test_points_reproducible_by_seed_and_seeds_differ() -> None:
    mask = _two_components()
    a = sample_points(mask, seed=3, train=True)
    b = sample_points(mask, seed=3, train=True)
    assert np.array_equal(a.coords, b.coords)
    assert np.array_equal(sample_points(mask, seed=(1, 2, 3)).coords, sample_points(mask, seed=[1, 2, 3]).coords)
    assert not np.array_equal(sample_points(mask, seed=3).coords, sample_points(mask, seed=4).coords)
    state = np.random.get_state()[1].copy()
    sample_points(mask, seed=5)
    sample_scribble(mask, seed=5)
    assert np.array_equal(state, np.random.get_state()[1])  # global random state untouched


def test_box_is_tight_on_the_largest_component() -> None:
    box = box_from_mask(_two_components())
    assert isinstance(box, Box)
    assert box.xyxy == (10.0, 5.0, 40.0, 25.0)  # 600 px rectangle beats the 175 px L
    single = np.zeros((10, 12), dtype=np.uint8)
    single[3, 7] = 1
    assert box_from_mask(single).xyxy == (7.0, 3.0, 8.0, 4.0)
    # diagonal neighbours are one component (8-connectivity)
    diagonal = np.eye(6, dtype=bool)
    diagonal[0, 5] = True
    assert box_from_mask(diagonal).xyxy == (0.0, 0.0, 6.0, 6.0)
    assert box_from_mask(_ring()).xyxy == (14.0, 14.0, 83.0, 83.0)


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("train", [False, True])
def test_scribble_stays_inside_the_object(name: str, train: bool) -> None:
    mask = MASKS[name]
    for seed in range(10):
        scribble = sample_scribble(mask, seed=seed, train=train)
        assert isinstance(scribble, Scribble)
        assert scribble.mask.shape == mask.shape
        assert scribble.mask.any()
        assert not (scribble.mask & ~mask).any()
        scribble.validate(*mask.shape)


def test_scribble_is_strokes_not_the_whole_mask() -> None:
    mask = np.zeros((256, 256), dtype=bool)
    mask[16:240, 16:240] = True
    sizes = [sample_scribble(mask, seed=s, n_strokes=1).mask.sum() for s in range(10)]
    assert all(5 <= size < 0.2 * mask.sum() for size in sizes)
    # more strokes cover more of the object, on average
    many = np.mean([sample_scribble(mask, seed=s, n_strokes=20).mask.sum() for s in range(10)])
    assert many > 3 * np.mean(sizes)


def test_scribble_counts_reproducibility_and_seeds() -> None:
    mask = _two_components()
    a = sample_scribble(mask, seed=11, train=True).mask
    assert np.array_equal(a, sample_scribble(mask, seed=11, train=True).mask)
    assert np.array_equal(sample_scribble(mask, seed=2).mask, sample_scribble(mask, seed=2).mask)
    assert not np.array_equal(sample_scribble(mask, seed=2).mask, sample_scribble(mask, seed=3).mask)
    # on a grid of isolated pixels, every start pixel survives the clipping:
    # test mode starts 20 distinct strokes, so at least 20 pixels remain
    sparse = np.zeros((40, 40), dtype=bool)
    sparse[::4, ::4] = True
    assert sample_scribble(sparse, seed=0, n_strokes=1).mask.sum() >= 1
    assert sample_scribble(sparse, seed=0).mask.sum() >= 20


@pytest.mark.parametrize("kind", PROMPT_TYPES)
def test_make_prompt_dispatches_and_stays_on_the_object(kind: str) -> None:
    mask = _two_components()
    prompt = make_prompt(kind, mask.astype(np.uint8) * 255, seed=0)
    expected = {"mask": Mask, "point": Points, "box": Box, "scribble": Scribble}[kind]
    assert isinstance(prompt, expected)
    prompt.validate(*mask.shape)
    if kind == "mask":
        assert np.array_equal(prompt.mask, mask)
    if kind == "box":
        assert prompt.xyxy == (10.0, 5.0, 40.0, 25.0)
    again = make_prompt(kind, mask, seed=0, train=True)
    assert isinstance(again, expected)


def test_errors_name_the_argument() -> None:
    empty = np.zeros((8, 8), dtype=bool)
    for call in (
        lambda: sample_points(empty, seed=0),
        lambda: sample_scribble(empty, seed=0),
        lambda: box_from_mask(empty),
        lambda: make_prompt("mask", empty, seed=0),
    ):
        with pytest.raises(ValueError, match=r"mask: .*empty"):
            call()
    grey = np.full((8, 8), 7, dtype=np.uint8)
    with pytest.raises(ValueError, match=r"mask: expected a binary mask"):
        sample_points(grey, seed=0)
    with pytest.raises(ValueError, match=r"mask: expected a binary mask"):
        box_from_mask(np.linspace(0, 1, 64).reshape(8, 8))
    with pytest.raises(ValueError, match=r"mask: expected a 2-D"):
        sample_scribble(np.ones((2, 8, 8), dtype=bool), seed=0)
    mask = _two_components()
    with pytest.raises(ValueError, match=r"kind: expected one of"):
        make_prompt("polygon", mask, seed=0)
    with pytest.raises(ValueError, match=r"seed: expected"):
        sample_points(mask, seed=-1)
    with pytest.raises(ValueError, match=r"seed: expected"):
        make_prompt("box", mask, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"n: expected an int >= 1"):
        sample_points(mask, seed=0, n=0)
    with pytest.raises(ValueError, match=r"n_strokes: expected an int >= 1"):
        sample_scribble(mask, seed=0, n_strokes=True)  # type: ignore[arg-type]
