"""Feature probes of the paper: estimators where something is fitted, functions where a pair is measured.

Each takes feature arrays (numpy or torch; extracting them from SAM2/SANSA is
``sansa_probe.features``' job) and gives tidy :class:`pandas.DataFrame` tables. The estimators
follow scikit-learn: parameters in a keyword-only ``__init__``, ``fit`` returns ``self``, learnt
state in ``*_`` attributes, ``score`` returns one float. The measurements (part matching,
spatial coherence) fit nothing that is used later, so they are plain functions. Figures are
functions of the tables (:mod:`sansa_probe.probes.plots`); the pairs they measure come from
:mod:`~sansa_probe.probes.object_pairs` and :mod:`~sansa_probe.probes.frame_pairs`.

==========================  =========================  ======================================
probe                       paper                      table
==========================  =========================  ======================================
:class:`PCAConcentration`   fig. 8a, app. B.1          ``accuracy_curve(X, y)``
:class:`Projection2D`       figs. 2, 4a, 8b-c          ``to_frame()``
:class:`PCARGB`             figs. 2, 4b                ``to_frame(X, masks)``
:class:`LinearProbe`        fig. 9 left, app. B.2      ``to_frame(X, y)``
:func:`match_parts`         fig. 4c                    ``(scores, pixels)``
:func:`pair_smoothness`     app. G, table 12           one row per pair
==========================  =========================  ======================================
"""

from sansa_probe.probes.linear_probe import LinearProbe, confusion_iou
from sansa_probe.probes.part_matching import match_parts
from sansa_probe.probes.pca_concentration import PCAConcentration
from sansa_probe.probes.pca_rgb import PCARGB
from sansa_probe.probes.plots import (
    encoder_colours,
    plot_linear_probe,
    plot_part_matching,
    plot_pca_concentration,
    plot_pca_rgb,
    plot_projection,
    plot_spatial_coherence,
    save_figure,
    write_projection_html,
)
from sansa_probe.probes.projection import Projection2D
from sansa_probe.probes.spatial_coherence import displacement_smoothness, nearest_neighbour_flow, pair_smoothness

__all__ = [
    "PCAConcentration",
    "Projection2D",
    "PCARGB",
    "LinearProbe",
    "match_parts",
    "pair_smoothness",
    "displacement_smoothness",
    "nearest_neighbour_flow",
    "confusion_iou",
    "save_figure",
    "encoder_colours",
    "plot_pca_concentration",
    "plot_projection",
    "write_projection_html",
    "plot_pca_rgb",
    "plot_linear_probe",
    "plot_part_matching",
    "plot_spatial_coherence",
]
