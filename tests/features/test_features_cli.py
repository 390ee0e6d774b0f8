"""Feature store as code through the real CLI, on examples/churn-features with real Feast (local
provider: file registry, SQLite online store, file offline store), real MLflow, git and DVC.

main trains churn v1 on get_historical_features and promotes it to staging, which first applies the
features to staging's registry and materialises them. Then, as pull requests: a field added (the
plan shown, churn retrained, base and head feature data compared), a field removed that churn reads
(fail, churn named), a versioned view instead (pass); skew planted in staging's online store; a
failing apply that stops a promotion; and a rollback that names the feature repository's commit.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, cli, commit, dvc, git

from mlops_ci.config import load_config
from mlops_ci.workspace import Workspace

EXAMPLE = ROOT / "examples" / "churn-features"
BILLING = "feature_repo/data/customer_billing.parquet"
DEFINITIONS = "feature_repo/definitions.py"
LATE = '        Field(name="late_payments", dtype=Int64),\n'


def last_month() -> str:
    """The last snapshot's month: within the views' ttl (120 days) of today, whenever the tests run."""
    first = datetime.now(UTC).date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def generate(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "generate_data.py", "--month", last_month(), *args], cwd=repo, check=True,
                   capture_output=True)


def record(repo: Path) -> dict:
    return json.loads((repo / ".mlops-ci" / "record.json").read_text())


def gitops_head(repo: Path) -> str:
    return git(repo / ".mlops-ci" / "gitops.git", "rev-parse", "main")


def gitops_message(repo: Path) -> str:
    return git(repo / ".mlops-ci" / "gitops.git", "log", "-1", "--format=%B", "main")


def alias(repo: Path, name: str = "staging") -> str:
    from mlops_ci.backends.tracking import tracking_for

    ws = Workspace.from_config(load_config(repo / ".mlops-ci.yaml"))
    found = tracking_for(ws).version_by_alias("churn", name)
    return found.version if found else ""


def version_tags(repo: Path, version: str) -> dict:
    from mlops_ci.backends.tracking import tracking_for

    ws = Workspace.from_config(load_config(repo / ".mlops-ci.yaml"))
    return tracking_for(ws).get_version("churn", version).tags


def branch(repo: Path, name: str, *, skew: bool = False) -> None:
    """A pull request's branch from main; the scratch store's skew check (shown on main's run) off
    unless ``skew``, as a user may turn it off: it costs a materialisation per new service version."""
    git(repo, "checkout", "--quiet", "main")
    git(repo, "checkout", "--quiet", "-b", name)
    if not skew:
        config = repo / ".mlops-ci.yaml"
        config.write_text(config.read_text().replace("  skew: {sample: 50}", "  skew: {sample: 50, enabled: false}"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The example as its own repository on main (entity tables tracked by DVC): churn v1 trained on
    the store's data and promoted to staging, the features applied and materialised there first."""
    from conftest import SHARED_CACHE

    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as mp:
        home = base / "features-home"
        home.mkdir(exist_ok=True)
        for key, value in {"HOME": str(home), "XDG_CACHE_HOME": str(base / "xdg-cache"), "GIT_CONFIG_NOSYSTEM": "1",
                           "DVC_NO_ANALYTICS": "1", "MLOPS_CI_CACHE_DIR": str(SHARED_CACHE),
                           "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
                           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}.items():
            mp.setenv(key, value)
        for key in ("CI", "MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITHUB_EVENT_PATH"):
            mp.delenv(key, raising=False)
        repo = tmp_path_factory.mktemp("churn-features") / "repo"
        shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".mlops-ci", "__pycache__", "*.parquet", "*.db"))
        generate(repo)
        git(repo, "init", "--quiet", "--initial-branch=main")
        dvc(repo, "init", "--quiet")
        dvc(repo, "add", "--quiet", "data/train_entities.parquet", "data/eval_entities.parquet")
        commit(repo, "churn on churn_v1")
        run = cli(repo, "run")
        assert run.returncode == 0, run.stderr[-3000:]
        promote = cli(repo, "promote", "--model", "churn", "--env", "staging")
        assert promote.returncode == 0, promote.stderr[-3000:]
        yield repo, record(repo), promote


