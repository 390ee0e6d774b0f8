"""How the local Argo server runs a pod's container on this machine: the git input artifact as
a `git clone` of a local repository, container paths remapped into a per-pod folder,
`torchrun`/`python` mapped to this interpreter, Kubernetes `$(VAR)` expansion, the downward
API values JobSet and Argo pods see, and the process itself (its own process group, killed as a
group, output captured line by line as the pod log)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

# container paths that are always remapped into the pod's folder (besides artifact paths and
# volume mounts): the result file mlops-ci's templates write, and shared memory
ALWAYS_MAPPED = ("/tmp/mlops-ci", "/dev/shm")


class PodError(Exception):
    """The pod could not start (Argo/Kubernetes would mark it Error)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PathMap:
    """Container path prefixes -> local folders; longest prefix wins."""

    def __init__(self, mapping: dict[str, Path]) -> None:
        self.mapping = {k.rstrip("/") or "/": Path(v) for k, v in mapping.items()}
        keys = sorted(self.mapping, key=len, reverse=True)
        self._re = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(k) for k in keys) + r")(?=/|$|[^\w.-])")

    def local(self, path: str) -> Path:
        return Path(self.sub(path))

    def sub(self, text: str) -> str:
        return self._re.sub(lambda m: str(self.mapping[m.group(1)]), text)


def expand_vars(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion in command, args and env values; `$$` escapes."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def map_command(argv: list[str]) -> list[str]:
    if not argv:
        raise PodError("the container has no command: the image's entrypoint cannot run here; "
                       "give `command` in the template")
    head = os.path.basename(argv[0])
    if head == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    if re.fullmatch(r"python(3(\.\d+)?)?", head):
        return [sys.executable, *argv[1:]]
    beside = Path(sys.executable).parent / head  # a console script of this environment (mlflow, dvc)
    if "/" not in argv[0] and beside.is_file():
        return [str(beside), *argv[1:]]
    return argv


def field_ref(path: str, values: dict[str, str]) -> str:
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return values.get(f"{m.group(1)}:{m.group(2)}", "")
    return values.get(path, "")


def container_env(container: dict[str, Any], base: dict[str, str], downward: dict[str, str]) -> dict[str, str]:
    """The environment a container sees: ``base``, then envFrom, then env (in order, with
    `$(VAR)` expansion against what came before). Secrets and config maps do not exist here:
    optional references are skipped, required ones fail the pod as Kubernetes does."""
    env = dict(base)
    for source in container.get("envFrom") or []:
        ref = source.get("secretRef") or source.get("configMapRef") or {}
        if not ref.get("optional"):
            kind = "secret" if "secretRef" in source else "configmap"
            raise PodError(f'CreateContainerConfigError: {kind} "{ref.get("name")}" not found')
    for item in container.get("env") or []:
        name, source = item["name"], item.get("valueFrom")
        if source is None:
            env[name] = expand_vars(str(item.get("value", "")), env)
        elif "fieldRef" in source:
            env[name] = field_ref(source["fieldRef"]["fieldPath"], downward)
        elif "resourceFieldRef" in source:
            env[name] = "1"
        else:
            ref = source.get("secretKeyRef") or source.get("configMapKeyRef") or {}
            if not ref.get("optional"):
                kind = "secret" if "secretKeyRef" in source else "configmap"
                raise PodError(f'CreateContainerConfigError: {kind} "{ref.get("name")}" not found')
    return env


class Process:
    """One container as a local process; its output lines go to ``sink``."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str], sink) -> None:
        try:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        except OSError as err:
            raise PodError(f"failed to start container: {err}") from err
        self._reader = threading.Thread(target=self._read, args=(sink,), daemon=True)
        self._reader.start()

    def _read(self, sink) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            sink(raw.decode("utf-8", "replace").rstrip("\n"))
        self.proc.stdout.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        code = self.proc.poll()
        if code is not None:
            self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """SIGTERM to the process group, SIGKILL after 3 s, as the kubelet does (shorter)."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        self._reader.join(timeout=5)


def git_clone(repo_path: Path, revision: str | None, dest: Path) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    steps = [["git", "clone", "--quiet", "--no-hardlinks", str(repo_path), str(dest)]]
    if revision:
        steps.append(["git", "-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "--quiet", revision])
    for argv in steps:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode != 0:
            raise PodError(f"failed to clone the git artifact at revision {revision!r}: "
                           f"{proc.stderr.strip()[-300:]}")


def base_env(pod_dir: Path, hostname: str) -> dict[str, str]:
    """What a container starts with before the template's env."""
    home = pod_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "HOSTNAME": hostname,
           "TMPDIR": str(pod_dir / "tmp"), "LANG": "C.UTF-8"}
    for key in ("VIRTUAL_ENV", "GIT_CONFIG_NOSYSTEM"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


TICK = 0.05  # how often the controllers look at what they run


def fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def volume_mapping(container: dict, volumes: list[dict], pod_dir: Path) -> dict[str, Path]:
    """mountPath -> local folder: a hostPath volume is that path on this machine, any other
    volume (emptyDir, ...) a fresh folder of the pod."""
    by_name = {v["name"]: v for v in volumes}
    out = {}
    for vm in container.get("volumeMounts") or []:
        host = (by_name.get(vm["name"]) or {}).get("hostPath")
        out[vm["mountPath"]] = Path(host["path"]) if host else pod_dir / "volumes" / vm["name"]
    return out
