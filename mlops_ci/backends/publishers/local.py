"""The embedded publisher: the report as a Markdown file, and on the terminal."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.console import echo
from mlops_ci.masking import mask
from mlops_ci.records import RunRecord


class LocalPublisher:
    name = "local"

    def __init__(self, path: Path, *, stream: TextIO | None = None, print_report: bool = True) -> None:
        self.path = Path(path)
        self.stream = stream or sys.stdout
        self.print_report = print_report
        self.posted_to = None  # a file is no pull request's comment

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, report_path: Path, **_: Any) -> LocalPublisher:
        """For `mlops-ci publish --to local`: the report file beside the record, not printed again."""
        return cls(report_path, print_report=False)

    def preview(self, record: RunRecord, markdown: str) -> str:
        return markdown

    def publish(self, record: RunRecord, markdown: str) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(mask(markdown), encoding="utf-8")
        if self.print_report:
            echo(markdown, stream=self.stream)
        return str(self.path)
