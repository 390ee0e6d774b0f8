"""What every part of the Feast worker shares: the protocol's constants, its two errors, messages.

Part of the worker that ``mlops_ci_feast_worker.py`` runs inside the Feast environment (see its
docstring); the core imports this module too, for ``PROTOCOL`` and ``EXIT_REQUEST``, so it uses
only the standard library at import time (Feast inside the functions). Every file of the worker
is named ``mlops_ci_feast_*``: the worker's folder and the user's repository are both on
``sys.path``, and neither may shadow the other's modules.
"""

from __future__ import annotations

import contextlib
import re
import traceback
from datetime import UTC, datetime
from pathlib import Path

PROTOCOL = 1
EXIT_REQUEST = 3
MAX_TEXT = 2000
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class RequestError(Exception):
    """The request cannot be used as given: the caller's mistake, not the repository's."""


class UserError(Exception):
    """Something in the user's repository, registry or data that they can fix."""

    def __init__(self, kind: str, message: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.file, self.line = kind, message, file, line

    def as_json(self) -> dict:
        return {"kind": self.kind, "message": self.message[:MAX_TEXT], "file": self.file, "line": self.line}


# --- messages -----------------------------------------------------------------------------------

def paragraph(text: object) -> str:
    text = " ".join(_ANSI.sub("", str(text)).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def inside(path: str | None, repo: Path | None) -> str | None:
    """``path`` relative to ``repo`` (POSIX), when it is inside it (and not an installed package)."""
    if not path or repo is None or "site-packages" in path:
        return None
    try:
        return Path(path).resolve().relative_to(repo).as_posix()
    except (ValueError, OSError):
        return None


def _where(err: BaseException, repo: Path | None) -> tuple[str | None, int | None]:
    """The repository file and line an exception points at (a syntax error's, else the innermost frame's)."""
    if isinstance(err, SyntaxError) and inside(err.filename, repo):
        return inside(err.filename, repo), err.lineno
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        rel = inside(frame.filename, repo)
        if rel:
            return rel, frame.lineno
    return None, None


def user_error(kind: str, what: str, err: BaseException, repo: Path | None) -> UserError:
    from feast.errors import FeastObjectNotFoundException

    if isinstance(err, FeastObjectNotFoundException):
        kind = "not_found"
    file, line = _where(err, repo)
    if isinstance(err, SyntaxError):
        text = err.msg + (f" ({err.text.strip()!r})" if err.text and err.text.strip() else "")
    else:
        text = str(err) or repr(err)
    place = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
    return UserError(kind, f"{what}: {place}{type(err).__name__}: {paragraph(text)}", file=file, line=line)


@contextlib.contextmanager
def phase(kind: str, what: str, repo: Path | None):
    """Feast's exceptions inside become a :class:`UserError` of ``kind``; the traceback goes to the log."""
    try:
        yield
    except (UserError, RequestError):
        raise
    except Exception as err:
        traceback.print_exc()
        raise user_error(kind, what, err, repo) from err


def plain(text: str) -> str:
    """Feast's coloured console text without the colours."""
    return "\n".join(line.rstrip() for line in _ANSI.sub("", text).splitlines()).strip() + "\n"


def timestamp(value: str, what: str) -> datetime:
    """An ISO 8601 time from the request, in UTC (naive: UTC); :class:`RequestError` when it is not one."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as err:
        raise RequestError(f"{what}: {value!r} is not an ISO 8601 time") from err
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
