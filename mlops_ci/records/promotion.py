"""What a promotion, a promotion request or a rollback changed (or would change) in the GitOps repository."""

from __future__ import annotations

from typing import Literal

from mlops_ci.records.base import Record, Status

class FileChange(Record):
    path: str
    action: Literal["create", "modify", "delete", "unchanged"]
    diff: str = ""


class PromotionRecord(Record):
    model: str
    env: str
    alias: str
    version: str
    artifact_uri: str
    digest: str
    dry_run: bool
    noop: bool
    changes: list[FileChange] = []
    remote: str
    branch: str
    base_commit: str | None = None  # the GitOps commit the change was planned against
    commit_sha: str | None = None  # the commit that serves this version (new, or the existing one for a no-op)
    forced_reason: str | None = None
    # the rollback hold marker in place: a real promotion needs --force (recorded here) and leaves it there
    on_hold: str | None = None
    # promotion via pull request: the branch pushed and the pull request opened (or found) in the GitOps
    # repository; the alias moves only once that pull request is merged
    pull_request: str | None = None
    # the GitHub Deployment recorded for this promotion in the ML repository (its API URL)
    deployment: str | None = None


class PromotionRequest(Record):
    """A pull request that changes a desired version in the promotions file: the plan a merge applies."""

    env: str
    model: str
    version: str
    previous: str | None = None  # the desired version at the base revision (None: newly declared)
    source: str  # file:line of the entry
    reason: str | None = None  # the entry's reason: promote although the gates failed (recorded)
    status: Status  # fail: unknown version, or failed gates without a reason; warn: forced or on hold
    gates: Literal["pass", "fail"]
    gate_summary: str = ""
    metrics: dict[str, str] = {}  # the version's evaluation metrics (registry tags)
    lineage: dict[str, str] = {}
    error: str | None = None
    plan: PromotionRecord | None = None


class RollbackRecord(Record):
    """`mlops-ci rollback`: a version restored in an environment (and held there), or a hold released."""

    model: str
    env: str
    alias: str
    action: Literal["revert", "re-pin", "clear-hold"]
    version: str | None = None  # the version now served (None for clear-hold)
    rollback_of: str | None = None  # the version that was served before
    reverted_commits: list[str] = []  # revert: the GitOps commits whose manifest changes were undone
    artifact_uri: str | None = None
    digest: str | None = None
    gates_passed: bool | None = None  # whether the restored version carries a passing mlops-ci evaluation
    reason: str | None = None
    actor: str
    hold_path: str
    dry_run: bool
    noop: bool = False  # nothing to commit (the version and its hold are already in place)
    changes: list[FileChange] = []
    remote: str
    branch: str
    base_commit: str | None = None
    commit_sha: str | None = None
