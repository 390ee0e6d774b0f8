"""The publisher role: deliver a rendered report (and its record) somewhere people read it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mlops_ci.records import RunRecord


class Publisher(Protocol):
    name: str
    posted_to: tuple[int, str] | None  # (pull request, head SHA) a comment was posted for, if any

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, report_path: Path, **options: Any) -> Publisher:
        """The publisher `mlops-ci publish` uses, configured from the job's environment; ``options``:
        ``default_branch``, ``pr``, ``head_sha``, ``record_path``, ``on_note`` (each publisher takes
        what it needs)."""

    def preview(self, record: RunRecord, markdown: str) -> str:
        """What publishing would send or write, without sending or writing it."""

    def publish(self, record: RunRecord, markdown: str) -> str:
        """Deliver the report; returns where it went (a path or a URL)."""
