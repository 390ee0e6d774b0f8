"""A simulated week of served traffic for the demo, written exactly as KServe's payload logger
writes it to storage (the JSON marshaller, ``<logs>/<namespace>/<model>/predictor/<id>-request|response.json``).

The requests are simulated: customers drawn by the example's own data generator, one V2 request
per inference call as KServe's predictor receives them, with monthly charges that climb a little
more every day (a price change rolling out). The responses are real: the served version's own
predictions on those rows. The format is KServe's, so `mlops-ci monitor` reads it as it would
read a cluster's bucket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

PER_DAY = 300
DAYS = 7
STEP_PER_DAY = 9.0  # added to every monthly charge, per day of the week
BATCH = 100  # records per object, as the agent batches them


def simulate_week(repo: Path, logs: Path, *, model: str, namespace: str, label: str, until: datetime,
                  predict) -> int:
    """Write a week of requests and responses under ``logs``; returns the requests written.
    ``predict(frame) -> scores``: the served version's predictions."""
    import pandas as pd

    from mlops_ci.monitor.logs import Entry
    from mlops_ci.monitor.store import write_batch
    from mlops_ci.runtime import v2

    with tempfile.TemporaryDirectory(prefix="mlops-ci-demo-traffic-") as tmp:
        subprocess.run([sys.executable, "generate_data.py", "--snapshot", until.strftime("%Y-%m"), "--rows",
                        str(PER_DAY * DAYS * 5 // 4), "--seed", "7", "--price-increase", "12", "--new-plan",
                        "--eval-fraction", "0", "--out", tmp], cwd=repo, check=True, capture_output=True)
        customers = pd.read_csv(Path(tmp) / "train.csv")
    customers = v2.sendable(customers.drop(columns=[label]))  # a row with a missing value cannot travel
    written = 0
    for day in range(DAYS):
        start = until - timedelta(days=DAYS - day)
        rows = customers.iloc[day * PER_DAY:(day + 1) * PER_DAY].copy()
        rows["monthly_charges"] = (rows["monthly_charges"] + STEP_PER_DAY * day).round(2)
        scores = predict(rows)
        batch = []
        for i in range(len(rows)):
            one = rows.iloc[[i]]
            when = start + timedelta(seconds=i * 86_400 // max(len(rows), 1))
            ident = f"{start:%Y%m%d}-{i:05d}"
            body = json.dumps({"model_name": model, "outputs": [{"name": "output-1", "shape": [1], "datatype": "FP64",
                                                                 "data": [float(scores[i])]}]})
            batch += [Entry(id=ident, kind="request", body=v2.request_json(one).encode(), time=when,
                            inference_service=model, component="predictor", content_type="application/json"),
                      Entry(id=ident, kind="response", body=body.encode(), time=when, inference_service=model,
                            component="predictor", content_type="application/json")]
        for first in range(0, len(batch), 2 * BATCH):
            part = batch[first:first + 2 * BATCH]
            path = write_batch(logs, part, namespace=namespace, marshaller="json")
            stamp = part[-1].time.timestamp()
            os.utime(path, (stamp, stamp))  # written when the batch's last record came
        written += len(rows)
    return written


__all__ = ["DAYS", "PER_DAY", "simulate_week"]
