"""sam2's internals that we use are still there, with the parameters we pass."""

from sansa_probe.model import sam2_api


def test_every_listed_sam2_internal_exists_with_the_expected_parameters(tiny_model):
    assert sam2_api.sam2_api_mismatches(tiny_model.sam) == []


def test_the_check_reports_a_change(monkeypatch):
    monkeypatch.setitem(sam2_api.SAM2BASE_METHODS, "_forward_sam_heads", ("backbone_features", "prompts"))
    monkeypatch.setitem(sam2_api.SAM2BASE_METHODS, "_no_such_method", ())
    problems = sam2_api.sam2_api_mismatches()
    assert any(p.startswith("SAM2Base._forward_sam_heads: expected parameters ['backbone_features', 'prompts']") for p in problems)
    assert "SAM2Base._no_such_method is gone" in problems
    assert len(problems) == 2


def test_the_package_uses_no_unlisted_sam2_internal():
    """Every ``sam._name`` in the package's source is in the list (so the list stays complete)."""
    import re
    from pathlib import Path

    root = Path(sam2_api.__file__).resolve().parents[1]
    used = set()
    for path in root.rglob("*.py"):
        used |= set(re.findall(r"\bsam\._([A-Za-z0-9_]+)", path.read_text()))
    listed = {name.lstrip("_") for name in sam2_api.SAM2BASE_METHODS if name.startswith("_")}
    assert used and used <= listed, f"unlisted sam2 internals: {sorted(used - listed)}"
