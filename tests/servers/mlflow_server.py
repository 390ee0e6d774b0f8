"""A real MLflow tracking server with basic auth, on 127.0.0.1, for the tests.

``mlflow server --app-name basic-auth`` with a SQLite backend store and proxied artifacts (the
server stores them under ``--artifacts-destination``; clients upload and download through its
REST API, with their credentials). The auth app keeps its users in a database of its own, named
in the ``basic_auth.ini`` written here (``MLFLOW_AUTH_CONFIG_PATH``), together with the admin
user and password that it creates on first start: the tests know them, nobody else does.

It is the real server, not a fixture that imitates one: a request without credentials gets the
401 a production server sends. Settings that only change speed, not behaviour:

- ``--workers 1`` and ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` (no huey job consumers: 7
  processes that mlops-ci never uses);
- ``auth_cache_ttl_seconds`` (an upstream option): a (user, password) pair is checked with
  PBKDF2 once per 5 minutes instead of once per request.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

__all__ = ["MlflowServer", "free_port"]

START_TIMEOUT_S = 180  # two busy cores: the first start imports all of mlflow and migrates two databases
STOP_TIMEOUT_S = 10
AUTH_INI = """\
[mlflow]
default_permission = READ
database_uri = sqlite:///{db}
admin_username = {user}
admin_password = {password}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
grant_default_workspace_access = false
auth_cache_ttl_seconds = 300
"""


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it; closed again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET ``url`` without credentials; None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return None


class MlflowServer:
    """``with MlflowServer(folder) as srv:`` a started server; ``srv.uri``, ``srv.username``,
    ``srv.password``; ``srv.start_s`` is how long it took to answer."""

    def __init__(self, root: Path, *, username: str = "admin", password: str | None = None,
                 python: str = sys.executable) -> None:
        self.root = Path(root)
        self.username = username
        self.password = password or "pw-" + secrets.token_hex(12)  # the auth app wants >= 12 characters
        self.python = python
        self.port = 0
        self.start_s: float | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def credentials(self) -> dict[str, str]:
        """The environment MLflow's client (and mlops-ci) read the server and credentials from."""
        return {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_TRACKING_USERNAME": self.username,
                "MLFLOW_TRACKING_PASSWORD": self.password}

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- life cycle -----------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_S) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        ini = self.root / "basic_auth.ini"
        ini.write_text(AUTH_INI.format(db=(self.root / "basic_auth.db").as_posix(), user=self.username,
                                       password=self.password), encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLFLOW_", "GITHUB_", "RUNNER_"))}  # nothing of a caller's MLflow setup
        env.update({"HOME": str(self.root / "home"), "MLFLOW_AUTH_CONFIG_PATH": str(ini),
                    "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
                    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "PYTHONUNBUFFERED": "1"})
        started = time.monotonic()
        for _attempt in range(3):  # the free port may be taken between free_port() and the bind
            self.port = free_port()
            argv = [self.python, "-m", "mlflow", "server", "--app-name", "basic-auth",
                    "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                    "--backend-store-uri", f"sqlite:///{(self.root / 'mlflow.db').as_posix()}",
                    "--artifacts-destination", (self.root / "artifacts").as_posix()]
            with open(self.log_path, "ab") as log:
                # its own process group: stop() ends the server and the uvicorn worker it starts
                self._proc = subprocess.Popen(argv, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
            if self._wait(started + timeout):
                self.start_s = time.monotonic() - started
                return self
            if "address already in use" not in self.log_tail().lower():
                break
        self.stop()
        raise RuntimeError(f"the MLflow server did not start within {timeout:.0f} s:\n{self.log_tail()}")

    def _wait(self, deadline: float) -> bool:
        """True once the REST API answers, with the auth app in front (401 without credentials)."""
        api = f"{self.uri}/api/2.0/mlflow/experiments/search?max_results=1"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            code = _status(api)
            if code == 401:
                return True
            if code is not None:
                raise RuntimeError(f"the MLflow server at {self.uri} answered {code} without credentials "
                                   f"(expected 401: is the basic-auth app running?)\n{self.log_tail()}")
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """Terminate the server's process group, then kill what is left."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # the uvicorn worker may outlive its parent for a moment
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
