"""Building a tool environment: ``python -m venv`` + ``pip install -r``, logged to a file.

The builder is injectable (:data:`Builder`): the runner (:mod:`mlops_ci.toolenv.env`) owns the
cache folder, the lock and the atomic rename; a builder only fills the folder it is given.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mlops_ci.toolenv.errors import EnvBuildError

# (folder to create the venv in, requirements file, base interpreter, log file, timeout)
Builder = Callable[[Path, Path, str, Path, float], None]

# a tool's interpreter must not see this process's packages or virtualenv
_LEAKY = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def isolated_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without what would leak its packages into a tool's
    interpreter (PYTHONPATH, PYTHONHOME, VIRTUAL_ENV, the user site), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra or {})
    return env


def _ignored(line: str) -> bool:
    return "is ignored: it is neither a file nor a directory" in line


def run_logged(cmd: list[str], log: Path, timeout_s: float, what: str, *, pinned: Path, check: bool = True) -> None:
    """Run ``cmd`` with its output appended to ``log``; an EnvBuildError with the log's tail
    when it fails (``pinned``: the requirements file the hint names; ``check=False``: a non-zero
    exit is only logged)."""
    env = isolated_environ({"PIP_NO_INPUT": "1"})
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired as err:
            raise EnvBuildError(f"{what} took more than {timeout_s:.0f}s; log: {log}",
                                hint="check the network access to the package index, then run again") from err
        except OSError as err:
            raise EnvBuildError(f"{what} could not start: {err}") from err
    if proc.returncode != 0 and check:
        lines = [line for line in log.read_text(errors="replace").splitlines() if not _ignored(line)]
        tail = "\n".join(lines[-25:])
        raise EnvBuildError(
            f"{what} failed (exit {proc.returncode}); the last lines of {log}:\n{tail}",
            hint="check that the package index (PyPI, or PIP_INDEX_URL) is reachable and run again; "
            f"the pinned set is {pinned}",
        )


def pip_builder(target: Path, requirements: Path, python: str, log: Path, timeout_s: float, *,
                name: str, pinned: Path) -> None:
    """``python -m venv`` + ``pip install -r``: the default builder, for the environment ``name``
    whose pinned set is ``pinned`` (``requirements`` is the copy inside ``target``)."""
    log.write_text("")
    deadline = time.monotonic() + timeout_s
    run_logged([python, "-m", "venv", str(target)], log, timeout_s, "python -m venv", pinned=pinned)
    python_ = str(target / "bin" / "python")
    # pip compiles every installed file on one core; compileall after it uses every core (a third
    # of a build's time saved on 2 cores): the tool never starts by compiling, so a first start
    # is timed as a later one is
    run_logged([python_, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile",
                "--no-input", "--progress-bar", "off", "-r", str(requirements)],
               log, max(deadline - time.monotonic(), 1.0), f"pip install of the {name} environment",
               pinned=pinned)
    run_logged([python_, "-m", "compileall", "-q", "-j0", str(target / "lib")], log,
               max(deadline - time.monotonic(), 1.0), f"compiling the {name} environment", pinned=pinned,
               check=False)  # a package's test data may hold files that are not Python 3
