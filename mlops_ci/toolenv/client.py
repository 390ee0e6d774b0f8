"""Speaking to a worker in a tool environment: one JSON request in, one JSON response out.

The worker is a script run by the environment's interpreter (it cannot import mlops_ci). The
request reaches it as a file named on its command line or on its stdin; the response comes
back in a file the request names or on its stdout. Whatever else it prints goes to a log
file. The response is untrusted: size-capped and parsed as strict JSON (no NaN); the caller
validates its shape. Every message this module produces is masked (mlops_ci.masking): a
worker's output may hold the secrets of the environment it inherited.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from mlops_ci.masking import mask
from mlops_ci.toolenv.build import isolated_environ
from mlops_ci.toolenv.errors import WorkerExited, WorkerFailed, WorkerTimeout

MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` non-empty lines of ``path`` (each cut at 500 characters), masked."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line[:500] for line in text.splitlines() if line.strip()]
    return mask("\n".join(kept[-lines:]))


def _strict_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _parse(data: bytes, where: str) -> Any:
    try:
        return json.loads(data, parse_constant=_strict_constant)
    except ValueError as err:
        raise WorkerFailed(mask(f"the worker's result {where} is not valid: {str(err)[:1000]}")) from err


def read_response(path: Path, *, max_bytes: int = MAX_RESPONSE_BYTES) -> Any:
    """The JSON a worker wrote to ``path``: :class:`WorkerFailed` when missing, over
    ``max_bytes`` or not strict JSON."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise WorkerFailed(mask(f"the worker exited 0 but wrote no result ({path})")) from err
    if size > max_bytes:
        raise WorkerFailed(mask(f"the worker's result {path} is {size} bytes, over the cap of {max_bytes}"))
    return _parse(path.read_bytes(), str(path))


def call(
    python: Path,
    script: Path,
    request: Mapping[str, Any],
    *,
    log: Path,
    timeout_s: float,
    request_path: Path | None = None,
    response_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> Any:
    """Run ``script`` with ``python`` on ``request`` and return its JSON response.

    With ``request_path`` the request is written there and the worker gets its path as its one
    argument (stdin is empty); without it, the request is its stdin. With ``response_path``
    the worker writes its response there (the request tells it where; a stale one is removed
    first), and its stdout joins its stderr in ``log``; without it, its stdout is the response.
    It runs in its own process group with this process's environment less PYTHONPATH,
    PYTHONHOME, VIRTUAL_ENV and the user site, plus ``env``.

    Raises :class:`WorkerTimeout` past ``timeout_s`` (the group is killed),
    :class:`WorkerExited` on an exit code other than 0 (with the end of ``log``),
    :class:`WorkerFailed` for a missing, oversized or invalid response; all masked.
    """
    payload = json.dumps(request, indent=1) + "\n"
    if request_path is not None:
        request_path.write_text(payload, encoding="utf-8")
    if response_path is not None:
        response_path.unlink(missing_ok=True)
    argv = [str(python), str(script)] + ([str(request_path)] if request_path is not None else [])
    with open(log, "w", encoding="utf-8") as err_out, tempfile.TemporaryFile() as stdin, \
            tempfile.TemporaryFile() as stdout:
        if request_path is None:
            stdin.write(payload.encode())
            stdin.seek(0)
        code = _run(argv, stdin=stdin if request_path is None else subprocess.DEVNULL,
                    stdout=err_out if response_path is not None else stdout, stderr=err_out,
                    env=isolated_environ(env), timeout_s=timeout_s)
        if code != 0:
            raise WorkerExited(mask(f"the worker exited with {code}; the end of {log}:\n{tail(log)}"),
                               code=code, log=log)
        if response_path is not None:
            return read_response(response_path, max_bytes=max_response_bytes)
        size = os.fstat(stdout.fileno()).st_size
        if size > max_response_bytes:
            raise WorkerFailed(f"the worker's result (stdout) is {size} bytes, over the cap of {max_response_bytes}")
        stdout.seek(0)
        data = stdout.read()
    if not data.strip():
        raise WorkerFailed("the worker exited 0 but wrote no result (stdout)")
    return _parse(data, "(stdout)")


def _run(argv: list[str], *, stdin: IO | int, stdout: IO, stderr: IO, env: dict[str, str],
         timeout_s: float) -> int:
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise WorkerTimeout(f"the worker ran past its timeout of {timeout_s:.0f}s and was stopped") from None
    except BaseException:
        _kill(proc)
        raise


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()
