"""The Feast environment: ``requirements.txt`` in a tool environment (:mod:`mlops_ci.toolenv`).

It is created on first use under ``$MLOPS_CI_CACHE_DIR/envs/feast-<key>`` and cached; the key
hashes the pinned requirements, the worker protocol and Python major.minor.
``$MLOPS_CI_FEAST_PYTHON`` names the base interpreter (default: the one running mlops-ci).
"""

from __future__ import annotations

from pathlib import Path

from mlops_ci.console import Progress
from mlops_ci.features.feast_worker.mlops_ci_feast_common import PROTOCOL
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
PYTHON_VAR = "MLOPS_CI_FEAST_PYTHON"

FEAST = ToolEnvSpec(
    name="feast",
    requirements=REQUIREMENTS,
    python=((3, 11, 0), (3, 13, 0)),  # numpy 2.4 and pyarrow 26 need 3.11+; tested on 3.11
    python_note="the pinned numpy 2.4 and pyarrow 26 need 3.11 or later",
    python_var=PYTHON_VAR,
    protocol=PROTOCOL,
    build_time="about a minute",
)

# CACHE_VAR and EnvBuildError are mlops_ci.toolenv's, named here for callers of ensure_env.
__all__ = ["CACHE_VAR", "FEAST", "PYTHON_VAR", "REQUIREMENTS", "EnvBuildError", "ensure_env"]


def ensure_env(*, cache_dir: Path | None = None, progress: Progress | None = None, python: str | None = None,
               builder: Builder | None = None, timeout_s: float = BUILD_TIMEOUT_S) -> ToolEnv:
    """The Feast environment, created first if it does not exist (mlops_ci.toolenv.ensure with
    :data:`FEAST`); :class:`EnvBuildError` when it cannot be."""
    return ensure(FEAST, cache_dir=cache_dir, progress=progress, python=python, builder=builder, timeout_s=timeout_s)
