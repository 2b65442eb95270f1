"""Every result names its model: random SAM2 weights and fresh adapters are flagged in words."""

import torch

from sansa_probe.identity import identity_line, model_identity


def test_random_and_fresh_are_flagged(tiny_model):
    identity = model_identity(tiny_model, adapters_enabled=True)
    assert identity["sam2_weights"] == "random" and identity["adapters"] == "fresh"
    assert identity["backbone"] == "hiera_t" and identity["image_size"] == 256
    assert any("RANDOM" in w for w in identity["warnings"]) and any("FRESH" in w for w in identity["warnings"])
    line = identity_line(identity)
    assert line.startswith("model: SANSA (adapters on)") and "SAM2 weights: RANDOM" in line and "fresh" in line
    off = model_identity(tiny_model, adapters_enabled=False)
    assert off["model_run"] == "frozen SAM2 (adapters off)"
    assert not any("FRESH" in w for w in off["warnings"])  # frozen SAM2 needs no adapters


def test_loaded_adapters_are_named_with_their_hash(tiny_model, tmp_path):
    path = tmp_path / "adapters.pt"
    tiny_model.save_adapters(path)
    saved = getattr(tiny_model, "provenance", None)
    try:
        tiny_model.provenance = {"sam2_checkpoint": None, "adapters": str(path)}
        identity = model_identity(tiny_model)
        assert identity["adapters"]["file"] == str(path) and len(identity["adapters"]["sha256"]) == 64
        assert "adapters.pt (sha256 " in identity_line(identity)
        assert not any("FRESH" in w for w in identity["warnings"])
    finally:
        tiny_model.provenance = saved
