"""Spatial coherence of feature matches (paper appendix G, table 12), after Zhang et al. 2023.

The SANSA paper "adopt[s] the spatial coherence metric of [86]" (J. Zhang et al., "A Tale of
Two Features: Stable Diffusion Complements DINO for Zero-Shot Semantic Correspondence",
NeurIPS 2023). Its definition is the code of that paper, github.com/Junyi42/sd-dino,
``pck_tss.py``: ``nearest_neighbor_flow`` builds the field and ``get_smooth`` scores it; the
dataset number is the mean over image pairs of the per-pair value.

Field (``nearest_neighbor_flow``): every cell of the query feature grid is matched to its
nearest neighbour on the other image's grid (both grids of the same size); the displacement
is (matched cell coordinates - own coordinates) in grid cells, stored as ``(x, y)``; it is
bilinearly upsampled (``align_corners=False``) to the image size and multiplied by the grid
stride (image size / grid size) to be in image pixels. (sd-dino's grids are 60x60 on a padded
square image, hence its ``long_edge / 60``; we map an ``h x w`` grid onto an ``H x W`` image,
scaling x by ``W / w`` and y by ``H / h``.) sd-dino's field lives on the TSS *target* image and
points into the *source*; here the image where the field lives is called the source and the
one matched into the target -- the roles are the same, only the names differ.
Optionally (sd-dino's ``--MASK``) matches are restricted to the target object's mask at grid
resolution (nearest downsampling). Similarity is cosine on L2-normalised features (on unit
vectors the Euclidean nearest neighbour sd-dino uses is the same one).

Score (``get_smooth``), implemented by :func:`displacement_smoothness`: with the field ``F``
(``2 x H x W``) set to 0 outside the mask ``M``, forward differences along x and y with the
last column/row replicated (difference 0 there),

    smoothness = ( sum_{c in x,y} sum_{i,j} |F_c(i, j) - F_c(i, j+1)| + |F_c(i, j) - F_c(i+1, j)| ) / |M|

i.e. the summed absolute first-order differences of both displacement components (an L1
gradient "magnitude"), in pixels per pixel, averaged over the mask's pixels. Lower is smoother.

Two consequences of the faithful definition, which users should know:

* zeroing the field outside the mask makes the jump at the mask border count: a constant
  translation ``t`` scores ``(|t_x| + |t_y|) * (number of border crossings) / |M|``, not 0
  (the identity field scores 0). ``outside="exclude"`` (not sd-dino) counts only differences
  between two mask pixels, so any constant field scores 0 there;
* without a mask sd-dino takes ``mean|dF/dx| + mean|dF/dy|`` over both components, i.e. it
  divides by ``2 H W``, where a full mask divides by ``H W``. ``mask=None`` reproduces that.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sansa_probe.probes._validation import check_dense_features, to_numpy

__all__ = ["displacement_smoothness", "nearest_neighbour_flow", "pair_smoothness"]


def _mask_2d(value: Any, *, name: str) -> np.ndarray:
    mask = to_numpy(value)
    if mask.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D HxW mask, got shape {tuple(mask.shape)}")
    if mask.dtype != bool:
        if not (np.issubdtype(mask.dtype, np.number) and np.all(np.isin(np.unique(mask), (0, 1)))):
            raise ValueError(f"{name}: expected a boolean (or 0/1) mask, got dtype {mask.dtype} with other values")
        mask = mask.astype(bool)
    return mask


def displacement_smoothness(flow: Any, mask: Any | None, *, outside: Literal["zero", "exclude"] = "zero") -> float:
    """Spatial coherence of a displacement field (sd-dino's ``get_smooth``); lower is smoother.

    Args:
        flow: ``[2, H, W]`` displacements in pixels, channel 0 = x (columns), 1 = y (rows).
        mask: ``[H, W]`` bool region to score, or ``None`` for sd-dino's unmasked variant
            (``mean|gx| + mean|gy|`` over both channels, i.e. divided by ``2 H W``).
        outside: ``"zero"`` (sd-dino): the field is set to 0 outside the mask and every
            forward difference counts, so jumps at the mask border count; ``"exclude"``: only
            differences between two mask pixels count. Both divide by the mask's pixel count.

    Returns:
        ``(sum |F(i,j) - F(i,j+1)| + |F(i,j) - F(i+1,j)|, over both channels) / |mask|``.
        See the module docstring for the source and its consequences.
    """
    field = to_numpy(flow).astype(np.float64)
    if field.ndim != 3 or field.shape[0] != 2:
        raise ValueError(f"flow: expected a [2, H, W] displacement field, got shape {tuple(field.shape)}")
    if not np.all(np.isfinite(field)):
        raise ValueError("flow: contains NaN or infinite values")
    if outside not in ("zero", "exclude"):
        raise ValueError(f"outside: expected 'zero' or 'exclude', got {outside!r}")
    if mask is None:
        gx = field[:, :, :-1] - field[:, :, 1:]
        gy = field[:, :-1, :] - field[:, 1:, :]
        return float((np.abs(gx).sum() + np.abs(gy).sum()) / field.size)
    m = _mask_2d(mask, name="mask")
    if m.shape != field.shape[1:]:
        raise ValueError(f"mask: shape {m.shape} does not match the field's (H, W) = {field.shape[1:]}")
    count = int(m.sum())
    if count == 0:
        raise ValueError("mask: is empty; the smoothness is averaged over mask pixels")
    field = field * m  # 0 outside the mask
    gx = np.abs(field[:, :, :-1] - field[:, :, 1:])  # the replicated last column adds 0
    gy = np.abs(field[:, :-1, :] - field[:, 1:, :])
    if outside == "exclude":
        gx = gx * (m[:, :-1] & m[:, 1:])
        gy = gy * (m[:-1, :] & m[1:, :])
    return float((gx.sum() + gy.sum()) / count)


@torch.no_grad()
def nearest_neighbour_flow(
    source: Any,
    target: Any,
    image_size: tuple[int, int],
    *,
    target_mask: Any | None = None,
    device: str | torch.device = "cpu",
    chunk_size: int = 4096,
) -> np.ndarray:
    """Displacement field in image pixels from nearest-neighbour feature matching.

    Args:
        source: ``[C, h, w]`` features of the image where the field lives.
        target: ``[C, h, w]`` features of the image matched into (same grid).
        image_size: ``(H, W)`` of the source image; the grid is mapped onto it.
        target_mask: optional ``[H_t, W_t]`` bool object mask of the target image (any size;
            nearest-downsampled to the grid): matches are restricted to it.
        device: where to compute the similarities.
        chunk_size: source cells per similarity block (memory bound ``chunk_size * h * w``).

    Returns:
        ``[2, H, W]`` float32 field ``(x, y)`` in pixels: matched position - own position.
    """
    src = check_dense_features([source], name="source")[0]
    tgt = check_dense_features([target], name="target")[0]
    if src.shape != tgt.shape:
        raise ValueError(f"target: feature grid {tgt.shape} (C, h, w) differs from the source's {src.shape}")
    H, W = (int(s) for s in image_size)
    if H < 1 or W < 1:
        raise ValueError(f"image_size: expected positive (H, W), got {image_size}")
    c, h, w = src.shape
    dev = torch.device(device)
    s = F.normalize(torch.from_numpy(src).to(dev).reshape(c, -1).T, dim=1)  # [hw, C]
    t = F.normalize(torch.from_numpy(tgt).to(dev).reshape(c, -1).T, dim=1)
    allowed = None
    if target_mask is not None:
        tm = torch.from_numpy(_mask_2d(target_mask, name="target_mask")).to(dev, torch.float32)
        allowed = F.interpolate(tm[None, None], size=(h, w), mode="nearest")[0, 0].reshape(-1) > 0.5
        if not bool(allowed.any()):
            raise ValueError("target_mask: covers no cell of the feature grid")
    index = torch.empty(h * w, dtype=torch.long, device=dev)
    for start in range(0, h * w, int(chunk_size)):
        sim = s[start:start + int(chunk_size)] @ t.T
        if allowed is not None:
            sim[:, ~allowed] = -torch.inf
        index[start:start + int(chunk_size)] = sim.argmax(1)
    ty, tx = torch.div(index, w, rounding_mode="floor"), index % w
    gy, gx = torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
    flow = torch.stack([(tx - gx.reshape(-1)).float(), (ty - gy.reshape(-1)).float()]).reshape(1, 2, h, w)
    flow = F.interpolate(flow, size=(H, W), mode="bilinear", align_corners=False)[0]
    flow[0] *= W / w
    flow[1] *= H / h
    return flow.cpu().numpy()


def pair_smoothness(
    X_source: Any,
    X_target: Any,
    *,
    source_masks: Any,
    target_masks: Any | None = None,
    restrict_to_target_mask: bool = False,
    outside: Literal["zero", "exclude"] = "zero",
    device: str | torch.device = "cpu",
    chunk_size: int = 4096,
) -> pd.DataFrame:
    """Smoothness of the nearest-neighbour feature matches of every pair (table 12).

    A measurement, not an estimator: sd-dino's dataset number is the mean of ``value``.

    Args:
        X_source, X_target: ``[N, C, h, w]`` or lists of ``[C, h, w]`` (pair ``i`` shares its grid).
        source_masks: ``N`` bool masks ``[H, W]`` at source *image* resolution: they fix the
            image size the grid is mapped onto and the region scored.
        target_masks: ``N`` bool target-image masks (any size), used with ``restrict_to_target_mask``.
        restrict_to_target_mask: match only into the target object's mask (sd-dino ``--MASK``).
        outside: see :func:`displacement_smoothness` (``"zero"`` is sd-dino's definition).
        device: where to compute similarities.
        chunk_size: source cells per similarity block.

    Returns:
        One row per pair: ``pair, metric ("smoothness"), value`` (pixels per pixel, lower is
        smoother), ``n_mask_pixels`` (source-mask pixel count).
    """
    if outside not in ("zero", "exclude"):
        raise ValueError(f"outside: expected 'zero' or 'exclude', got {outside!r}")
    sources = check_dense_features(X_source, name="X_source")
    targets = check_dense_features(X_target, name="X_target")
    if len(targets) != len(sources):
        raise ValueError(f"X_target: expected {len(sources)} feature maps (one per source), got {len(targets)}")
    src_masks = _mask_list(source_masks, len(sources), name="source_masks")
    if restrict_to_target_mask:
        if target_masks is None:
            raise ValueError("target_masks: required when restrict_to_target_mask=True")
        tgt_masks = _mask_list(target_masks, len(sources), name="target_masks")
    else:
        tgt_masks = [None] * len(sources)
    values, counts = [], []
    for i, (s, t, sm, tm) in enumerate(zip(sources, targets, src_masks, tgt_masks)):
        mask = _mask_2d(sm, name=f"source_masks[{i}]")
        if t.shape != s.shape:
            raise ValueError(f"X_target[{i}]: feature grid {t.shape} (C, h, w) differs from X_source[{i}]'s {s.shape}")
        if not mask.any():
            raise ValueError(f"source_masks[{i}]: is empty")
        field = nearest_neighbour_flow(s, t, mask.shape, target_mask=tm, device=device, chunk_size=chunk_size)
        values.append(displacement_smoothness(field, mask, outside=outside))
        counts.append(int(mask.sum()))
    return pd.DataFrame({"pair": np.arange(len(values)), "metric": "smoothness", "value": np.asarray(values, dtype=np.float64),
                         "n_mask_pixels": np.asarray(counts, dtype=np.int64)})


def _mask_list(masks: Any, count: int, *, name: str) -> list[Any]:
    items = list(masks) if isinstance(masks, (list, tuple)) else list(to_numpy(masks))
    if len(items) != count:
        raise ValueError(f"{name}: expected {count} masks (one per pair), got {len(items)}")
    return items
