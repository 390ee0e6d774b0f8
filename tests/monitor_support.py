"""Served traffic for the monitoring tests, written in KServe's logger storage layout: one request
per row, answered by the tiny champion's own weights (as MLServer would answer it)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from conftest import commit, tiny_frame

from mlops_ci.monitor.logs import Entry
from mlops_ci.monitor.store import write_batch
from mlops_ci.runtime import v2

UNTIL = datetime(2026, 12, 4, tzinfo=UTC)
DAY = timedelta(days=1)


def champion_weights(repo: Path) -> dict:
    return json.loads(next((repo / ".mlops-ci").rglob("weights.json")).read_text())


def day_of_traffic(root, day: datetime, rows, weights, *, marshaller: str = "json", endpoint: str = "",
                   namespace: str = "tiny-staging", every: timedelta = timedelta(seconds=30)) -> None:
    """One request per row, answered by the champion's own weights (as it would be served); with an
    ``endpoint`` (KServe's ``canary`` or ``default``) every record names it, and ids carry it, so two
    endpoints' traffic on one day never shares an id."""
    batch = []
    for i, (_, row) in enumerate(rows.iterrows()):
        one = row.to_frame().T.astype({"x1": float, "x2": float})
        score = 1 / (1 + np.exp(-(weights["w"][0] * one["x1"].iloc[0] + weights["w"][1] * one["x2"].iloc[0]
                                  + weights["b"])))
        rid, when = f"{endpoint}{'-' if endpoint else ''}{day:%m%d}-{i:04d}", day + every * i
        batch.append(Entry(id=rid, kind="request", body=v2.request_json(one).encode(), time=when,
                           inference_service="tiny", component="predictor", endpoint=endpoint))
        batch.append(Entry(id=rid, kind="response", time=when, inference_service="tiny", component="predictor",
                           endpoint=endpoint,
                           body=json.dumps({"outputs": [{"name": "p", "shape": [1], "datatype": "FP64",
                                                         "data": [float(score)]}]}).encode()))
    for start in range(0, len(batch), 50):  # the agent's batches, written when their last record came
        path = write_batch(root, batch[start:start + 50], namespace=namespace, marshaller=marshaller)
        written = batch[start:start + 50][-1].time.timestamp()
        os.utime(path, (written, written))  # the Parquet marshaller has no time per record: the object's


REFRESH = '''"""Refresh the training data for the window mlops-ci names (a stand-in for `dvc repro fetch-data`)."""
import os
start, end = os.environ["MLOPS_CI_WINDOW_START"], os.environ["MLOPS_CI_WINDOW_END"]
with open("data/train.csv", "a") as fh:
    fh.write(f"9.9,0.0,red,1\\n")  # one row per refresh: the branch gets a new commit each time
with open("data/refreshed.txt", "w") as fh:
    fh.write(f"{start} {end} token={'GITHUB_TOKEN' in os.environ}\\n")
'''


# tiny's eval set has 150 rows: its prediction profile is a small reference, so the default
# levels would flag sampling noise in a calm window of 300 rows; the planted shift is far above these
LOOSER = {"psi": {"fail": 1.0}, "js": {"fail": 0.4}, "wasserstein": {"fail": 0.6}}


def with_monitoring(repo, **section) -> None:
    path = repo / ".mlops-ci.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["models"]["tiny"]["monitoring"] = {"drift": LOOSER, **section}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (repo / "refresh.py").write_text(REFRESH)
    commit(repo, "monitoring")


def write_week(repo, logs, *, marshaller="json") -> None:
    weights = champion_weights(repo)
    features = ["x1", "x2", "color"]
    day_of_traffic(logs, UNTIL - 4 * DAY, tiny_frame(300, seed=21)[features], weights, marshaller=marshaller)
    day_of_traffic(logs, UNTIL - 3 * DAY, tiny_frame(300, seed=22)[features], weights, marshaller=marshaller)
    day_of_traffic(logs, UNTIL - 2 * DAY, tiny_frame(300, seed=23, shift=2.0)[features], weights,
                   marshaller=marshaller)
    day_of_traffic(logs, UNTIL - DAY, tiny_frame(300, seed=24, shift=3.0)[features], weights, marshaller=marshaller)
