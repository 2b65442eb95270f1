"""Pixel-level linear probe on frozen dense features (paper fig. 9 left, appendix B.2).

One ``1x1`` convolution (a linear map per pixel, ``C -> n_classes``) on frozen features
``[N, C, h, w]``; its logits are bilinearly upsampled to the label size ``[H, W]`` and trained
with cross-entropy (ignore index 255), as in the usual segmentation linear-probe protocol
(e.g. dinov2's linear segmentation evaluation). Evaluation is semantic-segmentation mIoU:

* per class ``c`` (background included, as class 0 of the label maps), intersections and
  unions are summed over **all pixels of the evaluation set** (confusion-matrix IoU, as in
  mmsegmentation), ignore-index pixels excluded;
* ``mIoU`` is the mean over the classes that are *present*, i.e. whose union is non-zero
  (in the ground truth or in the prediction); a class that appears nowhere is excluded
  (mmsegmentation's ``nanmean``).

:meth:`LinearProbe.score` returns mIoU as a fraction in ``[0, 1]``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from sansa_probe.probes._validation import labelled_frame

__all__ = ["LinearProbe", "confusion_iou"]


def _as_tensor(value: Any, *, name: str, ndim: int, dtype: torch.dtype | None) -> torch.Tensor:
    """A tensor view of ``value`` (no copy for numpy / memory-mapped arrays when ``dtype`` is
    ``None``: features are cast batch by batch, so a large float16 or memory-mapped array is
    never copied whole)."""
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    if tensor.ndim != ndim:
        layout = "[N, C, h, w]" if ndim == 4 else "[N, H, W]"
        raise ValueError(f"{name}: expected a {ndim}-D {layout} array, got shape {tuple(tensor.shape)}")
    if dtype is None:
        if not tensor.is_floating_point():
            raise ValueError(f"{name}: expected floating-point features, got dtype {tensor.dtype}")
        return tensor.detach()
    return tensor.detach().to(dtype=dtype)


def confusion_iou(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU from a [K, K] confusion matrix (rows: ground truth, columns: prediction);
    ``NaN`` where the union is 0."""
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


