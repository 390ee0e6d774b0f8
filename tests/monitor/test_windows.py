"""Served traffic (written in KServe's storage layout, read back and paired) against the reference
stored with the champion at registration: drift found where planted and not elsewhere, too little
traffic is insufficient data, never pass."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import tiny_frame
from monitor_support import DAY, UNTIL, champion_weights, day_of_traffic

from mlops_ci.config.monitoring import MonitoringConfig
from mlops_ci.monitor.logs import read_objects
from mlops_ci.monitor.traffic import pair
from mlops_ci.monitor.windows import INSUFFICIENT, analyse, split

pytestmark = pytest.mark.slow


def test_drift_is_found_where_planted_and_too_little_traffic_is_insufficient(champion_repo, tmp_path):
    from mlops_ci.config import load_config
    from mlops_ci.pipeline import default_backends
    from mlops_ci.stages.reference import load_reference
    from mlops_ci.workspace import Workspace

    tracking = default_backends(Workspace.from_config(load_config(champion_repo / ".mlops-ci.yaml"))).tracking
    v1 = tracking.version_by_alias("tiny", "staging")
    reference = load_reference(tracking, v1.run_id)
    weights = champion_weights(champion_repo)
    logs = tmp_path / "logs"
    features = ["x1", "x2", "color"]
    # as evaluated: the very rows of the champion's eval set (the first 150 of the data), three times
    # over, so its scores are the reference's own and the calm window cannot fail on sampling noise:
    # fresh rows (or training rows) against a reference of only 150 predictions once gave W/σ 0.30-0.33
    as_evaluated = pd.concat([tiny_frame(600, seed=0).iloc[:150][features]] * 3)
    day_of_traffic(logs, UNTIL - 3 * DAY, as_evaluated, weights)
    day_of_traffic(logs, UNTIL - 2 * DAY, tiny_frame(400, seed=12, shift=2.5)[features], weights)  # x1 moved
    day_of_traffic(logs, UNTIL - DAY, tiny_frame(5, seed=13)[features], weights)  # a quiet day
    traffic = pair(read_objects(str(logs)))
    assert traffic.requests == 855 and traffic.unanswered == 0 and not traffic.corrupt
    windows = [analyse(reference, start, end, rows, MonitoringConfig(min_rows=50))
               for start, end, rows in split(traffic.frame, until=UNTIL, width=DAY, count=3)]
    calm, shifted, quiet = windows
    flagged = lambda w: {(f.dataset, f.column) for f in w.findings if f.status == "fail"}
    assert calm.status != "fail" and calm.rows == 450 and not flagged(calm)
    assert shifted.status == "fail" and ("traffic", "x1") in flagged(shifted)
    assert ("traffic", "x2") not in flagged(shifted) and ("traffic", "color") not in flagged(shifted)
    assert ("predictions", "prediction") in flagged(shifted)  # the scores moved with x1
    assert quiet.status == INSUFFICIENT and quiet.rows == 5 and not quiet.findings
