"""The process: rank and device from torchrun's environment, the process group, seeds, autocast."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mlops_ci.errors import ConfigError

PG_TIMEOUT_ENV = "MLOPS_CI_PG_TIMEOUT_S"
DEFAULT_PG_TIMEOUT_S = 600.0


@dataclass
class Dist:
    rank: int
    local_rank: int
    world_size: int
    backend: str | None
    device: Any  # torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def sampler(self, dataset, *, shuffle: bool = True, seed: int = 0):
        """A DistributedSampler over this rank's share; None on one process (let the DataLoader shuffle)."""
        if not self.distributed:
            return None
        from torch.utils.data import DistributedSampler

        return DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank, shuffle=shuffle, seed=seed)

    def mean(self, value: float) -> float:
        """The mean of ``value`` over all ranks."""
        if not self.distributed:
            return float(value)
        import torch
        import torch.distributed as td

        t = torch.tensor([float(value)], device=self.device if self.backend == "nccl" else "cpu")
        td.all_reduce(t, op=td.ReduceOp.SUM)
        return float(t.item()) / self.world_size

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.distributed:
            return value
        import torch.distributed as td

        box = [value]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as td

            td.barrier()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.is_main and tracking_enabled():
            import mlflow

            mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_params(self, params: dict[str, Any]) -> None:
        if self.is_main and tracking_enabled():
            import mlflow

            mlflow.log_params({k: str(v) for k, v in params.items()})

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def tracking_enabled() -> bool:
    return bool(os.environ.get("MLFLOW_RUN_ID") or os.environ.get("MLFLOW_TRACKING_URI"))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and every CUDA device) generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too


def pg_timeout_s(timeout_s: float | None = None) -> float:
    """``timeout_s``, else ``$MLOPS_CI_PG_TIMEOUT_S``, else 600 s."""
    if timeout_s is not None:
        return float(timeout_s)
    raw = os.environ.get(PG_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_PG_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{PG_TIMEOUT_ENV}={raw!r} is not a positive number of seconds",
                          hint=f"unset it for the default of {DEFAULT_PG_TIMEOUT_S:g} s")
    return value


def setup(seed: int = 0, *, timeout_s: float | None = None) -> Dist:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

    NCCL when CUDA is available, gloo otherwise; no process group on one process. A collective
    that waits longer than ``timeout_s`` (default ``$MLOPS_CI_PG_TIMEOUT_S`` or 600 s) fails the
    rank instead of hanging. Every rank is seeded with the same ``seed``.
    """
    import torch

    timeout = pg_timeout_s(timeout_s)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    backend = None
    if world > 1:
        import torch.distributed as td

        backend = "nccl" if cuda else "gloo"
        kwargs = {"device_id": device} if cuda else {}
        td.init_process_group(backend=backend, timeout=timedelta(seconds=timeout), **kwargs)
    seed_everything(seed)
    return Dist(rank=rank, local_rank=local_rank, world_size=world, backend=backend, device=device)


def autocast(dist: Dist):
    """bf16 autocast on GPU; a no-op context on CPU."""
    if dist.device.type == "cuda":
        import torch

        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()
