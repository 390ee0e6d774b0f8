"""An optional runtime for the user's training script under torchrun.

    from mlops_ci import training

    dist = training.setup(seed=7)              # process group from torchrun's environment
    sampler = dist.sampler(dataset)            # DistributedSampler (or None on one process)
    with training.tracked_run(dist):           # MLflow run on rank 0 (the run mlops-ci opened)
        ...
        dist.log_metrics({"loss": loss}, step=epoch)
        training.finish(dist, model_uri=info.model_uri, metrics={...})

CPU processes use gloo, GPU processes NCCL. Everything MLflow happens on rank 0 only. The
script also runs without mlops-ci (plain `torchrun train.py` or `python train.py`).
"""

from __future__ import annotations

import json
import os
import random
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from collections.abc import Iterator

RESULT_ENV = "MLOPS_CI_RESULT"


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

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as td

            td.barrier()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.is_main and _tracking_enabled():
            import mlflow

            mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_params(self, params: dict[str, Any]) -> None:
        if self.is_main and _tracking_enabled():
            import mlflow

            mlflow.log_params({k: str(v) for k, v in params.items()})

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def _tracking_enabled() -> bool:
    return bool(os.environ.get("MLFLOW_RUN_ID") or os.environ.get("MLFLOW_TRACKING_URI"))


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, *, timeout_s: float = 600) -> Dist:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*)."""
    import torch

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
        td.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    seed_everything(seed)
    return Dist(rank=rank, local_rank=local_rank, world_size=world, backend=backend, device=device)


def autocast(dist: Dist):
    """bf16 autocast on GPU; a no-op context on CPU."""
    if dist.device.type == "cuda":
        import torch

        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def tracked_run(dist: Dist) -> Iterator[Any]:
    """The MLflow run on rank 0 (resuming ``MLFLOW_RUN_ID`` when mlops-ci opened one); None elsewhere."""
    if not dist.is_main or not _tracking_enabled():
        yield None
        return
    import mlflow

    if not os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_EXPERIMENT_ID") is None:
        mlflow.set_experiment(os.environ.get("MLOPS_CI_MODEL", "default"))
    with mlflow.start_run() as run:
        yield run


def finish(dist: Dist, *, model_uri: str | None, metrics: dict[str, float] | None = None) -> None:
    """Write the result file mlops-ci reads (rank 0 only), then leave the process group."""
    path = os.environ.get(RESULT_ENV)
    if dist.is_main and path:
        payload = {"model_uri": model_uri, "metrics": {k: float(v) for k, v in (metrics or {}).items()}}
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        tmp.replace(target)
    dist.barrier()
    dist.close()
