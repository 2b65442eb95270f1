"""Which parameters a training run updates (paper Tables 3 and 4).

* ``adapters`` (SANSA): only the adapters; SAM2 frozen.
* ``decoder``: sam2's mask decoder (about 4M parameters).
* ``qkv``: the fused query/key/value projections of every Hiera block.
* ``backbone``: the whole image encoder (trunk and neck).
* ``full``: every SAM2 parameter. ``--from-scratch`` is ``full`` starting from random SAM2 weights.

The fine-tuning baselines are built without adapters (``stages=()``), so their model is
exactly SAM2 with some weights updated.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from torch import nn

__all__ = ["FINETUNE_MODES", "finetune_parameter_names", "apply_finetune"]

FINETUNE_MODES = ("adapters", "decoder", "qkv", "backbone", "full")


class _Finetunable(Protocol):
    """What this module reads of a :class:`~sansa_probe.model.sansa.SansaModel` (no import of it:
    the checkpoint reader, which the model imports, uses these names)."""

    sam: nn.Module
    adapter_names: Sequence[str]


def finetune_parameter_names(model: _Finetunable, mode: str) -> list[str]:
    """Names (in ``model.sam``'s namespace) of the parameters ``mode`` trains, sorted."""
    if mode not in FINETUNE_MODES:
        raise ValueError(f"finetune mode {mode!r} is unknown; expected one of {', '.join(FINETUNE_MODES)}")
    if mode == "adapters":
        if not model.adapter_names:
            raise ValueError("finetune mode 'adapters' needs adapters, but the model has none (stages=())")
        return list(model.adapter_names)
    names = [n for n, _ in model.sam.named_parameters() if n not in set(model.adapter_names)]
    if mode == "decoder":
        names = [n for n in names if n.startswith("sam_mask_decoder.")]
    elif mode == "qkv":
        names = [n for n in names if n.startswith("image_encoder.trunk.") and ".attn.qkv." in n]
    elif mode == "backbone":
        names = [n for n in names if n.startswith("image_encoder.")]
    return sorted(names)


def apply_finetune(model: _Finetunable, mode: str) -> list[str]:
    """Set ``requires_grad`` so that exactly ``mode``'s parameters train; returns their names."""
    names = set(finetune_parameter_names(model, mode))
    for name, parameter in model.sam.named_parameters():
        parameter.requires_grad_(name in names)
    return sorted(names)
