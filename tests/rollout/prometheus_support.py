"""A real Prometheus scraping real MLServer processes on 127.0.0.1, for the rollout analysis tests.

One primary (v1) and three canaries (v2: healthy, erroring, slow) serve the tiny champion's files,
the canaries' with behaviour planted in their copy of the model's code. Each canary is a target in
its own ``namespace``, and the primary is scraped once per namespace with the same labels, so that
each namespace holds one canary-against-primary scene, as a cluster's kubernetes_sd relabelling
would label them (``namespace``, ``serving_kserve_io_inferenceservice``,
``mlops_ci_dev_model_version``). Debian's ``prometheus`` package (2.42) provides the binary.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import AUTHOR, FIXTURES, SHARED_CACHE, cli, commit, git, tiny_frame, write_tiny_data

from mlops_ci.rollout.verdict import Window
from mlops_ci.runtime import mlserver, v2

BINARY_VAR = "MLOPS_CI_PROMETHEUS"  # a prometheus binary elsewhere than on PATH
NAME = "tiny"  # the InferenceService
SCRAPE = "1s"
ERRORS = "_n = globals().setdefault('_n', [0])\n_n[0] += 1\nif _n[0] % 3 == 0:\n    raise RuntimeError('planted')"
SLOW = "import time\ntime.sleep(0.12)"


def prometheus_binary() -> str:
    """The binary: Debian's `prometheus` package, installed here when missing (the suite's rule: a
    real server from a real package, set up by the tests themselves). Two workers install once."""
    found = os.environ.get(BINARY_VAR) or shutil.which("prometheus")
    if found:
        return found
    import fcntl

    apt = ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(Path(tempfile.gettempdir()) / "mlops-ci-prometheus-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shutil.which("prometheus") is None:
            done = subprocess.run(apt, env=env, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:  # a fresh machine's package lists may be empty or stale
                subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=600, check=False)
                done = subprocess.run(apt, env=env, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                raise AssertionError(f"could not install Debian's prometheus ({' '.join(apt)}): "
                                     f"{done.stderr[-2000:]}; install it, or set {BINARY_VAR} to a 2.x binary")
    found = shutil.which("prometheus")
    assert found, "apt-get installed prometheus, but no prometheus binary is on PATH"
    return found


def isolate(mp: pytest.MonkeyPatch, base: Path) -> None:
    """tests/conftest.py's isolated_env for a module-scoped fixture (set up before it runs)."""
    home = base / "module-home"
    home.mkdir(exist_ok=True)
    for key, value in {"HOME": str(home), "XDG_CACHE_HOME": str(base / "xdg-cache"),
                       "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1",
                       "DVC_NO_ANALYTICS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                       "MLOPS_CI_CACHE_DIR": str(SHARED_CACHE), **AUTHOR}.items():
        mp.setenv(key, value)
    for key in list(os.environ):
        if key.startswith(("GITHUB_", "MLFLOW_TRACKING", "MLFLOW_RUN", "MLFLOW_EXPERIMENT", "RUNNER_")):
            mp.delenv(key, raising=False)
    mp.delenv("CI", raising=False)


def champion_files(base: Path, into: Path) -> Path:
    """A copy of the tiny champion's model files (v1, staging), trained once per session in the
    folder tests/conftest.py's champion_repo uses, so either fixture reuses the other's."""
    repo = base / "flow-champion" / "tiny"
    if not (repo / ".mlops-ci" / "trained").exists():
        shutil.rmtree(repo.parent, ignore_errors=True)
        shutil.copytree(FIXTURES / "tiny", repo)
        (repo / ".gitignore").write_text(".mlops-ci/\n")
        write_tiny_data(repo)
        git(repo, "init", "--quiet", "--initial-branch=main")
        commit(repo, "tiny model")
        for args in (("run", "--quiet"), ("promote", "--model", "tiny", "--env", "staging")):
            proc = cli(repo, *args)
            assert proc.returncode == 0, proc.stderr[-3000:]
        (repo / ".mlops-ci" / "trained").touch()
    from mlops_ci.config import load_config
    from mlops_ci.pipeline import default_backends
    from mlops_ci.workspace import Workspace

    with contextlib.chdir(repo):
        tracking = default_backends(Workspace.from_config(load_config(repo / ".mlops-ci.yaml"))).tracking
        info = tracking.version_by_alias("tiny", "staging")
        shutil.copytree(Path(tracking.local_copy(info.artifact_uri)), into)
    return into


def plant(model: Path, code: str) -> None:
    """``code`` at the start of the model's predict (as tests/runtime/test_serving_check.py plants)."""
    path = model / "tiny_model.py"
    marker = "    def predict(self, context, model_input, params=None):\n"
    text = path.read_text()
    assert marker in text, text
    path.write_text(text.replace(marker, marker + "".join(f"        {line}\n" for line in code.splitlines())))


def metrics_port(server: mlserver.MLServer) -> int:
    """The metrics port the runtime gave the server (it is not an attribute: read its environment)."""
    assert server.proc is not None
    environ = Path(f"/proc/{server.proc.pid}/environ").read_bytes().split(b"\0")
    return int(next(e for e in environ if e.startswith(b"MLSERVER_METRICS_PORT=")).split(b"=", 1)[1])


@dataclass
class Prometheus:
    """``prometheus`` on 127.0.0.1 with its own storage, scraping ``targets`` every second:
    each a (host:port, labels) pair."""

    binary: str
    workdir: Path
    targets: list[tuple[str, dict[str, str]]]
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        import requests

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = mlserver.free_port()
        groups = [{"targets": [address], "labels": labels} for address, labels in self.targets]
        config = {"global": {"scrape_interval": SCRAPE, "scrape_timeout": SCRAPE, "evaluation_interval": "1m"},
                  "scrape_configs": [{"job_name": "models", "static_configs": groups}]}
        (self.workdir / "prometheus.yml").write_text(json.dumps(config, indent=1))  # JSON is YAML
        argv = [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn"]
        # started before the load threads: no other thread runs while the child forks
        with open(self.workdir / "prometheus.log", "w") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, start_new_session=True,
                                         preexec_fn=mlserver._die_with_parent)  # noqa: PLW1509
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.workdir / "prometheus.log").read_text()[-3000:]
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/-/ready", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise AssertionError("prometheus did not get ready: " + (self.workdir / "prometheus.log").read_text()[-3000:])

    def scraped_since(self, moment: float, timeout_s: float = 20.0) -> None:
        """Wait until every target has been scraped (successfully) after ``moment`` (epoch seconds)."""
        import requests

        deadline = time.monotonic() + timeout_s
        while True:
            active = requests.get(self.url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            last = [datetime.fromisoformat(t["lastScrape"]).timestamp() if t["health"] == "up" else 0 for t in active]
            if len(active) == len(self.targets) and min(last) > moment:
                return
            assert time.monotonic() < deadline, f"targets not scraped since {moment}: {active}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)


def bodies(rows: int = 20) -> list[bytes]:
    frame = v2.sendable(tiny_frame(rows, seed=5)[["x1", "x2", "color"]])
    return [v2.request_json(frame.iloc[[i]]).encode() for i in range(len(frame))]


def load(urls: list[str], seconds: float, every_s: float = 0.05) -> dict[str, Counter]:
    """V2 inference requests to each URL from its own thread, one every ``every_s`` (or as fast as
    the server answers), for ``seconds``; the HTTP status codes each got."""
    import requests

    sent = {url: Counter() for url in urls}
    payloads = bodies()
    stop = time.monotonic() + seconds

    def drive(url: str) -> None:
        with requests.Session() as session:
            i = 0
            while (now := time.monotonic()) < stop:
                try:
                    code = session.post(url, data=payloads[i % len(payloads)], timeout=10,
                                        headers={"Content-Type": "application/json"}).status_code
                except requests.RequestException as err:
                    code = type(err).__name__
                sent[url][code] += 1
                i += 1
                time.sleep(max(0.0, every_s - (time.monotonic() - now)))

    threads = [threading.Thread(target=drive, args=(url,), daemon=True) for url in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return sent


@dataclass
class Scene:
    """The servers, Prometheus, the traffic sent, and the window that holds it."""

    prometheus: Prometheus
    servers: dict[str, mlserver.MLServer]
    sent: dict[str, Counter] = field(default_factory=dict)
    window: Window | None = None
    quiet: Window | None = None  # before any inference request


CANARIES = {"healthy": "", "errors": ERRORS, "slow": SLOW}


@contextlib.contextmanager
def scene(base: Path, model: Path, seconds: float = 12.0):
    """Start the primary and the canaries, then Prometheus, send ``seconds`` of traffic to each,
    and yield the :class:`Scene`; everything stops on the way out."""
    env = mlserver.environment(model)  # the tests' shared environment: built once, reused
    dirs = {"primary": model}
    for role, code in CANARIES.items():
        dirs[role] = base / f"model-{role}"
        shutil.copytree(model, dirs[role])
        if code:
            plant(dirs[role], code)
    servers = {role: mlserver.MLServer(env, path, NAME, base / f"serve-{role}") for role, path in dirs.items()}
    prom = None
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready()
        targets = []
        for namespace in CANARIES:
            common = {"namespace": namespace, "serving_kserve_io_inferenceservice": NAME}
            targets.append((f"127.0.0.1:{metrics_port(servers['primary'])}",
                            {**common, "mlops_ci_dev_model_version": "1"}))
            targets.append((f"127.0.0.1:{metrics_port(servers[namespace])}",
                            {**common, "mlops_ci_dev_model_version": "2"}))
        prom = Prometheus(prometheus_binary(), base / "prometheus", targets).start()
        before = datetime.now(UTC)
        prom.scraped_since(before.timestamp())
        quiet = Window(before - timedelta(seconds=1), datetime.now(UTC))
        started = datetime.now(UTC)
        sent = load([s.infer_url for s in servers.values()], seconds)
        prom.scraped_since(time.time())  # the last requests are in a scrape
        window = Window(started - timedelta(seconds=1), datetime.now(UTC))
        yield Scene(prom, servers, {role: sent[s.infer_url] for role, s in servers.items()}, window, quiet)
    finally:
        if prom is not None:
            prom.stop()
        stopping = [threading.Thread(target=s.stop) for s in servers.values()]  # each takes a second or two
        for t in stopping:
            t.start()
        for t in stopping:
            t.join()
