"""The procedural few-shot benchmark: shapes x textures, generated on the fly, nothing on disk.

For machines with no datasets. A class is a **(shape, texture)** pair -- e.g. ``"striped-star"``,
``"dotted-ring"`` -- drawn from 16 shape families and 5 texture families (up to 80 classes,
64 by default). Colour never identifies a class: every instance gets random colours, scale,
aspect, rotation, an elastic warp (a smooth random displacement field, applied to shape and
texture together, like a pattern printed on rubber), a brightness and a lighting gradient.
Images hold 1-3 instances of their class plus 1-3 distractors of other classes (half of them,
when possible, share the shape or the texture of the class: hard negatives), on a cluttered
background (a colour gradient, low-frequency noise, stray lines, arcs and translucent blotches
that belong to no class, then pixel noise).

Class ids are ``0 .. n_classes - 1``. The class ``c`` is the pair
``(SHAPES[(c % 16 + c // 16) % 16], TEXTURES[c // 16])``, so each texture block of 16 classes
covers every shape once and every fold. Folds follow COCO-20i's interleaved rule: class ``c``
is a test class of fold ``c % 4``. With 64 classes a fold's 16 novel classes contain every
shape once and every texture four times, and each novel pair is a new combination of a shape
and a texture seen in training (with other partners).

Splits: ``split="train"`` images contain only the fold's training classes (also as
distractors), so novel classes never leak into training; ``"val"`` and ``"test"`` images (two
disjoint image sets) are drawn for the fold's test classes, with distractors of any class.
Each class has ``images_per_class`` images per split, with ids like ``"test-f1-c05-00003"``
(split, fold, class, index); an image is a pure function of ``(seed, split, fold, class,
index, n_classes)`` and ``image_size`` (the layout is drawn in relative coordinates, so the
same id at another size is the same scene, resampled). A small per-source LRU cache keeps the
last rendered images.

Also here: :func:`synthetic_video` (short clips of smoothly moving instances, for the
spatial-coherence probe) and :func:`contact_sheet` (a labelled grid for a visual check).
"""

from sansa_probe.data.synthetic.classes import (
    DEFAULT_CLASSES,
    MAX_CLASSES,
    SHAPES,
    TEXTURES,
    class_shape_texture,
    synthetic_class_name,
    synthetic_fold_classes,
)
from sansa_probe.data.synthetic.source import SPECS, SyntheticSource, build, contact_sheet
from sansa_probe.data.synthetic.video import synthetic_video

__all__ = [
    "SHAPES",
    "TEXTURES",
    "MAX_CLASSES",
    "DEFAULT_CLASSES",
    "SPECS",
    "SyntheticSource",
    "build",
    "class_shape_texture",
    "synthetic_class_name",
    "synthetic_fold_classes",
    "synthetic_video",
    "contact_sheet",
]
