"""The deepchecks environment: a venv with ``requirements.txt``, created on first use and cached.

As pre-commit does for hooks: the environment lives under a cache folder, keyed by a hash of
what defines it (the pinned requirements, the worker protocol, Python major.minor), so a
change of any of them builds a new one and CI can cache the folder. It is built in a
temporary folder beside its final place and renamed there when complete, under a file lock,
so concurrent processes build it once and a half-built environment is never used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlops_ci.checks.suites.worker import PROTOCOL
from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import BackendError

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
MARKER = ".mlops-ci-env.json"
PYTHON_VAR = "MLOPS_CI_DEEPCHECKS_PYTHON"
CACHE_VAR = "MLOPS_CI_CACHE_DIR"
SUPPORTED = ((3, 11, 5), (3, 13, 0))  # numpy 1.26 has wheels for these, not for 3.13+
BUILD_TIMEOUT_S = 30 * 60


class EnvBuildError(BackendError):
    """The deepchecks environment could not be created."""


@dataclass(frozen=True)
class DeepchecksEnv:
    path: Path
    key: str

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


# (folder to create the venv in, requirements file, base interpreter, log file, timeout)
Builder = Callable[[Path, Path, str, Path, float], None]


def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir``, else $MLOPS_CI_CACHE_DIR, else $XDG_CACHE_HOME/mlops-ci, else ~/.cache/mlops-ci."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "mlops-ci"
    return Path.home() / ".cache" / "mlops-ci"


def env_key(requirements: str, python_version: tuple[int, ...], protocol: int = PROTOCOL) -> str:
    text = f"{requirements}\0protocol={protocol}\0python={python_version[0]}.{python_version[1]}"
    return hashlib.sha256(text.encode()).hexdigest()


def env_path(root: Path, key: str) -> Path:
    return root / "envs" / f"deepchecks-{key[:16]}"


def python_version(python: str) -> tuple[int, int, int]:
    if Path(python).resolve() == Path(sys.executable).resolve():
        return tuple(sys.version_info[:3])  # type: ignore[return-value]
    try:
        proc = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:3])"],
                              capture_output=True, text=True, timeout=60, check=True)
        major, minor, micro = (int(part) for part in proc.stdout.split())
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        raise EnvBuildError(f"cannot run the interpreter {python} for the deepchecks environment: "
                            f"{err}", hint=f"point {PYTHON_VAR} at a CPython 3.11 or 3.12") from err
    return major, minor, micro


def _check_supported(python: str, version: tuple[int, ...]) -> None:
    low, high = SUPPORTED
    if not low <= tuple(version) < high:
        shown = ".".join(map(str, version))
        raise EnvBuildError(
            f"the deepchecks environment needs CPython 3.11.5+ or 3.12 (numpy<2), "
            f"but {python} is Python {shown}",
            hint=f"install one and point {PYTHON_VAR} at it, e.g. {PYTHON_VAR}=/usr/bin/python3.11",
        )


def is_ready(path: Path, key: str) -> bool:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    # exists() follows the bin/python symlink: a removed base interpreter means rebuild
    return isinstance(marker, dict) and marker.get("key") == key and (path / "bin" / "python").exists()


def ensure_env(
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    requirements: Path = REQUIREMENTS,
    python: str | None = None,
    builder: Builder | None = None,
    timeout_s: float = BUILD_TIMEOUT_S,
) -> DeepchecksEnv:
    """Return the environment for ``requirements``, creating it first if it does not exist."""
    progress = progress or NullProgress()
    python = python or os.environ.get(PYTHON_VAR) or sys.executable
    version = python_version(python)
    text = requirements.read_text(encoding="utf-8")
    key = env_key(text, version)
    root = cache_root(cache_dir)
    path = env_path(root, key)
    if is_ready(path, key):
        return DeepchecksEnv(path, key)
    _check_supported(python, version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EnvBuildError(f"cannot create the cache folder {path.parent}: {err}",
                            hint=f"set {CACHE_VAR} to a writable folder") from err
    with _locked(path.with_name(path.name + ".lock"), progress, timeout_s):
        if is_ready(path, key):  # another process built it while we waited
            return DeepchecksEnv(path, key)
        with progress.step("creating the deepchecks environment (first use, ~1-2 min)"):
            _build(path, key, text, python, version, builder or pip_builder, progress, timeout_s)
    return DeepchecksEnv(path, key)


def _build(path: Path, key: str, text: str, python: str, version: tuple[int, ...],
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
        marker = {"key": key, "protocol": PROTOCOL, "python": ".".join(map(str, version)),
                  "base_python": python, "created": dt.datetime.now(dt.UTC).isoformat()}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def _locked(lock_path: Path, progress: Progress, timeout_s: float) -> Iterator[None]:
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            progress.log(f"waiting for another process creating the deepchecks environment ({lock_path})")
            deadline = time.monotonic() + timeout_s
            while True:
                time.sleep(0.5)
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as again:
                    if again.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise EnvBuildError(
                            f"waited {timeout_s:.0f}s for the lock {lock_path} held by another "
                            "process creating the deepchecks environment",
                            hint="if no other mlops-ci is running, delete the lock file and run again",
                        ) from again
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_logged(cmd: list[str], log: Path, timeout_s: float, what: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PIP_NO_INPUT="1")
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            raise EnvBuildError(f"{what} took more than {timeout_s:.0f}s; log: {log}",
                                hint="check the network access to the package index, then run again") from err
        except OSError as err:
            raise EnvBuildError(f"{what} could not start: {err}") from err
    if proc.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if "is ignored: it is neither a file nor a directory" not in line]
        tail = "\n".join(lines[-25:])
        raise EnvBuildError(
            f"{what} failed (exit {proc.returncode}); the last lines of {log}:\n{tail}",
            hint="check that the package index (PyPI, or PIP_INDEX_URL) is reachable and run again; "
            f"the pinned set is {REQUIREMENTS}",
        )


def pip_builder(target: Path, requirements: Path, python: str, log: Path, timeout_s: float) -> None:
    """``python -m venv`` + ``pip install -r``: the default builder."""
    log.write_text("")
    deadline = time.monotonic() + timeout_s
    _run_logged([python, "-m", "venv", str(target)], log, timeout_s, "python -m venv")
    _run_logged([str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                 "--no-input", "--progress-bar", "off", "-r", str(requirements)],
                log, max(deadline - time.monotonic(), 1.0), "pip install of the deepchecks environment")
