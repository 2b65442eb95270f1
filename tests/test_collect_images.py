"""The one rule by which segment and annotate collect their target images (``sansa_probe.io.images.collect_images``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sansa_probe import annotate, segment
from sansa_probe.io.images import collect_images


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_files_in_order_folders_recursive_and_sorted_lists_relative_to_themselves(tmp_path):
    b, a = _touch(tmp_path / "b.jpg"), _touch(tmp_path / "a.png")
    inner = [_touch(tmp_path / "dir" / "z.jpg"), _touch(tmp_path / "dir" / "sub" / "y.PNG")]
    _touch(tmp_path / "dir" / "notes.txt")
    listing = tmp_path / "lists" / "targets.txt"
    listing.parent.mkdir()
    listing.write_text("# photos\n../b.jpg\n\nmissing.jpg\n")
    found = collect_images([b, a, tmp_path / "dir"], lists=[listing])
    assert found == [b, a, *sorted(inner), listing.parent / "../b.jpg", listing.parent / "missing.jpg"]


@pytest.mark.parametrize("what, message", [
    ("empty", "--target: folder {} holds no image (.jpg"),
    ("missing", "--target: {} does not exist"),
])
def test_an_empty_or_missing_folder_is_an_error_naming_the_option(tmp_path, what, message):
    (tmp_path / "empty").mkdir()
    _touch(tmp_path / "empty" / "notes.txt")
    path = tmp_path / what
    with pytest.raises(FileNotFoundError) as error:
        collect_images([_touch(tmp_path / "ok.jpg"), path], option="--target")  # one good file does not hide it
    assert message.format(path) in str(error.value)


def test_nothing_at_all_is_an_error():
    with pytest.raises(ValueError, match=r"no target images found \(no --targets or --target-list\)"):
        collect_images([])


@pytest.mark.parametrize("command, required", [(segment, ["--reference", "r.jpg", "--reference-mask", "r.png"]),
                                               (annotate, ["--references", "refs.yaml"])])
def test_segment_and_annotate_take_both_spellings(command, required):
    parser = command.build_parser()
    for spelling in ("--target", "--targets"):
        args = parser.parse_args([*required, spelling, "a.jpg", "photos/"])
        assert (args.target if command is segment else args.targets) == ["a.jpg", "photos/"]