def test_main_trains_on_the_store_s_data_and_the_promotion_applies_the_features_first(served):
    repo, rec, promote = served
    f = rec["features"]
    assert f["changed"] is False and f["readers"] == {"churn": "churn_v1"}
    data = {d["role"]: d for d in f["data"]}
    assert (data["train"]["head_rows"], data["eval"]["head_rows"]) == (2400, 600)
    assert data["train"]["head_id"].startswith("feat:") and data["train"]["path"] == "data/train.parquet"
    # what train.py read is what get_historical_features answered: the entity rows in their order
    frame = pd.read_parquet(repo / "data" / "train.parquet")
    entities = pd.read_parquet(repo / "data" / "train_entities.parquet")
    assert list(frame["customer_id"]) == list(entities["customer_id"]) and "monthly_charges" in frame
    assert f["skew"][0]["checked"] == 50 and f["skew"][0]["mismatch_count"] == 0
    assert rec["models"]["churn"]["results"]["train"]["status"] == "succeeded"
    # apply (and materialise) before the commit, then the commit with the feature lineage
    out = promote.stdout
    assert out.index("applied the feature repository") < out.index("promoted churn v1 to staging")
    assert "materialized customer_billing, customer_profile" in out
    assert (repo / ".mlops-ci/features/staging/registry.db").is_file()
    message = gitops_message(repo)
    commit_sha = git(repo, "rev-parse", "HEAD")
    assert f"Features-Commit: {commit_sha}" in message
    assert f"Feature-Service: churn_v1@{f['services']['churn_v1']}" in message
    manifest = (repo / ".mlops-ci" / "gitops.git")
    isvc = git(manifest, "show", "main:environments/staging/churn/inferenceservice.yaml")
    assert f"mlops-ci.dev/feature-service: churn_v1@{f['services']['churn_v1']}" in isvc
    tags = version_tags(repo, "1")
    assert tags["mlops_ci.features.commit"] == commit_sha and tags["mlops_ci.data.train"] == data["train"]["head_id"]


def test_a_field_added_is_planned_retrains_churn_and_a_failing_apply_stops_its_promotion(served):
    repo, _, _ = served
    branch(repo, "pr/discount")
    generate(repo, "--discount")
    path = repo / DEFINITIONS
    path.write_text(path.read_text().replace(LATE, LATE + '        Field(name="discount", dtype=Float64),\n'))
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("late_payments]", "late_payments, discount]"))
    pr_head = commit(repo, "billing: discount")
    run = cli(repo, "run")
    assert run.returncode == 0, run.stderr[-3000:]
    rec = record(repo)
    f = rec["features"]
    assert f["changed"] is True
    changes = {(c["kind"], c["name"]): c for c in f["changes"]}
    assert changes[("view", "customer_billing")]["details"][0] == "field discount added (Float64)"
    assert changes[("view", "customer_billing")]["breaking"] == [] and not f["findings"]
    plan = f["plans"][0]
    assert plan["env"] == "staging" and plan["counts"] == {"UPDATE": 2}
    assert "~ feature view customer_billing" in plan["registry_diff"] and "discount" in plan["registry_diff"]
    assert "seconds:" not in plan["registry_diff"]  # Feast's own timestamps are not a change
    entry = rec["models"]["churn"]
    assert "feature view customer_billing changed" in entry["plan"]["reasons"]
    # the base's and the head's data from the store, compared as files are
    checks = entry["results"]["check"]
    assert {(d["role"], d["base_rows"], d["head_rows"]) for d in checks["datasets"]} == {
        ("train", 2400, 2400), ("eval", 600, 600)}
    assert any("`discount` was added" in x["message"] or "discount" in x["message"] for x in checks["findings"])
    assert entry["results"]["train"]["status"] == "succeeded" and entry["results"]["register"]["version"] == "2"
    report = (repo / ".mlops-ci" / "report.md").read_text()
    assert "### ✅ Features: `feature_repo`" in report and "feast plan against staging's registry" in report
    assert "Models this change retrains:" in report
    (Path(repo.parent) / "report.md").write_text(report)  # kept for a look at what the reviewer sees

    # merged: staging's registry is broken, so the apply fails and nothing ships
    git(repo, "checkout", "--quiet", "main")
    git(repo, "merge", "--quiet", "--ff-only", "pr/discount")
    registry = repo / ".mlops-ci/features/staging/registry.db"
    kept = registry.read_bytes()
    registry.write_bytes(b"not a registry")
    before = gitops_head(repo)
    failed = cli(repo, "promote", "--model", "churn", "--env", "staging")
    assert failed.returncode == 5, failed.stdout + failed.stderr
    assert "feast apply to staging's registry failed" in failed.stderr and "nothing was promoted" in failed.stderr
    assert gitops_head(repo) == before and alias(repo) == "1"
    registry.write_bytes(kept)
    done = cli(repo, "promote", "--model", "churn", "--env", "staging")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "promoted churn v2 to staging" in done.stdout and alias(repo) == "2"
    # discount is new on rows older than the last materialisation: incremental alone would serve it empty
    assert "(customer_billing over their whole ttl: new or changed schema)" in done.stdout
    clean = cli(repo, "features", "skew", "--env", "staging")  # with that, the new field is served online
    assert clean.returncode == 0 and "0 mismatch(es)" in clean.stdout, clean.stdout + clean.stderr
    assert f"Features-Commit: {pr_head}" in gitops_message(repo)

    # a version trained with other feature definitions is not promoted from this checkout
    other = cli(repo, "promote", "--model", "churn", "--env", "staging", "--version", "1")
    assert other.returncode == 4, other.stdout + other.stderr
    assert "churn was trained with feature_repo at" in other.stderr and "differs" in other.stderr

    # a rollback names the feature repository's commit the restored version was trained with
    back = cli(repo, "rollback", "--model", "churn", "--env", "staging", "--reason", "discount misbehaves")
    assert back.returncode == 0, back.stderr[-3000:]
    v1_commit = version_tags(repo, "1")["mlops_ci.features.commit"]
    assert f"churn v1 was trained with the feature repository at {v1_commit}" in back.stdout
    assert f"Features-Commit: {v1_commit}" in gitops_message(repo)


