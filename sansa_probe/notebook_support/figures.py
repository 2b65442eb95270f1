"""A notebook's figures carry what the commands' figures carry: the model's identity under them and
the warnings (random or miniature weights, near-chance probes) above it.

    figure = projection.figures(tables)["projection"]
    footnoted(figure, model, warnings=pca.check(tables))    # returns the figure, for display
    footnoted(figure, encoders)                             # a notebook's encoders (notebook_encoders)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from sansa_probe.features import MODELS
from sansa_probe.reporting.figures import annotate_figure
from sansa_probe.reporting.identity import identity_footnote, model_identity

__all__ = ["footnoted"]


def footnoted(figure: Figure, model: Any, *, warnings: Sequence[str] = (), models: Mapping[str, bool] = MODELS) -> Figure:
    """``figure`` with the identity of ``model`` (run with its adapters as ``models`` says: frozen
    SAM2 and SANSA by default; or a notebook's encoders, ``{name: encoder}`` each with its
    ``identity()``) as footnote, and the identities' flags and ``warnings`` above it, as every
    command's figures (:func:`sansa_probe.reporting.figures.annotate_figure`). Returns it."""
    if isinstance(model, Mapping):
        identities = {name: encoder.identity() for name, encoder in model.items()}
    else:
        identities = {name: model_identity(model, adapters_enabled=on) for name, on in models.items()}
    flags = [w for identity in identities.values() for w in identity["warnings"]]
    return annotate_figure(figure, identity_footnote(identities), warnings=[*flags, *warnings])
