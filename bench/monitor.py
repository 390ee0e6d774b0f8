"""Benchmark: monitoring's reading of KServe payload logs, and the CloudEvents receiver.

Prints, in one run:
1. ``--requests`` logged requests (one row x 20 features each: 10 numeric, 10 categorical; each
   answered) in KServe's storage layout with the Parquet marshaller (10,000 records per object,
   requests and responses in separate objects), profiled into 2 daily windows against a reference
   and compared (``mlops_ci.monitor.stream``: one process, then 2 shards in 2 processes merged):
   time and peak RSS, against pandas reading the same files (``pd.read_parquet`` per object) in the
   same run (ratio);
2. the same for the JSON marshaller (``pd.read_json`` per object as the baseline);
3. the receiver (``python -m mlops_ci.monitor.receiver``, one process) taking ``--events`` binary
   CloudEvents from ``--senders`` keep-alive connections (an asyncio client in another process):
   sustained events/s (each acknowledged only once durable) and the receiver's peak RSS.

    python bench/monitor.py [--requests 10000000] [--events 20000] [--senders 64] [--marshallers parquet,json]

A fourth row per layout is the floor: reading the objects' ``bytes`` (pyarrow; orjson for JSON) and
base64-decoding them a whole object at a time with the SIMD decoder, in 2 processes, nothing else:
what any reader of this layout must do before it parses a body.

The logs are generated once per size into bench/.data/ (git-ignored). Goals (issue): 10M requests
in < 20 s on 2 cores under 1.5 GB; no slower than pandas reading the same files; the receiver
>= 5,000 events/s on one core with bounded memory.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(__file__).resolve().parent / ".data"
BATCH = 10_000
UNTIL = datetime(2026, 12, 3, tzinfo=UTC)
REQUEST, RESPONSE = "org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response"


def bodies(rng, n: int, shift: float):
    """n one-row V2 requests (the pandas codec, as mlops_ci.runtime.v2 writes them) and their responses,
    built with Arrow string kernels rather than json.dumps per row."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces, head = [], '{"parameters":{"content_type":"pd"},"inputs":['
    for i in range(10):
        values = pc.cast(pa.array(rng.normal(i + shift * (i == 0), 1 + i / 10, n).round(6)), pa.string())
        pieces += [f'{"," if i else ""}{{"name":"num{i}","shape":[1],"datatype":"FP64","data":[', values, "]}"]
    for i in range(10):
        k = 10 + 2 * i
        values = pa.array(np.char.add("cat_", rng.integers(0, k, n).astype(str)))
        pieces += [f',{{"name":"cat{i}","shape":[1],"datatype":"BYTES","data":["', values,
                   '"],"parameters":{"content_type":"str"}}']
    pieces.append("]}")
    pieces[0] = head + pieces[0]
    request = pc.binary_join_element_wise(*pieces, "")
    score = pc.cast(pa.array(rng.uniform(size=n).round(6)), pa.string())
    response = pc.binary_join_element_wise('{"model_name":"m","outputs":[{"name":"p","shape":[1],'
                                           '"datatype":"FP64","data":[', score, "]}]}", "")
    return request, response


