"""Encoder spec strings (``--encoders sam2,sansa,timm:vit_small_patch14_dinov2.lvd142m``) and the sources they build.

=============================================  ===================================================
spec                                           source
=============================================  ===================================================
``sam2``                                       frozen SAM2: the model's adapters off
``sansa``                                      SANSA: the same model object, adapters on
``timm:<model name>[:random]``                 :class:`~sansa_probe.features.sources.TimmSource`
``hub:<owner/repo>:<entry>[:random]``          :class:`~sansa_probe.features.sources.HubSource`
                                               (``hub:facebookresearch/dinov2:dinov2_vits14``)
=============================================  ===================================================

``:random`` builds the same architecture with random weights (a smoke test, flagged in every
output). A user's own module has no spec string: pass a
:class:`~sansa_probe.features.sources.ModuleSource` in Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sansa_probe.features.cache import ModelStateHasher
from sansa_probe.features.sources.base import EncoderSource
from sansa_probe.features.sources.hub_source import HubSource
from sansa_probe.features.sources.sansa_source import SANSA_SOURCES, SansaSource
from sansa_probe.features.sources.timm_source import TimmSource, timm_weights_file
from sansa_probe.features.sources.weights import EncoderWeightsNotFound
from sansa_probe.inference.protocol import Protocol
from sansa_probe.model.sansa import SansaModel

__all__ = ["DEFAULT_ENCODERS", "EncoderSpec", "build_sources", "parse_encoder", "parse_encoders", "random_where_missing"]

DEFAULT_ENCODERS = "sam2,sansa"
GRAMMAR = "sam2, sansa, timm:<model name>[:random] or hub:<owner/repo>:<entry>[:random]"


@dataclass(frozen=True)
class EncoderSpec:
    """One parsed spec: ``kind`` (``sam2``, ``sansa``, ``timm``, ``hub``), ``model`` (the timm name
    or the hub entry), ``repo`` (hub), ``random``; ``name`` is the spec written back in one form."""

    kind: str
    model: str | None = None
    repo: str | None = None
    random: bool = False

    @property
    def name(self) -> str:
        if self.kind in SANSA_SOURCES:
            return self.kind
        body = f"{self.repo}:{self.model}" if self.kind == "hub" else str(self.model)
        return f"{self.kind}:{body}{':random' if self.random else ''}"

    @property
    def uses_sansa_model(self) -> bool:
        return self.kind in SANSA_SOURCES


def parse_encoder(text: str, *, name: str = "--encoders") -> EncoderSpec:
    """One spec string -> :class:`EncoderSpec`; ``ValueError`` naming ``name`` and the grammar."""
    spec = str(text).strip()
    if spec in SANSA_SOURCES:
        return EncoderSpec(kind=spec)
    kind, _, rest = spec.partition(":")
    random = rest.endswith(":random")
    if random:
        rest = rest[: -len(":random")]
    if kind == "timm" and rest and ":" not in rest:
        return EncoderSpec(kind="timm", model=rest, random=random)
    if kind == "hub":
        repo, _, entry = rest.rpartition(":")
        if repo and entry:
            return EncoderSpec(kind="hub", model=entry, repo=repo, random=random)
    if spec.startswith(("sam2:", "sansa:")):
        raise ValueError(f"{name}: {spec!r}: sam2 and sansa take no suffix (random SAM2 weights: --sam2-checkpoint none)")
    raise ValueError(f"{name}: {spec!r} is not an encoder; expected {GRAMMAR}")


def parse_encoders(text: str | Sequence[str], *, name: str = "--encoders") -> list[EncoderSpec]:
    """A comma-separated list (or a list) of specs, in order, each once."""
    items = [part for part in (text.split(",") if isinstance(text, str) else list(text))]
    specs = [parse_encoder(item, name=name) for item in items if str(item).strip()]
    if not specs:
        raise ValueError(f"{name}: expected at least one encoder ({GRAMMAR})")
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{name}: {', '.join(repeated)} given twice")
    return specs


def build_sources(specs: Sequence[EncoderSpec | str], *, model: SansaModel | None = None, protocol: Protocol | None = None,
                  device: str | torch.device = "cpu") -> dict[str, EncoderSource]:
    """``{name: source}`` in order: ``sam2`` / ``sansa`` over ``model`` (one content hasher for
    both), the others built here on ``device`` (weights found or downloaded, else one clear
    :class:`~sansa_probe.features.sources.EncoderWeightsNotFound`)."""
    specs = [parse_encoder(s) if isinstance(s, str) else s for s in specs]
    hasher = ModelStateHasher(model) if model is not None else None
    sources: dict[str, EncoderSource] = {}
    for spec in specs:
        if spec.uses_sansa_model:
            if model is None:
                raise ValueError(f"encoder {spec.name!r}: needs the SAM2 / SANSA model (model=)")
            sources[spec.name] = SansaSource(model, adapters=SANSA_SOURCES[spec.kind], protocol=protocol, hasher=hasher)
        elif spec.kind == "timm":
            sources[spec.name] = TimmSource(spec.model, random=spec.random, device=device)
        else:
            sources[spec.name] = HubSource(spec.repo, spec.model, random=spec.random, device=device)
    return sources


def random_where_missing(specs: Sequence[EncoderSpec]) -> tuple[list[EncoderSpec], list[str]]:
    """``specs`` with every pretrained timm encoder whose weights cannot be had (offline, not on
    disk: :class:`~sansa_probe.features.sources.EncoderWeightsNotFound`) replaced by its
    ``:random`` twin, and one note in words per replacement. For the offline runs of the notebook
    and the experiment script; the commands themselves never swap weights silently."""
    out, notes = [], []
    for spec in specs:
        if spec.kind == "timm" and not spec.random:
            try:
                timm_weights_file(spec.model)
            except EncoderWeightsNotFound:
                twin = dataclasses.replace(spec, random=True)
                notes.append(f"{spec.name}: its weights are not on disk and cannot be downloaded (offline); {twin.name} runs instead, "
                             "with RANDOM weights: a smoke test, meaningless for results")
                spec = twin
        out.append(spec)
    return out, notes
