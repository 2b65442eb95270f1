"""``load_sansa(sam2_overrides=...)``: custom SAM2 architectures from hydra override strings."""

from __future__ import annotations

import argparse
import warnings

import pytest
import torch

from sansa_probe.commands.grammar import add_model_group, add_run_group, model_from_args
from sansa_probe.model import CheckpointError, SansaConfig, load_sansa

# A 0.9 M-parameter SAM2 with Hiera-T's structure (widths 16/32/64/128, 1/1/2/2 blocks).
MINI = [
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.stages=[1,1,2,2]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.d_model=16",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=16",
    "++model.memory_attention.d_model=16",
    "++model.memory_attention.layer.d_model=16",
    "++model.memory_attention.layer.dim_feedforward=128",
    "++model.memory_attention.layer.self_attention.embedding_dim=16",
    "++model.memory_attention.layer.cross_attention.embedding_dim=16",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=8",
    "++model.memory_encoder.in_dim=16",
    "++model.memory_encoder.out_dim=8",
    "++model.memory_encoder.position_encoding.num_pos_feats=8",
    "++model.memory_encoder.mask_downsampler.embed_dim=16",
    "++model.memory_encoder.fuser.layer.dim=16",
]


def mini(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_sansa(**{"backbone": "hiera_t", "sam2_version": "2", "sam2_checkpoint": None, "image_size": 128,
                             "sam2_overrides": MINI, **kwargs})


def test_overrides_build_what_sam2s_build_sam2_builds():
    from sam2.build_sam import build_sam2

    model = mini()
    plain = build_sam2("configs/sam2/sam2_hiera_t.yaml", None, device="cpu", apply_postprocessing=False,
                       hydra_overrides_extra=["++model.image_size=128", "++model.pred_obj_scores=false",
                                              "++model.pred_obj_scores_mlp=false", "++model.fixed_no_obj_ptr=false", *MINI])
    ours = {k: tuple(v.shape) for k, v in model.sam.state_dict().items() if k not in set(model.adapter_names)}
    assert ours == {k: tuple(v.shape) for k, v in plain.state_dict().items()}
    assert sum(v.numel() for v in plain.state_dict().values()) < 1_000_000
    assert model.config.sam2_overrides == tuple(MINI)
    assert model.sam.memory_attention.d_model == 16 and model.sam.image_size == 128


def test_adapter_layout_is_read_from_the_built_trunk():
    model = mini()
    assert list(model.sam.image_encoder.trunk.stage_ends) == [0, 1, 3, 5]
    assert model.placement.blocks == [2, 3, 4, 5]  # every block of stages 2 and 3 of the 1/1/2/2 trunk
    assert model.sam.image_encoder.trunk.blocks[5].adapter.up_proj.out_features == 128


def test_overrides_travel_with_our_checkpoints(tmp_path):
    model = mini()
    path = model.save_adapters(tmp_path / "mini.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["sam2_overrides"] == MINI
    again = mini(sam2_overrides=None, adapters=path, backbone=None, sam2_version=None, image_size=None)
    assert again.config == model.config
    with pytest.raises(CheckpointError, match="sam2_overrides"):
        mini(sam2_overrides=[], adapters=path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["++model.image_size=512"], "image_size"),
        (["++model.pred_obj_scores=true"], "object_scores"),
        (["model.memory_attention.d_model"], "no '='"),
        ("++model.memory_attention.d_model=16", "single string"),
        (["++model.no_such_module.width=3"], "do not build a SAM2"),
    ],
)
def test_bad_overrides_are_refused_clearly(overrides, message):
    with pytest.raises(ValueError, match=message):
        mini(sam2_overrides=overrides)


def test_config_round_trip_keeps_overrides():
    config = SansaConfig(backbone="hiera_t", sam2_overrides=MINI)
    assert SansaConfig.from_dict(config.to_dict()) == config
    assert config.hydra_overrides()[-len(MINI):] == MINI


def test_cli_option_is_repeatable_and_reaches_load_sansa():
    parser = argparse.ArgumentParser()
    add_model_group(parser)
    add_run_group(parser)
    args = parser.parse_args(["--backbone", "hiera_t", "--sam2-version", "2", "--sam2-checkpoint", "none",
                              "--image-size", "128", "--device", "cpu", *[f"--sam2-override={o}" for o in MINI]])
    assert args.sam2_overrides == MINI
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = model_from_args(args)
    assert model.config.sam2_overrides == tuple(MINI)
    assert model.sam.image_encoder.trunk.blocks[0].dim == 16
