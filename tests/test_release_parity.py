"""The public release's own outputs (``shared/fixtures/release_parity``) reproduced through the public API.

``golden.pt`` holds what the release's code computed on a small random SAM2 (Hiera-T's structure)
with adapters saved by the release's training script, for 1-, 2- and 3-shot mask episodes at 1024
px. We load both files with ``load_sansa`` and compare every recorded stage, within the
fixture's tolerances (relative 1e-4 of the largest golden value; final-mask IoU >= 0.999).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import shared_dir
from PIL import Image

from sansa_probe.inference import ReleaseProtocol
from sansa_probe.model import load_sansa
from sansa_probe.inference.predictor import SansaPredictor
from sansa_probe.prompts import Mask

FIXTURE = shared_dir() / "fixtures" / "release_parity" if shared_dir() else None
pytestmark = pytest.mark.skipif(FIXTURE is None or not (FIXTURE / "golden.pt").is_file(), reason="shared release_parity fixture absent")


def _png(golden: dict, key: str) -> np.ndarray:
    array = np.asarray(Image.open(io.BytesIO(golden[f"{key}/png"].numpy().tobytes())))
    assert hashlib.sha256(array.tobytes()).digest() == golden[f"{key}/sha256"].numpy().tobytes()
    return array


@pytest.fixture(scope="module")
def golden():
    return torch.load(FIXTURE / "golden.pt", weights_only=True)


@pytest.fixture(scope="module")
def release_model():
    overrides = [line.strip() for line in (FIXTURE / "sam2_overrides.txt").read_text().splitlines() if line.strip()]
    return load_sansa(
        backbone="hiera_t", sam2_version="2", sam2_checkpoint=FIXTURE / "sam2_weights.pt", image_size=1024,
        adapters=FIXTURE / "release_checkpoint.pth", sam2_overrides=overrides,
    )


class Recorder:
    """Forward hooks on sam2's image encoder, memory attention and mask decoder (module paths of ``model.sam``)."""

    def __init__(self, sam: torch.nn.Module) -> None:
        self.encoder, self.attention_in, self.attention_out, self.decoder = [], [], [], []
        self.handles = [
            sam.image_encoder.register_forward_hook(lambda m, a, out: self.encoder.append(out["vision_features"].detach().clone())),
            sam.memory_attention.register_forward_pre_hook(
                lambda m, a, kw: self.attention_in.append({k: v.detach().clone() if torch.is_tensor(v) else v for k, v in kw.items()}),
                with_kwargs=True,
            ),
            sam.memory_attention.register_forward_hook(lambda m, a, out: self.attention_out.append(out.detach().clone())),
            sam.sam_mask_decoder.register_forward_hook(
                lambda m, a, kw, out: self.decoder.append((kw.get("multimask_output"), out[0].detach().clone(), out[1].detach().clone())),
                with_kwargs=True,
            ),
        ]

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours.float() - theirs.float()).abs().max() / theirs.float().abs().max())


@pytest.mark.parametrize("episode", [0, 1, 2])
def test_release_outputs_are_reproduced(golden, release_model, episode):
    ep = f"ep{episode}/"
    k, target = int(golden[ep + "k"]), int(golden[ep + "target"])
    refs = [int(r) for r in golden[ep + "refs"]]
    assert int(golden[ep + "prompt"]) == 0  # mask episodes
    images = {n: _png(golden, f"image/{n:03d}") for n in [*refs, target]}
    masks = [_png(golden, f"mask/{n:03d}").astype(bool) for n in refs]
    tol = {name: float(golden[f"tol/{name}"]) for name in ("image_encoder", "memory", "memory_pos", "memory_attention", "low_res_logits", "final_logits")}

    recorder = Recorder(release_model.sam)
    try:
        # the fixture's arrays are what the release's model received (already at 1024): no square
        predictor = SansaPredictor(release_model, protocol=ReleaseProtocol(image_size=1024, square=None, output="image"))
        predictor.set_references([images[n] for n in refs], [Mask(m) for m in masks])
        prediction = predictor.predict(images[target])
    finally:
        recorder.close()

    references = recorder.encoder[0]  # the k references, encoded in one batch
    for j, n in enumerate(refs):
        assert relative(references[j : j + 1], golden[f"image/{n:03d}/image_encoder"]) <= tol["image_encoder"]
    (attention,) = recorder.attention_in
    assert attention["num_obj_ptr_tokens"] == int(golden[ep + "memory_attention.num_obj_ptr_tokens"]) == 2 * k
    assert relative(attention["memory"], golden[ep + "memory_attention.memory"]) <= tol["memory"]
    assert relative(attention["memory_pos"], golden[ep + "memory_attention.memory_pos"]) <= tol["memory_pos"]
    assert relative(recorder.attention_out[0], golden[ep + "memory_attention.output"]) <= tol["memory_attention"]
    multimask, masks_out, ious = recorder.decoder[-1]  # the target's decoder call
    assert multimask is True
    assert relative(ious, golden[ep + "sam_mask_decoder.ious"]) <= tol["low_res_logits"]
    best = int(golden[ep + "sam_mask_decoder.best"])
    assert int(ious.argmax()) == best
    low_res = golden[ep + "low_res_logits"]
    assert relative(masks_out[:, best : best + 1], low_res) <= tol["low_res_logits"]
    final = F.interpolate(low_res, size=(1024, 1024), mode="bilinear", align_corners=False)[0, 0]
    assert relative(torch.from_numpy(prediction.logits), final) <= tol["final_logits"]
    expected = np.unpackbits(golden[ep + "final_mask_packed"].numpy())[: 1024 * 1024].reshape(1024, 1024).astype(bool)
    assert int(expected.sum()) == int(golden[ep + "final_fg_pixels"])
    iou = (prediction.mask & expected).sum() / max(1, (prediction.mask | expected).sum())
    assert iou >= float(golden["tol/final_mask_iou"])
