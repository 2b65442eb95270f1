"""The training loop: episodic clips, BCE + Dice, AdamW, clipping, accumulation, DDP, exact resume.

Determinism: clip ``i`` depends only on ``(seed, i)`` and SAM2 runs in eval mode (no dropout),
so the loss of every step is a function of the step index and the weights. A checkpoint holds
the trained tensors, the optimizer and scheduler states, the RNG states and the step; resuming
from it continues with exactly the losses of an unbroken run.

Failures: a non-finite loss or gradient norm raises :class:`NonFiniteLossError` before the step
is applied, so the weights, ``last.pt`` and everything else on disk stay finite; no checkpoint
with a non-finite tensor is ever written. Ctrl-C (SIGINT) asks the loop to stop after the step
in progress: ``last.pt`` is written and :class:`TrainingInterrupted` raised (a second Ctrl-C
interrupts at once). Under DDP the ranks agree on both, so they stop at the same step. After a
Ctrl-C only the DataLoader's "worker exited unexpectedly" counts as part of it; any other error
raised meanwhile is reported as itself.

Files under ``out``::

    checkpoints/last.pt        everything needed to resume (written atomically every --save-every steps and each epoch)
    checkpoints/epoch<E>.pt    the trained tensors at the end of epoch E (loadable with --checkpoint)
    final.pt                   the trained tensors at the end (loadable with --checkpoint)
    adapters.pt                the adapters alone, in the adapter format (adapter training only)
    log.csv                    step, epoch, loss terms, lr, gradient norm, clips/s
    tensorboard/               TensorBoard events, when tensorboard is installed
"""

from __future__ import annotations

import contextlib
import csv
import math
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sansa_probe.io.atomic import atomic_torch_save, atomic_write_text
from sansa_probe.model.checkpoint import TRAIN_FORMAT
from sansa_probe.model.finetune import apply_finetune
from sansa_probe.model.sam2_weights import check_finite, check_tensor
from sansa_probe.model.sansa import SansaModel
from sansa_probe.training.data import ClipBatch, ClipDataset, StepBatchSampler, collate_clips
from sansa_probe.training.losses import segmentation_loss
from sansa_probe.training.run_dir import check_resume_settings
from sansa_probe.utils.distributed import DistInfo

__all__ = ["TrainConfig", "Trainer", "NonFiniteLossError", "TrainingInterrupted", "rng_state", "set_rng_state"]

LOG_FIELDS = ["step", "epoch", "loss", "bce", "focal", "dice", "lr", "grad_norm", "clips_per_s"]


class NonFiniteLossError(ValueError):
    """The loss or the gradient norm of a step is NaN or infinite; the step was not applied."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training between two steps; the message says where ``last.pt`` was saved."""


class _StopRequest:
    """While active, the first SIGINT only sets ``requested``; the second one interrupts at once.

    Installed only in the main thread, and not where SIGINT is ignored (``nohup``, background jobs).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.getsignal(signal.SIGINT) or signal.default_int_handler
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self._previous)
        self._previous = None


@dataclass
class TrainConfig:
    """Hyper-parameters of a run (the paper's recipe by default, appendix H)."""

    epochs: int = 5
    steps_per_epoch: int = 100
    global_batch: int = 32
    micro_batch: int = 4
    targets: int = 3
    lr: float = 1e-4
    weight_decay: float = 0.0
    clip: float = 1.0
    loss: str = "bce_dice"
    loss_weights: tuple[float, float] | None = None
    scheduler: str = "constant"
    precision: str = "auto"
    save_every: int = 500
    seed: int = 0
    finetune: str = "adapters"
    protocol: str = "release"
    log_every: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def accumulation(self, world_size: int) -> int:
        per_step = self.micro_batch * world_size
        if self.global_batch % per_step:
            raise ValueError(
                f"--batch-size {self.global_batch} is not a multiple of micro-batch {self.micro_batch} x {world_size} process(es)"
            )
        return self.global_batch // per_step

    def resume_key(self) -> dict[str, Any]:
        """What must be equal for a checkpoint to be resumed under this config."""
        return {k: v for k, v in asdict(self).items() if k not in ("save_every", "log_every", "epochs", "extra")}


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": np_state[2],
                  "has_gauss": np_state[3], "cached": np_state[4]},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"], np_state["has_gauss"], np_state["cached"]))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def _scheduler(optimizer: torch.optim.Optimizer, kind: str, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    if kind == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if kind == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps))))
    raise ValueError(f"scheduler {kind!r} is unknown; expected 'constant' or 'cosine'")


