"""The paper's probe experiments as library functions: features -> probe -> tidy tables -> figures.

One module per experiment, each with ``compute(extractor, inputs, *, models, ...) -> {name: table}``,
``TABLES`` (the names of the tables its figures need) and ``figures(tables, images=None) ->
{name: Figure}``, a function of the tables alone (and of the input images where the figure shows
them). The commands (``python -m sansa_probe.pca`` ...), the notebooks and ``experiments/`` call
these; :func:`redraw` draws a run's figures again from the CSVs on disk.

=====================  ==========================  =====================================
module                 paper                       inputs
=====================  ==========================  =====================================
``pca``                fig. 8, app. B.1            :class:`~sansa_probe.features.ProbeSplits`
``projection``         figs. 4a, 8b-c              a :class:`~sansa_probe.data.SegmentationSource`
``pca_rgb``            figs. 2, 4b                 images and object masks
``linear_probe``       fig. 9 left, app. B.2       :class:`~sansa_probe.features.ProbeSplits`
``part_matching``      fig. 4c                     :class:`~sansa_probe.probes.object_pairs.ObjectPair` s
``spatial_coherence``  app. G, table 12            a :class:`~sansa_probe.probes.frame_pairs.PairSet`
=====================  ==========================  =====================================
"""

from sansa_probe.pipelines.redraw import read_images, read_tables, redraw, write_images

__all__ = ["read_images", "read_tables", "redraw", "write_images"]
