"""The publisher role: deliver a rendered report (and its record) somewhere people read it."""

from __future__ import annotations

from typing import Protocol

from mlops_ci.records import RunRecord


class Publisher(Protocol):
    name: str

    def publish(self, record: RunRecord, markdown: str) -> str:
        """Deliver the report; returns where it went (a path or a URL)."""
