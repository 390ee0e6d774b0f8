"""Payload logging (`serving.logging`): KServe's predictor.logger in the promoted InferenceService.

The golden files and the CRD check of each rendering are in test_serving.py (VARIANTS); here:
what the config refuses and where, what a promotion writes and replaces in a file that already
has a logger, and a promotion through the CLI that validates the logger against the KServe CRD.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import CONTRACTS, cli, commit, kserve_errors, refused_at
from conftest import tiny_config_serving as write_config
from pydantic import TypeAdapter

from mlops_ci.config import load_config
from mlops_ci.config.schema import ServingConfig
from mlops_ci.errors import ConfigError
from mlops_ci.serving import kserve, yamlio

VERSION = kserve.ServedVersion(model="churn", version="7", artifact_uri="s3://models/churn/m-7/artifacts",
                               digest="sha256:" + "d" * 64, env="prod", namespace="churn-prod")
STORAGE = ("logging:\n  url: s3://acme-logs\n  marshaller: parquet\n  batch_size: 100\n"
           "  storage: {path: /logs/tiny, key: logger-credentials, parameters: {type: s3, region: eu-west-1}}")


@pytest.mark.parametrize(("logging", "line", "words"), [
    ("url: http://sink\nstorage: {path: /logs}", "storage:", "storage needs url to name the bucket"),
    ("storage: {path: /logs}", "storage:", "storage needs url to name the bucket"),
    ("url: s3://bucket", "url:", "is blob storage: add storage"),
    ("url: http://sink\nmarshaller: parquet", "marshaller:", "only applies to logging into storage"),
    ("url: http://sink\nbatch_size: 10", "batch_size:", "only applies to logging into storage"),
    ("url: s3://b\nstorage: {path: /l}\nbatch_interval: 5s", "batch_interval:", "needs batch_size above 1"),
    ("url: s3://b\nstorage: {path: /l}\nbatch_size: 5\nbatch_interval: 5 seconds", "batch_interval:",
     "is not a duration"),
    ("url: ftp://host/x", "url:", "is not a logger URL"),
    ("url: https://user:hunter22@sink/x", "url:", "holds credentials (not shown)"),
    ("url: https://sink/ingest?api_key=hunter22", "url:", "holds credentials (not shown)"),
    ("url: https://sink/ingest?token=ghp_" + "a" * 36, "url:", "holds credentials (not shown)"),
    ("url: s3://b\nstorage: {path: /l, parameters: {access_key_id: AKIAABCDEFGHIJKLMNOP}}", "storage:",
     "would put a credential in the manifest"),
    ("mode: everything", "mode:", "'all', 'request' or 'response'"),
    ("metadata_headers: ['x request id']", "metadata_headers:", "is not an HTTP header name"),
    ("url: s3://b\nstorage: {path: /l, parameters: {secret_access_key: abc}}", "storage:",
     "would put a credential in the manifest"),
    ("url: s3://b\nmarshaller: json\nstorage: {path: /l, parameters: {format: parquet}}", "storage:",
     "disagree: set marshaller only"),
    ("url: s3://b\nstorage: {path: /l, parameters: {format: avro}}", "storage:", "use marshaller: json or parquet"),
])
def test_a_logger_kserve_would_misread_is_refused_at_its_line(tmp_path, logging, line, words):
    path = write_config(tmp_path, "logging:\n" + "".join(f"  {x}\n" for x in logging.splitlines()))
    message = refused_at(path, line, words)
    assert "hunter22" not in message and "abc}" not in message and "AKIA" not in message  # never repeated


def test_the_deployment_kind_has_no_payload_logger(tmp_path):
    image = "ghcr.io/acme/server@sha256:" + "b" * 64
    path = write_config(tmp_path, f"kind: deployment\nimage: {image}\nlogging: {{url: http://sink}}")
    with pytest.raises(ConfigError, match="logging is KServe's payload logger and kind is deployment"):
        load_config(path)


def test_the_crd_refuses_what_the_config_never_writes():
    """The check a promotion runs would catch a logger KServe refuses (the CRD, not our model)."""
    serving = TypeAdapter(ServingConfig).validate_python({"logging": {"url": "http://sink"}})
    isvc = kserve.render(VERSION, serving)
    assert kserve_errors(isvc) == []
    isvc["spec"]["predictor"]["logger"]["mode"] = "everything"
    isvc["spec"]["predictor"]["logger"]["batchSize"] = "ten"
    assert len(kserve_errors(isvc)) == 2


def test_the_logger_is_written_whole_and_a_hand_written_one_is_left_alone():
    with_storage = TypeAdapter(ServingConfig).validate_python(
        {"logging": {"url": "s3://b", "storage": {"path": "/l", "parameters": {"type": "s3", "region": "x"}},
                     "batch_size": 10, "batch_interval": "5s"}})
    doc = yamlio.load(yamlio.dump(kserve.render(VERSION, with_storage)))
    # the config now logs CloudEvents: nothing of the storage logger survives (a merge would keep it)
    events = TypeAdapter(ServingConfig).validate_python({"logging": {"url": "http://sink", "mode": "response"}})
    yamlio.merge_owned(doc, kserve.owned_fields(VERSION, events))
    assert doc["spec"]["predictor"]["logger"] == {"mode": "response", "url": "http://sink"}
    assert list(doc["spec"]["predictor"]) == ["minReplicas", "maxReplicas", "logger", "model"]
    # a logger written by hand, with no serving.logging in the config, stays as it is
    yamlio.merge_owned(doc, kserve.owned_fields(VERSION, TypeAdapter(ServingConfig).validate_python({})))
    assert doc["spec"]["predictor"]["logger"] == {"mode": "response", "url": "http://sink"}


def gitops_file(repo: Path, path: str) -> dict:
    bare = repo / ".mlops-ci" / "gitops.git"
    text = subprocess.run(["git", "-C", str(bare), "show", f"main:{path}"], capture_output=True, text=True,
                          check=True).stdout
    return yamlio.load(text)


def test_a_promotion_through_the_cli_writes_the_logger_and_validates_it(champion_repo):
    crds = {"MLOPS_CI_CRDS": str(CONTRACTS / "kserve")}
    config = champion_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("    serving:\n", "    serving:\n" + "".join(
        f"      {x}\n" for x in STORAGE.splitlines()), 1))
    commit(champion_repo, "log every request to S3 as Parquet")
    done = cli(champion_repo, "promote", "--model", "tiny", "--env", "staging", env=crds)
    assert done.returncode == 0, done.stderr[-3000:]
    isvc = gitops_file(champion_repo, "environments/staging/tiny/inferenceservice.yaml")
    assert isvc["spec"]["predictor"]["logger"] == {
        "mode": "all", "url": "s3://acme-logs", "batchSize": 100,
        "storage": {"path": "/logs/tiny", "key": "logger-credentials",
                    "parameters": {"format": "parquet", "region": "eu-west-1", "type": "s3"}}}
    assert kserve_errors(isvc) == []
    # a region dropped from the config leaves the file; before it is committed, the dry run says
    # the lineage would not show it, and that the alias stays where it is
    config.write_text(config.read_text().replace(", region: eu-west-1", ""))
    dry = cli(champion_repo, "promote", "--model", "tiny", "--env", "staging", "--dry-run", env=crds)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "warning: .mlops-ci.yaml has uncommitted changes" in dry.stderr
    assert "would change 1 file(s) (alias 'staging' already names v1)" in dry.stdout, dry.stdout
    commit(champion_repo, "no region")
    again = cli(champion_repo, "promote", "--model", "tiny", "--env", "staging", env={"MLOPS_CI_CRDS": ""})
    assert again.returncode == 0, again.stderr[-3000:]
    assert "uncommitted" not in again.stderr
    # without the CRDs the structural check still runs, and the user is told what was not checked
    assert "note: not checked: CRD schema of InferenceService" in again.stdout, again.stdout
    assert "MLOPS_CI_CRDS is not set" in again.stdout
    parameters = gitops_file(champion_repo, "environments/staging/tiny/inferenceservice.yaml")[
        "spec"]["predictor"]["logger"]["storage"]["parameters"]
    assert parameters == {"format": "parquet", "type": "s3"}
    # a logger the CRD would refuse never reaches the config: `config validate` names the line
    config.write_text(config.read_text().replace("batch_size: 100", "batch_size: 100\n        batch_interval: 1 min"))
    bad = cli(champion_repo, "config", "validate")
    assert bad.returncode == 3 and "is not a duration KServe's agent reads" in bad.stderr, bad.stderr
