"""The `train` section of a model: training on this machine (torchrun) or as an Argo Workflow."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from mlops_ci.config.base import IMAGE_DIGEST_RE, Name, RelPath, Strict

DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Values that reach an Argo parameter are substituted into manifest text: keep them plain.
UNSAFE_CHARS = set("\"'\\{}`$ \t\r\n")


def _plain_value(value: str, what: str) -> str:
    bad = sorted(set(value) & UNSAFE_CHARS)
    if bad or not value:
        raise ValueError(f"{what} {value!r} is empty or holds {bad}: write it without spaces, quotes, "
                         "backslashes, braces, '$' or '`'")
    return value


def _image_digest(value: str) -> str:
    if not IMAGE_DIGEST_RE.fullmatch(value):
        raise ValueError(
            f"image {value!r} is not pinned by digest (a tag can move under a running training): "
            "write name@sha256:<64 hex digits>, "
            "e.g. ghcr.io/acme/churn-train@sha256:...; `docker buildx imagetools inspect <image>` "
            "prints the digest of a pushed tag"
        )
    return value


def _namespace(value: str) -> str:
    if not DNS_LABEL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Kubernetes namespace: 1-63 lowercase letters, digits and '-'")
    return value


def _template_name(value: str) -> str:
    if len(value) > 253 or not DNS_SUBDOMAIN_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a WorkflowTemplate name: lowercase letters, digits, '-' and '.'")
    return value


def _https_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    local = parts.scheme == "http" and (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")
    if not parts.netloc or (parts.scheme != "https" and not local):
        raise ValueError(f"{value!r} is not an https:// URL (plain http is accepted for localhost only)")
    if parts.username or parts.password:
        from mlops_ci.masking import strip_credentials

        raise ValueError(f"{strip_credentials(value)!r} holds credentials (not shown): remove them; the token comes "
                         "from ARGO_TOKEN")
    return value.rstrip("/")


def _clone_url(value: str) -> str:
    from urllib.parse import urlsplit

    _plain_value(value, "repo")
    if value.startswith("-"):
        raise ValueError(f"repo {value!r} must not start with '-'")
    parts = urlsplit(value)
    if parts.password is not None:  # any scheme: an ssh:// password is as secret as a token
        from mlops_ci.masking import strip_credentials

        raise ValueError(
            f"repo {strip_credentials(value)!r} holds a password or token (not shown): remove it from the URL; "
            "give private repositories' credentials to the templates through a Secret (argo/README.md)"
        )
    if parts.scheme not in ("https", "http", "ssh", "git", "file") and not re.match(r"^[\w.-]+@[\w.-]+:", value):
        raise ValueError(f"repo {value!r} is not a git clone URL: use https://..., ssh://... or git@host:path")
    return value


def _storage_uri(value: str) -> str:
    _plain_value(value, "checkpoint_uri")
    if not re.match(r"^[a-z][a-z0-9+.-]*://.", value):
        raise ValueError(
            f"checkpoint_uri {value!r} has no scheme: use a location every training pod reaches, "
            "e.g. s3://bucket/checkpoints or gs://bucket/checkpoints"
        )
    return value.rstrip("/")


ImageDigest = Annotated[str, AfterValidator(_image_digest)]
Namespace = Annotated[str, AfterValidator(_namespace)]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
CloneUrl = Annotated[str, AfterValidator(_clone_url)]
StorageUri = Annotated[str, AfterValidator(_storage_uri)]
TemplateName = Annotated[str, AfterValidator(_template_name)]


# The WorkflowTemplates in argo/: one pod with torchrun, or a JobSet across nodes.
ARGO_TEMPLATES = {"torchrun": "mlops-ci-train-torchrun", "jobset": "mlops-ci-train-jobset"}


class ArgoConfig(Strict):
    """Training as an Argo Workflow on Kubernetes (train.backend: argo), from the templates in argo/.

    The Argo token is read from the environment variable ARGO_TOKEN, never from this file.
    """

    transport: Literal["server", "kubernetes"] = Field(
        default="server", description="'server': the Argo Server's REST API at server_url; "
        "'kubernetes': the Kubernetes API (kubeconfig or in-cluster service account)")
    server_url: HttpsUrl | None = Field(default=None, description="Argo Server base URL (https://...), "
                                        "needed by transport 'server'")
    namespace: Namespace = Field(default="mlops-ci", description="namespace of the Workflows and templates")
    context: str | None = Field(default=None, description="kubeconfig context (transport 'kubernetes')")
    template: TemplateName | None = Field(
        default=None, description="WorkflowTemplate to run; default: mlops-ci-train-torchrun when nodes "
        "is 1, else mlops-ci-train-jobset")
    image: ImageDigest = Field(description="training image pinned by digest: name@sha256:<64 hex>",
                               json_schema_extra={"pattern": IMAGE_DIGEST_RE.pattern})
    repo: CloneUrl | None = Field(default=None, description="clone URL of this repository; default: "
                                  "the origin remote (or the GitHub repository in Actions)")
    nodes: int = Field(default=1, ge=1, le=64, description="pods (nodes) per training run")
    gpus_per_node: int = Field(default=1, ge=0, le=16, description="nvidia.com/gpu per pod; 0 trains on CPU")
    checkpoint_uri: StorageUri | None = Field(
        default=None, description="where runs save checkpoints (s3://, gs://, ...); each run uses "
        "<checkpoint_uri>/<model>/<workflow name>. Needed when nodes > 1")
    ui_url: HttpsUrl | None = Field(default=None, description="Argo UI base URL for links in the report; "
                                    "default: server_url")
    insecure_skip_tls_verify: bool = Field(default=False, description="do not verify the server's TLS "
                                           "certificate (a port-forward to a self-signed server only)")
    ca_file: str | None = Field(default=None, description="CA bundle that signed the server's certificate")
    timeout_minutes: float | None = Field(
        default=None, gt=0, le=10080, description="the Workflow's activeDeadlineSeconds, in minutes; "
        "default: train.timeout_minutes")

    @model_validator(mode="before")
    @classmethod
    def _no_token(cls, data):
        if isinstance(data, dict) and any(k in data for k in ("token", "argo_token", "bearer_token")):
            raise ValueError("a token does not belong in .mlops-ci.yaml: remove it and set the "
                             "environment variable ARGO_TOKEN (a repository secret in GitHub Actions)")
        return data


class TrainConfig(Strict):
    backend: Name | None = Field(
        default=None, description="the trainer, by its name in mlops_ci.backends.trainers: 'torchrun' on this "
        "machine (the default), or 'argo': a Workflow on Kubernetes (needs the argo section)")
    script: RelPath = "train.py"
    args: list[str] = []
    nproc_per_node: int = Field(default=2, ge=1, le=64)
    timeout_minutes: float = Field(default=60, gt=0)
    env: dict[str, str] = Field(default={}, description="extra environment for the training processes")
    argo: ArgoConfig | None = Field(default=None, description="where and how to train on Argo Workflows")
