"""Checkpoints written by the public SANSA release, read weights-only.

The release's ``main.py`` saves, after every epoch, with ``torch.save(...,
_use_new_zipfile_serialization=False)`` (the legacy, non-zip format)::

    {"model": {"sam.image_encoder.trunk.blocks.<i>.adapter.<module>.<weight|bias>": tensor, ...},
     "optimizer": ..., "lr_scheduler": ..., "epoch": int, "args": argparse.Namespace}

and its reader takes ``checkpoint["model"]``. A file holding only ``{"model": ...}`` (zip or legacy)
is read the same way. Everything is unpickled with ``weights_only=True``; the only class allowed
besides torch's own is ``argparse.Namespace`` (the release's ``args``), so a file whose pickle
would run code is refused.

The release sizes each adapter from its block's input width (``int(dim * channel_factor)``), and
adapts every block of ``--adaptformer_stages``. The Hiera layout (stage ends, widths) is read from the
model's built trunk, never from a table, so custom SAM2 configs (``sam2_overrides``) load too.
"""

from __future__ import annotations

import argparse
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sansa_probe.model.adapters import adapter_bottleneck
from sansa_probe.model.config import SETTING_RATIOS
from sansa_probe.model.sam2_weights import CheckpointError

__all__ = ["ReleaseCheckpoint", "check_release_args", "load_weights_only", "parse_release_checkpoint", "release_stages_and_ratio", "RELEASE_BACKBONES"]

_ADAPTER_KEY = re.compile(
    r"^(?:module\.)?sam\.image_encoder\.trunk\.blocks\.(\d+)\.adapter\.(adapter_layer_norm_before|down_proj|up_proj)\.(weight|bias)$"
)
# The release's --sam2_version names (util/path_utils.py) and the Hiera config each builds.
RELEASE_BACKBONES = {"tiny": "hiera_t", "base": "hiera_b+", "large": "hiera_l"}
# Output width of every block of sam2's shipped Hiera configs, used only to guess the backbone of a
# release file that does not name it (no ``args``) when the caller gives none: (stage_ends, stage widths).
_SHIPPED_LAYOUTS = {
    "hiera_t": ([0, 2, 9, 11], [96, 192, 384, 768]),
    "hiera_s": ([0, 2, 13, 15], [96, 192, 384, 768]),
    "hiera_b+": ([1, 4, 20, 23], [112, 224, 448, 896]),
    "hiera_l": ([1, 7, 43, 47], [144, 288, 576, 1152]),
}


@dataclass(frozen=True)
class ReleaseCheckpoint:
    """The adapter part of a release file.

    Attributes:
        state: adapter tensors keyed in ``model.sam``'s namespace (``image_encoder.trunk.blocks.<i>.adapter...``).
        blocks: sorted indices of the adapted Hiera blocks.
        args: the release's training arguments (``argparse.Namespace`` as a dict), or ``{}``.
    """

    state: dict[str, torch.Tensor]
    blocks: tuple[int, ...]
    args: dict[str, Any]

    def bottleneck(self, block: int) -> int:
        return int(self.state[f"image_encoder.trunk.blocks.{block}.adapter.down_proj.weight"].shape[0])

    def width(self, block: int) -> int:
        return int(self.state[f"image_encoder.trunk.blocks.{block}.adapter.down_proj.weight"].shape[1])

    @property
    def layernorm(self) -> bool:
        return any(".adapter_layer_norm_before." in k for k in self.state)

    def backbone(self) -> str | None:
        """The Hiera config the release built: from ``args.sam2_version``, else guessed from the widths."""
        name = self.args.get("sam2_version")
        if name in RELEASE_BACKBONES:
            return RELEASE_BACKBONES[name]
        for backbone, (ends, dims) in _SHIPPED_LAYOUTS.items():
            starts = [0] + [e + 1 for e in ends[:-1]]
            stage_of = {b: s for s in range(4) for b in range(starts[s], ends[s] + 1)}
            if all(b in stage_of and self.width(b) == dims[stage_of[b]] for b in self.blocks):
                stages = {stage_of[b] for b in self.blocks}
                if sorted(b for s in stages for b in range(starts[s], ends[s] + 1)) == list(self.blocks):
                    return backbone
        return None


