"""The deepchecks environment: ``requirements.txt`` in a tool environment (:mod:`mlops_ci.toolenv`).

It is created on first use under ``$MLOPS_CI_CACHE_DIR/envs/deepchecks-<key>`` and cached;
the key hashes the pinned requirements, the worker protocol and Python major.minor.
``$MLOPS_CI_DEEPCHECKS_PYTHON`` names the base interpreter (default: the one running mlops-ci).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mlops_ci.checks.suites.worker import PROTOCOL
from mlops_ci.console import Progress
from mlops_ci.toolenv import (
    BUILD_TIMEOUT_S,
    CACHE_VAR,
    Builder,
    EnvBuildError,
    ToolEnv,
    ToolEnvSpec,
    ensure,
)

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
PYTHON_VAR = "MLOPS_CI_DEEPCHECKS_PYTHON"

DEEPCHECKS = ToolEnvSpec(
    name="deepchecks",
    requirements=REQUIREMENTS,
    python=((3, 11, 5), (3, 13, 0)),  # numpy 1.26 has wheels for these, not for 3.13+
    python_note="numpy<2",
    python_var=PYTHON_VAR,
    protocol=PROTOCOL,
)

DeepchecksEnv = ToolEnv  # the name this package exported before mlops_ci.toolenv

# CACHE_VAR and EnvBuildError are mlops_ci.toolenv's, named here for callers of ensure_env
# (action/Dockerfile prebuilds the environment with it, next to $MLOPS_CI_CACHE_DIR).
__all__ = ["CACHE_VAR", "DEEPCHECKS", "PYTHON_VAR", "REQUIREMENTS", "DeepchecksEnv", "EnvBuildError", "ensure_env"]


def ensure_env(
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    requirements: Path = REQUIREMENTS,
    python: str | None = None,
    builder: Builder | None = None,
    timeout_s: float = BUILD_TIMEOUT_S,
) -> ToolEnv:
    """The deepchecks environment (for ``requirements``, default the pinned set), created first
    if it does not exist; :class:`EnvBuildError` when it cannot be."""
    spec = DEEPCHECKS
    if Path(requirements) != REQUIREMENTS:
        spec = dataclasses.replace(DEEPCHECKS, requirements=Path(requirements))
    return ensure(spec, cache_dir=cache_dir, progress=progress, python=python, builder=builder,
                  timeout_s=timeout_s)
