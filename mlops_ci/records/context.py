"""Where and why a run happens, and what it plans for each model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from mlops_ci.records.base import (ContentId, Ident, LongText, Message, ModelName, PathText, PrNumber, Record,
                                   Repository, Sha, UriText)

EventName = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]


class Context(Record):
    """Where and why we run: a local checkout or a GitHub Actions event."""

    source: Literal["local", "github"]
    event: EventName
    action: EventName | None = None  # the event's activity type (pull_request: opened, synchronize, closed, ...)
    repository: Repository | None = None
    default_branch: Ident
    base_sha: Sha | None = None
    head_sha: Sha
    ref: Ident | None = None
    pr_number: PrNumber | None = None
    pr_title: Message | None = None  # untrusted text: escape before rendering
    actor: Ident | None = None
    fork: bool = False
    run_url: UriText | None = None
    comment: LongText | None = None  # issue_comment body, untrusted
    dirty: bool = False  # local only: uncommitted changes in the work tree


class DataVersion(Record):
    role: Literal["train", "eval"]
    path: PathText
    base_md5: ContentId | None = None
    head_md5: ContentId | None = None

    @property
    def changed(self) -> bool:
        return self.base_md5 != self.head_md5


class ModelPlan(Record):
    model: ModelName
    stages: list[Literal["check", "train", "evaluate"]] = Field(max_length=3)
    reasons: list[Message] = Field(default=[], max_length=50)
    skip_reason: Message | None = None
    changed_paths: list[PathText] = Field(default=[], max_length=2000)
    data: list[DataVersion] = Field(default=[], max_length=2)
    forced: bool = False  # --force: train even when nothing changed or the champion is identical
