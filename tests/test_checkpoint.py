"""Adapter checkpoints (ours and the public release's) and SAM2 weights: round trips and strictness."""

from __future__ import annotations

import argparse
import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from conftest import blob_image, build_tiny_model, randomized_adapters

from sansa_probe.model import CheckpointError, build_sam2_base, load_sansa, read_adapter_checkpoint
from sansa_probe.model import sam2_weights
from sansa_probe.model.config import SansaConfig
from sansa_probe.inference.predictor import SansaPredictor


def quiet_load(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_sansa(*args, **kwargs)


def predict(model, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    ref, mask = blob_image(rng, 120, 140)
    target, _ = blob_image(rng, 110, 100)
    predictor = SansaPredictor(model)
    predictor.set_references([ref], [mask])
    return predictor.predict(target).logits


def test_round_trip_restores_adapters_and_outputs(tiny_model, tmp_path):
    path = tmp_path / "ckpt" / "adapters.pt"
    with randomized_adapters(tiny_model, seed=11):
        tiny_model.save_adapters(path, meta={"step": 7})
        expected_state = tiny_model.adapter_state_dict()
        expected = predict(tiny_model)
    assert sorted(p.name for p in path.parent.iterdir()) == ["adapters.pt"]  # no temporary file left
    loaded = quiet_load(sam2_checkpoint=None, adapters=path)  # backbone and size come from the checkpoint
    assert loaded.config == tiny_model.config
    for name, tensor in loaded.adapter_state_dict().items():
        assert torch.equal(tensor, expected_state[name])
    # SAM2 weights are random in both (None); copy them to compare outputs
    loaded.sam.load_state_dict(tiny_model.sam.state_dict() | loaded.adapter_state_dict())
    np.testing.assert_array_equal(predict(loaded), expected)


def _payload(path):
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("damage", ["missing", "unexpected", "shape"])
def test_strict_loading_names_the_key(tiny_model, tmp_path, damage):
    path = tmp_path / "a.pt"
    tiny_model.save_adapters(path)
    payload = _payload(path)
    state = payload["state_dict"]
    key = sorted(state)[0]
    if damage == "missing":
        del state[key]
    elif damage == "unexpected":
        state["image_encoder.trunk.blocks.0.adapter.down_proj.weight"] = torch.zeros(3, 3)
        key = "image_encoder.trunk.blocks.0.adapter.down_proj.weight"
    else:
        state[key] = torch.zeros(2, 2)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        quiet_load(sam2_checkpoint=None, adapters=path)
    model = build_tiny_model()
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        model.load_adapters(path)


def test_checkpoint_of_another_backbone_is_refused(tiny_model, tmp_path):
    path = tmp_path / "t.pt"
    tiny_model.save_adapters(path)
    with pytest.raises(CheckpointError, match="backbone='hiera_t'.*backbone='hiera_s'"):
        quiet_load(backbone="hiera_s", sam2_checkpoint=None, image_size=256, adapters=path)


def test_truncated_foreign_and_pickled_files(tiny_model, tmp_path):
    good = tmp_path / "good.pt"
    tiny_model.save_adapters(good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated.pt is not a readable PyTorch checkpoint"):
        quiet_load(sam2_checkpoint=None, adapters=truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="neither a sansa-probe adapter checkpoint nor a SANSA release"):
        quiet_load(sam2_checkpoint=None, adapters=foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "sansa-probe/adapters", "config": SansaConfig()}, pickled)  # an arbitrary object
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        quiet_load(sam2_checkpoint=None, adapters=pickled)
    with pytest.raises(FileNotFoundError, match="nothing.pt does not exist"):
        quiet_load(sam2_checkpoint=None, adapters=tmp_path / "nothing.pt")


# (stage_ends, width of each stage) of sam2's shipped Hiera configs
SHIPPED = {
    "hiera_t": ([0, 2, 9, 11], [96, 192, 384, 768]),
    "hiera_s": ([0, 2, 13, 15], [96, 192, 384, 768]),
    "hiera_b+": ([1, 4, 20, 23], [112, 224, 448, 896]),
    "hiera_l": ([1, 7, 43, 47], [144, 288, 576, 1152]),
}
RELEASE_NAMES = {"hiera_t": "tiny", "hiera_b+": "base", "hiera_l": "large"}


def release_adapters(backbone: str, ratio: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random adapters shaped by the release's rule (hieradet.py): bottleneck int(dim_in * ratio) of the
    block's input width, in/out width dim_out, every block of stages 2 and 3; release key names."""
    ends, dims = SHIPPED[backbone]
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for stage in (2, 3):
        for block in range(ends[stage - 1] + 1, ends[stage] + 1):
            dim_in = dims[stage - 1] if block == ends[stage - 1] + 1 else dims[stage]
            dim_out, bottleneck = dims[stage], int(dim_in * ratio)
            prefix = f"sam.image_encoder.trunk.blocks.{block}.adapter."
            for name, shape in [("adapter_layer_norm_before.weight", (dim_out,)), ("adapter_layer_norm_before.bias", (dim_out,)),
                                ("down_proj.weight", (bottleneck, dim_out)), ("down_proj.bias", (bottleneck,)),
                                ("up_proj.weight", (dim_out, bottleneck)), ("up_proj.bias", (dim_out,))]:
                state[prefix + name] = torch.randn(shape, generator=generator)
    return state


def save_like_the_release(path, adapters, *, args=None, legacy=True):
    """What the release's main.py writes (save_on_master: the legacy, non-zip format)."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    payload = {"model": adapters, "optimizer": optimizer.state_dict(), "lr_scheduler": scheduler.state_dict(), "epoch": 0}
    if args is not None:
        payload["args"] = args
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize(("backbone", "setting"), [("hiera_t", "strict"), ("hiera_s", "generalist"), ("hiera_b+", "strict"), ("hiera_l", "strict")])
def test_release_checkpoint_of_each_backbone_loads_strictly(tmp_path, backbone, setting):
    ratio = {"strict": 0.3, "generalist": 0.8}[setting]
    adapters = release_adapters(backbone, ratio)
    if backbone in RELEASE_NAMES:  # a training checkpoint with its args (legacy format)
        args = argparse.Namespace(sam2_version=RELEASE_NAMES[backbone], adaptformer_stages=[2, 3], channel_factor=ratio, prompt="mask")
        path = save_like_the_release(tmp_path / "checkpoint.pth", adapters, args=args)
    else:  # hiera_s: the release cannot train it; a model-only zip file, backbone inferred from widths
        path = tmp_path / "model_only.pth"
        torch.save({"model": adapters}, path)
    model = quiet_load(sam2_checkpoint=None, image_size=256, adapters=path)
    assert (model.config.backbone, model.config.sam2_version, model.config.stages) == (backbone, "2", (2, 3))
    assert model.config.ratio == ratio and model.config.object_scores is False
    state = model.adapter_state_dict()
    assert set(state) == {k[len("sam."):] for k in adapters}
    for key, tensor in adapters.items():
        assert torch.equal(state[key[len("sam."):]], tensor)
    # our own checkpoints have the same shapes: save ours, reload, same tensors
    again = quiet_load(sam2_checkpoint=None, adapters=model.save_adapters(tmp_path / "ours.pt"))
    assert {k: v.shape for k, v in again.adapter_state_dict().items()} == {k: v.shape for k, v in state.items()}


def test_release_file_is_refused_if_its_pickle_would_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    adapters = release_adapters("hiera_t", 0.3)
    path = save_like_the_release(tmp_path / "checkpoint.pth", adapters, args=Payload())
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint.*weights-only"):
        quiet_load(sam2_checkpoint=None, image_size=256, adapters=path)
    assert not marker.exists()
    # the same file with a plain argparse.Namespace is accepted (the only allow-listed class)
    ok = save_like_the_release(tmp_path / "ok.pth", adapters, args=argparse.Namespace(sam2_version="tiny"))
    assert quiet_load(sam2_checkpoint=None, image_size=256, adapters=ok).config.backbone == "hiera_t"


def test_release_checkpoint_into_a_built_model_and_frozen_weights_ride_along(tmp_path):
    source = build_tiny_model(sam2_version="2")
    with randomized_adapters(source, seed=21):
        release = {f"sam.{k}": v for k, v in source.adapter_state_dict().items()}
        release["sam.image_encoder.trunk.blocks.0.attn.qkv.weight"] = torch.zeros(1)  # frozen weights may ride along
        path = save_like_the_release(tmp_path / "sansa_release.pth", release)
        expected = predict(source)
    model = build_tiny_model(sam2_version="2")
    model.load_adapters(path)
    model.sam.load_state_dict(source.sam.state_dict() | model.adapter_state_dict())
    np.testing.assert_array_equal(predict(model), expected)
    with pytest.raises(CheckpointError, match=r"stages=\(2, 3\)"):
        build_tiny_model(sam2_version="2", stages=(3,)).load_adapters(path)
    release = {k: v for k, v in release.items() if ".blocks.3." not in k}  # Hiera-T's stage 2 without its first block
    save_like_the_release(path, release)
    with pytest.raises(CheckpointError, match="not whole Hiera stages"):
        model.load_adapters(path)


def test_release_checkpoint_missing_an_adapter_key(tmp_path):
    source = build_tiny_model(sam2_version="2")
    state = {f"sam.{k}": v for k, v in source.adapter_state_dict().items()}
    del state["sam.image_encoder.trunk.blocks.5.adapter.up_proj.bias"]
    path = tmp_path / "release.pth"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match=r"blocks\.5\.adapter\.up_proj\.bias"):
        quiet_load(sam2_checkpoint=None, image_size=256, adapters=path)


def _meta_like_checkpoint(tmp_path, *, version="2.1", backbone="hiera_t"):
    """A file in Meta's format: {'model': state dict} of a SAM2 built with object-score heads."""
    sam = build_sam2_base(SansaConfig(backbone=backbone, sam2_version=version, image_size=256, object_scores=True))
    path = tmp_path / f"sam2_{version}_{backbone}.pt"
    torch.save({"model": sam.state_dict()}, path)
    return path, sam.state_dict()


def test_sam2_checkpoint_loads_strictly(tmp_path):
    path, state = _meta_like_checkpoint(tmp_path)
    model = quiet_load(backbone="hiera_t", sam2_checkpoint=path, image_size=256)
    for key, tensor in model.sam.state_dict().items():
        if key not in model.adapter_names:
            assert torch.equal(tensor, state[key]), key
    kept = quiet_load(backbone="hiera_t", sam2_checkpoint=path, image_size=256, object_scores=True)
    assert torch.equal(kept.sam.no_obj_ptr, state["no_obj_ptr"])
    broken = dict(state)
    del broken["memory_encoder.fuser.layers.0.gamma"]
    torch.save({"model": broken}, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="memory_encoder.fuser.layers.0.gamma"):
        quiet_load(backbone="hiera_t", sam2_checkpoint=tmp_path / "broken.pt", image_size=256)


def test_sam2_checkpoint_of_wrong_version_or_size(tmp_path):
    v1, _ = _meta_like_checkpoint(tmp_path, version="2")
    with pytest.raises(CheckpointError, match="SAM2 v1 checkpoint: pass sam2_version='2'"):
        quiet_load(backbone="hiera_t", sam2_checkpoint=v1, image_size=256)
    with pytest.raises(CheckpointError, match="does not match the SAM2 config"):
        quiet_load(backbone="hiera_s", sam2_version="2", sam2_checkpoint=v1, image_size=256)
    state = torch.load(v1, weights_only=True)
    state["model"]["sam_mask_decoder.iou_token.weight"] = torch.zeros(1, 8)
    torch.save(state, tmp_path / "reshaped.pt")
    with pytest.raises(CheckpointError, match=r"'sam_mask_decoder.iou_token.weight' has shape \(1, 8\)"):
        quiet_load(backbone="hiera_t", sam2_version="2", sam2_checkpoint=tmp_path / "reshaped.pt", image_size=256)
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="junk.pt is not a readable"):
        quiet_load(backbone="hiera_t", sam2_checkpoint=tmp_path / "junk.pt", image_size=256)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="expected a dict with a 'model' state dict"):
        quiet_load(backbone="hiera_t", sam2_checkpoint=tmp_path / "list.pt", image_size=256)


def test_auto_download_into_the_hub_cache_and_offline_error(tmp_path, monkeypatch):
    source, _ = _meta_like_checkpoint(tmp_path)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(sam2_weights, "sam2_checkpoint_url", lambda b, v: source.resolve().as_uri())
    path = sam2_weights.resolve_sam2_checkpoint("auto", backbone="hiera_t", sam2_version="2.1")
    assert path == tmp_path / "hub" / "checkpoints" / "sam2" / "sam2.1_hiera_tiny.pt"
    assert path.read_bytes() == source.read_bytes()
    record = json.loads(path.with_name(path.name + ".sha256").read_text())
    assert record["size"] == source.stat().st_size and len(record["sha256"]) == 64
    model = quiet_load(backbone="hiera_t", sam2_checkpoint="auto", image_size=256)
    assert model.num_adapter_parameters() > 0
    with open(path, "ab") as handle:  # a file changed after download is refused
        handle.write(b"x")
    with pytest.raises(CheckpointError, match="recorded at download"):
        sam2_weights.resolve_sam2_checkpoint("auto", backbone="hiera_t", sam2_version="2.1")
    monkeypatch.setattr(sam2_weights, "sam2_checkpoint_url", lambda b, v: (tmp_path / "offline.pt").as_uri())
    with pytest.raises(FileNotFoundError, match=r"(?s)could not download.*put it at .*sam2.1_hiera_small.pt"):
        sam2_weights.resolve_sam2_checkpoint("auto", backbone="hiera_s", sam2_version="2.1")
    assert not (tmp_path / "hub" / "checkpoints" / "sam2" / "sam2.1_hiera_small.pt").exists()


def test_load_sansa_starts_from_the_checkpoints_config_then_applies_the_call(tiny_model, tmp_path):
    """``load_sansa(config_or_name, **overrides)``: the recorded config first, then the call's fields."""
    path = tmp_path / "shared.pt"
    with tiny_model.behaviour(temporal_slots="shared"):
        tiny_model.save_adapters(path)
    assert read_adapter_checkpoint(path).config.temporal_slots == "shared"
    model = quiet_load(sam2_checkpoint=None, adapters=path, image_size=128, backbone=None, stages=None)  # None: not given
    assert (model.config.backbone, model.config.image_size, model.config.temporal_slots) == ("hiera_t", 128, "shared")
    assert model.config == dataclasses.replace(tiny_model.config, image_size=128, temporal_slots="shared")
    again = quiet_load(sam2_checkpoint=None, adapters=path, temporal_slots="release")  # a behaviour may differ from the checkpoint's
    assert again.config.temporal_slots == "release" and again.config.image_size == 256
    given = dataclasses.replace(tiny_model.config, precision="bfloat16")
    assert quiet_load(given, sam2_checkpoint=None).config == given  # a whole SansaConfig


def test_load_sansa_names_every_conflict_with_the_checkpoint_in_one_error(tiny_model, tmp_path):
    path = tmp_path / "t.pt"
    tiny_model.save_adapters(path)
    with pytest.raises(CheckpointError) as caught:
        quiet_load("hiera_s", sam2_checkpoint=None, adapters=path, stages=(3,), adapter_scale=0.1)
    message = str(caught.value)
    assert message == (f"adapters: {path} was built with backbone='hiera_t', stages=(2, 3); "
                       "the call asks for backbone='hiera_s', stages=(3,)")
    release = save_like_the_release(tmp_path / "release.pth", {f"sam.{k}": v for k, v in tiny_model.adapter_state_dict().items()})
    with pytest.raises(CheckpointError, match=r"was built with stages=\(2, 3\), object_scores=False; the call asks for stages=\(3,\), object_scores=True$"):
        quiet_load("hiera_t", sam2_checkpoint=None, image_size=256, adapters=release, stages=(3,), object_scores=True, ratio=0.3)


def test_load_sansa_refuses_unknown_and_doubled_options():
    with pytest.raises(ValueError, match=r"load_sansa: unknown option\(s\) ratios, stage; expected SansaConfig fields \(backbone, sam2_version, .*precision, extra\)"):
        load_sansa("hiera_t", sam2_checkpoint=None, stage=(3,), ratios=0.5)
    with pytest.raises(ValueError, match=r"backbone given twice \('hiera_t' and backbone='hiera_s'\)"):
        load_sansa("hiera_t", backbone="hiera_s", sam2_checkpoint=None)
    with pytest.raises(ValueError, match="config_or_name: expected a SansaConfig, a backbone name or None, got int"):
        load_sansa(3, sam2_checkpoint=None)