class Trainer:
    """Runs a :class:`TrainConfig` on a :class:`ClipDataset`; DDP when ``dist.world_size > 1``."""

    def __init__(
        self,
        *,
        model: SansaModel,
        dataset: ClipDataset,
        config: TrainConfig,
        out: str | Path,
        device: torch.device,
        dist: DistInfo = DistInfo(),
        num_workers: int = 0,
        progress: bool = True,
    ) -> None:
        if model.config.object_scores:
            raise ValueError(
                "training needs a model built with object_scores=False: SAM2's object-score gate replaces "
                "mask logits by a constant and would stop every gradient"
            )
        self.model = model
        self.dataset = dataset
        self.config = config
        self.out = Path(out)
        self.device = device
        self.dist = dist
        self.num_workers = num_workers
        self.progress = progress and dist.is_main
        self.accumulation = config.accumulation(dist.world_size)
        self.names = apply_finetune(model, config.finetune)
        params = dict(model.sam.named_parameters())
        self.parameters = [params[n] for n in self.names]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = _scheduler(self.optimizer, config.scheduler, config.total_steps)
        self.step = 0
        self.saved_step: int | None = None  # the step of the last full checkpoint written or resumed
        self.model.train()
        self.ddp = (
            DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
            if dist.enabled
            else None
        )
        needed = config.total_steps * config.global_batch
        if len(dataset) < needed:
            raise ValueError(f"the clip dataset has {len(dataset)} clips; {config.total_steps} steps of {config.global_batch} need {needed}")

    # ------------------------------------------------------------------ state
    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().clone() for n, p in zip(self.names, self.parameters)}

    def checkpoint_payload(self, *, full: bool) -> dict[str, Any]:
        trainable = self.trainable_state()
        bad = next((name for name, tensor in trainable.items() if not torch.isfinite(tensor).all()), None)
        if bad is not None:
            raise NonFiniteLossError(f"step {self.step}: trained tensor {bad!r} holds NaN or infinite values; it is not saved")
        payload = {
            "format": TRAIN_FORMAT,
            "version": 1,
            "config": self.model.config.to_dict(),
            "finetune": self.config.finetune,
            "trainable": trainable,
            "step": self.step,
            "train_config": self.config.resume_key(),
        }
        if "run" in self.config.extra:
            payload["run"] = self.config.extra["run"]
        if full:
            payload.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(), rng=rng_state())
        return payload

    def save(self, path: Path, *, full: bool) -> None:
        if self.dist.is_main:
            atomic_torch_save(path, self.checkpoint_payload(full=full))
        if full:
            self.saved_step = self.step

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint written by :meth:`save` (weights_only, strict about the recipe)."""
        path = Path(path)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"--resume: {path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != TRAIN_FORMAT or "optimizer" not in payload:
            raise ValueError(f"--resume: {path} is not a full training checkpoint (checkpoints/last.pt)")
        if isinstance(payload.get("run"), dict) and "run" in self.config.extra:
            check_resume_settings(payload["run"], self.config.extra["run"], source=str(path))
        ours, theirs = self.config.resume_key(), payload.get("train_config", {})
        differing = sorted(k for k in ours if k in theirs and _normal(ours[k]) != _normal(theirs[k]))
        if differing:
            k = differing[0]
            raise ValueError(f"--resume: {path} was trained with {k}={theirs[k]!r}, this run has {k}={ours[k]!r}")
        if payload["config"] != self.model.config.to_dict():
            raise ValueError(f"--resume: {path} was trained on another model config ({payload['config']})")
        if sorted(payload["trainable"]) != self.names:
            raise ValueError(f"--resume: {path} trains other parameters than --finetune {self.config.finetune}")
        for name, parameter in zip(self.names, self.parameters):  # tensors of the parameters' kind and shape, finite
            tensor = check_tensor(name, payload["trainable"][name], parameter, source=f"--resume: {path}")
            if tuple(tensor.shape) != tuple(parameter.shape):
                raise ValueError(f"--resume: {path}: key {name!r} has shape {tuple(tensor.shape)}, the model expects {tuple(parameter.shape)}")
        check_finite(payload["trainable"], source=f"--resume: {path}")
        with torch.no_grad():
            for name, parameter in zip(self.names, self.parameters):
                parameter.copy_(payload["trainable"][name].to(parameter.device, parameter.dtype))
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        set_rng_state(payload["rng"])
        self.step = int(payload["step"])
        self.saved_step = self.step

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        precision = self.config.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        if precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        if precision != "fp32":
            raise ValueError(f"precision {precision!r}: expected 'auto', 'bf16' or 'fp32'")
        return contextlib.nullcontext()

    def micro_step(self, batch: ClipBatch, *, sync: bool) -> dict[str, float]:
        """Forward and backward of one micro-batch; the loss is scaled for the accumulation."""
        batch = batch.to(self.device)
        module = self.ddp if self.ddp is not None else self.model
        context = contextlib.nullcontext() if (self.ddp is None or sync) else self.ddp.no_sync()
        with context:
            with self._autocast():
                logits = module(batch.reference, batch.prompts, batch.targets)  # (J, B, 1, S, S)
            terms = segmentation_loss(
                logits[:, :, 0].flatten(0, 1),
                batch.target_masks.flatten(0, 1),
                batch.target_valid.flatten(0, 1),
                kind=self.config.loss,
                weights=self.config.loss_weights,
            )
            (terms["loss"] / self.accumulation).backward()
        return {k: float(v.detach()) for k, v in terms.items()}

    def optimizer_step(self, micro_batches: list[ClipBatch]) -> dict[str, float]:
        """One optimizer step over ``accumulation`` micro-batches (gradients stay in ``.grad`` after)."""
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for i, batch in enumerate(micro_batches):
            for key, value in self.micro_step(batch, sync=(i == len(micro_batches) - 1)).items():
                totals[key] = totals.get(key, 0.0) + value / len(micro_batches)
        grads = [p.grad for p in self.parameters if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) if grads else torch.zeros(())
        totals["grad_norm"] = float(norm)
        if self.dist.enabled:  # the mean over ranks: logged, and every rank takes the same decision below
            keys = sorted(totals)
            values = torch.tensor([totals[k] for k in keys], dtype=torch.float64)
            torch.distributed.all_reduce(values)
            totals.update({k: float(v) / self.dist.world_size for k, v in zip(keys, values)})
        if not all(math.isfinite(v) for v in totals.values()):
            self.optimizer.zero_grad(set_to_none=True)
            terms = ", ".join(f"{k}={v:.4g}" for k, v in totals.items())
            last = self.out / "checkpoints" / "last.pt"
            kept = f"the last checkpoint is {last} (step {self.saved_step})" if self.saved_step is not None else "no checkpoint was written yet"
            raise NonFiniteLossError(
                f"training stopped at step {self.step + 1}: non-finite loss or gradient ({terms}); the step was not applied, "
                f"nothing non-finite was saved, {kept}. Expected finite losses: lower --lr, use --precision fp32, or check the data"
            )
        if self.config.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.config.clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        totals["lr"] = lr
        return totals

    def _agreed(self, flag: bool) -> bool:
        """``flag`` on any rank (every rank gets the same answer)."""
        if not self.dist.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item() > 0)

    def loader(self, start_step: int, end_step: int) -> DataLoader:
        sampler = StepBatchSampler(
            start_step=start_step,
            end_step=end_step,
            micro_batch=self.config.micro_batch,
            accumulation=self.accumulation,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        return DataLoader(
            self.dataset,
            batch_sampler=sampler,
            collate_fn=collate_clips,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    # ------------------------------------------------------------------ loop
    def fit(self, *, until: int | None = None) -> list[dict[str, float]]:
        """Train from ``self.step`` to the end of the schedule (or to step ``until``); returns the rows logged."""
        config = self.config
        end = config.total_steps if until is None else min(config.total_steps, until)
        checkpoints = self.out / "checkpoints"
        log = _CsvLog(self.out / "log.csv", keep_until=self.step) if self.dist.is_main else None
        board = _tensorboard(self.out / "tensorboard") if self.dist.is_main else None
        rows = []
        bar = tqdm(total=config.total_steps, initial=self.step, desc="train", unit="step", disable=not self.progress, file=sys.stderr)
        stop = _StopRequest()
        interrupted = False
        try:
            with stop:
                interrupted = self._loop(self.loader(self.step, end), rows=rows, log=log, board=board, bar=bar, stop=stop)
        finally:
            bar.close()
            if board is not None:
                board.close()
        if interrupted:
            self.save(checkpoints / "last.pt", full=True)
            raise TrainingInterrupted(
                f"interrupted at step {self.step} of {config.total_steps}; saved {checkpoints / 'last.pt'}: rerun with --resume to continue"
            )
        if rows and self.step % config.steps_per_epoch and self.step % config.save_every:
            self.save(checkpoints / "last.pt", full=True)  # stopped between checkpoints (--max-steps): keep it resumable
        if self.dist.is_main and self.step == config.total_steps:
            atomic_torch_save(self.out / "final.pt", self.checkpoint_payload(full=False))
            if config.finetune == "adapters":
                self.model.save_adapters(self.out / "adapters.pt", meta={"step": self.step, "train_config": config.resume_key()})
        return rows

    def _loop(self, loader: DataLoader, *, rows: list, log: "_CsvLog | None", board, bar, stop: _StopRequest) -> bool:
        """The steps of :meth:`fit` (rows appended to ``rows``); True when Ctrl-C stopped it between two steps."""
        config = self.config
        checkpoints = self.out / "checkpoints"
        pending: list[ClipBatch] = []
        started = time.perf_counter()
        try:
            for batch in loader:
                pending.append(batch)
                if len(pending) < self.accumulation:
                    continue
                terms = self.optimizer_step(pending)
                pending = []
                elapsed = time.perf_counter() - started
                started = time.perf_counter()
                epoch = (self.step - 1) // config.steps_per_epoch
                row = {"step": self.step, "epoch": epoch, "clips_per_s": config.global_batch / max(elapsed, 1e-9), **terms}
                rows.append(row)
                if log is not None:
                    log.write(row)
                if board is not None:
                    for key in ("loss", "dice", "bce", "focal", "lr", "grad_norm"):
                        if key in row:
                            board.add_scalar(f"train/{key}", row[key], self.step)
                bar.set_postfix(loss=f"{row['loss']:.4f}", epoch=epoch)
                bar.update(1)
                if self.step % config.steps_per_epoch == 0:
                    self.save(checkpoints / f"epoch{self.step // config.steps_per_epoch:03d}.pt", full=False)
                    self.save(checkpoints / "last.pt", full=True)
                elif self.step % config.save_every == 0:
                    self.save(checkpoints / "last.pt", full=True)
                if self._agreed(stop.requested):
                    return True
        except Exception as exc:
            if stop.requested and _ended_by_ctrl_c(exc):
                return True  # a DataLoader worker ended by the same Ctrl-C: stop at the last finished step
            raise  # anything else is an error of its own, even after Ctrl-C was asked for
        return self._agreed(stop.requested)


def _ended_by_ctrl_c(exc: BaseException) -> bool:
    """The DataLoader's error when its worker processes died, as they do on the Ctrl-C that also
    reached the main process (the terminal signals the whole process group)."""
    return isinstance(exc, RuntimeError) and "DataLoader worker" in str(exc) and "exited unexpectedly" in str(exc)


def _normal(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class _CsvLog:
    """Append-only CSV of training rows; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, path: Path, *, keep_until: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if path.exists():
            with open(path, newline="") as handle:
                for row in csv.DictReader(handle):
                    try:
                        if int(row["step"]) <= keep_until:
                            kept.append(row)
                    except (KeyError, ValueError):
                        break  # a line cut by a crash: drop it and what follows
        text = ",".join(LOG_FIELDS) + "\n" + "".join(",".join(str(r.get(k, "")) for k in LOG_FIELDS) + "\n" for r in kept)
        atomic_write_text(path, text)

    def write(self, row: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as handle:
            handle.write(",".join(_fmt(row.get(k, "")) for k in LOG_FIELDS) + "\n")
            handle.flush()


def _fmt(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter  # deferred: the optional [tensorboard] extra
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(path))
