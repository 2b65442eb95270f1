"""Reference prompts (mask, points, box, scribble) and seeded generators from ground truth."""

from sansa_probe.prompts.generate import (
    PROMPT_TYPES,
    box_from_mask,
    make_prompt,
    sample_points,
    sample_scribble,
)
from sansa_probe.prompts.types import Box, Mask, Points, Prompt, Scribble, as_bool_mask, as_prompt

__all__ = [
    "Box",
    "Mask",
    "Points",
    "Prompt",
    "Scribble",
    "as_bool_mask",
    "as_prompt",
    "PROMPT_TYPES",
    "box_from_mask",
    "make_prompt",
    "sample_points",
    "sample_scribble",
]
