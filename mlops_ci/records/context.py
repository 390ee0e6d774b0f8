"""Where and why a run happens, and what it plans for each model."""

from __future__ import annotations

from typing import Literal

from mlops_ci.records.base import Record

class Context(Record):
    """Where and why we run: a local checkout or a GitHub Actions event."""

    source: Literal["local", "github"]
    event: str
    action: str | None = None  # the event's activity type (pull_request: opened, synchronize, closed, ...)
    repository: str | None = None
    default_branch: str
    base_sha: str | None = None
    head_sha: str
    ref: str | None = None
    pr_number: int | None = None
    pr_title: str | None = None  # untrusted text: escape before rendering
    actor: str | None = None
    fork: bool = False
    run_url: str | None = None
    comment: str | None = None  # issue_comment body, untrusted
    dirty: bool = False  # local only: uncommitted changes in the work tree


class DataVersion(Record):
    role: str  # "train" or "eval"
    path: str
    base_md5: str | None = None
    head_md5: str | None = None

    @property
    def changed(self) -> bool:
        return self.base_md5 != self.head_md5


class ModelPlan(Record):
    model: str
    stages: list[Literal["check", "train", "evaluate"]]
    reasons: list[str] = []
    skip_reason: str | None = None
    changed_paths: list[str] = []
    data: list[DataVersion] = []
    forced: bool = False  # --force: train even when nothing changed or the champion is identical