def test_a_field_removed_that_served_churn_reads_fails_naming_it_and_a_versioned_view_passes(served):
    repo, _, _ = served
    branch(repo, "pr/drop-late-payments")
    path = repo / DEFINITIONS
    original = path.read_text()
    path.write_text(original.replace(LATE, ""))
    commit(repo, "billing: drop late_payments")
    # the pull request's run fails, and nothing is trained, registered or planned for deployment
    run = cli(repo, "run")
    assert run.returncode == 1, run.stdout + run.stderr[-2000:]
    assert ("mlops-ci: features: feature view customer_billing: field late_payments removed; churn reads it through "
            "churn_v1 and is served in staging") in run.stderr
    assert "customer_billing_v2" in run.stderr  # the way out is named
    f = record(repo)["features"]
    assert [x["status"] for x in f["findings"]] == ["fail"] and "- field late_payments (INT64)" in f["plans"][0][
        "registry_diff"]
    entry = record(repo)["models"]["churn"]["results"]
    assert entry["train"]["status"] == "skipped" and entry["train"]["skip_reason"].startswith(
        "the feature checks failed: feature view customer_billing: field late_payments removed")
    assert "register" not in entry and "deployment" not in entry

    branch(repo, "pr/billing-v2")
    path.write_text(original + '''
customer_billing_v2 = FeatureView(
    name="customer_billing_v2",
    entities=[customer],
    ttl=timedelta(days=120),
    schema=[Field(name="monthly_charges", dtype=Float64), Field(name="support_calls", dtype=Int64)],
    online=True,
    source=billing_source,
)

churn_v2 = FeatureService(name="churn_v2", features=[customer_profile, customer_billing_v2])
''')
    config = repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("service: churn_v1 ", "service: churn_v2 "))
    commit(repo, "billing v2 beside v1; churn moves to churn_v2")
    versioned = cli(repo, "features", "plan")
    assert versioned.returncode == 0, versioned.stdout + versioned.stderr
    assert "view customer_billing_v2 added" in versioned.stdout and "fail:" not in versioned.stdout
    assert "+ feature view customer_billing_v2" in versioned.stdout
    assert "affected: churn (churn_v2): feature view customer_billing_v2 added" in versioned.stdout


def test_new_labels_in_an_entity_table_retrain_the_model(served):
    repo, _, _ = served
    branch(repo, "pr/relabel")
    path = repo / "data" / "train_entities.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame.index[:100], "churned"] = 1 - frame.loc[frame.index[:100], "churned"]
    frame.to_parquet(path, index=False)
    dvc(repo, "add", "--quiet", "data/train_entities.parquet")
    commit(repo, "relabel 100 customers")
    planned = cli(repo, "run", "--dry-run")
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert ("churn: would run check, train, evaluate: train data from feature service churn_v1 changed: "
            "data/train.parquet (entity table data/train_entities.parquet, or the views it reads)") in planned.stdout


def test_skew_planted_in_staging_s_online_store_is_found(served):
    repo, _, _ = served
    git(repo, "checkout", "--quiet", "main")
    # a day's new billing rows land in the offline store and are never materialised
    path = repo / BILLING
    kept = path.read_bytes()
    frame = pd.read_parquet(path)
    late = frame[frame["event_timestamp"] == frame["event_timestamp"].max()].copy()
    late["monthly_charges"] += 5.0
    late["event_timestamp"] += pd.Timedelta(days=1)
    late["created"] += pd.Timedelta(days=1)
    pd.concat([frame, late]).to_parquet(path, index=False)
    try:
        skewed = cli(repo, "features", "skew", "--env", "staging")
    finally:
        path.write_bytes(kept)
    assert skewed.returncode == 1, skewed.stdout + skewed.stderr
    assert re.search(r"churn_v1 in staging: 50 entities, \d+ features, 50 mismatch\(es\)", skewed.stdout), skewed.stdout
    assert "customer_billing:monthly_charges for {'customer_id':" in skewed.stdout
