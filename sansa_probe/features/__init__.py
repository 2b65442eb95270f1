"""Features of SAM2 / SANSA (and of any image encoder) by forward hooks on real module paths, pooled per object, cached on disk.

    fx = FeatureExtractor(model)
    fx.available_layers()                 # ['image_encoder.trunk.patch_embed', 'image_encoder.trunk.blocks.0', ...]
    out = fx.extract(images, ["image_encoder.trunk.blocks.11", "image_encoder.neck[2]"], adapters=False)
    out["image_encoder.neck[2]"].shape    # (B, 256, S/16, S/16)
    table, X = fx.object_features(images, masks)            # one row / vector per object instance
    dino = SourceExtractor(TimmSource("vit_small_patch14_dinov2.lvd142m"))   # another encoder, the same calls

====================  ========================================================================================
module                what
====================  ========================================================================================
``layers``            the hookable layers (names, stages, output -> ``(B, C, H, W)``), :func:`default_layer`
``pooling``           object masks on the feature grid: :func:`mask_coverage`, :func:`pool_object`, ...
``hooks``             hook-based extraction: ``extract``, ``dense_features``, ``object_features``
``extractor``         :class:`FeatureExtractor`: the above plus dataset walking, cached per model state
``sources``           encoder sources: SAM2 / SANSA over one model, timm, torch.hub, a user's module (:mod:`.sources`)
``source_extractor``  :class:`SourceExtractor`: image-stage features, object pooling, dataset walking and cache of any source
``encoders``          :func:`as_encoders` (the encoders a probe runs over), :func:`encoder_layers` (the layer of each)
``cache``             :class:`FeatureCache` and the model-state content hashes
``datasets``          :func:`select_images`, :func:`dataset_images`, :func:`semantic_label_maps`, :func:`probe_splits`, ...
====================  ========================================================================================

The command-line pieces of the probe commands live in :mod:`sansa_probe.commands.probe`.
"""

from __future__ import annotations

from sansa_probe.features.cache import FeatureCache
from sansa_probe.features.datasets import ProbeSplits, dataset_images, probe_splits, select_images, semantic_label_maps, source_config
from sansa_probe.features.encoders import as_encoders, encoder_layers
from sansa_probe.features.extractor import MODELS, FeatureExtractor
from sansa_probe.features.layers import FEW_SHOT_STAGE, IMAGE_STAGE, LayerInfo, default_layer
from sansa_probe.features.pooling import POOLINGS, mask_coverage, masks_to_grid, pool_object
from sansa_probe.features.source_extractor import SmallObjectWarning, SourceExtractor

__all__ = [
    "MODELS",
    "IMAGE_STAGE",
    "FEW_SHOT_STAGE",
    "POOLINGS",
    "LayerInfo",
    "FeatureExtractor",
    "FeatureCache",
    "SmallObjectWarning",
    "SourceExtractor",
    "as_encoders",
    "encoder_layers",
    "ProbeSplits",
    "dataset_images",
    "default_layer",
    "mask_coverage",
    "masks_to_grid",
    "pool_object",
    "probe_splits",
    "select_images",
    "semantic_label_maps",
    "source_config",
]
