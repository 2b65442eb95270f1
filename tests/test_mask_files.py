"""One mask rule for every path that reads a mask file, and one COCO RLE codec (sansa_probe.io.masks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures.datasets_extra import uncompressed_rle
from PIL import Image

from sansa_probe.annotation.references import load_references
from sansa_probe.data import get_dataset
from sansa_probe.io.masks import (
    decode_rle,
    decode_segmentation,
    encode_rle,
    load_binary_png,
    mask_bbox,
    rle_area,
    rle_bbox,
)
from sansa_probe.notebook_support.quickstart import prompt_from_spec
from sansa_probe.segment import _prompt_from

OBJECT = np.zeros((12, 16), dtype=bool)
OBJECT[3:9, 4:13] = True
OBJECT[5, 2] = True


def _palette(indices: np.ndarray, colours: list[tuple[int, int, int]]) -> Image.Image:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    flat = [v for colour in colours for v in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image


def _two_colours(background: tuple[int, int, int], foreground: tuple[int, int, int]) -> Image.Image:
    return Image.fromarray(np.where(OBJECT[..., None], np.array(foreground), np.array(background)).astype(np.uint8))


# one picture (a bright object on a dark background) in every encoding a user may save it in
ENCODINGS = {
    "grey 0/255": lambda: Image.fromarray(OBJECT.astype(np.uint8) * 255),
    "grey 0/1": lambda: Image.fromarray(OBJECT.astype(np.uint8)),
    "grey with alpha": lambda: Image.fromarray(OBJECT.astype(np.uint8) * 255).convert("LA"),
    "1-bit": lambda: Image.fromarray(OBJECT),
    "16-bit 0/65535": lambda: Image.fromarray(OBJECT.astype(np.uint16) * 65535),
    "palette VOC-style (black 0, red 1)": lambda: _palette(OBJECT, [(0, 0, 0), (128, 0, 0)]),
    "palette white 0 over black 1": lambda: _palette(~OBJECT, [(255, 255, 255), (0, 0, 0)]),
    "palette class index 3 over 0": lambda: _palette(OBJECT * 3, [(0, 0, 0), (9, 9, 9), (9, 9, 9), (0, 200, 0)]),
    "RGB white on black": lambda: _two_colours((0, 0, 0), (255, 255, 255)),
    "RGB red on black": lambda: _two_colours((0, 0, 0), (255, 0, 0)),
    "RGB yellow on blue": lambda: _two_colours((0, 0, 160), (250, 250, 0)),
    "RGBA": lambda: _two_colours((0, 0, 0), (0, 0, 255)).convert("RGBA"),
}

_THREE = np.where(OBJECT[..., None], np.array([200, 0, 0]), np.array([0, 0, 0])).astype(np.uint8)
_THREE[0, 0] = (0, 200, 0)
NOT_BINARY = {
    "grey 0/128": (lambda: Image.fromarray(OBJECT.astype(np.uint8) * 128), r"found values \{0, 128\}"),
    "16-bit 0/300": (lambda: Image.fromarray(OBJECT.astype(np.uint16) * 300), r"found values \{0, 300\}"),
    "RGB with three colours": (lambda: Image.fromarray(_THREE), "found a colour image using 3 colours"),
    "palette with three colours": (lambda: _palette(np.arange(OBJECT.size).reshape(OBJECT.shape) % 3, [(0, 0, 0), (128, 0, 0), (0, 128, 0)]),
                                   "found a palette image using 3 colours"),
    "two equally bright colours": (lambda: _two_colours((0, 30, 0), (12, 0, 123)), "are equally bright"),
}


def _every_path(path: Path, tmp: Path) -> dict[str, object]:
    """Callables reading ``path`` by every path of the package that reads a mask file."""
    folder = tmp / "folder"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    Image.fromarray(np.full((*OBJECT.shape, 3), 90, np.uint8)).save(folder / "images" / "photo.png")
    (folder / "masks" / "photo_thing.png").write_bytes(path.read_bytes())
    (tmp / "refs.yaml").write_text(f"thing:\n  - {{image: {folder / 'images' / 'photo.png'}, mask: {path}}}\n")
    return {
        "load_binary_png": lambda: load_binary_png(path, name="--reference-mask"),
        "folder dataset": lambda: get_dataset("folder", root=folder).load_mask("photo", "thing"),
        "segment --reference-mask": lambda: _prompt_from("mask", str(path), 0).mask,
        "segment scribble": lambda: _prompt_from("scribble", str(path), 0).mask,
        "annotate references": lambda: load_references(tmp / "refs.yaml")[0].prompts[0].mask,
        "notebook prompts": lambda: prompt_from_spec({"mask": str(path)}).mask,
    }


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_one_picture_reads_as_one_mask_through_every_path(encoding, tmp_path):
    path = tmp_path / "mask.png"
    ENCODINGS[encoding]().save(path)
    for where, read in _every_path(path, tmp_path).items():
        mask = read()
        assert mask.dtype == bool and mask.shape == OBJECT.shape, where
        np.testing.assert_array_equal(mask, OBJECT, err_msg=f"{encoding} via {where}")


@pytest.mark.parametrize("case", sorted(NOT_BINARY))
def test_a_file_that_is_not_one_mask_is_refused_by_every_path(case, tmp_path):
    make, message = NOT_BINARY[case]
    path = tmp_path / "odd.png"
    make().save(path)
    for where, read in _every_path(path, tmp_path).items():
        with pytest.raises(ValueError, match=message) as caught:
            read()
        assert ("photo_thing.png" if where == "folder dataset" else "odd.png") in str(caught.value), where  # the file, named


def test_the_brighter_colour_is_the_object_whatever_its_index(tmp_path):
    """The rule read literally: a dark object on a white background is read as the white region."""
    _two_colours((255, 255, 255), (0, 0, 0)).save(tmp_path / "dark.png")
    np.testing.assert_array_equal(load_binary_png(tmp_path / "dark.png", name="m"), ~OBJECT)
    _palette(np.zeros(OBJECT.shape), [(40, 40, 40)]).save(tmp_path / "one.png")  # one colour, not black: all object
    assert load_binary_png(tmp_path / "one.png", name="m").all()
    _palette(np.zeros(OBJECT.shape), [(0, 0, 0)]).save(tmp_path / "black.png")
    assert not load_binary_png(tmp_path / "black.png", name="m").any()
    with pytest.raises(FileNotFoundError, match="--mask: mask file .*absent.png does not exist"):
        load_binary_png(tmp_path / "absent.png", name="--mask")


# --------------------------------------------------------------------------- RLE


def test_rle_round_trip_area_and_box():
    rle = encode_rle(OBJECT)
    assert rle["size"] == [12, 16] and isinstance(rle["counts"], str)
    np.testing.assert_array_equal(decode_rle(rle), OBJECT)
    np.testing.assert_array_equal(decode_rle({**rle, "counts": rle["counts"].encode("ascii")}), OBJECT)  # bytes counts
    assert rle_area(rle) == int(OBJECT.sum()) == 55
    assert rle_bbox(rle) == mask_bbox(OBJECT) == [2.0, 3.0, 11.0, 6.0]
    assert encode_rle(OBJECT.astype(np.uint8)) == rle == encode_rle(np.asfortranarray(OBJECT))  # any layout, one code
    empty = encode_rle(np.zeros((4, 5), bool))
    assert rle_area(empty) == 0 and rle_bbox(empty) == [0.0, 0.0, 0.0, 0.0]


def test_uncompressed_and_merged_segmentations():
    uncompressed = uncompressed_rle(OBJECT)
    np.testing.assert_array_equal(decode_rle(uncompressed), OBJECT)
    other = np.zeros_like(OBJECT)
    other[0, :3] = True
    merged = decode_segmentation([encode_rle(OBJECT), uncompressed, encode_rle(other)], height=12, width=16, where="ann 1")
    np.testing.assert_array_equal(merged, OBJECT | other)
    square = decode_segmentation([[4, 3, 13, 3, 13, 9, 4, 9]], height=12, width=16, where="ann 2")  # a polygon
    assert square[5, 8] and not square[0, 0]
    with pytest.raises(ValueError, match=r"ann 3: mask of size 12x16 \(HxW\) but the image is 10x16"):
        decode_segmentation(encode_rle(OBJECT), height=10, width=16, where="ann 3")
