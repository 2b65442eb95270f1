"""Shared fixtures: one tiny random-init SAM2 (Hiera-T, 256 px) for the whole session."""

from __future__ import annotations

import contextlib
import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

# The Ctrl-C tests send a real SIGINT. A shell starts background jobs (`cmd &`, nohup) with SIGINT
# ignored and Python keeps that, so those tests would see no interruption: give the session the
# handler an interactive terminal gives (subprocesses then start with SIGINT at its default too).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def shared_dir() -> Path | None:
    """The project's shared folder: ``$SANSA_SHARED`` when set, else ``shared/`` beside the checkout
    (``<repo root>/../shared``); ``None`` when neither exists."""
    candidates = [Path(os.environ["SANSA_SHARED"])] if os.environ.get("SANSA_SHARED") else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared")
    return next((c for c in candidates if c.is_dir()), None)


# real photographs and frames (skipped cleanly where the shared folder is absent)
SHARED_DATA = (shared_dir() or Path(__file__).resolve().parents[1].parent / "shared") / "data"

TINY = dict(backbone="hiera_t", sam2_checkpoint=None, image_size=256, device="cpu")


def build_tiny_model(**overrides):
    from sansa_probe.model import load_sansa

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_sansa(**{**TINY, **overrides})


@pytest.fixture(scope="session")
def tiny_model():
    """Hiera-T at 256 px with random SAM2 weights and fresh adapters. Do not leave it modified:
    use :func:`randomized_adapters` to change adapter weights temporarily."""
    return build_tiny_model()


@contextlib.contextmanager
def randomized_adapters(model, seed: int = 0, scale: float = 0.5):
    """Give every adapter parameter random values (so adapters change outputs); restore after."""
    saved = model.adapter_state_dict()
    generator = torch.Generator().manual_seed(seed)
    params = model.adapter_parameters()
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            p.copy_(torch.randn(p.shape, generator=generator) * scale / max(1, p.shape[-1]) ** 0.5 + (1.0 if name.endswith("norm_before.weight") else 0.0))
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, tensor in saved.items():
                params[name].copy_(tensor)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def blob_image(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A random textured image with one bright ellipse; returns (HxWx3 uint8, HxW bool mask)."""
    image = (rng.random((height, width, 3)) * 80).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    ry, rx = rng.uniform(0.15, 0.3) * height, rng.uniform(0.15, 0.3) * width
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    image[mask] = np.array([200, 60, 40], dtype=np.uint8) + (rng.random((mask.sum(), 3)) * 40).astype(np.uint8)
    return image, mask
