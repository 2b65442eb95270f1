"""Encoder sources: SAM2, SANSA, any timm or torch.hub model, or your own module, for the same probes.

    from sansa_probe.features.sources import TimmSource, build_sources, parse_encoders
    from sansa_probe.features import SourceExtractor

    sources = build_sources(parse_encoders("sam2,sansa,timm:vit_small_patch14_dinov2.lvd142m"), model=model)
    fx = SourceExtractor(sources["timm:vit_small_patch14_dinov2.lvd142m"])
    table, X = fx.object_features(images, masks)       # pooled on the encoder's own 37x37 grid

=================  =========================================================================
module             what
=================  =========================================================================
``base``           :class:`EncoderSource` (the contract), :class:`Preprocess`, :func:`tokens_to_grid`
``sansa_source``   :class:`SansaSource`: frozen SAM2 / SANSA, two sources over one model
``timm_source``    :class:`TimmSource`: ``timm:<model name>[:random]``
``hub_source``     :class:`HubSource`: ``hub:<owner/repo>:<entry>[:random]`` (DINOv2)
``module_source``  :class:`ModuleSource`: a user's module and a small adapter function
``weights``        where pretrained files are found or downloaded; :class:`EncoderWeightsNotFound` offline
``spec``           :func:`parse_encoders`, :func:`build_sources`
=================  =========================================================================

``timm`` is an optional dependency (``pip install -e ".[encoders]"``), imported only when a
timm source is built.
"""

from sansa_probe.features.sources.base import EncoderSource, ModuleDigest, Preprocess, random_weights_warning, tokens_to_grid
from sansa_probe.features.sources.hub_source import HubSource
from sansa_probe.features.sources.module_source import OUTPUT, ModuleSource
from sansa_probe.features.sources.sansa_source import SANSA_SOURCES, SansaSource
from sansa_probe.features.sources.spec import DEFAULT_ENCODERS, EncoderSpec, build_sources, parse_encoder, parse_encoders, random_where_missing
from sansa_probe.features.sources.timm_source import TimmSource, timm_layers, timm_plain_dir
from sansa_probe.features.sources.weights import EncoderWeightsNotFound

__all__ = [
    "DEFAULT_ENCODERS",
    "OUTPUT",
    "SANSA_SOURCES",
    "EncoderSource",
    "EncoderSpec",
    "EncoderWeightsNotFound",
    "HubSource",
    "ModuleDigest",
    "ModuleSource",
    "Preprocess",
    "SansaSource",
    "TimmSource",
    "build_sources",
    "parse_encoder",
    "parse_encoders",
    "random_weights_warning",
    "random_where_missing",
    "timm_layers",
    "timm_plain_dir",
    "tokens_to_grid",
]
