"""Terminal output and progress for long steps, all of it masked.

Stages never print; they receive a :class:`Progress` and report through it. The CLI passes a
:class:`ConsoleProgress`; tests and library callers get :class:`NullProgress` by default.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TextIO

from mlops_ci.masking import mask


class Progress(Protocol):
    def step(self, title: str) -> AbstractContextManager[None]: ...  # pragma: no cover

    def log(self, line: str) -> None: ...  # pragma: no cover


class NullProgress:
    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        yield

    def log(self, line: str) -> None:
        pass


class ConsoleProgress:
    """Prints "▶ title" when a step starts and "✔ title (12.3s)" when it ends, to stderr."""

    def __init__(self, stream: TextIO | None = None, *, indent: str = "") -> None:
        self.stream = stream or sys.stderr
        self.indent = indent
        self._depth = 0

    def _write(self, text: str) -> None:
        self.stream.write(mask(text) + "\n")
        self.stream.flush()

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        pad = self.indent + "  " * self._depth
        self._write(f"{pad}▶ {title}")
        start = time.monotonic()
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            self._write(f"{pad}✘ {title} ({time.monotonic() - start:.1f}s)")
            raise
        self._depth -= 1
        self._write(f"{pad}✔ {title} ({time.monotonic() - start:.1f}s)")

    def log(self, line: str) -> None:
        self._write(self.indent + "  " * self._depth + "│ " + line.rstrip("\n"))


def echo(text: str = "", *, stream: TextIO | None = None) -> None:
    """Write ``text`` (masked) to stdout: the one way commands print results."""
    stream = stream or sys.stdout
    stream.write(mask(text) + ("" if text.endswith("\n") else "\n"))
    stream.flush()
