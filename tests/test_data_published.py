"""The published lists shipped in the package: equal to HSNet's files, covered by package-data, with provenance."""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest

import sansa_probe.data as data_package
from sansa_probe.data import fold_classes
from sansa_probe.data.coco import read_image_lists, shipped_image_lists
from sansa_probe.data.fss import shipped_classes
from sansa_probe.data.pascal import shipped_train_pairs

try:
    from tests.fixtures.datasets import find_shared
except ImportError:  # pragma: no cover - tests/ not importable as a package
    from fixtures.datasets import find_shared

SPLITS = Path(data_package.__file__).with_name("splits")
SHARED = find_shared()
HSNET = SHARED / "data" / "splits" / "hsnet" if SHARED is not None else None


def _hsnet(relative: str) -> Path:
    if HSNET is None or not (HSNET / relative).is_file():
        pytest.skip(f"the published HSNet lists are absent ({HSNET}/{relative})")
    return HSNET / relative


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.realdata
@pytest.mark.parametrize(("split", "name"), [("train", "trn"), ("val", "val"), ("test", "test")])
def test_shipped_fss_lists_equal_hsnet(split, name):
    published = _lines(_hsnet(f"fss/{name}.txt"))  # test.txt has CRLF line endings upstream
    assert set(shipped_classes(split)) == set(published) and len(published) == len(set(published))
    assert fold_classes("fss1000", 0, split) == sorted(published)  # and they are what a split uses by default


@pytest.mark.realdata
@pytest.mark.parametrize("fold", range(4))
def test_shipped_pascal_training_lists_equal_hsnet(fold):
    published = _lines(_hsnet(f"pascal/trn/fold{fold}.txt"))
    shipped = shipped_train_pairs(fold)
    assert {f"{image}__{cls:02d}" for image, cls in shipped} == set(published)
    assert len(shipped) == len(published) == [2286, 3425, 5883, 2086][fold]


@pytest.mark.realdata
@pytest.mark.parametrize(("split", "kind"), [("train", "trn"), ("test", "val")])
@pytest.mark.parametrize("fold", range(4))
def test_shipped_coco_lists_equal_hsnet(fold, split, kind):
    with gzip.open(_hsnet(f"coco/{kind}_fold{fold}.json.gz"), "rt", encoding="utf-8") as handle:
        published = json.load(handle)["classes"]
    shipped = read_image_lists(shipped_image_lists(fold, split))
    assert sorted(shipped) == list(range(80))
    assert {k: set(v) for k, v in shipped.items()} == {int(k): set(v) for k, v in published.items()}


def test_package_data_covers_every_shipped_file():
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    patterns = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["sansa_probe"]
    package = Path(data_package.__file__).parent.parent
    covered = {Path(p) for pattern in patterns for p in glob.glob(str(package / pattern), recursive=True) if Path(p).is_file()}
    shipped = {p for p in SPLITS.rglob("*") if p.is_file()}
    assert {SPLITS / "coco" / "val_fold0.json.gz", SPLITS / "pascal" / "trn" / "fold3.txt", SPLITS / "fss" / "trn.txt"} <= shipped
    assert shipped <= covered, sorted(str(p) for p in shipped - covered)


def test_provenance_lists_the_sha256_of_every_shipped_hsnet_file():
    """Each folder's README gives the sha256 of the original of every file copied from HSNet."""
    copies = [SPLITS / "fss" / "trn.txt", SPLITS / "fss" / "val.txt", *sorted((SPLITS / "pascal" / "trn").glob("*.txt"))]
    copies += sorted((SPLITS / "coco").glob("*.json.gz"))
    assert len(copies) == 2 + 4 + 8
    for path in copies:
        readme = (path.parent if path.parent.name != "trn" else path.parent.parent) / "README.md"
        text = readme.read_text(encoding="utf-8")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest in text, f"{readme} does not give the sha256 of {path.name}"
        assert re.search(r"juhongm999/hsnet", text) and "6b1bc12b3ff9f3950f49c55ab6f089e8d9e0d191" in text
