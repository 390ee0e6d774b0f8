"""Tool environments: each tool whose pins fight the core's (deepchecks; MLServer and Feast next)
runs in its own pinned venv, built once by one runner and spoken to through a worker protocol.
The core never imports the tool.

    from mlops_ci.toolenv import ToolEnvSpec, call, ensure
    SPEC = ToolEnvSpec(name="mytool", requirements=Path(__file__).with_name("requirements.txt"),
                       python=((3, 11, 0), (3, 13, 0)), python_var="MLOPS_CI_MYTOOL_PYTHON", protocol=1)
    env = ensure(SPEC, progress=progress)  # envs/mytool-<key> under cache_root(), built once
    answer = call(env.python, WORKER, {"protocol": 1, ...}, log=out / "worker.log", timeout_s=600)

``env`` (build, cache, lock), ``build`` (venv + pip, the injectable builder), ``client`` (the
worker call), ``errors``.
"""

from mlops_ci.toolenv.build import Builder, isolated_environ, pip_builder
from mlops_ci.toolenv.client import MAX_RESPONSE_BYTES, call, read_response, tail
from mlops_ci.toolenv.env import (
    BUILD_TIMEOUT_S,
    CACHE_VAR,
    MARKER,
    ToolEnv,
    ToolEnvSpec,
    cache_root,
    ensure,
    env_key,
    env_path,
    is_ready,
)
from mlops_ci.toolenv.errors import EnvBuildError, WorkerExited, WorkerFailed, WorkerTimeout

__all__ = [
    "BUILD_TIMEOUT_S",
    "CACHE_VAR",
    "MARKER",
    "MAX_RESPONSE_BYTES",
    "Builder",
    "EnvBuildError",
    "ToolEnv",
    "ToolEnvSpec",
    "WorkerExited",
    "WorkerFailed",
    "WorkerTimeout",
    "cache_root",
    "call",
    "ensure",
    "env_key",
    "env_path",
    "is_ready",
    "isolated_environ",
    "pip_builder",
    "read_response",
    "tail",
]
