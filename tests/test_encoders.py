"""Encoder sources (issue 24): SAM2, SANSA, timm and torch.hub ViTs and a user's module, pooled at their own resolution."""

from __future__ import annotations

import json
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import blob_image, randomized_adapters

from sansa_probe.data import get_dataset
from sansa_probe.features import FeatureCache, FeatureExtractor, mask_coverage
from sansa_probe.features.source_extractor import SmallObjectWarning, SourceExtractor
from sansa_probe.features.sources import (
    EncoderWeightsNotFound,
    HubSource,
    ModuleSource,
    Preprocess,
    TimmSource,
    build_sources,
    parse_encoder,
    parse_encoders,
    timm_plain_dir,
    tokens_to_grid,
)
from sansa_probe.miniature import WEIGHTS_DIR
from sansa_probe.utils.hashing import file_sha256

pytest.importorskip("timm")

TINY_VIT = dict(depth=2, img_size=64)  # vit_tiny_patch16_224 cut to 2 blocks at 64 px: a 4x4 patch grid


@pytest.fixture(scope="module")
def tiny_vit() -> TimmSource:
    return TimmSource("vit_tiny_patch16_224", random=True, **TINY_VIT)


# ============================================================================ a ViT whose tokens are their positions

POSITION_VIT = '''
import torch
from torch import nn


class _Embed(nn.Module):
    def __init__(self, patch):
        super().__init__()
        self.patch_size = (patch, patch)
        self.img_size = (4 * patch, 4 * patch)

    def forward(self, x):
        b, _, h, w = x.shape
        gh, gw = h // self.patch_size[0], w // self.patch_size[1]
        rows = torch.arange(gh, dtype=torch.float32).repeat_interleave(gw)
        cols = torch.arange(gw, dtype=torch.float32).repeat(gh)
        return torch.stack([rows, cols, torch.ones_like(rows)], dim=1)[None].expand(b, -1, -1)  # token (r, c) = [r, c, 1]


class _Block(nn.Module):
    def forward(self, x):
        return x * 1.0


class PositionViT(nn.Module):
    """Patch token (r, c) is [r, c, 1]; the CLS and register tokens are 1000: pooling them would show."""

    def __init__(self, patch, registers, chunked):
        super().__init__()
        self.patch_embed = _Embed(patch)
        self.cls_token = nn.Parameter(torch.full((1, 1, 3), 1000.0))
        self.num_register_tokens = registers
        self.register_tokens = nn.Parameter(torch.full((1, registers, 3), 1000.0))
        blocks = [_Block(), _Block()]
        self.blocks = nn.ModuleList([nn.ModuleList([nn.Identity(), *blocks])]) if chunked else nn.ModuleList(blocks)
        self.norm = _Block()

    def forward(self, x):
        tokens = self.patch_embed(x)
        prefix = torch.cat([self.cls_token, self.register_tokens], dim=1).expand(x.shape[0], -1, -1)
        x = torch.cat([prefix, tokens], dim=1)
        for block in self.blocks:
            for inner in (block if isinstance(block, nn.ModuleList) else [block]):
                x = inner(x)
        return self.norm(x)[:, 0]


def position_vit(pretrained=True, patch=16, registers=0, chunked=False):
    return PositionViT(patch, registers, chunked)


def needs_weights(pretrained=True):
    model = PositionViT(16, 0, False)
    model.extra = nn.Linear(2, 2)
    if pretrained:
        model.extra.load_state_dict(torch.hub.load_state_dict_from_url("https://weights.invalid/tiny/tiny_weights.pth"))
    return model


def not_a_vit(pretrained=True):
    return nn.Linear(2, 2)
'''


