"""Every result names its model: random SAM2 weights and fresh adapters are flagged in words."""

import torch

from sansa_probe.reporting.identity import identity_line, model_identity


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


def test_footnote_flags_random_and_fresh_and_is_drawn_under_the_figure(tiny_model):
    from matplotlib.figure import Figure

    from sansa_probe.reporting.identity import identity_footnote
    from sansa_probe.probes.plots import add_footnote

    both = {"sam2": model_identity(tiny_model, adapters_enabled=False), "sansa": model_identity(tiny_model, adapters_enabled=True)}
    line = identity_footnote(both)
    assert line == ("hiera_t SAM2 2.1 @256px | SAM2: RANDOM weights (results meaningless) | adapters: fresh = frozen SAM2, on for SANSA "
                    "only (frozen SAM2 runs without them) | float32")
    assert "on for SANSA only" not in identity_footnote({"sansa": both["sansa"]})
    assert "adapters: off (frozen SAM2)" in identity_footnote({"sam2": both["sam2"]})
    assert identity_footnote({}) == ""
    figure = Figure(figsize=(3.0, 2.0), layout="constrained")
    figure.add_subplot().plot([0, 1], [0, 1])
    add_footnote(figure, line)
    texts = [t.get_text() for t in figure.texts]
    assert len(texts) == 1 and texts[0].replace("\n", " ") == line and "\n" in texts[0]  # wrapped to a 3-inch figure
    assert figure.get_layout_engine().get()["rect"][1] > 0  # the axes leave room for it


def test_the_miniature_is_flagged_as_not_the_papers_model(tiny_model, tmp_path):
    weights = tmp_path / "sam2.pt"
    weights.write_bytes(b"not read")
    saved = getattr(tiny_model, "provenance", None)
    try:
        tiny_model.provenance = {"sam2_checkpoint": str(weights), "sam2_label": "the miniature SAM2 pretrained here"}
        identity = model_identity(tiny_model, adapters_enabled=False)
        assert [w for w in identity["warnings"] if "MINIATURE" in w] and "do not compare them with the paper" in identity["warnings"][-1]
        tiny_model.provenance = {"sam2_checkpoint": str(weights), "sam2_label": "Meta's sam2.1_hiera_tiny.pt"}
        assert not any("MINIATURE" in w for w in model_identity(tiny_model, adapters_enabled=False)["warnings"])
    finally:
        tiny_model.provenance = saved
