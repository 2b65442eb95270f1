"""Prompts typed as text, as ``segment``'s options and the references files of ``annotate`` take them:
``"x,y[,label];x,y[,label]"`` clicks and ``"x0,y0,x1,y1"`` boxes, in image pixels."""

from __future__ import annotations

import numpy as np

from sansa_probe.prompts.types import Box, Points

__all__ = ["parse_box", "parse_points"]


def parse_points(text: str, *, name: str = "--reference-points") -> Points:
    """``"x,y[,label];x,y[,label]"`` -> :class:`Points` (label defaults to 1: positive; 0 negative)."""
    coords, labels = [], []
    for i, item in enumerate(part for part in text.replace(" ", "").split(";") if part):
        fields = item.split(",")
        if len(fields) not in (2, 3):
            raise ValueError(f"{name}: point {i} {item!r}: expected 'x,y' or 'x,y,label'")
        try:
            coords.append((float(fields[0]), float(fields[1])))
            labels.append(int(fields[2]) if len(fields) == 3 else 1)
        except ValueError:
            raise ValueError(f"{name}: point {i} {item!r} is not numeric") from None
    if not coords:
        raise ValueError(f"{name}: no point given in {text!r}")
    return Points(np.array(coords), np.array(labels))


def parse_box(text: str, *, name: str = "--reference-box") -> Box:
    """``"x0,y0,x1,y1"`` -> :class:`Box`."""
    fields = text.replace(" ", "").split(",")
    if len(fields) != 4:
        raise ValueError(f"{name}: {text!r}: expected 'x0,y0,x1,y1'")
    try:
        return Box(tuple(float(v) for v in fields))
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not numeric") from None
