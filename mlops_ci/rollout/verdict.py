"""What an analysis of a rollout step concludes: one :class:`Verdict` from its :class:`Finding` s.

``inconclusive`` (too little traffic, a source unreachable, a query with no answer) is never a
pass: a rollout only goes on when every finding passed, and aborts when any failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Status = Literal["pass", "fail", "inconclusive"]
PASS: Status = "pass"
FAIL: Status = "fail"
INCONCLUSIVE: Status = "inconclusive"


@dataclass(frozen=True)
class Window:
    """The span a step is judged over (timezone-aware, UTC)."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> int:
        return max(1, int((self.end - self.start).total_seconds()))


@dataclass(frozen=True)
class Finding:
    source: str  # "prometheus" or "logs"
    name: str  # the measure: "error_rate", "latency_p99", "requests", "prediction" ...
    status: Status
    message: str  # one line a person reads: the canary's value, the primary's, the threshold
    canary: float | None = None
    primary: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Verdict:
    status: Status
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """One line: the status and the findings that decided it."""
        deciding = [f for f in self.findings if f.status == self.status] or list(self.findings)
        return f"{self.status}: " + "; ".join(f.message for f in deciding) if deciding else self.status


def combine(findings: Iterable[Finding]) -> Verdict:
    """fail if any finding failed, else inconclusive if any was (or there were none), else pass."""
    found = tuple(findings)
    if any(f.status == FAIL for f in found):
        return Verdict(FAIL, found)
    if not found or any(f.status == INCONCLUSIVE for f in found):
        return Verdict(INCONCLUSIVE, found)
    return Verdict(PASS, found)


__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "Finding", "Status", "Verdict", "Window", "combine"]
