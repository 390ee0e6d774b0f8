"""The session's MLflow tracking server with basic auth (tests/servers/mlflow_server.py).

A test module loads it with ``pytest_plugins = ["conftest_mlflow"]``: as a plugin its fixture is
registered once, so every module that asks for ``mlflow_server`` shares one server per session.
Tests give each object they create a name of its own (the server outlives them).
"""

from __future__ import annotations

import pytest
from servers.mlflow_server import MlflowServer

_STARTED: list[float] = []  # seconds the session's server took to answer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> MlflowServer:
    """A started server: ``.uri``, ``.username``, ``.password``, ``.credentials`` (its env)."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        _STARTED.append(server.start_s)
        yield server


def pytest_terminal_summary(terminalreporter) -> None:
    for seconds in _STARTED:
        terminalreporter.write_line(f"MLflow basic-auth server: answered {seconds:.1f} s after its start")
