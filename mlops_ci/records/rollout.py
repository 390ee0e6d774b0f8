"""What one ``mlops-ci rollout status|advance|abort`` found and did."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlops_ci.records.base import Message, ModelName, Record, Sha, UriText, Version

Action = Literal["none", "wait", "advanced", "completed", "aborted", "held"]


class RolloutFinding(Record):
    source: Message
    name: Message
    status: Literal["pass", "fail", "inconclusive"]
    message: Message


class RolloutRecord(Record):
    """One look at a rollout: where it stands, the analysis of its step and what was done about it.
    ``action``: none (no rollout), wait (not live, soaking, or inconclusive within max_soak),
    advanced (the next step committed), completed (the full promotion committed, alias moved),
    aborted (the steps reverted and a hold written), held (inconclusive at max_soak: a person decides)."""

    kind: Literal["rollout"] = "rollout"
    model: ModelName
    env: ModelName
    action: Action
    reason: Message
    version: Version | None = None  # the version rolled out
    primary: Version | None = None
    step: Message | None = None  # where it stood ("step 1/3: v2 takes 10% beside v1")
    step_number: int | None = None  # the same, for scripts: 1-based step, of steps, the canary's percent
    steps: int | None = None
    canary_percent: int | None = None
    source_commit: Sha | None = None  # the commit the rollout's first step shipped (the Deployment's ref)
    live_since: Message | None = None  # ISO 8601: when Argo CD reported the step live (or its commit)
    verdict: Literal["pass", "fail", "inconclusive"] | None = None
    findings: list[RolloutFinding] = Field(default=[], max_length=50)
    commit_sha: Sha | None = None  # the commit this run made (advanced, completed, aborted)
    remote: UriText | None = None
    branch: Message | None = None
    dry_run: bool = False
    deployment: UriText | None = None  # the GitHub Deployment marked success (completed) or failure (aborted)
    note: UriText | None = None  # the comment an abort left on the pull request that shipped the version


__all__ = ["RolloutFinding", "RolloutRecord"]