def generate(folder: Path, requests: int, marshaller: str) -> Path:
    """KServe's layout under ``folder`` (once: reused while its marker says it is complete)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_ci.monitor.store import RECORD_COLUMNS

    marker = folder / "complete"
    if marker.exists():
        return folder
    objects = folder / "bench" / "churn" / "predictor"
    objects.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    span = 2 * 86_400 / max(1, requests)  # two days of traffic, the second shifted
    schema = pa.schema([(c, pa.bool_() if c == "tlsSkipVerify" else pa.string()) for c in RECORD_COLUMNS])
    for start in range(0, requests, BATCH):
        n = min(BATCH, requests - start)
        req, resp = bodies(rng, n, 0.5 if start >= requests // 2 else 0.0)
        ids = [f"{start + i:09d}" for i in range(n)]
        t0 = UNTIL - timedelta(days=2) + timedelta(seconds=start * span)
        for kind, reqtype, body in (("request", REQUEST, req), ("response", RESPONSE, resp)):
            encoded = [base64.b64encode(b.encode()).decode() for b in body.to_pylist()]
            path = objects / f"{ids[0]}-{kind}.{marshaller}"
            if marshaller == "parquet":
                cols = {c: pa.array([""] * n) for c in RECORD_COLUMNS}
                cols.update(bytes=pa.array(encoded), reqType=pa.array([reqtype] * n), id=pa.array(ids),
                            contentType=pa.array(["application/json"] * n), inferenceService=pa.array(["churn"] * n),
                            namespace=pa.array(["bench"] * n), component=pa.array(["predictor"] * n),
                            tlsSkipVerify=pa.array([False] * n))
                pq.write_table(pa.table(cols, schema=schema), path)
            else:
                times = [(t0 + timedelta(seconds=i * span)).isoformat().replace("+00:00", "Z") for i in range(n)]
                path.write_text("[" + ",".join(
                    f'{{"bytes":"{b}","contentType":"application/json","reqType":"{reqtype}","id":"{i}",'
                    f'"inferenceService":"churn","namespace":"bench","component":"predictor",'
                    f'"occurrenceTime":"{t}"}}' for b, i, t in zip(encoded, ids, times)) + "]")
            last = (t0 + timedelta(seconds=(n - 1) * span)).timestamp()
            os.utime(path, (last, last))  # the Parquet marshaller's time is the object's
    marker.write_text(str(requests))
    return folder


def reference() -> dict:
    """A reference as mlops_ci.stages.reference stores it: training features and eval predictions."""
    from dataclasses import asdict

    import numpy as np
    import pyarrow as pa

    from mlops_ci.checks.profiler import ProfileOptions, profile_table

    rng = np.random.default_rng(1)
    request, _ = bodies(rng, 200_000, 0.0)
    from mlops_ci.monitor.bulk import decode_arrays, request_template

    template = request_template(request[0].as_py().encode())
    columns, _ = decode_arrays(request, template)
    options = ProfileOptions()
    return {"schema": 1, "model": "churn", "options": asdict(options), "label": "label",
            "profiles": {"train": profile_table(pa.table(columns), options=options).to_json(),
                         "predictions": profile_table(pa.table({"prediction": rng.uniform(size=50_000)}),
                                                      options=options).to_json()}}


OURS = """
import json, resource, sys, time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from mlops_ci.config.monitoring import MonitoringConfig
from mlops_ci.monitor import stream, stream_merge
root, shards, ref = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
windows = stream.windows_ending(datetime.fromisoformat(sys.argv[4]), timedelta(days=1), 2)

def hwm():  # this process's own peak (ru_maxrss also counts the parent's pages a fork copied)
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))) / 1024

def one(paths):
    return json.dumps(stream.profile_objects(paths, ref, windows).to_json()), hwm()

if __name__ == "__main__":
    start = time.perf_counter()
    paths = stream.list_objects(root)
    if shards == 1:
        profiles = stream.profile_objects(paths, ref, windows)
    else:
        with ProcessPoolExecutor(shards) as pool:
            parts = list(pool.map(one, stream_merge.shard_objects(paths, shards)))
        profiles = stream_merge.merge([stream.WindowProfiles.from_json(json.loads(p)) for p, _ in parts])
    results = stream_merge.analyse(ref, profiles, MonitoringConfig(min_rows=50))
    seconds = time.perf_counter() - start
    peak = hwm() + (sum(m for _, m in parts) if shards > 1 else 0)  # all processes together
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "rows": profiles.rows,
                      "counts": stream_merge.traffic_counts(profiles), "bulk": profiles.counts.bulk,
                      "findings": [[w.status, sorted({f.column for f in w.findings if f.status == "fail"})] for w in results]}))
"""

PANDAS = """
import json, resource, sys, time
import pandas as pd
from mlops_ci.monitor.stream import list_objects
start, rows = time.perf_counter(), 0
for path in list_objects(sys.argv[1]):
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_json(path, orient="records", dtype=False)
    rows += len(frame)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows,
                  "peak_mb": int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))) / 1024}))
"""


FLOOR = """
import json, sys, time
from concurrent.futures import ProcessPoolExecutor
from mlops_ci.monitor.stream import list_objects

def hwm():
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))) / 1024

def part(paths):
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlops_ci.monitor.objects import b64_bulk
    n = 0
    for path in paths:
        if path.endswith(".parquet"):
            texts = pq.read_table(path, columns=["bytes"]).column("bytes")
        else:
            texts = pa.array([r["bytes"] for r in orjson.loads(open(path, "rb").read())])
        n += b64_bulk(texts).nbytes
    return n, hwm()

if __name__ == "__main__":
    start = time.perf_counter()
    paths = list_objects(sys.argv[1])
    with ProcessPoolExecutor(2) as pool:
        got = list(pool.map(part, [paths[0::2], paths[1::2]]))
    print(json.dumps({"seconds": time.perf_counter() - start, "bytes": sum(n for n, _ in got),
                      "peak_mb": hwm() + sum(m for _, m in got)}))
"""


def run(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.splitlines()[-1])


CLIENT = """
import asyncio, json, sys, time
url_port, events, senders, body = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4], "rb").read()

async def sender(k, count, done, reader, writer):
    for j in range(count):
        head = (f"POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: {len(body)}\\r\\n"
                f"ce-id: {k}-{j}\\r\\nce-type: org.kubeflow.serving.inference.request\\r\\nce-specversion: 1.0\\r\\n"
                f"ce-source: bench\\r\\nce-inferenceservicename: churn\\r\\nce-namespace: bench\\r\\n"
                f"ce-component: predictor\\r\\n\\r\\n").encode()
        writer.write(head + body)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\\r\\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        done[status.split()[1].decode()] = done.get(status.split()[1].decode(), 0) + 1
    writer.close()

