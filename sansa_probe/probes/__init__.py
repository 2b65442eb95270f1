"""Feature probes of the paper as scikit-learn style estimators (issue 6).

Each estimator takes feature arrays (numpy or torch; extracting them from SAM2/SANSA is
``sansa_probe.features``' job): parameters in a keyword-only ``__init__``, ``fit`` returns
``self``, learnt state in ``*_`` attributes, ``score`` returns one float, and a method returns
a tidy :class:`pandas.DataFrame`. Figures are functions of those tables
(:mod:`sansa_probe.probes.plots`).

==========================  =========================  ======================================
estimator                   paper                      table
==========================  =========================  ======================================
:class:`PCAConcentration`   fig. 8a, app. B.1          ``accuracy_curve(X, y)``
:class:`Projection2D`       figs. 2, 4a, 8b-c          ``to_frame()``
:class:`PCARGB`             figs. 2, 4b                ``to_frame(X, masks)``
:class:`LinearProbe`        fig. 9 left, app. B.2      ``to_frame(X, y)``
:class:`PartMatching`       fig. 4c                    ``to_frame()``, ``pixel_frame()``
:class:`SpatialCoherence`   app. G, table 12           ``to_frame()``
==========================  =========================  ======================================
"""

from sansa_probe.probes.linear_probe import LinearProbe, confusion_iou
from sansa_probe.probes.part_matching import PartMatching
from sansa_probe.probes.pca_concentration import PCAConcentration
from sansa_probe.probes.pca_rgb import PCARGB
from sansa_probe.probes.plots import (
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
from sansa_probe.probes.spatial_coherence import SpatialCoherence, displacement_smoothness, nearest_neighbour_flow

__all__ = [
    "PCAConcentration",
    "Projection2D",
    "PCARGB",
    "LinearProbe",
    "PartMatching",
    "SpatialCoherence",
    "displacement_smoothness",
    "nearest_neighbour_flow",
    "confusion_iou",
    "save_figure",
    "plot_pca_concentration",
    "plot_projection",
    "write_projection_html",
    "plot_pca_rgb",
    "plot_linear_probe",
    "plot_part_matching",
    "plot_spatial_coherence",
]