class LinearProbe(BaseEstimator):
    """Train a ``1x1`` linear classifier on frozen dense features and score it by mIoU.

    Args:
        n_classes: number of classes including background (label values ``0..n_classes-1``);
            ``None`` infers ``max(label) + 1`` (ignoring ``ignore_index``) from ``fit``'s ``y``.
        epochs: passes over the training images.
        batch_size: images per optimisation step.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``).
        momentum: SGD momentum.
        weight_decay: L2 penalty of the optimiser.
        ignore_index: label value excluded from loss and metric (255).
        seed: seeds the layer initialisation and the shuffling (a private generator; the
            global torch RNG is left alone).
        device: where to train (``"cpu"``, ``"cuda:0"``, a ``torch.device``).

    Attributes (after :meth:`fit`):
        weight_: [n_classes, C] and bias_: [n_classes] (CPU tensors) of the learnt layer.
        n_classes_: number of classes; n_features_in_: ``C``.
        loss_history_: mean training loss per epoch.
    """

    def __init__(
        self,
        *,
        n_classes: int | None = None,
        epochs: int = 10,
        batch_size: int = 8,
        lr: float = 1e-3,
        optimizer: Literal["adam", "sgd"] = "adam",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        ignore_index: int = 255,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.n_classes = n_classes
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.ignore_index = ignore_index
        self.seed = seed
        self.device = device

    # ------------------------------------------------------------------ helpers
    def _labels(self, y: Any, n: int, n_classes: int | None) -> torch.Tensor:
        labels = _as_tensor(y, name="y", ndim=3, dtype=torch.long)
        if labels.shape[0] != n:
            raise ValueError(f"y: expected {n} label maps (one per feature map of X), got {labels.shape[0]}")
        if n_classes is not None:
            valid = labels[labels != self.ignore_index]
            if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= n_classes):
                raise ValueError(f"y: label values must be in [0, {n_classes - 1}] or {self.ignore_index}, "
                                 f"found [{int(valid.min())}, {int(valid.max())}]")
        return labels

    def _logits(self, x: torch.Tensor, size: tuple[int, int], weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] -> bilinearly upsampled logits [B, K, H, W]."""
        logits = F.conv2d(x, weight[:, :, None, None], bias)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> LinearProbe:
        """Train on dense features ``X`` [N, C, h, w] and label maps ``y`` [N, H, W] (ints,
        ``ignore_index`` for unlabelled pixels)."""
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer: expected 'adam' or 'sgd', got {self.optimizer!r}")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError(f"epochs/batch_size: expected positive ints, got {self.epochs}/{self.batch_size}")
        device = torch.device(self.device)
        features = _as_tensor(X, name="X", ndim=4, dtype=None)
        labels = self._labels(y, features.shape[0], self.n_classes)
        n_classes = self.n_classes
        if n_classes is None:
            valid = labels[labels != self.ignore_index]
            if valid.numel() == 0:
                raise ValueError("y: every pixel is ignore_index; nothing to train on")
            n_classes = int(valid.max()) + 1
        if int(n_classes) < 2:
            raise ValueError(f"n_classes: expected at least 2 classes (background included), got {n_classes}")
        n, c = features.shape[:2]
        size = tuple(labels.shape[1:])

        generator = torch.Generator().manual_seed(int(self.seed))
        layer = torch.nn.Conv2d(c, int(n_classes), kernel_size=1)
        bound = 1.0 / np.sqrt(c)  # PyTorch's default Conv2d init, drawn from our generator
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
        layer.to(device)
        if self.optimizer == "adam":
            opt = torch.optim.Adam(layer.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(layer.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

        history = []
        layer.train()
        for _ in range(int(self.epochs)):
            order = torch.randperm(n, generator=generator)
            total, steps = 0.0, 0
            for start in range(0, n, int(self.batch_size)):
                idx = order[start:start + int(self.batch_size)]
                xb = features[idx].to(device=device, dtype=torch.float32)
                yb = labels[idx].to(device)
                logits = F.interpolate(layer(xb), size=size, mode="bilinear", align_corners=False)
                loss = F.cross_entropy(logits, yb, ignore_index=int(self.ignore_index))
                if not torch.isfinite(loss):  # a batch of ignore pixels only: nothing to learn
                    continue
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                steps += 1
            history.append(total / max(steps, 1))

        self.weight_ = layer.weight.detach()[:, :, 0, 0].cpu().clone()
        self.bias_ = layer.bias.detach().cpu().clone()
        self.n_classes_ = int(n_classes)
        self.n_features_in_ = int(c)
        self.loss_history_ = history
        return self

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, X: Any, *, size: tuple[int, int] | None = None) -> np.ndarray:
        """Label maps [N, H, W] (int64) for features [N, C, h, w]; logits are upsampled to
        ``size`` (default: the feature size)."""
        check_is_fitted(self)
        features = _as_tensor(X, name="X", ndim=4, dtype=None)
        if features.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} channels (as in fit), got {features.shape[1]}")
        size = tuple(size) if size is not None else tuple(features.shape[2:])
        device = torch.device(self.device)
        w, b = self.weight_.to(device), self.bias_.to(device)
        out = []
        for start in range(0, features.shape[0], int(self.batch_size)):
            xb = features[start:start + int(self.batch_size)].to(device=device, dtype=torch.float32)
            out.append(self._logits(xb, size, w, b).argmax(1).cpu())
        return torch.cat(out).numpy()

    def confusion_matrix(self, X: Any, y: Any) -> np.ndarray:
        """[K, K] pixel confusion matrix (rows: ground truth, columns: prediction) over all
        images, ``ignore_index`` pixels excluded."""
        check_is_fitted(self)
        features = _as_tensor(X, name="X", ndim=4, dtype=None)
        labels = self._labels(y, features.shape[0], self.n_classes_).numpy()
        pred = self.predict(features, size=labels.shape[1:])
        valid = labels != int(self.ignore_index)
        k = self.n_classes_
        flat = labels[valid] * k + pred[valid]
        return np.bincount(flat, minlength=k * k).reshape(k, k)

    def score(self, X: Any, y: Any) -> float:
        """mIoU in ``[0, 1]`` over the classes present (non-zero union) in ``y`` / the prediction."""
        iou = confusion_iou(self.confusion_matrix(X, y))
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")

    def to_frame(self, X: Any, y: Any, **labels: Any) -> pd.DataFrame:
        """Tidy evaluation table: ``class_id, metric, value`` with one ``iou`` row per class
        (``NaN`` for absent classes) and one ``miou`` row (``class_id`` missing); values are
        fractions. Preceded by any ``labels`` (``model="sam2"``, ``layer=...``)."""
        iou = confusion_iou(self.confusion_matrix(X, y))
        miou = float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")
        frame = pd.DataFrame(
            {"class_id": [*range(len(iou)), pd.NA], "metric": ["iou"] * len(iou) + ["miou"], "value": [*iou, miou]}
        )
        frame["class_id"] = frame["class_id"].astype("Int64")
        return labelled_frame(frame, labels)

    def history_frame(self, **labels: Any) -> pd.DataFrame:
        """Training loss per epoch: ``epoch, metric ("loss"), value``."""
        check_is_fitted(self)
        frame = pd.DataFrame({"epoch": np.arange(1, len(self.loss_history_) + 1), "metric": "loss", "value": self.loss_history_})
        return labelled_frame(frame, labels)
