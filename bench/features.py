"""Time the features stage of a pull request against running Feast directly.

On examples/churn-features (generated: 3,000 customers, six monthly snapshots; 2,400 train and 600
eval entity rows), main's definitions are applied to staging's registry, then a pull request adds a
field (`discount`) to customer_billing. For that pull request:

- ours: ``mlops_ci.stages.features.run_features`` in this process, cold (its materialised sets and
  profiles removed before each trial): the base's and the head's definitions read and compared,
  `feast plan` against staging's registry, get_historical_features for train and eval at the head and
  at the base (written to Parquet), with the skew check off (the baseline has none); and again with
  the skew check on, and warm (the sets cached by content id: nothing materialised again);
- baseline, in the same run: `feast plan` (the CLI, in a copy of the head's feature repository whose
  feature_store.yaml names staging's registry) plus one Python process in the same Feast environment
  that calls get_historical_features for the same four entity tables (head definitions for the head's,
  base definitions for the base's) and writes the same Parquet files: what a user would run by hand.

Printed: the median of ``--trials`` (default 3) of each, and the ratio ours / baseline (goal <= 1.2x).

Needs: .venv and the Feast tool environment (built under .cache/mlops-ci-test on first use, as the
tests' is; the time it took is printed when it was built now).

Run: .venv/bin/python bench/features.py [--trials N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / ".data" / "features"
EXAMPLE = ROOT / "examples" / "churn-features"
CACHE = ROOT / ".cache" / "mlops-ci-test"
LATE = '        Field(name="late_payments", dtype=Int64),\n'
ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "bench@example.com", "MLOPS_CI_CACHE_DIR": str(CACHE)}


def sh(args: list[str], cwd: Path, **kw) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **ENV}, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def last_month() -> str:
    first = datetime.now(UTC).date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def prepare() -> Path:
    """The example on main, applied to staging's registry; then the pull request, checked out."""
    repo = DATA / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".mlops-ci", "__pycache__", "*.parquet", "*.db"))
    sh([sys.executable, "generate_data.py", "--month", last_month()], repo)
    sh(["git", "init", "--quiet", "--initial-branch=main"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "--quiet", "-m", "churn on churn_v1"], repo)
    sh([sys.executable, "-m", "mlops_ci", "features", "apply", "--env", "staging"], repo)
    sh(["git", "checkout", "--quiet", "-b", "pr/discount"], repo)
    sh([sys.executable, "generate_data.py", "--month", last_month(), "--discount"], repo)
    path = repo / "feature_repo" / "definitions.py"
    path.write_text(path.read_text().replace(LATE, LATE + '        Field(name="discount", dtype=Float64),\n'))
    sh(["git", "commit", "--quiet", "-am", "billing: discount"], repo)
    return repo


def ours(repo: Path, *, skew: bool, cold: bool) -> tuple[float, object]:
    from mlops_ci.config import load_config
    from mlops_ci.context import detect_context
    from mlops_ci.stages.features import run_features
    from mlops_ci.workspace import Workspace

    loaded = load_config(repo / ".mlops-ci.yaml")
    loaded.config.features.skew.enabled = skew
    ws = Workspace.from_config(loaded)
    ctx = detect_context(ws.root, ws.config.default_branch)
    if cold:
        shutil.rmtree(ws.cache_dir / "features", ignore_errors=True)
    start = time.perf_counter()
    record = run_features(ws, ctx, tracking=None)
    return time.perf_counter() - start, record


BASELINE = textwrap.dedent('''
    import sys
    import pandas as pd
    from feast import FeatureStore
    for repo, registry, entities, out in [line.split("\\t") for line in sys.argv[1:]]:
        store = FeatureStore(repo_path=repo)
        frame = store.get_historical_features(entity_df=pd.read_parquet(entities),
                                              features=store.get_feature_service("churn_v1")).to_df()
        frame.to_parquet(out, index=False)
''')


def baseline(repo: Path, env_path: Path, work: Path) -> float:
    """`feast plan` against staging's registry, then get_historical_features at the head and the base."""
    staging = repo / ".mlops-ci" / "features" / "staging"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    trees = {}
    for side, rev in (("head", "HEAD"), ("base", "main")):
        tree = work / side
        tree.mkdir()
        archive = subprocess.run(["git", "archive", rev, "feature_repo", "data"], cwd=repo, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        registry = shutil.copy(staging / "registry.db", tree / "registry.db")
        yaml = tree / "feature_repo" / "feature_store.yaml"
        yaml.write_text(yaml.read_text().replace("registry: data/registry.db", f"registry: {registry}")
                        .replace("path: data/online_store.db", f"path: {tree / 'online.db'}"))
        trees[side] = tree
    # the tool environment is built elsewhere and renamed into place: its console scripts' shebangs
    # name the old folder, so the CLI is run through the interpreter (the same `feast` command)
    feast_python = env_path / "bin" / "python"
    feast = [str(feast_python), "-c", "import sys; from feast.cli.cli import cli; sys.argv[0] = 'feast'; cli()"]
    script = work / "historical.py"
    script.write_text(BASELINE)
    jobs = [f"{trees[side] / 'feature_repo'}\t-\t{trees[side] / 'data' / f'{role}_entities.parquet'}\t"
            f"{work / f'{side}-{role}.parquet'}" for side in ("head", "base") for role in ("train", "eval")]
    # the historical calls need the definitions in a registry: a user has run `feast apply` there already
    for side in ("head", "base"):
        subprocess.run([*feast, "apply"], cwd=trees[side] / "feature_repo", capture_output=True, check=True)
    start = time.perf_counter()
    subprocess.run([*feast, "plan"], cwd=trees["head"] / "feature_repo", capture_output=True, check=True)
    subprocess.run([str(feast_python), str(script), *jobs], capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(ENV)
    from mlops_ci.features.env import ensure_env

    started = time.perf_counter()
    env = ensure_env()
    print(f"Feast environment: {env.path} ({time.perf_counter() - started:.1f} s to find or build)")
    repo = prepare()
    os.chdir(repo)
    runs = {"ours (plan + historical, cold)": [], "ours with the skew check (cold)": [], "ours, warm (sets cached)": [],
            "baseline: feast plan + get_historical_features": []}
    record = None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.trials):
            took, record = ours(repo, skew=False, cold=True)
            runs["ours (plan + historical, cold)"].append(took)
            runs["baseline: feast plan + get_historical_features"].append(
                baseline(repo, env.path, Path(tmp) / "baseline"))
            runs["ours with the skew check (cold)"].append(ours(repo, skew=True, cold=True)[0])
            runs["ours, warm (sets cached)"].append(ours(repo, skew=False, cold=False)[0])
    rows = {d.role + "/" + side: getattr(d, f"{side}_rows") for d in record.data for side in ("head", "base")}
    print(f"pull request: {[c.name + ' ' + c.change for c in record.changes]}; affected: "
          f"{[a.model for a in record.affected]}; rows {rows}; plan counts {record.plans[0].counts}")
    base = statistics.median(runs["baseline: feast plan + get_historical_features"])
    print(f"{'':48} {'median s':>9} {'ratio':>7}   trials")
    for name, values in runs.items():
        med = statistics.median(values)
        print(f"{name:48} {med:9.2f} {med / base:6.2f}x   {', '.join(f'{v:.2f}' for v in values)}")
    print(f"goal: ours (plan + historical, cold) <= 1.2x the baseline: "
          f"{'met' if statistics.median(runs['ours (plan + historical, cold)']) <= 1.2 * base else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
