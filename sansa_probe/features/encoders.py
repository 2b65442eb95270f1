"""Several encoders side by side: the mapping every probe pipeline runs over, and the layer of each.

    encoders = as_encoders(fx, {"sam2": False, "sansa": True, "dinov2": TimmSource("vit_small_patch14_dinov2.lvd142m")})
    layers = encoder_layers(encoders, "image_encoder.trunk.blocks.11,dinov2=blocks.11")
    # {"sam2": "image_encoder.trunk.blocks.11", "sansa": "image_encoder.trunk.blocks.11", "dinov2": "blocks.11"}

:func:`as_encoders` accepts what the pipelines' ``compute(extractor, ..., models=...)`` receive:
a :class:`~sansa_probe.features.FeatureExtractor` with ``models`` naming the adapter state of each
run (``{"sam2": False, "sansa": True}``, as always) and, beside them, any
:class:`~sansa_probe.features.sources.EncoderSource` or
:class:`~sansa_probe.features.source_extractor.SourceExtractor`; or directly a mapping of
encoders (what the probe commands build from ``--encoders``).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Union

import torch

from sansa_probe.features.hooks import HookExtractor
from sansa_probe.features.source_extractor import SourceExtractor
from sansa_probe.features.sources.base import EncoderSource
from sansa_probe.features.sources.sansa_source import SANSA_SOURCES
from sansa_probe.features.sources.spec import EncoderSpec, build_sources

__all__ = ["Encoders", "Layers", "as_encoders", "encoder_layers", "encoders_from_specs"]

Encoder = Union[bool, EncoderSource, SourceExtractor]
Encoders = Union[HookExtractor, Mapping[str, Union[EncoderSource, SourceExtractor]]]
Layers = Union[str, Mapping[str, str], None]

SAM_MODELS = {"sam2": False, "sansa": True}  # the default runs of one model: adapters off, on


def as_encoders(extractor: Encoders | None, models: Mapping[str, Encoder] | None = None) -> dict[str, SourceExtractor]:
    """``{name: SourceExtractor}`` in order.

    ``extractor`` a :class:`HookExtractor` (a :class:`~sansa_probe.features.FeatureExtractor`):
    ``models`` maps each name to ``True`` / ``False`` (that model with its adapters on / off; default
    ``{"sam2": False, "sansa": True}``) or to another encoder. ``extractor`` a mapping: it is the
    encoders (``models`` must then be ``None``). Sources are wrapped with the extractor's batch
    size, progress and cache folder (or the defaults without one).
    """
    if isinstance(extractor, Mapping):
        if models is not None:
            raise ValueError("models: give the encoders either as the first argument (a mapping) or as models=, not both")
        models, extractor = extractor, None
    models = SAM_MODELS if models is None else models
    if not models:
        raise ValueError("models: expected at least one encoder")
    options = {} if extractor is None else dict(batch_size=extractor.batch_size, progress=extractor.progress, cache_dir=extractor.cache_dir)
    encoders: dict[str, SourceExtractor] = {}
    for name, encoder in models.items():
        if isinstance(encoder, bool):
            if extractor is None:
                raise ValueError(f"models[{name!r}]: True / False switch the adapters of a FeatureExtractor's model; none was given")
            encoders[name] = extractor.source(encoder, name=name)
        elif isinstance(encoder, SourceExtractor):
            encoders[name] = encoder
        elif isinstance(encoder, EncoderSource):
            encoders[name] = SourceExtractor(encoder, **options)
        else:
            raise ValueError(f"models[{name!r}]: expected True / False (adapters of the model), an EncoderSource or a SourceExtractor, "
                             f"got {type(encoder).__name__}")
    return encoders


def encoders_from_specs(specs: Sequence[EncoderSpec], *, extractor: HookExtractor | None, device: str | torch.device = "cpu",
                        batch_size: int = 8, progress: bool = False, cache_dir: str | os.PathLike | None = None,
                        notes: Callable[[str], None] | None = None) -> dict[str, SourceExtractor]:
    """``{name: SourceExtractor}`` for parsed specs, in order: ``sam2`` / ``sansa`` as
    ``extractor``'s model with its adapters off / on (its batch size, progress and cache), the
    others built on ``device`` with the given batch size, progress and cache folder. ``notes``
    receives the encoders' messages in words (objects smaller than a feature cell)."""
    encoders: dict[str, SourceExtractor] = {}
    for spec in specs:
        if spec.uses_sansa_model:
            if extractor is None:
                raise ValueError(f"encoder {spec.name!r}: needs the SAM2 / SANSA model (a FeatureExtractor)")
            encoders[spec.name] = extractor.source(SANSA_SOURCES[spec.kind], notes=notes)
        else:
            source = build_sources([spec], device=device)[spec.name]
            encoders[spec.name] = SourceExtractor(source, batch_size=batch_size, progress=progress, cache_dir=cache_dir, notes=notes)
    return encoders


def encoder_layers(encoders: Mapping[str, SourceExtractor], layer: Layers = None) -> dict[str, str]:
    """The layer of each encoder.

    ``layer``: ``None`` (each encoder's default layer); a mapping ``{encoder: layer}`` (the others
    at their default); or a string of comma-separated items, each ``ENCODER=LAYER`` or a bare
    ``LAYER``, which applies to every encoder that has a layer of that name (``--layer
    image_encoder.trunk.blocks.11`` is that block of SAM2 and of SANSA, while a timm ViT keeps its
    default). A bare layer that no encoder has, or a layer an encoder does not have, is a
    ``ValueError`` naming them.
    """
    chosen = {name: fx.default_layer() for name, fx in encoders.items()}
    if layer is None:
        return chosen
    if isinstance(layer, Mapping):
        items = [(str(k), str(v)) for k, v in layer.items()]
    else:
        items = []
        for item in (part.strip() for part in str(layer).split(",")):
            if item:
                name, sep, value = item.rpartition("=")
                items.append((name, value) if sep else (None, value))
        if not items:
            raise ValueError(f"layer: expected a layer name or ENCODER=LAYER items, got {layer!r}")
    for name, value in items:
        if name is None:
            having = [n for n, fx in encoders.items() if value in fx.available_layers()]
            if not having:
                known = list(dict.fromkeys(layer for fx in encoders.values() for layer in fx.available_layers()))
                close = difflib.get_close_matches(value, known, n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"layer {value!r}: no encoder ({', '.join(encoders)}) has an image-stage layer of this name{hint} "
                                 "(--list-layers lists them)")
            chosen.update({n: value for n in having})
        elif name not in encoders:
            raise ValueError(f"layer {name}={value}: {name!r} is not one of the encoders ({', '.join(encoders)})")
        else:
            encoders[name].layer_info(value)  # the layer must be one of that encoder's
            chosen[name] = value
    return chosen
