"""Reference prompts (mask, points, box, scribble) and seeded generators from ground truth."""

from sansa_probe.prompts.types import Box, Mask, Points, Prompt, Scribble, as_bool_mask, as_prompt

__all__ = ["Box", "Mask", "Points", "Prompt", "Scribble", "as_bool_mask", "as_prompt"]

try:  # generators live in their own module (paper appendix E.3)
    from sansa_probe.prompts.generate import (  # noqa: F401
        PROMPT_TYPES,
        box_from_mask,
        make_prompt,
        sample_points,
        sample_scribble,
    )

    __all__ += ["PROMPT_TYPES", "box_from_mask", "make_prompt", "sample_points", "sample_scribble"]
except ImportError:  # pragma: no cover - during bootstrap only
    pass
