"""Silently wrong inputs are refused by name: non-finite weights and thresholds, a corrupted cached
download, a folder given as a checkpoint, a tampered feature-cache file; files get the user's umask."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest
import torch

from sansa_probe.model.checkpoint import load_adapters_into, read_adapter_checkpoint
from sansa_probe.model.sam2_weights import CheckpointError, load_sam2_weights, resolve_sam2_checkpoint
from sansa_probe.io.atomic import atomic_write_json, atomic_write_text


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.sam.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def test_nan_sam2_weights_are_refused_before_loading(tiny_model):
    """Case 6: a SAM2 state dict with NaN weights names the key and leaves the model as it was."""
    before = _state_digest(tiny_model)
    adapters = set(tiny_model.adapter_names)
    state = {k: v.clone() for k, v in tiny_model.sam.state_dict().items() if k not in adapters}
    state["image_encoder.trunk.blocks.0.mlp.layers.0.weight"].fill_(float("nan"))
    keep = {k: v for k, v in tiny_model.sam.state_dict().items() if k in adapters}
    with pytest.raises(CheckpointError, match=r"sam2_checkpoint x.pt: key 'image_encoder.trunk.blocks.0.mlp.layers.0.weight' holds NaN"):
        load_sam2_weights(tiny_model.sam, state, source="sam2_checkpoint x.pt", object_scores=tiny_model.config.object_scores, keep=keep)
    assert _state_digest(tiny_model) == before


def test_nan_sam2_weights_file_is_one_line_and_exit_code_2(tiny_model, tmp_path, capsys):
    """Case 6 from the command line: all-NaN SAM2 weights stop the command with one line, rc 2."""
    from sansa_probe import train

    adapters = set(tiny_model.adapter_names)
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in tiny_model.sam.state_dict().items() if k not in adapters}
    path = tmp_path / "nan_sam2.pt"
    torch.save({"model": state}, path)
    before = _digest(path)
    code = train.main(["--backbone", "hiera_t", "--image-size", "256", "--sam2-checkpoint", str(path), "--device", "cpu",
                       "--num-workers", "0", "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"sam2_checkpoint {path}: key " in err and "holds NaN or infinite values" in err and "Traceback" not in err
    assert _digest(path) == before and not (tmp_path / "run").exists()


def test_nan_adapters_are_refused_at_load(tiny_model, tmp_path):
    """Case 6: an adapter file with a NaN tensor is refused; the model's adapters stay as they were."""
    path = tmp_path / "adapters.pt"
    tiny_model.save_adapters(path)
    payload = torch.load(path, weights_only=True)
    name = sorted(payload["state_dict"])[0]
    payload["state_dict"][name] = torch.full_like(payload["state_dict"][name], float("inf"))
    torch.save(payload, path)
    before = _state_digest(tiny_model)
    with pytest.raises(CheckpointError, match=rf"adapters: {path}: key '{name}' holds NaN or infinite values"):
        load_adapters_into(tiny_model, path)
    assert _state_digest(tiny_model) == before


def test_the_cached_download_is_checked_by_sha256_on_every_use(tmp_path, monkeypatch):
    """Case 7: a cached SAM2 file corrupted in place (same size) is refused by its SHA-256."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    folder = tmp_path / "hub" / "checkpoints" / "sam2"
    folder.mkdir(parents=True)
    path = folder / "sam2.1_hiera_tiny.pt"
    path.write_bytes(b"meta's weights" * 100)
    record = path.with_name(path.name + ".sha256")
    record.write_text(json.dumps({"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": path.stat().st_size}))
    assert resolve_sam2_checkpoint("auto", backbone="hiera_t", sam2_version="2.1") == path
    data = bytearray(path.read_bytes())
    data[700] ^= 0xFF  # one flipped byte, size unchanged
    path.write_bytes(bytes(data))
    before = (_digest(path), _digest(record))
    with pytest.raises(CheckpointError, match=r"sam2.1_hiera_tiny.pt has SHA-256 [0-9a-f]{64}, [0-9a-f]{64} was recorded at download"):
        resolve_sam2_checkpoint("auto", backbone="hiera_t", sam2_version="2.1")
    assert (_digest(path), _digest(record)) == before


def test_a_folder_given_as_a_checkpoint_says_so(tmp_path):
    """A directory as --checkpoint / --sam2-checkpoint: 'is a folder', not 'does not exist'."""
    with pytest.raises(IsADirectoryError, match=rf"adapters: {tmp_path} is a folder; expected a checkpoint file"):
        read_adapter_checkpoint(tmp_path)
    with pytest.raises(IsADirectoryError, match=rf"sam2_checkpoint: {tmp_path} is a folder"):
        resolve_sam2_checkpoint(tmp_path, backbone="hiera_t", sam2_version="2.1")


def test_a_nan_threshold_is_refused(tiny_model):
    """Case 10: threshold=nan would give empty masks; it is refused by name."""
    from sansa_probe.annotation.run import AnnotateOptions
    from sansa_probe.inference.predictor import SansaPredictor

    with pytest.raises(ValueError, match="threshold must be a finite logit .* got nan"):
        SansaPredictor(tiny_model, threshold=float("nan"))
    with pytest.raises(ValueError, match="--threshold: expected a finite number, got inf"):
        AnnotateOptions(threshold=float("inf"))
    with pytest.raises(ValueError, match="--min-score: expected a finite number, got nan"):
        AnnotateOptions(min_score=float("nan"))


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_tampered_feature_cache_file_is_a_clear_error_and_runs_no_code(tmp_path):
    from sansa_probe.features.cache import FeatureCache

    cache = FeatureCache(tmp_path / "cache")
    config = {"layer": "image_encoder.trunk.blocks.3", "seed": 0}
    path = cache.path(kind="object", dataset="synthetic", fold=0, split="test", layer="image_encoder.trunk.blocks.3", state="on")
    cache.save(path, {"features": torch.zeros(2, 3)}, config)
    assert torch.equal(cache.load(path, config)["features"], torch.zeros(2, 3))
    marker = tmp_path / "code-ran"
    torch.save({"features": _RunsCode(str(marker)), "config": json.dumps(config, sort_keys=True)}, path)
    before = _digest(path)
    with pytest.raises(ValueError, match=rf"feature cache file {path} holds Python objects .* delete it to recompute"):
        cache.load(path, config)
    assert not marker.exists() and _digest(path) == before


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_users_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_json(tmp_path / "sub" / "b.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "sub" / "b.json").stat().st_mode) == mode
