"""Benchmark: our profile + drift against deepchecks' train_test_validation, then 10M rows.

Prints, in one run:
1. 1M rows x 20 columns (10 numeric, 10 categorical), base vs head with a planted shift
   (num0 moved by 0.5 σ, cat0 re-weighted): our time (profile both sides + drift) and
   deepchecks' `train_test_validation` on the same full data (base as train, head as test), run
   through mlops-ci's isolated deepchecks environment; the ratio.
2. Our time and peak RSS (a fresh process each) for 1M, 3M and 10M rows of Parquet, and the
   time per million rows, to show the scaling is linear; beside each, a plain baseline over the
   same files in the same run (pyarrow reading categoricals as dictionaries, numpy bincount into
   the same fixed-edge bins, one pass per row group) and our ratio to it (goal <= 1.2x).

    python bench/checks.py [--skip-deepchecks] [--max-rows 10000000]

Goals (issue 3): ours >= 100x faster than deepchecks on 1M rows; 10M rows < 15 s on 2 cores
with peak RSS < 1.5 GB; time linear in rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 1_000_000
CATEGORIES = [f"cat_{j}" for j in range(30)]


def write_dataset(path: Path, rows: int, *, shifted: bool, seed: int) -> None:
    """Write ``rows`` rows as Parquet, one million at a time (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    cats = np.array(CATEGORIES)
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        cols = {}
        for i in range(10):
            sigma = 1 + i / 10
            cols[f"num{i}"] = rng.normal(i + (0.5 * sigma if shifted and i == 0 else 0.0), sigma, n)
        for i in range(10):
            k = 10 + 2 * i
            p = np.full(k, 1 / k)
            if shifted and i == 0:  # re-weight: the first category takes a third of the rows
                p = np.full(k, (2 / 3) / (k - 1))
                p[0] = 1 / 3
            cols[f"cat{i}"] = cats[rng.choice(k, n, p=p)]
        cols["label"] = (rng.uniform(size=n) < 0.3).astype(np.int64)
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


OURS = """
import json, resource, sys, time
from pathlib import Path
from mlops_ci.checks.compare import compare_profiles
from mlops_ci.checks.scan import profile_file
from mlops_ci.config.schema import ChecksConfig
start = time.perf_counter()
base = profile_file(Path(sys.argv[1]), name="base.parquet", seed=1)
head = profile_file(Path(sys.argv[2]), name="head.parquet", reference=base, seed=2)
columns, findings = compare_profiles("train", base, head, ChecksConfig(), label="label")
seconds = time.perf_counter() - start
Path(sys.argv[3]).write_text(json.dumps({n: c.edges for n, c in base.columns.items() if c.kind == "numeric"}))
print(json.dumps({"seconds": seconds, "peak_mb": int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))) / 1024,
                  "findings": [[f.column, f.metric, f.status, round(f.value or 0, 3)] for f in findings]}))
"""


PLAIN = """
import json, resource, sys, time
import numpy as np
import pyarrow.parquet as pq
edges = {k: np.asarray(v, dtype=float) for k, v in json.load(open(sys.argv[3])).items()}
start = time.perf_counter()
for path in sys.argv[1:3]:
    f = pq.ParquetFile(path, read_dictionary=[n for n in pq.read_schema(path).names if n.startswith("cat")])
    stats = {}
    for g in range(f.num_row_groups):
        table = f.read_row_group(g)
        for name in table.column_names:
            col = table.column(name).combine_chunks()
            if name in edges:
                v = col.to_numpy()
                s = stats.setdefault(name, [np.zeros(len(edges[name]) + 1, dtype=np.int64), 0, 0.0, 0.0, np.inf, -np.inf])
                s[0] += np.bincount(np.searchsorted(edges[name], v, side="left"), minlength=len(edges[name]) + 1)
                s[1] += v.size; s[2] += v.sum(); s[3] += (v * v).sum(); s[4] = min(s[4], v.min()); s[5] = max(s[5], v.max())
            elif hasattr(col, "indices"):
                counts = np.bincount(col.indices.to_numpy(zero_copy_only=False), minlength=len(col.dictionary))
                s = stats.setdefault(name, {})
                for key, c in zip(col.dictionary.to_pylist(), counts.tolist()):
                    s[key] = s.get(key, 0) + c
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))) / 1024}))
"""


def ours(base: Path, head: Path) -> dict:
    """Profile + drift in a fresh process, so its peak RSS is its own; then the plain baseline over the
    same two files (pyarrow reading the categoricals as dictionaries, numpy bincount into the base
    profile's edges, one pass per row group), in a fresh process too."""
    edges = base.with_suffix(".edges.json")
    proc = subprocess.run([sys.executable, "-c", OURS, str(base), str(head), str(edges)], capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    got = json.loads(proc.stdout.splitlines()[-1])
    proc = subprocess.run([sys.executable, "-c", PLAIN, str(base), str(head), str(edges)], capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    got["plain"] = json.loads(proc.stdout.splitlines()[-1])
    return got


def deepchecks(base: Path, head: Path, work: Path) -> tuple[float, float, str]:
    """(env set-up seconds, suite seconds, summary) for train_test_validation on the full data."""
    import pandas as pd

    from mlops_ci.checks.suites.env import ensure_env
    from mlops_ci.checks.suites.models import SuiteSpec
    from mlops_ci.checks.suites.runner import run_suite
    from mlops_ci.config.suites import SuiteConfig
    from mlops_ci.console import ConsoleProgress

    start = time.perf_counter()
    env = ensure_env(progress=ConsoleProgress())
    setup = time.perf_counter() - start
    train, test = pd.read_parquet(base), pd.read_parquet(head)
    config = SuiteConfig(enabled=True, sample_rows=len(train), timeout_minutes=60)
    start = time.perf_counter()
    result = run_suite(SuiteSpec(name="train_test_validation", config=config), train=train, test=test,
                       label="label", task="binary", env=env, out_dir=work / "deepchecks",
                       progress=ConsoleProgress())
    seconds = time.perf_counter() - start
    failed = [c.header for c in result.failed_checks()]
    return setup, seconds, f"{result.status}; failed: {', '.join(failed) or 'none'}; rows {result.sampled_rows}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-deepchecks", action="store_true")
    parser.add_argument("--max-rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-ci-bench-") as tmp:
        work = Path(tmp)
        sizes = [n for n in (1_000_000, 3_000_000, 10_000_000) if n <= args.max_rows]
        results = {}
        for rows in sizes:
            base, head = work / f"base-{rows}.parquet", work / f"head-{rows}.parquet"
            write_dataset(base, rows, shifted=False, seed=1)
            write_dataset(head, rows, shifted=True, seed=2)
            results[rows] = ours(base, head)
            if rows != sizes[0]:
                base.unlink()
                head.unlink()
        first = results[sizes[0]]
        print("1M rows x 20 columns, planted shift in num0 (0.5 σ) and cat0 (re-weighted)")
        print("  our findings: " + "; ".join(f"{c} {m} {s} {v}" for c, m, s, v in first["findings"]))
        print()
        print("| tool | rows | seconds | ratio |")
        print("|---|---:|---:|---:|")
        print(f"| mlops-ci profile + drift | 1,000,000 | {first['seconds']:.2f} | 1 |")
        if not args.skip_deepchecks:
            setup, seconds, summary = deepchecks(work / f"base-{sizes[0]}.parquet",
                                                 work / f"head-{sizes[0]}.parquet", work)
            print(f"| deepchecks train_test_validation | 1,000,000 | {seconds:.1f} | "
                  f"{seconds / first['seconds']:.0f}x slower |")
            print(f"\n  deepchecks: {summary}; environment ready in {setup:.1f} s (created on first use)")
        print()
        print("| rows | seconds | s per 1M rows | peak RSS (MB) | plain pyarrow + numpy bincount: seconds | "
              "peak RSS (MB) | ratio ours / plain |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for rows, r in results.items():
            plain = r["plain"]
            print(f"| {rows:,} | {r['seconds']:.2f} | {r['seconds'] / (rows / 1e6):.2f} | {r['peak_mb']:.0f} | "
                  f"{plain['seconds']:.2f} | {plain['peak_mb']:.0f} | {r['seconds'] / plain['seconds']:.2f}x |")
        print("\n  plain: base and head read one row group at a time, categoricals as dictionaries (bincount of "
              "the indices), numerics bincount into the base profile's edges plus count, sum, sum of squares, "
              "min, max; no sample, no drift, no findings")


if __name__ == "__main__":
    main()