@pytest.fixture
def hub_dir(tmp_path):
    """A local torch.hub repository (hubconf.py) and a temporary torch hub dir."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").write_text(textwrap.dedent(POSITION_VIT))
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        yield repo
    finally:
        torch.hub.set_dir(previous)


def test_tokens_to_grid_drops_prefix_tokens_row_major():
    patches = torch.arange(6, dtype=torch.float32).reshape(1, 6, 1)  # a 2x3 grid, token k = k
    tokens = torch.cat([torch.full((1, 5, 1), -1.0), patches], dim=1)  # CLS + 4 registers first
    grid = tokens_to_grid(tokens, grid=(2, 3), prefix=5)
    assert grid.shape == (1, 1, 2, 3)
    assert grid[0, 0].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    with pytest.raises(ValueError, match="11 tokens are not 4 prefix tokens"):
        tokens_to_grid(tokens, grid=(2, 3), prefix=4)
    with pytest.raises(ValueError, match=r"expected tokens \(B, N, C\)"):
        tokens_to_grid(tokens[0], grid=(2, 3), prefix=5)


@pytest.mark.parametrize("patch", [8, 14, 16])
@pytest.mark.parametrize("registers,chunked", [(0, False), (4, True)])
def test_object_pooling_on_known_token_grid(hub_dir, patch, registers, chunked):
    source = HubSource(str(hub_dir), "position_vit", patch=patch, registers=registers, chunked=chunked)
    assert source.preprocess.size == (4 * patch, 4 * patch)
    blocks = ["blocks.0.1", "blocks.0.2"] if chunked else ["blocks.0", "blocks.1"]  # the chunk's padding Identity is no layer
    assert [i.name for i in source.layers()] == [*blocks, "norm"] and source.default_layer() == "norm"
    assert {i.index for i in source.layers()} == {1 + registers}
    fx = SourceExtractor(source)
    s = patch
    image = np.zeros((8 * s, 8 * s, 3), np.uint8)  # twice the input size: the mask maps onto the whole 4x4 grid
    centre = np.zeros(image.shape[:2], bool)
    centre[2 * s : 6 * s, 2 * s : 6 * s] = True  # cells (1..2, 1..2)
    top = np.zeros(image.shape[:2], bool)
    top[:s, :] = True  # the upper half of every cell of row 0 (a cell is 2s x 2s image pixels)
    table, X = fx.object_features([image, image], [centre, top], labels=[1, 2])
    np.testing.assert_allclose(X[0], [1.5, 1.5, 1.0], atol=1e-6)  # mean of [r, c, 1] over the 2x2 centre
    np.testing.assert_allclose(X[1], [0.0, 1.5, 1.0], atol=1e-6)  # row 0, every column
    assert table["coverage"].round(6).tolist() == [4.0, 2.0]
    _, X_max = fx.object_features([image], [centre], labels=[1], pooling="mask_max")
    np.testing.assert_allclose(X_max[0], [2.0, 2.0, 1.0])
    for layer in blocks:  # every block sees the same tokens: prefix dropped everywhere
        np.testing.assert_allclose(fx.object_features([image], [centre], labels=[1], layer=layer)[1][0], [1.5, 1.5, 1.0], atol=1e-6)
    dense = fx.dense_features([image])
    assert dense.shape == (1, 3, 4, 4) and float(dense.max()) == 3.0  # no 1000 from CLS / registers
    identity = source.identity()
    assert identity["weights"] == "built by the entry (no file downloaded)" and identity["warnings"] == []


def test_small_object_warning(hub_dir):
    fx = SourceExtractor(HubSource(str(hub_dir), "position_vit", patch=16))
    image = np.zeros((64, 64, 3), np.uint8)
    dot = np.zeros((64, 64), bool)
    dot[5, 5] = True
    big = np.zeros((64, 64), bool)
    big[:32] = True
    with pytest.warns(SmallObjectWarning, match=r"1 of 2 objects cover less than one feature cell of the 4x4 grid"):
        table, _ = fx.object_features([image], [[dot, big]], labels=[[1, 2]])
    assert table["coverage"].tolist()[0] == pytest.approx(1 / 256)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallObjectWarning)
        fx.object_features([image], [big], labels=[1])  # nothing small: no warning
        notes = []
        SourceExtractor(fx.source, notes=notes.append).object_features([image], [dot], labels=[1])  # said in words instead
    assert len(notes) == 1 and notes[0].startswith("hub:") and "1 of 1 objects cover less than one feature cell" in notes[0]


# ============================================================================ timm


def test_timm_vit_layers_preprocessing_and_identity(tiny_vit):
    assert [i.name for i in tiny_vit.layers()] == ["patch_embed", "blocks.0", "blocks.1", "norm"]
    assert tiny_vit.default_layer() == "norm"
    assert [i.index for i in tiny_vit.layers()] == [0, 1, 1, 1]  # the CLS token of every block's output dropped
    assert tiny_vit.preprocess == Preprocess(size=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic")
    fx = SourceExtractor(tiny_vit)
    images = [np.random.default_rng(k).integers(0, 255, (50 + 10 * k, 70, 3), dtype=np.uint8) for k in range(3)]
    out = fx.extract(images, ["patch_embed", "blocks.1", "norm"])
    assert list(out) == ["patch_embed", "blocks.1", "norm"] and all(v.shape == (3, 192, 4, 4) for v in out.values())
    # the norm map is the model's own forward_features output, patch tokens on their grid
    with torch.no_grad():
        reference = tiny_vit.module.forward_features(fx.model_input(images))[:, 1:]
    torch.testing.assert_close(out["norm"], reference.transpose(1, 2).reshape(3, 192, 4, 4))
    identity = tiny_vit.identity()
    assert identity["weights"] == "random" and identity["library"] == "timm" and identity["model_name"] == "vit_tiny_patch16_224"
    assert identity["warnings"] == ["timm:vit_tiny_patch16_224:random has RANDOM weights: a smoke test, meaningless for results"]
    json.dumps(identity)
    with pytest.raises(ValueError, match="not a hookable layer of timm:vit_tiny_patch16_224:random; did you mean blocks.1"):
        fx.extract(images, "blocks.11")


def test_timm_register_tokens_and_convnet_layers():
    registers = TimmSource("vit_small_patch14_reg4_dinov2", random=True, depth=2, img_size=56)
    assert {i.index for i in registers.layers() if i.name != "patch_embed"} == {5}  # CLS + 4 registers
    image = np.zeros((30, 40, 3), np.uint8)
    assert SourceExtractor(registers).extract([image])["norm"].shape == (1, 384, 4, 4)
    convnet = TimmSource("test_resnet", random=True)
    assert [i.name for i in convnet.layers()] == ["act1", "layer1", "layer2", "layer3", "layer4"]
    assert convnet.default_layer() == "layer4" and {i.layout for i in convnet.layers()} == {"channels_first"}
    out = SourceExtractor(convnet).extract([image], ["layer1", "layer3"])
    assert out["layer1"].shape == (1, 32, 40, 40) and out["layer3"].shape == (1, 192, 10, 10)  # 160 px input: strides 4 and 16


def test_timm_object_pooling_matches_the_feature_map(tiny_vit, rng):
    fx = SourceExtractor(tiny_vit)
    image, mask = blob_image(rng, 48, 80)
    table, X = fx.object_features([image], [mask], labels=[3])
    fmap = fx.extract([image])["norm"][0]
    coverage = mask_coverage(mask, (4, 4))
    expected = (fmap.reshape(192, -1) @ coverage.reshape(-1) / coverage.sum()).numpy()
    np.testing.assert_allclose(X[0], expected, rtol=1e-5, atol=1e-6)
    assert table.loc[0, "coverage"] == pytest.approx(float(coverage.sum()))


def test_timm_random_weights_are_seeded_and_names_checked():
    a = TimmSource("test_vit", random=True)
    b = TimmSource("test_vit", random=True)
    assert a.state()["id"] == b.state()["id"] and a.state()["id"].startswith("timm:test_vit:random-")
    c = TimmSource("test_vit", random=True, depth=2)
    assert c.state()["id"] != a.state()["id"]
    with pytest.raises(ValueError, match="timm:no_such_vit: timm .* has no model 'no_such_vit'"):
        TimmSource("no_such_vit", random=True)
    with pytest.raises(ValueError, match="knows no such pretrained tag"):
        TimmSource("vit_small_patch14_dinov2.no_tag", random=True)


def test_timm_missing_weights_offline_is_one_clear_line(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hf"))
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(EncoderWeightsNotFound) as error:
            TimmSource("vit_small_patch14_dinov2.lvd142m")
        message = str(error.value)
        plain = timm_plain_dir("vit_small_patch14_dinov2.lvd142m") / "model.safetensors"
        assert "\n" not in message
        assert "https://huggingface.co/timm/vit_small_patch14_dinov2.lvd142m/resolve/main/model.safetensors" in message
        assert f"put it at {plain}" in message and "timm:vit_small_patch14_dinov2.lvd142m:random" in message
        # a file put there by hand is what the source loads, recorded with its SHA-256
        donor = TimmSource("test_vit", random=True)
        from safetensors.torch import save_file

        plain = timm_plain_dir("test_vit.r160_in1k") / "model.safetensors"
        plain.parent.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in donor.module.state_dict().items()}, str(plain))
        loaded = TimmSource("test_vit.r160_in1k")
        assert loaded.weights == plain and loaded.identity()["weights"]["file"] == str(plain)
        assert len(loaded.identity()["weights"]["sha256"]) == 64 and loaded.identity()["warnings"] == []
        for key, value in donor.module.state_dict().items():
            torch.testing.assert_close(loaded.module.state_dict()[key], value)
    finally:
        torch.hub.set_dir(previous)


# ============================================================================ torch.hub


def test_hub_missing_code_offline_is_one_clear_line(hub_dir, monkeypatch):
    monkeypatch.setattr("sansa_probe.features.sources.hub_source.reachable", lambda url, **_: False)
    with pytest.raises(EncoderWeightsNotFound) as error:
        HubSource("facebookresearch/dinov2", "dinov2_vits14")
    message = str(error.value)
    assert "\n" not in message and "facebookresearch_dinov2_main" in message
    assert "torch.hub.load('facebookresearch/dinov2', 'dinov2_vits14')" in message


def test_hub_downloads_are_weights_only_and_recorded(hub_dir):
    target = hub_dir.parent / "hub" / "checkpoints" / "tiny_weights.pth"
    with pytest.raises(EncoderWeightsNotFound, match=r"https://weights.invalid/tiny/tiny_weights.pth cannot be reached .* put it at .*tiny_weights.pth"):
        HubSource(str(hub_dir), "needs_weights")
    target.parent.mkdir(parents=True)
    torch.save({"weight": torch.ones(2, 2), "bias": torch.zeros(2)}, target)
    source = HubSource(str(hub_dir), "needs_weights")
    assert torch.equal(source.module.extra.weight, torch.ones(2, 2))
    assert source.identity()["weights"] == [{"file": str(target), "sha256": file_sha256(target)}]
    assert HubSource(str(hub_dir), "needs_weights", random=True).identity()["weights"] == "random"
    with pytest.raises(ValueError, match="returned a Linear without patch_embed and blocks .* ModuleSource"):
        HubSource(str(hub_dir), "not_a_vit")

    class Payload:  # a pickle that would run code: refused by weights_only loading
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"weight": Payload()}, target)
    with pytest.raises(Exception, match="Weights only load failed"):
        HubSource(str(hub_dir), "needs_weights")


# ============================================================================ a user's module


class _Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, kernel_size=8, stride=8)
        self.head = torch.nn.Conv2d(4, 2, kernel_size=2, stride=2)

    def forward(self, x):
        return self.head(self.stem(x))


def test_module_source_with_adapter_function():
    torch.manual_seed(0)
    net = _Conv()
    source = ModuleSource(name="mine", module=net, preprocess=Preprocess(size=32), layers=["stem", "output"],
                          to_grid={"stem": lambda out: out * 2.0, "output": lambda out: out})
    assert [i.name for i in source.layers()] == ["stem", "output"] and source.default_layer() == "output"
    fx = SourceExtractor(source)
    image = np.full((16, 24, 3), 128, np.uint8)
    out = fx.extract([image], ["stem", "output"])
    x = source.images([image])
    with torch.no_grad():
        torch.testing.assert_close(out["stem"], net.stem(x) * 2.0)
        torch.testing.assert_close(out["output"], net(x))
    identity = source.identity()
    assert identity["weights"].startswith("in memory (content hash ") and identity["class"].endswith("_Conv")
    with pytest.raises(ValueError, match=r"layers: \['stem2'\] are not module paths of _Conv"):
        ModuleSource(name="mine", module=net, preprocess=Preprocess(size=32), layers=["stem2"])
    bad = SourceExtractor(ModuleSource(name="flat", module=net, preprocess=Preprocess(size=32), to_grid=lambda out: out.flatten(1)))
    with pytest.raises(ValueError, match=r"flat output: to_grid must give a \(B, C, h, w\) tensor for a batch of 1, got \(1, 8\)"):
        bad.extract([image])


def test_preprocess_resizes_whole_image_and_normalises():
    prep = Preprocess(size=(4, 6), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    x = prep([np.full((40, 20, 3), 255, np.uint8), np.zeros((3, 3, 3), np.uint8)])
    assert x.shape == (2, 3, 4, 6)
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([2.0, 1.0, 0.5]))
    torch.testing.assert_close(x[1, :, 0, 0], torch.tensor([-2.0, -1.0, -0.5]))
    with pytest.raises(ValueError, match="interpolation: expected one of"):
        Preprocess(size=4, interpolation="cubic")
    with pytest.raises(ValueError, match="std: expected positive"):
        Preprocess(size=4, std=(0, 1, 1))


# ============================================================================ specs


def test_encoder_specs():
    specs = parse_encoders("sam2, sansa,timm:vit_small_patch14_dinov2.lvd142m:random,hub:facebookresearch/dinov2:dinov2_vits14")
    assert [s.name for s in specs] == ["sam2", "sansa", "timm:vit_small_patch14_dinov2.lvd142m:random", "hub:facebookresearch/dinov2:dinov2_vits14"]
    assert specs[2].random and specs[2].model == "vit_small_patch14_dinov2.lvd142m"
    assert (specs[3].repo, specs[3].model, specs[3].random) == ("facebookresearch/dinov2", "dinov2_vits14", False)
    assert parse_encoder("hub:facebookresearch/dinov2:dinov2_vits14_reg:random").random
    for bad, match in [("dino", "'dino' is not an encoder; expected sam2, sansa, timm:"), ("timm:", "is not an encoder"),
                       ("hub:facebookresearch/dinov2", "is not an encoder"), ("sam2:random", "take no suffix"),
                       ("sam2,sam2", "sam2 given twice"), (" , ", "at least one encoder")]:
        with pytest.raises(ValueError, match=match):
            parse_encoders(bad)


# ============================================================================ SAM2 / SANSA as sources, caches


def test_sansa_sources_are_the_feature_extractor_path(tiny_model, rng):
    pairs = [blob_image(rng, 72, 96) for _ in range(2)]
    images, masks = [p[0] for p in pairs], [p[1] for p in pairs]
    fx = FeatureExtractor(tiny_model)
    sources = build_sources(["sam2", "sansa"], model=tiny_model)
    assert SourceExtractor(sources["sam2"]).available_layers() == fx.available_layers("image")
    with randomized_adapters(tiny_model):
        for name, on in (("sam2", False), ("sansa", True)):
            mine = SourceExtractor(sources[name])
            table, X = mine.object_features(images, masks, labels=[1, 2])
            ref_table, ref = fx.object_features(images, masks, labels=[1, 2], adapters=on)
            np.testing.assert_array_equal(X, ref)  # bit-identical: the same forward, the same pooling
            pd.testing.assert_frame_equal(table, ref_table)
            assert mine.model_state()["id"] == fx.model_state(on)["id"]
            assert tiny_model.adapters_enabled  # the switch is restored after each forward
    assert sources["sam2"].identity()["model_run"] == "frozen SAM2 (adapters off)" and sources["sansa"].random
    with pytest.raises(ValueError, match="needs the SAM2 / SANSA model"):
        build_sources(["sansa"])


def test_cache_keys_differ_per_encoder_and_layer(tiny_model, tiny_vit, tmp_path, monkeypatch):
    source = get_dataset("synthetic", fold=0, split="val", image_size=64, images_per_class=1, n_classes=8)
    encoders = {**build_sources(["sam2", "sansa"], model=tiny_model), tiny_vit.name: tiny_vit}
    extractors = {name: SourceExtractor(s, cache_dir=tmp_path) for name, s in encoders.items()}
    forwards = []
    monkeypatch.setattr(SourceExtractor, "extract", lambda self, *a, _f=SourceExtractor.extract, **k: forwards.append(self.name) or _f(self, *a, **k))
    states = {name: fx.model_state()["id"] for name, fx in extractors.items()}
    assert len(set(states.values())) == 3
    paths = set()
    for name, fx in extractors.items():
        for layer in [fx.default_layer()] + ([fx.available_layers()[1]] if name != "sam2" else []):  # sansa and the ViT at two layers
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                table, X = fx.dataset_object_features(source, layer=layer)
                path = FeatureCache(tmp_path).path(kind="objects", dataset="synthetic", fold=0, split="val", layer=layer, state=states[name])
                assert path.is_file() and json.loads(path.with_suffix(".json").read_text())["model_state"]["id"] == states[name]
                paths.add(path)
                before = len(forwards)
                again, X2 = fx.dataset_object_features(source, layer=layer)  # a hit: no forward
                assert len(forwards) == before
                np.testing.assert_array_equal(X, X2)
            # 64 px objects on the ViT's 4x4 grid are smaller than a cell, warned about from the cache too; SAM2's grids are finer
            small = [w for w in caught if issubclass(w.category, SmallObjectWarning)]
            assert len(small) == (2 if name == tiny_vit.name else 0)
    assert len(paths) == 5
    assert X.shape[1] == 192  # the timm ViT's own width, pooled on its own 4x4 grid


# ============================================================================ the probes over several encoders

THREE = "sam2,sansa,timm:test_vit:random"  # timm's 0.3 M-parameter test ViT at 160 px: a 10x10 patch grid
TINY_ARGS = ["--backbone", "hiera_t", "--image-size", "256", "--sam2-checkpoint", "none", "--device", "cpu", "--checkpoint", "none", "--no-progress"]
SYNTHETIC = ["--dataset", "synthetic", "--dataset-option", "image_size=64", "--dataset-option", "n_classes=8",
             "--dataset-option", "images_per_class=2", "--images-per-class", "2"]


@pytest.fixture
def commands_on_tiny(tiny_model, monkeypatch):
    """The probe commands build the session's tiny SAM2, with random adapters so that SANSA differs from SAM2."""
    from sansa_probe import linear_probe, pca

    for command in (pca, linear_probe):
        monkeypatch.setattr(command, "model_from_args", lambda args, **overrides: tiny_model)
    with randomized_adapters(tiny_model, seed=1):
        yield pca, linear_probe


