"""Masks for the user's images: large-scale annotation (paper appendix C: references, targets, the
resumable run; the command ``python -m sansa_probe.annotate``) and segment's run over a list of
targets (:mod:`.segment`; the command ``python -m sansa_probe.segment``).
"""

from sansa_probe.annotation.references import ClassReferences, load_references
from sansa_probe.annotation.run import AnnotateOptions, AnnotateResult, annotate, class_memory, segment_batch
from sansa_probe.annotation.targets import TargetTable, collect_targets

__all__ = [
    "AnnotateOptions",
    "AnnotateResult",
    "ClassReferences",
    "TargetTable",
    "annotate",
    "class_memory",
    "collect_targets",
    "load_references",
    "segment_batch",
]
