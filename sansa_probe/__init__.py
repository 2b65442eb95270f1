"""sansa-probe: reproduce, train and take apart SANSA (NeurIPS 2025) on the official sam2 package.

Main entry points (imported lazily so that ``import sansa_probe`` stays cheap)::

    from sansa_probe import load_sansa, SansaPredictor
    model = load_sansa(backbone="hiera_l", sam2_checkpoint="auto", adapters="sansa_coco_fold0.pt")
    predictor = SansaPredictor(model)

    # offline, no download: the miniature SAM2 pretrained here, SANSA adapters of fold 0
    model = load_miniature(fold=0)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_sansa": "sansa_probe.model",
    "load_miniature": "sansa_probe.miniature",
    "SansaModel": "sansa_probe.model",
    "SansaConfig": "sansa_probe.model",
    "SansaPredictor": "sansa_probe.inference.predictor",
    "Prediction": "sansa_probe.inference.predictor",
    "Mask": "sansa_probe.prompts",
    "Points": "sansa_probe.prompts",
    "Box": "sansa_probe.prompts",
    "Scribble": "sansa_probe.prompts",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sansa_probe' has no attribute {name!r}")
