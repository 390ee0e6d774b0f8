"""Time the data-check stage on the churn example's data, against pandas.read_csv of the same files.

Prints one row per size: rows, pandas read (baseline), our read+profile+drift, and the ratio.
Run: .venv/bin/python bench/stages.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "churn"))


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    import pandas as pd

    from generate_data import generate
    from mlops_ci.checks.compare import compare_profiles
    from mlops_ci.checks.scan import profile_file
    from mlops_ci.config.schema import ChecksConfig

    checks = ChecksConfig()
    print(f"{'rows':>9} {'pandas read (s)':>16} {'streamed profile+drift (s)':>23} {'ratio':>7} {'findings':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in (12_000, 120_000, 600_000):
            base_path, head_path = Path(tmp) / f"base{rows}.csv", Path(tmp) / f"head{rows}.csv"
            generate(rows, 1, "2026-09", 0.0, False).to_csv(base_path, index=False)
            generate(rows, 2, "2026-10", 12.0, True).to_csv(head_path, index=False)
            baseline = best_of(3, lambda b=base_path, h=head_path: (pd.read_csv(b), pd.read_csv(h)))
            found: list = []

            def ours(b=base_path, h=head_path, found=found):
                base = profile_file(b, name="base.csv")
                head = profile_file(h, name="head.csv", reference=base)
                found[:] = compare_profiles("train", base, head, checks, label="churned")[1]

            t = best_of(3, ours)
            print(f"{rows:>9} {baseline:>16.3f} {t:>23.3f} {t / baseline:>7.2f} {len(found):>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