def test_pca_command_with_three_encoders(commands_on_tiny, tmp_path, capsys):
    from sansa_probe.pipelines import pca as pipeline
    from sansa_probe.probes import encoder_colours

    pca, _ = commands_on_tiny
    out = tmp_path / "out"
    assert pca.main([*SYNTHETIC, *TINY_ARGS, "--encoders", THREE, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    # the identities are results (stdout), their flags warnings (stderr)
    assert "model: timm:test_vit:random | timm 1.0" in printed.out and "weights: RANDOM | @160x160px" in printed.out
    assert "warning: timm:test_vit:random has RANDOM weights: a smoke test, meaningless for results" in printed.err
    names = THREE.split(",")
    curve = pd.read_csv(out / "pca_concentration.csv")
    assert list(dict.fromkeys(curve["model"])) == names  # one row set per encoder, in order
    assert curve.groupby("model")["layer"].unique().map(list).to_dict() == {"sam2": ["image_encoder.neck[2]"], "sansa": ["image_encoder.neck[2]"],
                                                                             "timm:test_vit:random": ["norm"]}
    summary = pd.read_csv(out / "summary.csv")
    assert summary.groupby("model")["metric"].apply(set).map(lambda m: "auc_relative_accuracy" in m).all() and summary["model"].nunique() == 3
    identity = summary.set_index("model")["identity"].drop_duplicates()
    assert identity["timm:test_vit:random"].startswith("timm:test_vit:random | timm") and "RANDOM" in identity["timm:test_vit:random"]
    assert identity["sam2"].startswith("frozen SAM2 (adapters off) | hiera_t")
    config = json.loads((out / "config.json").read_text())
    assert list(config["identity"]) == names and config["identity"]["timm:test_vit:random"]["weights"] == "random"
    assert config["encoders"] == THREE and any("test_vit:random has RANDOM weights" in w for w in config["warnings"])
    # the figure: three curves, each labelled with its encoder and the full-dimension accuracy it is
    # relative to, each with its chance level in its encoder's colour (the same colours in every
    # figure); a curve near chance is drawn grey (its chance line keeps the colour)
    from sansa_probe.reporting.figures import GIDS, UNRELIABLE_COLOUR

    tables = {name: pd.read_csv(out / f"{name}.csv", dtype={"image_id": str}) for name in pipeline.TABLES}
    figure = pipeline.figures(tables)["fig8"]
    lines = figure.axes[0].get_lines()
    curves = [line for line in lines if line.get_label().split(" (full dimension ")[0] in names]
    assert [line.get_label().split(" (full dimension ")[0] for line in curves] == names
    n_classes = int(tables["summary"].query("metric == 'n_classes'")["value"].max())
    chance = {line.get_label().rsplit(" for ", 1)[1]: line for line in lines if line.get_label().startswith(f"chance ({100 / n_classes:.2f} %) for ")}
    colours = encoder_colours(names)
    assert list(chance) == names and [line.get_color() for line in chance.values()] == [colours[n] for n in names]
    assert len(set(map(str, colours.values()))) == 3
    for name, line in zip(names, curves):
        assert line.get_color() == (UNRELIABLE_COLOUR if line.get_gid() == GIDS["unreliable"] else colours[name])
    assert [ax.get_title() for ax in figure.axes[1:4]] == ["(b) sam2: PC1 vs PC2", "(c) sansa: PC1 vs PC2", "(d) timm:test_vit:random: PC1 vs PC2"]
    # features cached per encoder and layer: one file per encoder and split
    cached = sorted(p.relative_to(out / "feature_cache") for p in (out / "feature_cache").rglob("*.objects.pt"))
    assert len(cached) == 6 and {p.parts[2] for p in cached} == {"image_encoder.neck-2", "norm"}
    assert_redraw = pca.main(["--redraw", str(out)])
    assert assert_redraw == 0 and (out / "fig8.png").is_file()


def test_every_pipeline_takes_other_encoders_beside_sam2_and_sansa(tiny_model, tmp_path):
    from sansa_probe.features import FeatureExtractor, probe_splits
    from sansa_probe.pipelines import linear_probe, part_matching, pca_rgb, projection, spatial_coherence
    from sansa_probe.probes.frame_pairs import synthetic_pairs
    from sansa_probe.probes.object_pairs import dataset_pairs

    fx = FeatureExtractor(tiny_model, cache_dir=tmp_path)
    vit = TimmSource("test_vit", random=True)
    models = {"sam2": False, "sansa": True, "vit": vit}  # the pipelines' Python form: adapter states and other encoders
    splits = probe_splits("synthetic", 0, image_size=64, images_per_class=2, n_classes=8)
    tables = linear_probe.compute(fx, splits, models=models, images_per_class=2, epochs=1, layer="vit=blocks.2")
    summary = tables["summary"].query("metric == 'miou_percent'")
    assert summary["model"].tolist() == ["sam2", "sansa", "vit"] and summary["layer"].tolist()[2] == "blocks.2"
    bars = linear_probe.figures(tables)["linear_probe"].axes[0].patches
    assert len(bars) == 3  # one bar per encoder (no grouping by layer: the layers differ)
    pairs = synthetic_pairs(n_videos=2, n_frames=3, image_size=64, max_pairs=2)
    coherence = spatial_coherence.compute(fx, pairs, models=models)
    assert list(coherence["table12"].columns[3:]) == ["sam2", "sansa", "vit"]  # one column of table 12 per encoder
    assert coherence["spatial_coherence"].groupby("model")["value"].count().to_dict() == {"sam2": 6, "sansa": 6, "vit": 6}
    source = get_dataset("synthetic", fold=0, split="val", image_size=64, images_per_class=2, n_classes=8)
    matched = part_matching.compute(fx, dataset_pairs(source, max_pairs=1), models=models, feature_size=32, n_clusters=2)
    assert matched["summary"]["model"].unique().tolist() == ["sam2", "sansa", "vit"]
    images = [source.load_image(i) for i in source.image_ids()[:2]]
    colours = pca_rgb.compute(fx, images, None, models=models)
    grids = colours["pca_rgb"].groupby("model")[["row", "col"]].max().to_dict("index")
    assert grids["vit"] == {"row": 9, "col": 9} and grids["sam2"] == {"row": 15, "col": 15}  # each encoder on its own grid
    projected = projection.compute(fx, source, models=models, images_per_class=2)
    written = projection.write_html(projected, tmp_path)
    assert [p.name for p in written] == ["projection_sam2.html", "projection_sansa.html", "projection_vit.html"]
    assert projected["scores"].query("metric == 'n_objects'")["value"].nunique() == 1  # the same objects, each encoder's vectors
    with pytest.raises(ValueError, match="models\\['bad'\\]: expected True / False"):
        linear_probe.compute(fx, splits, models={"bad": "timm:test_vit"})


def test_command_offline_without_weights_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as hf

    from sansa_probe import pca

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(pca, "model_from_args", lambda *a, **k: pytest.fail("no sam2/sansa encoder: no SAM2 model is built"))
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        code = pca.main([*SYNTHETIC, "--encoders", "timm:vit_small_patch14_dinov2.lvd142m", "--out", str(tmp_path / "o"), "--no-progress"])
    finally:
        torch.hub.set_dir(previous)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("sansa_probe.pca: error: timm:vit_small_patch14_dinov2.lvd142m: its pretrained weights are not on disk")
    assert "model.safetensors and put it at" in lines[0]


def test_offline_twins_with_random_weights_for_the_notebook_and_script(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf

    from sansa_probe.features.sources import random_where_missing

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    specs, notes = random_where_missing(parse_encoders("sam2,timm:vit_small_patch14_dinov2.lvd142m,timm:test_vit:random"))
    assert [s.name for s in specs] == ["sam2", "timm:vit_small_patch14_dinov2.lvd142m:random", "timm:test_vit:random"]
    assert notes == ["timm:vit_small_patch14_dinov2.lvd142m: its weights are not on disk and cannot be downloaded (offline); "
                     "timm:vit_small_patch14_dinov2.lvd142m:random runs instead, with RANDOM weights: a smoke test, meaningless for results"]


def test_list_layers_of_every_encoder(tiny_model, monkeypatch, capsys):
    from sansa_probe import pca

    monkeypatch.setattr(pca, "model_from_args", lambda args, **overrides: tiny_model)
    assert pca.main(["--list-layers", "--encoders", "sansa,timm:test_vit"]) == 0  # no weights needed for the names
    out = capsys.readouterr().out
    assert out.startswith("sansa:\n") and "\ntimm:test_vit:\n" in out
    assert "image_encoder.neck[2]" in out and "blocks.5" in out and "final norm" in out
    assert pca.main(["--list-layers"]) == 0
    assert not capsys.readouterr().out.startswith("sam2")  # SAM2 / SANSA alone: the table as it always was


def test_experiment_script_compares_encoders_on_every_probe(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "encoders_sam2_sansa_dinov2.py"
    spec = importlib.util.spec_from_file_location("encoders_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "encoders"
    assert module.main(["--small", "--no-progress", "--out", str(out), "--encoders", "sam2,sansa,timm:test_vit:random"]) == 0
    summary = pd.read_csv(out / "encoders.csv")
    assert list(dict.fromkeys(summary["model"])) == ["sam2", "sansa", "timm:test_vit:random"]
    assert set(summary["probe"]) == {"pca", "projection", "pca_rgb", "linear_probe", "part_matching", "spatial_coherence"}
    assert summary.groupby("probe")["model"].nunique().eq(3).all()  # every probe, every encoder
    vit = summary[summary["model"] == "timm:test_vit:random"]
    assert vit["layer"].eq("norm").all() and vit["identity"].str.contains("RANDOM").all()
    miniature = file_sha256(WEIGHTS_DIR / "sam2.pt")[:12]
    assert summary[summary["model"] == "sam2"]["identity"].str.contains(f"sha256 {miniature}").all()  # offline: the miniature's SAM2
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.split()[:3] == ["probe", "metric", "setting"])
    assert "timm:test_vit:random" in header and "fig. 8" not in printed  # the wide table: one column per encoder
    config = json.loads((out / "spatial_coherence" / "config.json").read_text())
    assert config["encoders"] == "sam2,sansa,timm:test_vit:random" and list(config["identity"]) == ["sam2", "sansa", "timm:test_vit:random"]
    files = json.loads((out / "sansa-manifest.json").read_text())["files"]  # encoders.csv recorded as the script's, probes' folders as theirs
    assert files["encoders.csv"]["sha256"] and files["spatial_coherence/"] == {"nested": True}
