"""GitHub Deployments for promotions: the ML repository's Environments page shows what each serves.

A promotion that changed something records, in the repository that runs mlops-ci
(``GITHUB_REPOSITORY``, the job's own context, never a run record):

- a Deployment of the source commit (``ref`` = the commit the version was trained from) to the
  environment, with the model, version and GitOps commit in its payload (``auto_merge`` off and
  no required contexts: the commit is merged already, and its checks gated the registration);
- a status: ``success`` for a promotion pushed to the GitOps branch, ``in_progress`` (linking
  the pull request) for one proposed via pull request, or for the first step of a rollout: the
  rollout's end gives the same Deployment ``success`` (completed) or ``failure`` (aborted).
  ``log_url`` is the workflow run.

Only when a token is set (GITHUB_TOKEN or GH_TOKEN) and GITHUB_REPOSITORY names the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_ci.backends.github.client import api_call, make_client, write_once
from mlops_ci.records import PromotionRecord

if TYPE_CHECKING:
    from github import Github

PRODUCTION = ("prod", "production")


@dataclass(frozen=True)
class DeploymentTarget:
    repository: str  # owner/name of the ML repository
    ref: str  # the source commit
    run_url: str | None = None


def target_from_env(env: Mapping[str, str], source_commit: str | None) -> DeploymentTarget | None:
    """Where to record a Deployment, or None when this is not a GitHub job with a token."""
    repository = env.get("GITHUB_REPOSITORY")
    ref = source_commit or env.get("GITHUB_SHA")
    if not repository or not ref or not (env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")):
        return None
    server, run = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"), env.get("GITHUB_RUN_ID")
    return DeploymentTarget(repository, ref, f"{server}/{repository}/actions/runs/{run}" if run else None)


def payload(p: PromotionRecord) -> dict[str, Any]:
    out = {"model": p.model, "version": p.version, "alias": p.alias, "digest": p.digest,
           "gitops_branch": p.branch, "manifest_commit": p.commit_sha or ""}
    if p.pull_request:
        out["pull_request"] = p.pull_request
    return out


def record_deployment(client: Github, target: DeploymentTarget, p: PromotionRecord) -> str:
    """Create the Deployment and its status for promotion ``p``; returns the Deployment's API URL."""
    repo = client.get_repo(target.repository, lazy=True)
    api = f"/repos/{target.repository}/deployments"
    data = payload(p)
    description = f"{p.model} v{p.version}" + (" (pull request)" if p.pull_request else "")

    def applied():  # after a 5xx: the deployment may exist already
        for d in repo.get_deployments(sha=target.ref, environment=p.env):
            if (d.payload or {}).get("manifest_commit") == data["manifest_commit"] and \
                    (d.payload or {}).get("version") == p.version:
                return d
        return None

    with api_call("GET", api):
        existing = applied()
    if existing is not None:  # the same promotion again (a pull request still open): nothing new to record
        return existing.url
    with api_call("POST", api):
        deployment = write_once(lambda: repo.create_deployment(
            ref=target.ref, task="deploy", auto_merge=False, required_contexts=[], payload=data,
            environment=p.env, description=description[:140], transient_environment=False,
            production_environment=p.env in PRODUCTION), applied)
    state = "in_progress" if p.pull_request or p.rollout else "success"
    log_url = p.pull_request if p.pull_request else target.run_url
    with api_call("POST", f"{api}/{deployment.id}/statuses"):
        kwargs: dict[str, Any] = {"description": (
            f"proposed in {p.pull_request}" if p.pull_request else f"rolling out: {p.rollout}" if p.rollout else
            f"{p.model} v{p.version}: GitOps commit {(p.commit_sha or '')[:12]}")[:140]}
        if log_url:
            kwargs["target_url"] = log_url
        deployment.create_status(state, environment=p.env, **kwargs)
    return deployment.url


def mark_rollout(client: Github, target: DeploymentTarget, env: str, version: str, state: str,
                 description: str) -> str | None:
    """Give the Deployment that started the rollout of ``version`` to ``env`` (the newest one of the
    source commit with that version in its payload) a new status: ``success`` when the rollout
    completed, ``failure`` when it was aborted, ``in_progress`` for a step. Its URL, or None when
    the rollout's start recorded none (it was not started from a GitHub job)."""
    repo = client.get_repo(target.repository, lazy=True)
    api = f"/repos/{target.repository}/deployments"
    with api_call("GET", api):
        found = next((d for d in repo.get_deployments(sha=target.ref, environment=env)
                      if (d.payload or {}).get("version") == version), None)
    if found is None:
        return None
    with api_call("POST", f"{api}/{found.id}/statuses"):
        kwargs: dict[str, Any] = {"description": description[:140]}
        if target.run_url:
            kwargs["target_url"] = target.run_url
        found.create_status(state, environment=env, **kwargs)
    return found.url


def record_from_env(env: Mapping[str, str], p: PromotionRecord, source_commit: str | None, *,
                    client: Github | None = None) -> str | None:
    """Record a Deployment for ``p`` if this runs with a GitHub repository and token; its URL or None."""
    target = target_from_env(env, source_commit)
    if target is None or p.dry_run or p.noop:
        return None
    return record_deployment(client or make_client(env), target, p)


__all__ = ["DeploymentTarget", "mark_rollout", "payload", "record_deployment", "record_from_env",
           "target_from_env"]