async def main():
    done = {}
    connections = []
    for k in range(senders):  # one at a time: the server's listen backlog is small
        connections.append(await asyncio.open_connection("127.0.0.1", url_port))
    start = time.perf_counter()
    await asyncio.gather(*(sender(k, events // senders, done, *c) for k, c in enumerate(connections)))
    print(json.dumps({"seconds": time.perf_counter() - start, "statuses": done}))

asyncio.run(main())
"""


def receiver(work: Path, events: int, senders: int) -> dict:
    import numpy as np

    body, _ = bodies(np.random.default_rng(3), 1, 0.0)
    (work / "body.json").write_bytes(body[0].as_py().encode() if isinstance(body[0].as_py(), str) else body[0].as_py())
    proc = subprocess.Popen([sys.executable, "-m", "mlops_ci.monitor.receiver", "--root", str(work / "received"),
                             "--port", "0", "--marshaller", "parquet", "--flush-interval", "0.05"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
        got = run(CLIENT, str(port), str(events), str(senders), str(work / "body.json"))
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    finally:
        proc.terminate()
        proc.wait(30)
    return {**got, "peak_mb": peak / 1024, "events": events // senders * senders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--receiver-only", action="store_true", help="skip the log reading (parts 1 and 2)")
    parser.add_argument("--marshallers", default="parquet,json", help="which log layouts to read (comma-separated)")
    args = parser.parse_args()
    import tempfile

    DATA.mkdir(exist_ok=True)
    (DATA / ".gitignore").write_text("*\n")  # generated logs never reach git
    ref_path = DATA / "reference.json"
    if not ref_path.exists():
        ref_path.write_text(json.dumps(reference()))
    if not args.receiver_only:
        print(f"{args.requests:,} logged requests x 20 features (one row each, all answered), 10,000 records per "
              "object, 2 daily windows, the second shifted (num0 by 0.5 σ)\n")
    for marshaller in () if args.receiver_only else args.marshallers.split(","):
        print("| marshaller | what | seconds | requests/s | peak RSS (MB; summed over processes) | ratio to pandas |")
        print("|---|---|---:|---:|---:|---:|")
        start = time.perf_counter()
        folder = generate(DATA / f"{marshaller}-{args.requests}", args.requests, marshaller)
        made = time.perf_counter() - start
        size = sum(p.stat().st_size for p in folder.rglob(f"*.{marshaller}"))
        base = run(PANDAS, str(folder))
        for shards in (1, 2):
            ours = run(OURS, str(folder), str(shards), str(ref_path), UNTIL.isoformat())
            what = "mlops-ci stream: read, decode, pair, profile, compare" + (" (2 shards, 2 processes, merged)"
                                                                              if shards == 2 else "")
            print(f"| {marshaller} | {what} | {ours['seconds']:.1f} | {args.requests / ours['seconds']:,.0f} | "
                  f"{ours['peak_mb']:.0f} | {ours['seconds'] / base['seconds']:.2f}x |")
        print(f"| {marshaller} | pandas reads the same objects (records only, bodies not decoded) | "
              f"{base['seconds']:.1f} | {args.requests / base['seconds']:,.0f} | {base['peak_mb']:.0f} | 1 |")
        floor = run(FLOOR, str(folder))
        print(f"| {marshaller} | floor: read the bytes and base64-decode them a whole object at a time, nothing else "
              f"(2 processes; {floor['bytes'] / 1e9:.1f} GB of bodies) | {floor['seconds']:.1f} | "
              f"{args.requests / floor['seconds']:,.0f} | {floor['peak_mb']:.0f} | "
              f"{floor['seconds'] / base['seconds']:.2f}x |")
        print(f"\n  {marshaller}: {size / 1e9:.2f} GB in {len(list(folder.rglob('*.' + marshaller)))} objects "
              f"({f'generated in {made:.0f} s' if made > 1 else 'cached'}); rows per window {ours['rows']}; "
              f"counts {ours['counts']}; bulk-decoded {ours['bulk']:,}; windows {ours['findings']}\n")
    with tempfile.TemporaryDirectory(prefix="mlops-ci-bench-") as tmp:
        r = receiver(Path(tmp), args.events, args.senders)
    print("| receiver | events | senders | seconds | events/s | peak RSS (MB) | statuses |")
    print("|---|---:|---:|---:|---:|---:|---|")
    print(f"| parquet segments, flush 0.05 s, ack once durable | {r['events']:,} | {args.senders} | "
          f"{r['seconds']:.1f} | {r['events'] / r['seconds']:,.0f} | {r['peak_mb']:.0f} | {r['statuses']} |")


if __name__ == "__main__":
    main()
