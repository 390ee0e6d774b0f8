"""Tool environments: a venv per tool (deepchecks, MLServer, Feast...), created on first use and cached.

As pre-commit does for hooks: each environment lives under a cache folder, keyed by a hash of
what defines it (the pinned requirements, the worker protocol, Python major.minor), so a
change of any of them builds a new one and CI can cache the folder. It is built in a
temporary folder beside its final place and renamed there when complete, under a file lock,
so concurrent processes build it once and a half-built environment is never used. The build
log is kept beside it (``envs/<name>-<key>.log``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlops_ci.console import NullProgress, Progress
from mlops_ci.toolenv.build import Builder, pip_builder
from mlops_ci.toolenv.errors import EnvBuildError

MARKER = ".mlops-ci-env.json"
CACHE_VAR = "MLOPS_CI_CACHE_DIR"
BUILD_TIMEOUT_S = 30 * 60

Version = tuple[int, int, int]


@dataclass(frozen=True)
class ToolEnvSpec:
    """What defines one tool's environment.

    ``python`` is the supported range of the base interpreter, ``[low, high)`` within one
    major version (``high`` a ``x.y.0``); ``python_note`` says why, in the refusal.
    ``python_var`` names the environment variable that overrides the base interpreter (default:
    the one running mlops-ci). ``protocol`` is the worker protocol's version: part of the cache
    key, so a new protocol builds a new environment.
    """

    name: str
    requirements: Path
    python: tuple[Version, Version]
    python_var: str
    protocol: int
    python_note: str = ""
    build_time: str = "~1-2 min"

    def __post_init__(self) -> None:
        low, high = self.python
        if low[0] != high[0] or high[2] != 0 or not low < high:
            raise ValueError(f"{self.name}: python range {self.python} is not [x.y.z, x.w.0) with y < w")

    def versions(self, *, micro: bool = True) -> str:
        """The supported versions in words: ``3.11.5+ or 3.12`` (``3.11 or 3.12`` without micro)."""
        low, high = self.python
        names = [f"{low[0]}.{minor}" for minor in range(low[1], high[1])]
        if micro and low[2]:
            names[0] += f".{low[2]}+"
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


@dataclass(frozen=True)
class ToolEnv:
    path: Path
    key: str

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir``, else $MLOPS_CI_CACHE_DIR, else $XDG_CACHE_HOME/mlops-ci, else ~/.cache/mlops-ci."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "mlops-ci"
    return Path.home() / ".cache" / "mlops-ci"


def env_key(requirements: str, python_version: tuple[int, ...], *, protocol: int) -> str:
    """The cache key: the requirements' text, the protocol, Python major.minor (not the name:
    it is in the folder's name)."""
    text = f"{requirements}\0protocol={protocol}\0python={python_version[0]}.{python_version[1]}"
    return hashlib.sha256(text.encode()).hexdigest()


def env_path(root: Path, name: str, key: str) -> Path:
    return root / "envs" / f"{name}-{key[:16]}"


def python_version(python: str, spec: ToolEnvSpec) -> tuple[int, int, int]:
    if Path(python).resolve() == Path(sys.executable).resolve():
        return tuple(sys.version_info[:3])  # type: ignore[return-value]
    try:
        proc = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:3])"],
                              capture_output=True, text=True, timeout=60, check=True)
        major, minor, micro = (int(part) for part in proc.stdout.split())
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        raise EnvBuildError(f"cannot run the interpreter {python} for the {spec.name} environment: {err}",
                            hint=f"point {spec.python_var} at a CPython {spec.versions(micro=False)}") from err
    return major, minor, micro


def check_supported(spec: ToolEnvSpec, python: str, version: tuple[int, ...]) -> None:
    low, high = spec.python
    if not low <= tuple(version) < high:
        shown = ".".join(map(str, version))
        note = f" ({spec.python_note})" if spec.python_note else ""
        example = f"{spec.python_var}=/usr/bin/python{low[0]}.{low[1]}"
        raise EnvBuildError(
            f"the {spec.name} environment needs CPython {spec.versions()}{note}, but {python} is Python {shown}",
            hint=f"install one and point {spec.python_var} at it, e.g. {example}",
        )


def is_ready(path: Path, key: str) -> bool:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    # exists() follows the bin/python symlink: a removed base interpreter means rebuild
    return isinstance(marker, dict) and marker.get("key") == key and (path / "bin" / "python").exists()


def ensure(
    spec: ToolEnvSpec,
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    python: str | None = None,
    builder: Builder | None = None,
    timeout_s: float = BUILD_TIMEOUT_S,
) -> ToolEnv:
    """Return ``spec``'s environment, creating it first if it does not exist.

    The base interpreter is ``python``, else ``$<spec.python_var>``, else the one running
    mlops-ci. ``builder`` fills the new environment's folder (default: venv + pip); raises
    :class:`EnvBuildError` when the environment cannot be created.
    """
    progress = progress or NullProgress()
    python = python or os.environ.get(spec.python_var) or sys.executable
    version = python_version(python, spec)
    text = spec.requirements.read_text(encoding="utf-8")
    key = env_key(text, version, protocol=spec.protocol)
    path = env_path(cache_root(cache_dir), spec.name, key)
    if is_ready(path, key):
        return ToolEnv(path, key)
    check_supported(spec, python, version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EnvBuildError(f"cannot create the cache folder {path.parent}: {err}",
                            hint=f"set {CACHE_VAR} to a writable folder") from err
    with _locked(path.with_name(path.name + ".lock"), spec, progress, timeout_s):
        if is_ready(path, key):  # another process built it while we waited
            return ToolEnv(path, key)
        with progress.step(f"creating the {spec.name} environment (first use, {spec.build_time})"):
            builder = builder or functools.partial(pip_builder, name=spec.name, pinned=spec.requirements)
            _build(path, key, text, python, version, spec, builder, progress, timeout_s)
    return ToolEnv(path, key)


def _build(path: Path, key: str, text: str, python: str, version: tuple[int, ...], spec: ToolEnvSpec,
           builder: Builder, progress: Progress, timeout_s: float) -> None:
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed build
        shutil.rmtree(stale, ignore_errors=True)
    if path.exists():  # incomplete, for another key, or broken: never used as it is
        shutil.rmtree(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a shared cache folder should not be
    log = path.with_name(path.name + ".log")
    progress.log(f"into {path} (log: {log})")
    try:
        requirements = tmp / "requirements.txt"
        requirements.write_text(text, encoding="utf-8")
        builder(tmp, requirements, python, log, timeout_s)
        marker = {"key": key, "protocol": spec.protocol, "python": ".".join(map(str, version)),
                  "base_python": python, "created": dt.datetime.now(dt.UTC).isoformat()}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _try_lock(fh) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


@contextlib.contextmanager
def _locked(lock_path: Path, spec: ToolEnvSpec, progress: Progress, timeout_s: float) -> Iterator[None]:
    with open(lock_path, "a+") as fh:
        if not _try_lock(fh):
            progress.log(f"waiting for another process creating the {spec.name} environment ({lock_path})")
            deadline = time.monotonic() + timeout_s
            while True:
                time.sleep(0.5)
                if _try_lock(fh):
                    break
                if time.monotonic() > deadline:
                    raise EnvBuildError(
                        f"waited {timeout_s:.0f}s for the lock {lock_path} held by another "
                        f"process creating the {spec.name} environment",
                        hint="if no other mlops-ci is running, delete the lock file and run again",
                    )
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
