"""torch.distributed for commands launched with ``torchrun`` (or as a single plain process).

``torchrun --nproc_per_node N python -m sansa_probe.<command> ...`` sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init_distributed` then joins the process group
(NCCL on CUDA, gloo on CPU). Without those variables everything runs as rank 0 of 1.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "cleanup_distributed", "distributed", "barrier", "all_gather_objects", "shard_indices"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device = "cpu", *, timeout_s: float = 1800.0) -> tuple[DistInfo, torch.device]:
    """Join the process group if launched by torchrun; returns the info and the device of this rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = torch.device(device)
    if world <= 1:
        return DistInfo(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(rank=rank, world_size=world, local_rank=local), device


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed(device: str | torch.device = "cpu") -> Iterator[tuple[DistInfo, torch.device]]:
    """``with distributed(args.device) as (info, device): ...`` -- joins and always leaves the group."""
    info, resolved = init_distributed(device)
    try:
        yield info, resolved
    finally:
        cleanup_distributed()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def shard_indices(n: int, info: DistInfo) -> range:
    """Indices ``rank, rank + world, ...`` of ``range(n)``: every index on exactly one rank."""
    return range(info.rank, n, info.world_size)
