"""Time an unchanged pull request's rerun against the first run of the same head (goal: <= 10%).

On the churn example (DVC data, torchrun with 2 processes, MLflow on SQLite), as the demo builds
it: `mlops-ci run` on main (the champion), then a pull request's head is run once (it trains and
registers the candidate: the baseline) and again, unchanged (it finds that version by its training
fingerprint: nothing trained, nothing registered). Then the merge commit's run on main, which
ships the pull request's version, and `run --dry-run`. Each command is a new process, as in CI.
Run: .venv/bin/python bench/rerun.py [--reruns N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(repo: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mlops_ci", *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"mlops-ci {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took


def versions(repo: Path) -> int:
    import sqlite3

    with sqlite3.connect(repo / ".mlops-ci" / "mlflow.db") as con:
        return con.execute("SELECT count(*) FROM model_versions").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reruns", type=int, default=5)
    args = parser.parse_args()
    from mlops_ci.demo import scaffold

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo = scaffold.copy_example(work / "churn")
        scaffold.init_repo(repo, work / "dvc-remote")
        scaffold.generate(repo, "--snapshot", "2026-09", "--rows", "12000", "--seed", "1")
        scaffold.track_data(repo, "data/train.csv", "data/eval.csv")
        scaffold.commit_all(repo, "September")
        timed(repo, "run", "--quiet")
        timed(repo, "promote", "--model", "churn", "--env", "staging")

        scaffold.git(repo, "checkout", "--quiet", "-b", "pr/october")
        scaffold.generate(repo, "--snapshot", "2026-10", "--rows", "15000", "--seed", "2", "--price-increase", "12",
                          "--new-plan")
        scaffold.edit_params(repo, hidden=64, epochs=10)
        scaffold.track_data(repo, "data/train.csv", "data/eval.csv")
        scaffold.commit_all(repo, "October")
        first = timed(repo, "run", "--quiet")
        registered = versions(repo)
        reruns = [timed(repo, "run", "--quiet") for _ in range(args.reruns)]
        dry = [timed(repo, "run", "--dry-run") for _ in range(args.reruns)]
        assert versions(repo) == registered, "a rerun registered a version"

        scaffold.git(repo, "checkout", "--quiet", "main")
        scaffold.git(repo, "merge", "--quiet", "--no-ff", "pr/october", "-m", "merge")
        merge = timed(repo, "run", "--quiet")
        assert versions(repo) == registered, "the merge registered a version"

    rerun = statistics.median(reruns)
    print(f"CPU cores: {os.cpu_count()}; load average at the end: {os.getloadavg()[0]:.1f}; "
          f"churn example, 12,000 → 15,000 rows, torchrun × 2 (gloo); median of {args.reruns}")
    print()
    print("| run of the same pull request head | seconds | of the first run |")
    print("|---|---:|---:|")
    print(f"| first run (checks, training, evaluation, registration, plan): the baseline | {first:.2f} | 100% |")
    print(f"| rerun, unchanged (reuses v{registered}: nothing trained or registered) | {rerun:.2f} | "
          f"{rerun / first:.1%} |")
    print(f"| `run --dry-run` | {statistics.median(dry):.2f} | {statistics.median(dry) / first:.1%} |")
    print(f"| the merge commit's run on main (ships v{registered}, no training) | {merge:.2f} | {merge / first:.1%} |")
    print()
    print(f"rerun / first run: {rerun / first:.3f} (goal <= 0.10) {'OK' if rerun / first <= 0.10 else 'ABOVE GOAL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
