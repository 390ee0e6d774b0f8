"""Benchmark: profiling a CSV or JSON-lines file against pandas reading the same file.

Prints, in one run, for ``--rows`` rows x 21 columns (10 numeric, 10 categorical, an integer label;
the data of bench/checks.py) written as CSV and as JSON lines: the time of ``profile_file`` (our one
streaming pass: read and profile) and of pandas reading the file (``pd.read_csv``,
``pd.read_json(lines=True)``), each in a fresh process, best of ``--repeat``, and the ratio. For
CSV also the profile through Arrow's streaming reader, the path used before CSV files were parsed
in ranges ahead of the profiler (it is still the path for ``.csv.gz``), and Arrow's parsing of the
ranges alone (no profile): the least our reading can take with Arrow's CSV parser.

    python bench/formats.py [--rows 1000000] [--repeat 3]

Goal (issue): our CSV and JSON-lines reading no slower than pandas reading the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN = """
import json, sys, time
from pathlib import Path
what, path = sys.argv[1], Path(sys.argv[2])
if what == "pandas":
    import pandas as pd
    start = time.perf_counter()
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_json(path, lines=True)
    rows = len(frame)
else:
    import pyarrow.compute, pyarrow.csv, pyarrow.json  # imported before the clock, as pandas is
    from mlops_ci.checks import profiler
    from mlops_ci.checks.scan import profile_file
    if what == "arrow-stream":
        from mlops_ci.data import csvread
        csvread.csv_range_batches = csvread.csv_stream_batches  # the reader before ranges
    start = time.perf_counter()
    if what == "arrow-parse":
        from mlops_ci.data.csvread import ReadOptions, csv_range_batches
        rows = sum(b.num_rows for b in csv_range_batches(path, path.name, ReadOptions(block_bytes=4 << 20)))
    else:
        rows = profile_file(path, name=path.name, seed=1).rows
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows,
                  "peak_mb": int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))) / 1024}))
"""


def best(what: str, path: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-c", RUN, what, str(path)], capture_output=True, text=True,
                              check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        runs.append(json.loads(proc.stdout.splitlines()[-1]))
    return min(runs, key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from bench.checks import write_dataset

    with tempfile.TemporaryDirectory(prefix="mlops-ci-bench-") as tmp:
        work = Path(tmp)
        write_dataset(work / "d.parquet", args.rows, shifted=False, seed=1)
        table = pq.read_table(work / "d.parquet")
        pacsv.write_csv(table, work / "d.csv")
        table.to_pandas().to_json(work / "d.jsonl", orient="records", lines=True)
        del table
        print(f"{args.rows:,} rows x 21 columns; best of {args.repeat}, each in a fresh process\n")
        print("| file | MB | what | seconds | peak RSS (MB) | ratio to pandas |")
        print("|---|---:|---|---:|---:|---:|")
        for name, ours in (("d.csv", ("mlops-ci", "arrow-stream", "arrow-parse")), ("d.jsonl", ("mlops-ci",))):
            path = work / name
            size = path.stat().st_size / 1e6
            base = best("pandas", path, args.repeat)
            for what in ours:
                got = best(what, path, args.repeat)
                assert got["rows"] == args.rows, got
                label = {"mlops-ci": "mlops-ci profile_file (read + profile)",
                         "arrow-stream": "the same through Arrow's streaming CSV reader (before)",
                         "arrow-parse": "floor: Arrow parsing the ranges on 2 threads, no profile"}[what]
                print(f"| {name} | {size:.0f} | {label} | {got['seconds']:.2f} | {got['peak_mb']:.0f} | "
                      f"{got['seconds'] / base['seconds']:.2f}x |")
            reader = "pd.read_csv" if name.endswith(".csv") else "pd.read_json(lines=True)"
            print(f"| {name} | {size:.0f} | pandas {reader} (read only) | {base['seconds']:.2f} | "
                  f"{base['peak_mb']:.0f} | 1 |")


if __name__ == "__main__":
    main()
