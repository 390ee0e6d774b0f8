"""What a promotion, a promotion request or a rollback changed (or would change) in the GitOps repository."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlops_ci.records.base import (Digest, Ident, Message, ModelName, PathText, Record, Sha, Status, UriText,
                                   Version)


class FileChange(Record):
    path: PathText
    action: Literal["create", "modify", "delete", "unchanged"]
    diff: str = ""


class PromotionRecord(Record):
    """A promotion, done or planned (the plan stage's result: what merging would commit)."""

    kind: Literal["promotion"] = "promotion"
    model: ModelName
    env: ModelName
    alias: Ident
    version: Version
    artifact_uri: UriText
    digest: Digest
    dry_run: bool
    noop: bool
    changes: list[FileChange] = Field(default=[], max_length=50)
    remote: UriText
    branch: Ident
    base_commit: Sha | None = None  # the GitOps commit the change was planned against
    commit_sha: Sha | None = None  # the commit that serves this version (new, or the existing one for a no-op)
    forced_reason: Message | None = None
    # the rollback hold marker in place: a real promotion needs --force (recorded here) and leaves it there
    on_hold: PathText | None = None
    # what else the policy says will refuse it, and when that clears (a dry run plans past them:
    # environment order, freezes), one line each
    held_by: list[Message] = Field(default=[], max_length=10)
    # promotion via pull request: the branch pushed and the pull request opened (or found) in the GitOps
    # repository; the alias moves only once that pull request is merged
    pull_request: UriText | None = None
    # the GitHub Deployment recorded for this promotion in the ML repository (its API URL)
    deployment: UriText | None = None
    # checks of the manifests that could not run (a CRD schema without MLOPS_CI_CRDS), and why
    not_validated: list[Message] = Field(default=[], max_length=20)
    # the environment rolls versions out step by step: the step this promotion starts (or found running)
    rollout: Message | None = None

    @property
    def verdict(self) -> None:
        return None  # a plan shows what would change; the policy decides when it is applied


class PromotionRequest(Record):
    """A pull request that changes a desired version in the promotions file: the plan a merge applies."""

    env: ModelName
    model: ModelName
    version: Version
    previous: Version | None = None  # the desired version at the base revision (None: newly declared)
    source: PathText  # file:line of the entry
    reason: Message | None = None  # the entry's reason: promote although the gates failed (recorded)
    status: Status  # fail: unknown version, or failed gates without a reason; warn: forced or on hold
    gates: Literal["pass", "fail"]
    gate_summary: Message = ""
    metrics: dict[Ident, Ident] = Field(default={}, max_length=100)  # the version's evaluation metrics (tags)
    lineage: dict[Ident, UriText] = Field(default={}, max_length=50)
    error: Message | None = None
    plan: PromotionRecord | None = None


class RollbackRecord(Record):
    """`mlops-ci rollback`: a version restored in an environment (and held there), or a hold released."""

    model: ModelName
    env: ModelName
    alias: Ident
    action: Literal["revert", "re-pin", "clear-hold"]
    version: Version | None = None  # the version now served (None for clear-hold)
    rollback_of: Version | None = None  # the version that was served before
    # revert: the GitOps commits whose manifest changes were undone
    reverted_commits: list[Sha] = Field(default=[], max_length=100)
    artifact_uri: UriText | None = None
    digest: Ident | None = None
    gates_passed: bool | None = None  # whether the restored version carries a passing mlops-ci evaluation
    reason: Message | None = None
    actor: Ident
    hold_path: PathText
    dry_run: bool
    noop: bool = False  # nothing to commit (the version and its hold are already in place)
    changes: list[FileChange] = Field(default=[], max_length=50)
    remote: UriText
    branch: Ident
    base_commit: Sha | None = None
    commit_sha: Sha | None = None
    not_validated: list[Message] = Field(default=[], max_length=20)  # as in PromotionRecord
    features_commit: Sha | None = None  # the feature repository's commit the restored version was trained with
    feature_service: Ident | None = None  # "<service>@<version>" it reads
