"""The training Workflow mlops-ci submits: a reference to a WorkflowTemplate in argo/ and its
arguments, as plain data.

Pure: no I/O, no clients. The transports (mlops_ci.backends.argo) submit what this returns, and
`mlops-ci render training` prints it.

The name is derived from (repository, PR, head SHA, model), so a second submission for the same
commit collides with the first (HTTP 409) and is adopted instead of training twice. Names stay
within 52 characters although Kubernetes allows 63: the JobSet template names its JobSet after
the Workflow, and JobSet pod hostnames ``<name>-node-<i>-0`` must still be DNS labels.

``train.args`` and ``train.env`` travel as two JSON parameters, ``args`` and ``env``, which
the pod's launcher (mlops_ci.argo.launch) turns into argv elements and environment variables:
no shell, and only the config's literal values (never the submitting process's environment).
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from mlops_ci.config.schema import ARGO_TEMPLATES, UNSAFE_CHARS, ArgoConfig, Config
from mlops_ci.errors import ConfigError, InputError, UsageError
from mlops_ci.masking import strip_credentials

API_VERSION = "argoproj.io/v1alpha1"
MAX_NAME = 52
NAME_PREFIX = "mlops-ci-"
LABEL_PREFIX = "mlops-ci.dev/"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
MAX_NODES, MAX_GPUS = 64, 16
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# set by the templates or by torchrun for each rank: train.env may not replace them
RESERVED_ENV = frozenset({"MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID", "RANK", "LOCAL_RANK",
                          "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
                          "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "JOB_INDEX"})
RESERVED_PREFIXES = ("MLOPS_CI_", "TORCHELASTIC_")
# parts of a name that say it holds a credential: those belong in the Secret mlops-ci-trainer
SECRET_WORDS = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|API_?KEY|ACCESS_KEY|PRIVATE_KEY|AUTH)"
                          r"(_|$)|_KEY(_ID)?$", re.IGNORECASE)
# escaped inside the JSON strings so that neither Argo (`{{`), Kubernetes (`$(VAR)`) nor the
# JobSet manifest's single-quoted YAML strings (`'`) see them
_JSON_ESCAPES = {c: f"\\u{ord(c):04x}" for c in "'{}$`"}


@dataclass(frozen=True)
class MlflowRun:
    """The MLflow run mlops-ci opened for this training; rank 0 resumes it. None leaves the
    template's default (the in-cluster tracking server; a new run)."""

    tracking_uri: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value: [A-Za-z0-9._-], alphanumeric at both ends, ≤ 63."""
    edges = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
    value = edges.sub("", re.sub(r"[^A-Za-z0-9._-]", "-", text.replace("/", ".")))
    return edges.sub("", value[:63])


def workflow_name(repository: str, pr: int | None, head_sha: str, model: str) -> str:
    """``mlops-ci-<model>[-pr<N>]-<sha7>-<hash8>``: a DNS label of at most 52 characters.

    The same inputs always give the same name; the hash covers all of them, so a model name cut
    short or two repositories with the same model still get different names.
    """
    head_sha = _sha(head_sha)
    digest = hashlib.sha256("\0".join([repository, "" if pr is None else str(pr), head_sha, model])
                            .encode("utf-8")).hexdigest()[:8]
    tail = (f"-pr{pr}" if pr is not None else "") + f"-{head_sha[:7]}-{digest}"
    room = MAX_NAME - len(NAME_PREFIX) - len(tail)
    stem = re.sub(r"[^a-z0-9-]", "-", model.lower())[:room].strip("-") or "model"
    return f"{NAME_PREFIX}{stem}{tail}"


def template_for(argo: ArgoConfig, nodes: int) -> str:
    """The configured template, else one pod with torchrun for one node and a JobSet for more."""
    if argo.template:
        return argo.template
    return ARGO_TEMPLATES["torchrun"] if nodes == 1 else ARGO_TEMPLATES["jobset"]


def build_workflow(
    config: Config,
    model: str,
    *,
    repo: str | None,
    head_sha: str,
    pr: int | None,
    repository: str,
    nodes: int | None = None,
    gpus_per_node: int | None = None,
    mlflow: MlflowRun | None = None,
    config_path: str = ".mlops-ci.yaml",
) -> dict[str, Any]:
    """The Workflow that trains ``model`` at ``head_sha`` from the template in argo/.

    ``repo`` is the clone URL (None: ``train.argo.repo``); ``repository`` is owner/name, for the
    name and labels; ``nodes`` and ``gpus_per_node`` override the config (a slash command's
    arguments); ``config_path`` is where .mlops-ci.yaml sits in the repository, whose folder is
    the working directory of the training.
    """
    if model not in config.models:
        raise UsageError(f"no model {model!r} in the config", hint=f"use one of {sorted(config.models)}")
    train = config.models[model].train
    argo = train.argo
    if argo is None:
        raise ConfigError(f"models.{model}.train has no 'argo' section",
                          hint="add train.argo with 'image' (name@sha256:...) and where Argo runs")
    nodes = argo.nodes if nodes is None else nodes
    gpus = argo.gpus_per_node if gpus_per_node is None else gpus_per_node
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= MAX_NODES:
        raise UsageError(f"nodes must be a whole number from 1 to {MAX_NODES}, not {nodes!r}")
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= MAX_GPUS:
        raise UsageError(f"GPUs per node must be a whole number from 0 to {MAX_GPUS}, not {gpus!r}")
    template = template_for(argo, nodes)
    jobset = template == ARGO_TEMPLATES["jobset"]
    if template == ARGO_TEMPLATES["torchrun"] and nodes != 1:
        raise UsageError(f"{template} trains on one node, not {nodes}",
                         hint=f"leave models.{model}.train.argo.template out to get {ARGO_TEMPLATES['jobset']}")
    clone_url = repo or argo.repo
    if not clone_url:
        raise ConfigError(f"no clone URL for models.{model}: the repository has no origin remote",
                          hint=f"set models.{model}.train.argo.repo to the URL Argo clones")
    head_sha = _sha(head_sha)
    name = workflow_name(repository, pr, head_sha, model)

    workdir = posixpath.dirname(posixpath.normpath(config_path.replace("\\", "/"))) or "."
    params: dict[str, str] = {
        "repo": clone_url,
        "revision": head_sha,
        "model": model,
        "image": argo.image,
        "config": posixpath.normpath(config_path.replace("\\", "/")),
        "workdir": workdir,
        "script": train.script,
    }
    if jobset:
        params["nodes"] = str(nodes)
    # one process per GPU; on CPU (gpus 0), the configured number of gloo processes
    params["nproc-per-node"] = str(gpus or train.nproc_per_node)
    params["gpus"] = str(gpus)
    if argo.checkpoint_uri:
        # stable per Workflow name: a retried or resubmitted run of the same commit resumes
        params["checkpoint-uri"] = f"{argo.checkpoint_uri}/{model}/{name}"
    elif jobset:
        raise ConfigError(f"models.{model}.train.argo.checkpoint_uri is needed for {nodes} nodes",
                          hint="set it to storage every pod reaches (s3://..., gs://...)")
    mlflow = mlflow or MlflowRun()
    # a Workflow's parameters are plain text in the cluster (and in the pods' environment): the
    # tracking URI goes without userinfo or query tokens; pods authenticate through the
    # mlops-ci-trainer Secret (MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD)
    tracking_uri = strip_credentials(mlflow.tracking_uri) if mlflow.tracking_uri else None
    for key, value in (("mlflow-tracking-uri", tracking_uri), ("mlflow-experiment-id", mlflow.experiment_id),
                       ("mlflow-run-id", mlflow.run_id)):
        if value:
            params[key] = value
    for key, value in params.items():
        _check_plain(key, value)
    # after the check: these two are JSON, escaped by json_parameter
    if train.args:
        params["args"] = json_parameter(list(train.args))
    if train.env:
        params["env"] = json_parameter(check_env(train.env, model))

    minutes = argo.timeout_minutes or train.timeout_minutes
    labels = {
        "app.kubernetes.io/managed-by": "mlops-ci",
        f"{LABEL_PREFIX}repository": label_value(repository),
        f"{LABEL_PREFIX}pr": "none" if pr is None else str(pr),
        f"{LABEL_PREFIX}head-sha": head_sha,
        f"{LABEL_PREFIX}model": model,
    }
    where = f"PR #{pr}" if pr is not None else "commit"
    annotations = {
        f"{LABEL_PREFIX}repository": repository,
        f"{LABEL_PREFIX}nodes": str(nodes),
        f"{LABEL_PREFIX}gpus-per-node": str(gpus),
        "workflows.argoproj.io/title": f"train {model}",
        "workflows.argoproj.io/description": f"{repository} {where} at {head_sha[:12]}",
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": argo.namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "workflowTemplateRef": {"name": template},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in params.items()]},
            "activeDeadlineSeconds": math.ceil(minutes * 60),
        },
    }


def json_parameter(value: list[str] | dict[str, str]) -> str:
    """``value`` as compact JSON with ``'``, braces, ``$`` and backquotes escaped (``\\u0027``...)
    inside its strings: the same value for any JSON parser, and inert where Argo substitutes it
    into manifest text or Kubernetes expands ``$(VAR)``."""
    def text(item: str) -> str:
        return "".join(_JSON_ESCAPES.get(c, c) for c in json.dumps(item, ensure_ascii=True))

    if isinstance(value, dict):
        return "{" + ",".join(f"{text(k)}:{text(v)}" for k, v in value.items()) + "}"
    return "[" + ",".join(text(item) for item in value) + "]"


def check_env(env: dict[str, str], model: str) -> dict[str, str]:
    """``train.env`` for the pods: plain names, none that the templates or torchrun set, and no
    credentials (a Workflow's parameters are readable by everyone who may list Workflows)."""
    where = f"models.{model}.train.env"
    for key in env:
        if not ENV_NAME_RE.fullmatch(key):
            raise ConfigError(f"{where}: {key!r} is not an environment variable name",
                              hint="use letters, digits and '_', not starting with a digit")
        if key in RESERVED_ENV or key.startswith(RESERVED_PREFIXES):
            raise ConfigError(f"{where}: {key} is set by the Argo templates or by torchrun",
                              hint=f"remove {key} from train.env; see argo/README.md for what the pods get")
        if SECRET_WORDS.search(key):
            raise ConfigError(f"{where}: {key} looks like a credential, which would be readable in the "
                              "Workflow's parameters", hint="remove it from .mlops-ci.yaml and put it in the "
                              "Secret mlops-ci-trainer of the namespace (argo/README.md)")
    return dict(env)


def _sha(head_sha: str) -> str:
    sha = head_sha.strip().lower()
    if not SHA_RE.fullmatch(sha):
        raise InputError(f"head SHA {head_sha!r} is not a full commit SHA (40 hex digits)",
                         hint="pass the commit from `git rev-parse HEAD`, never a branch or a short SHA")
    return sha


def _check_plain(key: str, value: str) -> None:
    """Parameters are substituted into manifest text by Argo: refuse what could break out of it."""
    bad = sorted(set(value) & UNSAFE_CHARS)
    if bad or not value:
        raise ConfigError(f"the Argo parameter {key} = {value!r} is empty or holds {bad}",
                          hint="rename the path or URL without spaces, quotes, backslashes, braces, '$' or '`'")
