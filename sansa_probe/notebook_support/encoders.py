"""The encoders of a notebook, side by side: ``ENCODERS`` parsed, built, and each identity printed.

    encoders = notebook_encoders("sam2,sansa,timm:vit_small_patch14_dinov2.lvd142m", extractor)
    tables = pca.compute(encoders, splits)

Offline, a pretrained timm encoder whose weights are not on disk runs with random weights instead
(:func:`~sansa_probe.features.sources.random_where_missing`), said in a note here and flagged
in its identity, so every table row, figure footnote and printed line shows it.
"""

from __future__ import annotations

from sansa_probe.features import FeatureExtractor, SourceExtractor
from sansa_probe.features.encoders import encoders_from_specs
from sansa_probe.features.sources import parse_encoders, random_where_missing
from sansa_probe.reporting.identity import identity_line

__all__ = ["notebook_encoders"]


def notebook_encoders(encoders: str, extractor: FeatureExtractor, *, random_when_offline: bool = True) -> dict[str, SourceExtractor]:
    """``{name: SourceExtractor}`` for the comma-separated ``encoders`` (``sam2`` / ``sansa``:
    ``extractor``'s model with its adapters off / on; the others on the same device, batch size
    and cache); prints a note per encoder swapped for random weights (``random_when_offline``),
    each encoder's identity line, then its flags in words (random weights, fresh adapters), once each."""
    specs = parse_encoders(encoders, name="ENCODERS")
    if random_when_offline:
        specs, notes = random_where_missing(specs)
        for note in notes:
            print(f"note: {note}")
    built = encoders_from_specs(specs, extractor=extractor, device=extractor.model.device, batch_size=extractor.batch_size,
                                progress=extractor.progress, cache_dir=extractor.cache_dir)
    identities = [encoder.identity() for encoder in built.values()]
    for identity in identities:
        print(identity_line(identity))
    for warning in dict.fromkeys(w for identity in identities for w in identity["warnings"]):
        print(f"warning: {warning}")
    return built
