"""`mlops-ci monitor` through the CLI, on the tiny champion promoted to staging: its traffic in
KServe's storage layout (JSON and Parquet marshallers), labels that arrive later, the issue's
Markdown written locally, and the retraining branch opened once per episode in the repository
(the caller's checkout untouched)."""

from __future__ import annotations

import json
import sys

import pytest
import yaml
from conftest import cli, git, tiny_frame
from monitor_support import DAY, UNTIL, with_monitoring, write_week

from mlops_ci.records.monitor import load_monitor_record

pytestmark = pytest.mark.slow

def monitor(repo, *args):
    return cli(repo, "monitor", "--model", "tiny", "--env", "staging", "--until", UNTIL.isoformat(), "--windows",
               "4", *args)


def test_drift_persists_opens_one_retraining_branch_and_writes_the_issue(champion_repo):
    repo = champion_repo
    with_monitoring(repo, logs="logs", min_rows=100,
                    retrain={"after": 2, "command": [sys.executable, "refresh.py"]})
    write_week(repo, repo / "logs")
    head = git(repo, "rev-parse", "HEAD").strip()
    proc = monitor(repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json")
    assert record.windows[0].status in ("pass", "warn") and record.windows[1].status in ("pass", "warn")
    assert not [f for w in record.windows for f in w.findings if f.check == "rows"]  # volume is not graded
    assert [w.rows for w in record.windows] == [300, 300, 300, 300]
    assert record.windows[-1].status == "fail" and record.windows[-2].status == "fail"
    failing = {f.column for f in record.windows[-1].findings if f.status == "fail"}
    assert "x1" in failing and "x2" not in failing and "color" not in failing
    assert any(f.check == "range" and f.column == "x1" for f in record.windows[-1].findings)
    assert record.version == "1" and record.reference == "stored" and record.traffic.requests == 1200
    assert record.retrain.action == "opened" and record.retrain.branch == "mlops-ci/retrain/tiny/2026-12-04"
    assert "drift at fail in 2 consecutive window(s) up to 2026-12-04T00:00" in record.retrain.reason
    # the branch holds the refreshed data; the checkout is as it was
    assert git(repo, "rev-parse", "HEAD").strip() == head and not git(repo, "status", "--porcelain", "--",
                                                                       "data").strip()
    changed = git(repo, "diff", "--name-only", f"main...{record.retrain.branch}").split()
    assert sorted(changed) == ["data/refreshed.txt", "data/train.csv"]
    dates = git(repo, "show", f"{record.retrain.branch}:data/refreshed.txt").split()
    assert dates == ["2026-12-02T00:00:00+00:00", "2026-12-04T00:00:00+00:00", "token=False"]
    issue = (repo / ".mlops-ci" / "monitor" / "tiny-staging.md").read_text()
    assert issue.startswith("<!-- mlops-ci:monitor model=tiny env=staging -->")
    assert "❌" in issue and "x1" in issue and "xychart-beta" in issue and "mlops-ci/retrain/tiny" in issue
    assert "retraining: opened" in proc.stdout

    # the next run updates the same branch: one per episode
    proc = monitor(repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json")
    assert again.retrain.action == "updated" and again.retrain.branch == record.retrain.branch
    branches = git(repo, "branch", "--list", "mlops-ci/retrain/*").split()
    assert branches == ["mlops-ci/retrain/tiny/2026-12-04"]
    assert git(repo, "rev-list", "--count", f"main..{record.retrain.branch}").strip() == "2"

    # once merged, the episode is over: a run without drift needs nothing
    git(repo, "merge", "--quiet", "--no-edit", record.retrain.branch)
    proc = monitor(repo, "--until", (UNTIL - 2 * DAY).isoformat(), "--windows", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    calm = load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json")
    assert calm.status in ("pass", "warn") and calm.retrain.action == "not needed"


def test_parquet_logs_labels_and_too_little_traffic(champion_repo, tmp_path):
    repo = champion_repo
    labels = tmp_path / "labels"
    labels.mkdir()
    with_monitoring(repo, logs=str(tmp_path / "logs"), min_rows=100, window="1d",
                    labels={"path": str(labels / "*.csv"), "id_column": "request_id", "label": "churned"})
    write_week(repo, tmp_path / "logs", marshaller="parquet")
    assert list((tmp_path / "logs").rglob("*.parquet"))
    # labels for the first day only, arriving later, keyed by request id
    truth = tiny_frame(300, seed=21)["label"]
    (labels / "day1.csv").write_text("request_id,churned\n" + "".join(
        f"{(UNTIL - 4 * DAY):%m%d}-{i:04d},{y}\n" for i, y in enumerate(truth)))
    # two labels for a one-row request: which is right cannot be told, so neither is used
    (labels / "late.csv").write_text(f"request_id,churned\n{(UNTIL - 4 * DAY):%m%d}-0007,1\n")
    proc = monitor(repo, "--no-retrain", "--until", (UNTIL + DAY).isoformat(), "--windows", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json")
    first, last = record.windows[0], record.windows[-1]
    assert first.labelled == 299 and {m.name for m in first.metrics} == {"roc_auc", "log_loss", "accuracy"}
    assert "1 request(s) have a different number of labels than rows" in record.problems[0]
    assert "_label" not in {c.column for w in record.windows for c in w.columns}
    auc = next(m for m in first.metrics if m.name == "roc_auc")
    assert auc.value > 0.6 and auc.status == "pass" and auc.gate_min == 0.6
    assert record.windows[1].labelled == 0 and not record.windows[1].metrics
    assert last.status == "insufficient data" and last.rows == 0  # nothing served after the week
    assert record.retrain is None
    assert "insufficient data" in proc.stdout


def test_a_corrupt_segment_is_skipped_with_a_finding_and_nothing_served_is_refused(champion_repo):
    repo = champion_repo
    with_monitoring(repo, logs="logs", min_rows=100)
    write_week(repo, repo / "logs")
    bad = repo / "logs" / "tiny-staging" / "tiny" / "predictor" / "zz-request.json"
    bad.write_bytes(b'{"id": "x", "reqType": "org.kubeflow.serving.inference.request", "bytes": "%%%"}')
    proc = monitor(repo, "--no-retrain")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json")
    assert record.traffic.corrupt == 1 and record.skipped[0].path.endswith("zz-request.json")
    assert "not base64" in record.skipped[0].reason and record.traffic.requests == 1200
    issue = (repo / ".mlops-ci" / "monitor" / "tiny-staging.md").read_text()
    assert "1 log object(s) skipped" in issue
    # an environment that serves nothing of the model: a clear refusal
    doc = yaml.safe_load((repo / ".mlops-ci.yaml").read_text())
    doc["environments"]["prod"] = {"namespace": "tiny-prod"}
    (repo / ".mlops-ci.yaml").write_text(yaml.safe_dump(doc))
    proc = cli(repo, "monitor", "--model", "tiny", "--env", "prod")
    assert proc.returncode != 0 and "serves no version of tiny in prod" in proc.stderr
    assert json.loads((repo / ".mlops-ci" / "monitor" / "tiny-staging.json").read_text())["kind"] == "monitor"


def test_a_version_registered_without_a_reference_gets_one_computed_from_its_lineage(champion_repo,
                                                                                      tmp_path_factory):
    """Versions registered before references were kept: computed once from the data revisions in
    the version's lineage tags, stored with its run, then read like any other."""
    repo = champion_repo
    with_monitoring(repo, logs="logs", min_rows=100)
    write_week(repo, repo / "logs")
    from mlops_ci.config import load_config
    from mlops_ci.pipeline import default_backends
    from mlops_ci.workspace import Workspace

    tracking = default_backends(Workspace.from_config(load_config(repo / ".mlops-ci.yaml"))).tracking
    run_id = tracking.get_version("tiny", "1").run_id
    stored = tracking.load_text(run_id, "mlops_ci/reference.json")
    # the session's shared champion keeps its artifacts outside this copy: put them back after
    artifact = next(p for p in (tmp_path_factory.getbasetemp() / "flow-champion").rglob("reference.json")
                    if run_id in p.parts)
    artifact.unlink()
    try:
        (repo / "data" / "eval.csv").write_text("x1,x2,color,label\n")  # the work tree's data is not used
        proc = monitor(repo, "--dry-run")  # grades, says, and writes nothing: no reference stored, no record
        assert proc.returncode == 0 and "dry run: the issue would be opened or updated" in proc.stdout
        assert tracking.load_text(run_id, "mlops_ci/reference.json") is None
        assert not (repo / ".mlops-ci" / "monitor").exists()
        proc = monitor(repo, "--no-retrain")
        assert proc.returncode == 0, proc.stderr[-3000:]
        record = load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json")
        assert record.reference == "computed" and record.windows[-1].status == "fail"
        assert json.loads(tracking.load_text(run_id, "mlops_ci/reference.json"))["data"] == \
            json.loads(stored)["data"]
        proc = monitor(repo, "--no-retrain")
        assert load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json").reference == "stored"
    finally:
        artifact.write_text(stored)


def test_a_failing_refresh_fails_the_run_and_leaves_no_branch(champion_repo):
    repo = champion_repo
    with_monitoring(repo, logs="logs", min_rows=100,
                    retrain={"after": 2, "command": [sys.executable, "-c", "raise SystemExit('no warehouse today')"]})
    write_week(repo, repo / "logs")
    for _ in range(2):  # and the next run tries again from scratch
        proc = monitor(repo)
        assert proc.returncode == 5, proc.stderr[-3000:]
        record = load_monitor_record(repo / ".mlops-ci" / "monitor" / "tiny-staging.json")
        assert record.retrain.action == "failed" and "no warehouse today" in record.retrain.reason
        assert git(repo, "branch", "--list", "mlops-ci/retrain/*").strip() == ""
