"""Trainer backends: where the user's training command runs."""

from __future__ import annotations

from mlops_ci.backends.trainers.argo import ArgoTrainer
from mlops_ci.backends.trainers.base import RemoteSpec, Trainer, TrainResult, TrainSpec
from mlops_ci.backends.trainers.torchrun import TorchrunTrainer

TRAINERS: dict[str, type] = {
    "torchrun": TorchrunTrainer,
    "argo": ArgoTrainer,  # Argo Workflows on Kubernetes (train.argo)
}


def trainer_for(name: str | None) -> Trainer:
    """The trainer called ``name`` (``train.backend``, ``--backend``); None: the default, the first."""
    from mlops_ci.backends.naming import choose

    return choose(TRAINERS, name, role="trainer", setting="train.backend")()


__all__ = ["TRAINERS", "ArgoTrainer", "RemoteSpec", "TrainResult", "TrainSpec", "Trainer", "trainer_for"]
