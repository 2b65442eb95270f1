"""Pickles under a data root go through one allow-list unpickler: a crafted file runs no code."""

from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from sansa_probe.data import fold_classes, get_dataset
from sansa_probe.data.safe_pickle import UnsafePickleError, load_data_pickle

try:
    from tests.fixtures import datasets_extra as fx
    from tests.fixtures.datasets import write_coco, write_lvis
except ImportError:  # pragma: no cover - tests/ not importable as a package
    from fixtures import datasets_extra as fx
    from fixtures.datasets import write_coco, write_lvis

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


class _Payload:
    """Unpickling this calls ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path: Path, marker: Path, shape: object = None) -> None:
    """Write at ``path`` a pickle of ``shape`` (default a dict) whose loading runs a shell command."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({0: ["val2014/x.jpg", _Payload(marker)]} if shape is None else shape(marker)))


def test_the_payload_is_live_under_plain_pickle(tmp_path):
    """Control: the crafted file does run code when read with ``pickle.load``."""
    marker = tmp_path / "pwned"
    plant(tmp_path / "evil.pkl", marker)
    with open(tmp_path / "evil.pkl", "rb") as handle:
        pickle.load(handle)
    assert marker.exists()


def test_allow_list_refuses_the_payload_and_names_the_file(tmp_path):
    marker = tmp_path / "pwned"
    plant(tmp_path / "evil.pkl", marker)
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl was not loaded: it names global (posix|os|nt)\.system") as info:
        load_data_pickle(tmp_path / "evil.pkl", what="a test pickle")
    assert isinstance(info.value, ValueError) and "Nothing from the file was executed" in str(info.value)
    assert not marker.exists()
    (tmp_path / "short.pkl").write_bytes(pickle.dumps({"a": 1})[:-3])
    with pytest.raises(ValueError, match=r"short\.pkl cannot be unpickled .*expected a test pickle"):
        load_data_pickle(tmp_path / "short.pkl", what="a test pickle")


def test_allow_list_reads_what_data_pickles_hold(tmp_path):
    value = {
        1: collections.OrderedDict(a=[1.5, "x", (2, 3)], b={4, 5}),
        "arrays": [np.arange(6, dtype=np.uint8).reshape(2, 3), np.zeros((2, 2), dtype=np.float64), np.array([True, False])],
        "scalar": np.float32(2.5),
        "nested": collections.defaultdict(list, {"k": [b"raw", None, frozenset({1})]}),
    }
    for protocol in (2, 4, 5):
        (tmp_path / "ok.pkl").write_bytes(pickle.dumps(value, protocol=protocol))
        loaded = load_data_pickle(tmp_path / "ok.pkl", what="a test pickle")
        assert loaded[1] == value[1] and loaded["nested"] == value["nested"] and loaded["scalar"] == np.float32(2.5)
        for a, b in zip(loaded["arrays"], value["arrays"]):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def test_lvis_pickle_in_the_data_root(tmp_path):
    write_lvis(tmp_path, layout="pkl")
    marker = tmp_path / "pwned"
    plant(tmp_path / "LVIS" / "lvis_val.pkl", marker)
    with pytest.raises(UnsafePickleError, match=r"LVIS/lvis_val\.pkl was not loaded"):
        fold_classes("lvis92i", 0, root=tmp_path)
    with pytest.raises(UnsafePickleError, match=r"lvis_val\.pkl was not loaded"):
        get_dataset("lvis92i", fold=0, root=tmp_path).class_ids()
    assert not marker.exists()


def test_coco_split_pickle_given_as_splits_dir(tmp_path):
    fixture = write_coco(tmp_path, layouts=("json",))
    marker = tmp_path / "pwned"
    plant(fixture.splits / "val" / "fold0.pkl", marker)
    source = get_dataset("coco20i", fold=0, split="val", root=tmp_path, splits_dir=fixture.splits)
    with pytest.raises(UnsafePickleError, match=r"splits/val/fold0\.pkl was not loaded"):
        source.class_ids()
    assert get_dataset("coco20i", fold=0, split="val", root=tmp_path).class_ids()  # not read by default: shipped lists
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:.*448:UserWarning")
def test_paco_pickle_in_the_data_root(tmp_path):
    base = fx.write_paco_part(tmp_path)
    marker = tmp_path / "pwned"
    plant(base / "paco" / "paco_part_val.pkl", marker, shape=lambda m: {"cid2img": {}, "img2anno": {1: [_Payload(m)]}})
    with pytest.raises(UnsafePickleError, match=r"paco_part_val\.pkl was not loaded"):
        get_dataset("paco_part", fold=0, root=tmp_path).class_ids()
    with pytest.raises(UnsafePickleError, match=r"paco_part_val\.pkl was not loaded"):
        fold_classes("paco_part", 0, root=tmp_path)
    assert not marker.exists()


def test_evaluate_command_on_a_crafted_lvis_root(tmp_path, tiny_model, monkeypatch, capsys):
    from sansa_probe import evaluate
    from sansa_probe.commands import benchmark

    monkeypatch.setattr(benchmark, "model_from_args", lambda args, **kwargs: tiny_model)
    write_lvis(tmp_path, layout="pkl")
    marker = tmp_path / "pwned"
    plant(tmp_path / "LVIS" / "lvis_val.pkl", marker)
    code = evaluate.main(
        ["--dataset", "lvis92i", "--data-root", str(tmp_path), "--episodes", "1", "--num-workers", "0", "--no-progress",
         "--out", str(tmp_path.parent / f"{tmp_path.name}-out"), "--backbone", "hiera_t", "--image-size", "256", "--sam2-checkpoint", "none",
         "--device", "cpu"]  # fmt: skip
    )
    err = capsys.readouterr().err
    assert code == 2 and "lvis_val.pkl was not loaded" in err and "Traceback" not in err
    assert not marker.exists()
