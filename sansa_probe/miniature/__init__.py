"""The miniature: a small SAM2 pretrained here on procedural videos, with SANSA adapters per fold.

Offline and without a GPU, it is the model on which the paper's claim can be seen::

    from sansa_probe import load_miniature
    model = load_miniature(fold=0)          # SansaModel: pretrained miniature SAM2 + fold-0 adapters
    with model.adapters(False): ...         # the frozen miniature SAM2

* :mod:`~sansa_probe.miniature.architecture`: the architecture (sam2's Hiera-T YAML + override strings);
* :mod:`~sansa_probe.miniature.videos`: procedural pretraining videos (no class labels);
* :mod:`~sansa_probe.miniature.stages`: class-agnostic pretraining in stages (image, memory, appearance, recolour);
* :mod:`~sansa_probe.miniature.memory_path`: what wakes the memory path (re-initialisation, locality prior, auxiliary head);
* :mod:`~sansa_probe.miniature.pipeline`: pretraining, per-fold adapters, measurements, shipping;
* :mod:`~sansa_probe.miniature.measure`: tracking, few-shot, linear-probe and PCA-concentration numbers;
* :mod:`~sansa_probe.miniature.weights`: the shipped files, their SHA-256 manifest, :func:`load_miniature`.

``python -m sansa_probe.miniature`` regenerates everything from scratch (see docs/MINIATURE.md).
"""

from sansa_probe.miniature.architecture import IMAGE_SIZE, SAM2_OVERRIDES, miniature_config
from sansa_probe.miniature.weights import WEIGHTS_DIR, MiniatureWeightsError, load_miniature

__all__ = ["IMAGE_SIZE", "SAM2_OVERRIDES", "WEIGHTS_DIR", "MiniatureWeightsError", "load_miniature", "miniature_config"]
