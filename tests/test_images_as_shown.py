"""Images and masks are read as every viewer shows them: EXIF orientation, high bit depth, palettes, bombs."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from sansa_probe.io.images import decode_image_file, load_rgb
from sansa_probe.io.masks import load_binary_png


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_exif_orientation_is_applied_to_images_and_masks(tmp_path):
    """Case 8: a photo stored upside down with orientation 3 is shown (and read) upright."""
    shown = np.zeros((6, 10, 3), np.uint8)
    shown[:2, :3] = 255  # the dog, top left as every viewer shows it
    stored = Image.fromarray(shown[::-1, ::-1].copy())  # the camera stored it rotated by 180 degrees
    exif = Image.Exif()
    exif[0x0112] = 3
    path = tmp_path / "dog.png"
    stored.save(path, exif=exif.tobytes())
    assert np.array_equal(load_rgb(path), shown)
    assert np.array_equal(load_rgb(Image.open(path)), shown)  # a PIL image as given by Image.open
    sideways = Image.Exif()
    sideways[0x0112] = 6  # rotated 90 degrees: the displayed size is the stored one transposed
    Image.fromarray(shown).save(tmp_path / "side.png", exif=sideways.tobytes())
    assert load_rgb(tmp_path / "side.png").shape == (10, 6, 3)
    mask_path = tmp_path / "mask.png"
    Image.fromarray(np.where(shown[..., 0][::-1, ::-1], 255, 0).astype(np.uint8)).save(mask_path, exif=exif.tobytes())
    assert np.array_equal(load_binary_png(mask_path, name="--reference-mask"), shown[..., 0] > 0)


def test_sixteen_bit_and_float_images_are_scaled_not_clipped(tmp_path):
    """Case 9: 16-bit grey is scaled by 255/65535 (8-bit content comes back exactly), float [0, 1] by 255."""
    levels = np.array([[0, 1, 128, 254, 255]], np.uint16)
    Image.fromarray(levels * 257).save(tmp_path / "deep.png")
    before = _digest(tmp_path / "deep.png")
    image = load_rgb(tmp_path / "deep.png")
    assert image.dtype == np.uint8 and image.shape == (1, 5, 3)
    assert np.array_equal(image[..., 0], levels.astype(np.uint8)) and np.array_equal(image[..., 2], image[..., 0])
    assert _digest(tmp_path / "deep.png") == before
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "unit.tif")
    assert load_rgb(tmp_path / "unit.tif")[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[-2.0, 0.0, 2.0]], np.float32)).save(tmp_path / "wide.tif")
    assert load_rgb(tmp_path / "wide.tif")[0, :, 0].tolist() == [0, 128, 255]  # stretched, not clipped
    Image.fromarray(np.array([[0.0, np.nan]], np.float32)).save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="nan.tif: float image with non-finite"):
        decode_image_file(tmp_path / "nan.tif", name="--target")


def _palette_png(path, indices: np.ndarray, palette: list[tuple[int, int, int]]) -> None:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    flat = [v for colour in palette for v in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    image.save(path)


def test_palette_masks_read_as_they_look(tmp_path):
    """Case 9: index 0 a white object over black index 1 is not inverted; VOC-style stays right."""
    object_ = np.zeros((4, 5), bool)
    object_[1:3, 1:4] = True
    _palette_png(tmp_path / "white0.png", np.where(object_, 0, 1), [(255, 255, 255), (0, 0, 0)])
    assert np.array_equal(load_binary_png(tmp_path / "white0.png", name="--reference-mask"), object_)
    _palette_png(tmp_path / "voc.png", np.where(object_, 1, 0), [(0, 0, 0), (128, 0, 0)])
    assert np.array_equal(load_binary_png(tmp_path / "voc.png", name="--reference-mask"), object_)
    _palette_png(tmp_path / "three.png", np.arange(20).reshape(4, 5) % 3, [(0, 0, 0), (128, 0, 0), (0, 128, 0)])
    with pytest.raises(ValueError, match=r"three.png\): expected a binary mask, found a palette image using 3 colours"):
        load_binary_png(tmp_path / "three.png", name="--reference-mask")


def test_sixteen_bit_zero_and_65535_mask_is_accepted(tmp_path):
    """Case 9: a 16-bit 0/65535 mask reads as its object."""
    object_ = np.eye(4, dtype=bool)
    Image.fromarray(object_.astype(np.uint16) * 65535).save(tmp_path / "deep_mask.png")
    assert np.array_equal(load_binary_png(tmp_path / "deep_mask.png", name="--reference-mask"), object_)
    Image.fromarray(object_.astype(np.uint16) * 300).save(tmp_path / "odd.png")
    with pytest.raises(ValueError, match=r"expected a binary mask .* found values \{0, 300\}"):
        load_binary_png(tmp_path / "odd.png", name="--reference-mask")


def test_a_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    """A file whose header claims more pixels than the limit (one limit for every reader, issue 22)
    is refused by name before it is decoded; PIL's own, lower, limit does not decide."""
    from sansa_probe.io.images import image_pixel_limit

    Image.new("L", (300, 300)).save(tmp_path / "bomb.png")
    with image_pixel_limit(40_000):  # the limit scaled down: 90,000 > 40,000
        with pytest.raises(ValueError, match=r"--target: .*bomb.png is 300 x 300 pixels by its header .* above the limit of 40000 pixels"):
            load_rgb(tmp_path / "bomb.png", name="--target")
        with pytest.raises(ValueError, match="bomb.png is 300 x 300 pixels by its header"):
            load_binary_png(tmp_path / "bomb.png", name="--reference-mask")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # PIL's own limit lowered: ours (100 Mpx) still decides
    assert load_rgb(tmp_path / "bomb.png", name="--target").shape == (300, 300, 3)
    assert Image.MAX_IMAGE_PIXELS == 20_000  # and PIL's setting is left as it was