def load_weights_only(path: Path, *, what: str) -> Any:
    """``torch.load(weights_only=True)`` allowing exactly ``argparse.Namespace`` (the release's ``args``)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, a pickle that would run code, not a torch file...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"{what}: {path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {first}); "
            f"only tensors, containers and argparse.Namespace are accepted (weights-only loading)"
        ) from None


def parse_release_checkpoint(payload: dict, *, source: str) -> ReleaseCheckpoint:
    """The adapters of a release payload ``{"model": ..., ["args": Namespace, ...]}``."""
    model = payload["model"]
    state: dict[str, torch.Tensor] = {}
    for key, tensor in model.items():
        match = _ADAPTER_KEY.match(key)
        if match:
            block, module, kind = match.groups()
            if not isinstance(tensor, torch.Tensor):
                raise CheckpointError(f"{source}: key {key!r} is not a tensor")
            state[f"image_encoder.trunk.blocks.{block}.adapter.{module}.{kind}"] = tensor
    if not state:
        raise CheckpointError(
            f"{source}: no SANSA adapter tensor found (expected keys like 'sam.image_encoder.trunk.blocks.<i>.adapter.down_proj.weight')"
        )
    blocks = tuple(sorted({int(k.split(".")[3]) for k in state}))
    for block in blocks:
        if f"image_encoder.trunk.blocks.{block}.adapter.down_proj.weight" not in state:
            raise CheckpointError(f"{source}: missing adapter key 'image_encoder.trunk.blocks.{block}.adapter.down_proj.weight'")
    args = payload.get("args")
    args = dict(vars(args)) if isinstance(args, argparse.Namespace) else {}
    check_release_args(args, source=source)
    return ReleaseCheckpoint(state=state, blocks=blocks, args=args)


# A bottleneck ratio is int(dim * ratio) / dim: the release's are 0.3 (strict) and 0.8 (generalist).
MAX_CHANNEL_FACTOR = 8.0


def check_release_args(args: dict[str, Any], *, source: str) -> None:
    """The release's ``args`` fields that are read, by type and range; each error names the file
    (``source``) and the field. A field that is absent is not checked (it is not used)."""
    version = args.get("sam2_version")
    if version is not None and not isinstance(version, str):
        raise CheckpointError(f"{source}: args.sam2_version = {version!r} ({type(version).__name__}); expected the release's "
                              f"--sam2_version, a string such as {', '.join(map(repr, RELEASE_BACKBONES))}")
    factor = args.get("channel_factor")
    if factor is not None:
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real):
            raise CheckpointError(f"{source}: args.channel_factor = {factor!r} ({type(factor).__name__}); expected a number, "
                                  "the adapters' bottleneck ratio (0.3 or 0.8 in the release)")
        if not math.isfinite(factor) or not 0 < factor <= MAX_CHANNEL_FACTOR:
            raise CheckpointError(f"{source}: args.channel_factor = {factor!r}; expected a finite bottleneck ratio in "
                                  f"(0, {MAX_CHANNEL_FACTOR:g}] (0.3 or 0.8 in the release)")


def release_stages_and_ratio(release: ReleaseCheckpoint, trunk: torch.nn.Module, *, source: str) -> tuple[tuple[int, ...], float]:
    """Adapted stages and bottleneck ratio of ``release`` on a built sam2 ``Hiera`` trunk.

    Stages: those whose blocks are exactly the adapted ones. Ratio: ``args.channel_factor`` when the
    file has it, else the setting ratio (0.3, 0.8) whose ``int(dim_in * ratio)`` gives every stored
    bottleneck, else any ratio that does. Shapes are checked key by key when the tensors are assigned.
    """
    ends = [int(e) for e in trunk.stage_ends]
    starts = [0] + [e + 1 for e in ends[:-1]]
    stages = tuple(s for s in range(len(ends)) if any(starts[s] <= b <= ends[s] for b in release.blocks))
    covered = tuple(b for s in stages for b in range(starts[s], ends[s] + 1))
    if covered != release.blocks:
        raise CheckpointError(
            f"{source}: adapters on blocks {list(release.blocks)} are not whole Hiera stages of this model "
            f"(stage ends {ends}): a checkpoint of another backbone or SAM2 config?"
        )
    dims = {b: int(trunk.blocks[b].dim) for b in release.blocks}
    wanted = {b: release.bottleneck(b) for b in release.blocks}

    def fits(ratio: float) -> bool:
        return all(adapter_bottleneck(dims[b], ratio) == wanted[b] for b in release.blocks)

    factor = release.args.get("channel_factor")
    candidates = ([float(factor)] if factor is not None else []) + list(SETTING_RATIOS.values())  # checked when parsed
    for ratio in candidates:
        if fits(ratio):
            return stages, ratio
    low = max(wanted[b] / dims[b] for b in release.blocks)
    high = min((wanted[b] + 1) / dims[b] for b in release.blocks)
    ratio = (low + high) / 2
    if low < high and fits(ratio):
        return stages, ratio
    first = release.blocks[0]
    raise CheckpointError(
        f"{source}: no bottleneck ratio gives the stored widths int(dim_in * ratio) "
        f"(block {first}: input width {dims[first]}, bottleneck {wanted[first]}): a checkpoint of another backbone?"
    )
