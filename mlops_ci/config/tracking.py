"""Where runs and manifests go: the tracking server and the GitOps repository (``tracking:`` and
``gitops:`` in `.mlops-ci.yaml`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from mlops_ci.config.base import Name, RelPath, Strict


class TrackingConfig(Strict):
    backend: Name | None = Field(default=None, description="the tracking backend, by its name in "
                                 "mlops_ci.backends.tracking (default: the first there, mlflow)")
    uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; default: SQLite under .mlops-ci/ (MLFLOW_TRACKING_URI overrides)",
    )


def _git_remote(value: str | None) -> str | None:
    """A git URL or path: never an option (a leading '-'), never a password in it (ssh included)."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    if value.startswith("-") or any(c in value for c in "\n\r\t\0"):
        raise ValueError(f"remote {value!r} is not a git URL or path")
    if "://" in value and urlsplit(value).password is not None:
        from mlops_ci.masking import strip_credentials

        raise ValueError(f"remote {strip_credentials(value)!r} holds a password or token (not shown): remove it; git "
                         "takes credentials from a credential helper or MLOPS_CI_GITOPS_TOKEN")
    return value


def _git_ref(value: str) -> str:
    if value.startswith(("-", "/")) or ".." in value or value.endswith((".", "/", ".lock")):
        raise ValueError(f"{value!r} is not a branch name git accepts")
    return value


GitRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]{1,200}$"), AfterValidator(_git_ref)]


class GitOpsConfig(Strict):
    backend: Name | None = Field(default=None, description="the GitOps remote, by its name in "
                                 "mlops_ci.backends.gitops (default: the first there, git)")
    remote: Annotated[str | None, AfterValidator(_git_remote)] = Field(
        default=None, description="git URL or path of the GitOps repository; default: .mlops-ci/gitops.git"
    )
    branch: GitRef = "main"
    path: RelPath = Field(default="environments", description="folder holding one kustomize overlay per environment")
    author_name: str = "mlops-ci"
    author_email: str = "mlops-ci@users.noreply.github.com"
    github_repository: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$",
        description="owner/name of the GitOps repository on GitHub, where promotions via pull request "
        "open them (default: taken from a github.com remote); the token comes from MLOPS_CI_GITOPS_TOKEN, "
        "else GITHUB_TOKEN")
