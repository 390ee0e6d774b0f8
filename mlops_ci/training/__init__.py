"""An optional runtime for the user's training script under torchrun.

    from mlops_ci import training

    dist = training.setup(seed=7)              # process group from torchrun's environment
    sampler = dist.sampler(dataset)            # DistributedSampler (or None on one process)
    ckpt = training.Checkpointer(dist, every_steps=500)  # $MLOPS_CI_CHECKPOINT_URI; off when unset
    step = ckpt.load_latest(model, optimizer)  # resume from the newest complete checkpoint (0: none)
    with training.tracked_run(dist):           # MLflow run on rank 0 (the run mlops-ci opened)
        ...
        with training.autocast(dist):          # bf16 on GPU, nothing on CPU
            loss = ...
        ckpt.maybe_save(step, model, optimizer, epoch=epoch)
        dist.log_metrics({"loss": loss}, step=step)
        training.finish(dist, model_uri=info.model_uri, metrics={...}, steps=step)

CPU processes use gloo, GPU processes NCCL; the process-group timeout is ``setup(timeout_s=)``, else
``$MLOPS_CI_PG_TIMEOUT_S``, else 600 s. Everything MLflow happens on rank 0 only. The script also
runs without mlops-ci (plain `torchrun train.py` or `python train.py`). Importing this package is
cheap: torch, numpy, mlflow and fsspec are imported by the functions that use them.
"""

from __future__ import annotations

from mlops_ci.training.checkpoint import CHECKPOINT_ENV, Checkpointer
from mlops_ci.training.runtime import (
    DEFAULT_PG_TIMEOUT_S,
    PG_TIMEOUT_ENV,
    Dist,
    autocast,
    pg_timeout_s,
    seed_everything,
    setup,
    tracking_enabled,
)
from mlops_ci.training.tracking import RESULT_ENV, finish, tracked_run, write_result

__all__ = [
    "CHECKPOINT_ENV", "DEFAULT_PG_TIMEOUT_S", "PG_TIMEOUT_ENV", "RESULT_ENV", "Checkpointer", "Dist",
    "autocast", "finish", "pg_timeout_s", "seed_everything", "setup", "tracked_run", "tracking_enabled",
    "write_result",
]
