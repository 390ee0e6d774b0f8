"""The fan-out the Argo CronWorkflow runs with `shards > 1`, through the CLI: `monitor shards`,
one `monitor profile` per shard (separate processes, as separate pods), `monitor merge`; the
merged record grades the windows exactly as one `mlops-ci monitor` process does."""

from __future__ import annotations

import json

import pytest
from conftest import cli
from monitor_support import UNTIL, with_monitoring, write_week

from mlops_ci.records.monitor import load_monitor_record

pytestmark = pytest.mark.slow


def run(repo, *args):
    proc = cli(repo, "monitor", *args, "--model", "tiny", "--env", "staging", "--until", UNTIL.isoformat(),
               "--windows", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_profiles_of_shards_merge_into_what_one_process_finds(champion_repo, tmp_path):
    repo = champion_repo
    with_monitoring(repo, logs="logs", min_rows=100)
    write_week(repo, repo / "logs")
    ids = json.loads(run(repo, "shards", "--shards", "3").stdout.strip().splitlines()[-1])
    assert ids == [0, 1, 2]
    for k in ids:
        run(repo, "profile", "--shard", str(k), "--of", "3", "--out", str(tmp_path / "profiles" / f"{k}.json"))
    run(repo, "merge", "--profiles", str(tmp_path / "profiles"), "--no-retrain", "--no-issue", "--out",
        str(tmp_path / "merged.json"))
    run(repo, "--no-retrain", "--no-issue", "--out", str(tmp_path / "single.json"))
    merged, single = load_monitor_record(tmp_path / "merged.json"), load_monitor_record(tmp_path / "single.json")
    assert merged.traffic == single.traffic and merged.traffic.requests == 1200
    assert [(w.start, w.rows, w.requests, w.status) for w in merged.windows] == \
        [(w.start, w.rows, w.requests, w.status) for w in single.windows]
    for a, b in zip(merged.windows, single.windows, strict=True):
        assert {(f.column, f.metric, f.status) for f in a.findings} == \
            {(f.column, f.metric, f.status) for f in b.findings}
        for x, y in zip(a.columns, b.columns, strict=True):
            assert x.column == y.column and x.status == y.status
            for score in ("psi", "js", "wasserstein"):
                got, want = getattr(x, score), getattr(y, score)
                assert got == want if want is None else got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert merged.windows[-1].status == "fail"
    # a profile from another run is refused, not merged
    doc = json.loads((tmp_path / "profiles" / "0.json").read_text())
    (tmp_path / "profiles" / "0.json").write_text(json.dumps({**doc, "until": "2020-01-01T00:00:00+00:00"}))
    proc = cli(repo, "monitor", "merge", "--profiles", str(tmp_path / "profiles"), "--model", "tiny", "--env",
               "staging", "--until", UNTIL.isoformat(), "--windows", "4", "--no-retrain", "--no-issue")
    assert proc.returncode == 4 and "from different runs" in proc.stderr
