"""MLServer with its MLflow runtime, run on this machine as KServe runs it for ``modelFormat: mlflow``.

KServe's ``kserve-mlserver`` ClusterServingRuntime starts ``mlserver start`` with the model
described by environment variables (``MLSERVER_MODEL_IMPLEMENTATION`` = ``mlserver_mlflow.MLflowRuntime``,
``MLSERVER_MODEL_NAME`` = the InferenceService's name, ``MLSERVER_MODEL_URI`` = the downloaded
artifact) and no model-settings file; this module does the same, on 127.0.0.1 and free ports.

The environment is a tool environment (mlops_ci.toolenv): ``requirements.txt`` beside this module
(MLServer's pins) plus the model's own ``requirements.txt`` (MLflow writes it beside ``MLmodel``),
built once per distinct set under the cache and shared by concurrent jobs. A model's files never
choose where pip downloads from: its requirements must be plain ``name[extras] specifier`` lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import BackendError, InputError, UsageError
from mlops_ci.toolenv import ToolEnv, ToolEnvSpec, cache_root, ensure, isolated_environ, tail

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
IMPLEMENTATION = "mlserver_mlflow.MLflowRuntime"
PYTHON_VAR = "MLOPS_CI_MLSERVER_PYTHON"
READY_TIMEOUT_S = 180.0
HOST = "127.0.0.1"
_ERROR = re.compile(r"Error|Exception|Traceback")
SERVER_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "PYTHONNOUSERSITE", "SSL_CERT_FILE")


class ServeError(BackendError):
    """The runtime did not serve the model: it could not start, load it, or answer."""


def model_requirements(model_dir: Path) -> list[str]:
    """The model's requirements (``requirements.txt`` beside ``MLmodel``), each checked to be a
    plain requirement: an option (``-r``, ``--index-url``, ``-e``), a URL or a path is refused."""
    from packaging.requirements import InvalidRequirement, Requirement

    path = model_dir / "requirements.txt"
    if not path.is_file():
        return []
    out = []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            req = None
        if req is None or req.url or line.startswith("-"):
            raise InputError(f"{path}:{number}: {line[:120]!r} is not a plain requirement (name and version); "
                             "options, URLs and paths are not installed from a model's files",
                             hint="log the model with pip_requirements naming packages only")
        out.append(str(req))
    return out


def spec_for(model_dir: Path, cache_dir: Path | None = None) -> ToolEnvSpec:
    """The environment that serves the model in ``model_dir``: MLServer's pins and the model's
    requirements, written to a requirements file under the cache named by its content."""
    model = model_requirements(model_dir)
    text = REQUIREMENTS.read_text(encoding="utf-8")
    if model:  # first: pip collects in order, so a requirement that cannot be found fails in seconds
        text = "# the model's requirements (its requirements.txt)\n" + "\n".join(model) + "\n" + text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = cache_root(cache_dir) / "runtime" / f"mlserver-{digest}.txt"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        from mlops_ci.records import write_text_atomic

        write_text_atomic(path, text)
    return ToolEnvSpec(name="mlserver", requirements=path, python=((3, 10, 0), (3, 13, 0)), python_var=PYTHON_VAR,
                       protocol=1, python_note="MLServer 1.7.1 supports CPython 3.10 to 3.12",
                       build_time="about a minute, more with large model requirements")


def environment(model_dir: Path, *, progress: Progress | None = None, cache_dir: Path | None = None) -> ToolEnv:
    return ensure(spec_for(model_dir, cache_dir), cache_dir=cache_dir, progress=progress or NullProgress())


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def require_free(port: int, host: str = HOST) -> None:
    """Refuse a port something else listens on (before anything is built or started)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            raise UsageError(f"port {port} on {host} is already taken",
                             hint="pick another with --port, or leave --port out to take a free one") from None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when mlops-ci dies (a CI job cancelled, a SIGKILL), so
    that no server outlives the run that started it (Linux; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class MLServer:
    """One ``mlserver start`` serving one model; a context manager that stops it (and every
    process it started) on the way out."""

    env: ToolEnv
    model_dir: Path
    name: str
    workdir: Path
    port: int | None = None  # the REST port; None: a free one
    host: str = HOST
    proc: subprocess.Popen | None = field(default=None, init=False)
    started: float = field(default=0.0, init=False)
    stopped: bool = field(default=False, init=False)

    @property
    def log(self) -> Path:
        return self.workdir / "mlserver.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def infer_url(self) -> str:
        return f"{self.url}/v2/models/{self.name}/infer"

    def start(self) -> MLServer:
        if self.port is not None:
            require_free(self.port, self.host)
        self.port = self.port or free_port(self.host)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "models").mkdir(exist_ok=True)  # no model-settings.json: the model is in the env
        # the server gets no credential of this job (the model's code runs in it, as in the cluster,
        # where the pod has only what its manifest gives it): a few plain variables and its settings
        env = {k: v for k, v in isolated_environ().items() if k in SERVER_ENV or k.startswith("LC_")}
        env.update({
            "MLSERVER_HOST": self.host, "MLSERVER_HTTP_PORT": str(self.port),
            "MLSERVER_GRPC_PORT": str(free_port(self.host)), "MLSERVER_METRICS_PORT": str(free_port(self.host)),
            "MLSERVER_MODEL_IMPLEMENTATION": IMPLEMENTATION, "MLSERVER_MODEL_NAME": self.name,
            "MLSERVER_MODEL_URI": str(self.model_dir), "PYTHONUNBUFFERED": "1",
            # its Prometheus files go in our folder, never the caller's working directory
            "MLSERVER_METRICS_DIR": str(self.workdir / "metrics"),
        })
        with open(self.log, "w", encoding="utf-8") as out:
            self.started = time.monotonic()
            # the `mlserver` script's #! names the folder the environment was built in, before its
            # rename into place: run its entry point with the environment's python instead
            argv = [str(self.env.python), "-c", "import sys; from mlserver.cli import main; sys.exit(main())",
                    "start", str(self.workdir / "models")]
            self.proc = subprocess.Popen(argv,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         cwd=self.workdir, preexec_fn=_die_with_parent,
                                         start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The log's last lines; when they hold no error (a shutdown's lines come after it), the
        last error line and what led to it come first."""
        recent = tail(self.log, 400).splitlines()
        last = recent[-lines:]
        if any(_ERROR.search(line) for line in last):
            return "\n".join(last)
        where = max((i for i, line in enumerate(recent) if _ERROR.search(line)), default=None)
        if where is None:
            return "\n".join(last)
        return "\n".join([*recent[max(0, where - 8):where + 1], "...", *last[-8:]])

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds from the start of the process to the model being ready (``/v2/health/ready`` and
        ``/v2/models/<name>/ready`` both 200)."""
        import requests

        deadline = self.started + timeout_s
        paths = ("/v2/health/ready", f"/v2/models/{self.name}/ready")
        while True:
            if not self.alive():
                code = self.proc.returncode if self.proc is not None else None
                raise ServeError(f"MLServer exited (code {code}) before {self.name} was ready; the last lines of "
                                 f"{self.log}:\n{self.log_tail()}",
                                 hint="a model the runtime cannot load (a dependency missing from its "
                                      "requirements?) fails here as it would in KServe")
            try:
                if all(requests.get(self.url + p, timeout=2).status_code == 200 for p in paths):
                    return time.monotonic() - self.started
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop(grace_s=2.0)  # a server that never got ready has nothing to finish
                raise ServeError(f"MLServer did not get {self.name} ready within {timeout_s:.0f}s; the last lines of "
                                 f"{self.log}:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the server and every process it started (its process group), also when the server
        itself has already exited and left workers behind."""
        if self.proc is None or self.stopped:
            return
        self.stopped = True  # once: afterwards the group's id may name another group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):  # what did not stop in time
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=grace_s)

    def __enter__(self) -> MLServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = [
    "IMPLEMENTATION",
    "REQUIREMENTS",
    "MLServer",
    "ServeError",
    "environment",
    "free_port",
    "model_requirements",
    "require_free",
    "spec_for",
]
