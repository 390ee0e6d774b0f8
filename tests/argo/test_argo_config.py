"""The argo section of .mlops-ci.yaml (what it refuses, with file:line and the fix) and `mlops-ci render
training` (the Workflow it prints, without heavy imports)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import cli, commit
from ruamel.yaml import YAML
from manifest_support import schema_errors

from mlops_ci.argo import workflow_name
from mlops_ci.config.schema import ArgoConfig
from mlops_ci.errors import ConfigError

from test_argo_render import IMAGE, JOBSET, TORCHRUN


# ---------------------------------------------------------------------------------------------
# the argo section of .mlops-ci.yaml


@pytest.mark.parametrize(("field", "value", "words"), [
    ("image", "ghcr.io/acme/churn-train:latest", "not pinned by digest"),
    ("image", "ghcr.io/acme/churn-train@sha256:abc", "not pinned by digest"),
    ("image", "ghcr.io/acme/churn-train@sha256:" + "A" * 64, "not pinned by digest"),
    ("nodes", 0, "greater than or equal to 1"),
    ("nodes", 65, "less than or equal to 64"),
    ("gpus_per_node", 17, "less than or equal to 16"),
    ("gpus_per_node", -1, "greater than or equal to 0"),
    ("server_url", "http://argo.example.com", "https://"),
    ("server_url", "https://user:pw@argo.example.com", "credentials"),
    ("repo", "https://x-access-token:ghs_abc@github.com/acme/churn.git", "password or token"),
    ("repo", "--upload-pack=touch /tmp/pwned", "spaces"),
    ("checkpoint_uri", "/mnt/checkpoints", "no scheme"),
    ("namespace", "Mlops_CI", "not a Kubernetes namespace"),
    ("token", "abc", "ARGO_TOKEN"),
    ("transport", "grpc", "'server' or 'kubernetes'"),
])
def test_argo_section_refuses(field: str, value: Any, words: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=re.escape(words)):
        ArgoConfig.model_validate({"image": IMAGE, field: value})


def test_argo_section_accepts_digests_with_registry_port_and_tag() -> None:
    for image in (IMAGE, "registry.local:5000/team/churn-train:v1@sha256:" + "0" * 64, "churn@sha256:" + "f" * 64):
        assert ArgoConfig(image=image).image == image
    assert ArgoConfig(image=IMAGE, server_url="http://localhost:2746/").server_url == "http://localhost:2746"


def _write_config(repo: Path, argo: str, backend: str = "argo") -> Path:
    path = repo / ".mlops-ci.yaml"
    text = path.read_text()
    text = text.replace("      timeout_minutes: 5\n",
                        f"      timeout_minutes: 5\n      backend: {backend}\n      argo:\n"
                        + "".join(f"        {line}\n" for line in argo.strip().splitlines()))
    path.write_text(text)
    return path


def test_config_errors_name_the_line_and_the_fix(tiny_repo: Path) -> None:
    from mlops_ci.config import load_config

    path = _write_config(tiny_repo, "server_url: https://argo.example.com\nimage: ghcr.io/acme/tiny:latest")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert re.search(r"\.mlops-ci\.yaml:\d+:\d+", text) and "models.tiny.train.argo.image" in text
    assert "name@sha256:" in text


@pytest.mark.parametrize(("argo", "words"), [
    ("image: IMAGE", "needs server_url"),
    ("image: IMAGE\nserver_url: https://a.example.com\nnodes: 2", "needs checkpoint_uri"),
    ("image: IMAGE\nserver_url: https://a.example.com\ntemplate: mlops-ci-train-torchrun\nnodes: 2\n"
     "checkpoint_uri: s3://c", "runs on one node"),
])
def test_config_semantics(tiny_repo: Path, argo: str, words: str) -> None:
    from mlops_ci.config import load_config

    path = _write_config(tiny_repo, argo.replace("IMAGE", IMAGE))
    with pytest.raises(ConfigError, match=words):
        load_config(path)


def test_backend_argo_needs_the_section(tiny_repo: Path) -> None:
    from mlops_ci.config import load_config

    path = tiny_repo / ".mlops-ci.yaml"
    path.write_text(path.read_text().replace("      timeout_minutes: 5\n", "      timeout_minutes: 5\n"
                                             "      backend: argo\n"))
    with pytest.raises(ConfigError, match="needs an 'argo' section"):
        load_config(path)


# ---------------------------------------------------------------------------------------------
# mlops-ci render training


ARGO_SECTION = f"""
transport: server
server_url: https://argo.example.com
image: {IMAGE}
checkpoint_uri: s3://ckpt/tiny
gpus_per_node: 2
"""


def test_render_prints_the_workflow(tiny_repo: Path) -> None:
    _write_config(tiny_repo, ARGO_SECTION)
    subprocess.run(["git", "remote", "add", "origin", "https://x-access-token:ghs_SECRET@github.com/acme/tiny.git"],
                   cwd=tiny_repo, check=True)
    sha = commit(tiny_repo, "train on argo")
    proc = cli(tiny_repo, "render", "training", "--model", "tiny", "--nodes", "2", "--pr", "12")
    assert proc.returncode == 0, proc.stderr
    assert "ghs_SECRET" not in proc.stdout + proc.stderr and "x-access-token" not in proc.stdout
    wf = YAML(typ="safe").load(proc.stdout)
    assert not schema_errors(wf), schema_errors(wf)
    assert wf == _expected_render(sha)
    again = cli(tiny_repo, "render", "training", "--model", "tiny", "--nodes", "2", "--pr", "12")
    assert again.stdout == proc.stdout, "the same commit renders the same Workflow"

    single = YAML(typ="safe").load(cli(tiny_repo, "render", "training", "-m", "tiny").stdout)
    assert single["spec"]["workflowTemplateRef"]["name"] == TORCHRUN
    assert single["metadata"]["labels"]["mlops-ci.dev/pr"] == "none"
    assert not schema_errors(single)


def _expected_render(sha: str) -> dict:
    name = workflow_name("acme/tiny", 12, sha, "tiny")
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {
            "name": name, "namespace": "mlops-ci",
            "labels": {"app.kubernetes.io/managed-by": "mlops-ci", "mlops-ci.dev/repository": "acme.tiny",
                       "mlops-ci.dev/pr": "12", "mlops-ci.dev/head-sha": sha, "mlops-ci.dev/model": "tiny"},
            "annotations": {"mlops-ci.dev/repository": "acme/tiny", "mlops-ci.dev/nodes": "2",
                            "mlops-ci.dev/gpus-per-node": "2", "workflows.argoproj.io/title": "train tiny",
                            "workflows.argoproj.io/description": f"acme/tiny PR #12 at {sha[:12]}"}},
        "spec": {
            "workflowTemplateRef": {"name": JOBSET},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in {
                "repo": "https://github.com/acme/tiny.git", "revision": sha, "model": "tiny", "image": IMAGE,
                "config": ".mlops-ci.yaml", "workdir": ".", "script": "train.py", "nodes": "2",
                "nproc-per-node": "2", "gpus": "2", "checkpoint-uri": f"s3://ckpt/tiny/tiny/{name}"}.items()]},
            "activeDeadlineSeconds": 300}}


def test_render_refuses_bad_counts_and_missing_clone_url(tiny_repo: Path) -> None:
    _write_config(tiny_repo, ARGO_SECTION)
    commit(tiny_repo, "argo")
    proc = cli(tiny_repo, "render", "training", "--model", "tiny", "--nodes", "65")
    assert proc.returncode == 2 and "between 1 and 64" in proc.stderr
    proc = cli(tiny_repo, "render", "training", "--model", "tiny", "--gpus-per-node", "17")
    assert proc.returncode == 2 and "between 0 and 16" in proc.stderr
    proc = cli(tiny_repo, "render", "training", "--model", "tiny")  # no origin remote, no argo.repo
    assert proc.returncode == 3 and "argo.repo" in proc.stdout + proc.stderr


def test_render_does_not_import_heavy_modules(tiny_repo: Path) -> None:
    import sys

    _write_config(tiny_repo, ARGO_SECTION + "repo: https://github.com/acme/tiny.git\n")
    commit(tiny_repo, "argo")
    code = ("import sys, runpy; sys.argv = ['mlops-ci', 'render', 'training', '--model', 'tiny']\n"
            "try:\n    runpy.run_module('mlops_ci', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert e.code in (0, None), e.code\n"
            "heavy = [m for m in ('mlflow', 'torch', 'kubernetes', 'dvc', 'requests') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tiny_repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr, proc.stderr
