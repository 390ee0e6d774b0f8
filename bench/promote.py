"""Time promotion into a local bare GitOps repository, against plain git in the same run.

(a) latency of one promotion end to end: mlops_ci.stages.promote.promote() of a new version of
    one model (clone, render, validate, commit, push; the MLflow alias move is left out), median
    of N runs, against `git clone && write the same files && git commit && git push` of the same
    bytes into a second bare repository;
(b) throughput: 20 processes released together (a barrier file), each promoting a different new
    model into one repository, against the same 20 processes run one after another. Every new
    model adds its folder to the environment's kustomization.yaml, so concurrent promoters collide
    there: a lost push fetches, rebases and merges that list, then pushes again (the worst case
    for contention).

Validation includes the KServe CRD schema when ../shared/contracts/kserve exists (MLOPS_CI_CRDS),
as in the tests; the table's header line says which checks ran.

Prints a Markdown table. Run: .venv/bin/python bench/promote.py [--runs N] [--promoters N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUTHOR = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
          "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
ENV = "staging"


class NoTracking:
    """promote() moves the MLflow alias after the push; that is MLflow's cost, not measured here."""

    uri = "none://"

    def set_alias(self, name, alias, version):
        pass

    def set_version_tags(self, name, version, tags):
        pass


def git(cwd: Path, *args: str, input_text: str | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, input=input_text,
                          env={**os.environ, **AUTHOR})
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def project(folder: Path, models: list[str]) -> Path:
    """A git repository holding only a .mlops-ci.yaml with ``models``; its GitOps remote is a bare
    repository with one base commit. Returns the config path."""
    folder.mkdir(parents=True)
    entries = "".join(f"  {m}:\n    data: {{train: data/train.csv, eval: data/eval.csv, label: y}}\n" for m in models)
    config = folder / ".mlops-ci.yaml"
    config.write_text(f"version: 1\nenvironments:\n  {ENV}:\n    namespace: bench-{ENV}\nmodels:\n{entries}")
    (folder / ".gitignore").write_text(".mlops-ci/\n")
    git(folder, "init", "--quiet", "--initial-branch=main")
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "-m", "bench project")
    seed_bare(folder / ".mlops-ci" / "gitops.git")
    return config


def seed_bare(bare: Path) -> None:
    bare.parent.mkdir(parents=True, exist_ok=True)
    git(bare.parent, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "c"
        git(Path(tmp), "clone", "--quiet", str(bare), str(clone))
        (clone / "README.md").write_text("serving manifests\n")
        git(clone, "add", "--all")
        git(clone, "commit", "--quiet", "-m", "base")
        git(clone, "push", "--quiet", "origin", "HEAD:main")


def candidate(model: str, version: int):
    from mlops_ci.stages.promote import Candidate

    return Candidate(model=model, version=str(version), artifact_uri=f"s3://models/{model}/m-{version}/artifacts",
                     digest=f"sha256:{version:064x}", lineage={"run-id": f"run-{version}"}, gates_passed=True)


def workspace(config: Path):
    from mlops_ci.config import load_config
    from mlops_ci.workspace import Workspace

    return Workspace.from_config(load_config(config), env=bench_env())


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    crds = ROOT.parent / "shared" / "contracts" / "kserve"
    if "MLOPS_CI_CRDS" not in env and crds.is_dir():
        env["MLOPS_CI_CRDS"] = str(crds)
    return env


def plain_git_push(bare: Path, files: dict[str, bytes], message: str) -> None:
    """The baseline: what a promotion does at minimum, as shell users would write it."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "c"
        git(Path(tmp), "clone", "--quiet", "--no-tags", "--single-branch", "--branch", "main", str(bare), str(clone))
        for rel, data in files.items():
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            (clone / rel).write_bytes(data)
        git(clone, "add", "--all")
        git(clone, "commit", "--quiet", "-F", "-", input_text=message)
        git(clone, "push", "--quiet", "origin", "HEAD:main")


def latency(tmp: Path, runs: int) -> tuple[float, float]:
    from mlops_ci.backends.gitops import gitops_for
    from mlops_ci.stages.promote import promote

    ws = workspace(project(tmp / "latency", ["churn"]))
    baseline_bare = tmp / "baseline.git"
    seed_bare(baseline_bare)
    ours, theirs = [], []
    for version in range(1, runs + 2):  # the first run creates the files; it is not counted
        start = time.perf_counter()
        record = promote(ws, candidate("churn", version), ENV, tracking=NoTracking(), gitops=gitops_for(ws))
        took = time.perf_counter() - start
        remote = Path(ws.gitops_remote)
        files = {c.path: subprocess.run(["git", "show", f"{record.commit_sha}:{c.path}"], cwd=remote,
                                        capture_output=True, check=True).stdout
                 for c in record.changes if c.action != "unchanged"}
        message = git(remote, "log", "-1", "--format=%B", record.commit_sha) + "\n"
        start = time.perf_counter()
        plain_git_push(baseline_bare, files, message)
        plain = time.perf_counter() - start
        if version > 1:
            ours.append(took)
            theirs.append(plain)
    return statistics.median(ours), statistics.median(theirs)


def spawn(config: Path, model: str, go: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--worker", str(config), model, str(go), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(procs: list[tuple[Path, subprocess.Popen]]) -> None:
    for out, proc in procs:
        while not out.with_suffix(".ready").exists():
            if proc.poll() is not None:
                raise SystemExit(f"promoter {out.name} died before the barrier: {proc.communicate()[1]}")
            time.sleep(0.005)


def finish(out: Path, proc: subprocess.Popen) -> None:
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"promoter {out.name} failed ({proc.returncode}): {stderr}")


def throughput(tmp: Path, promoters: int) -> tuple[float, float]:
    """Wall seconds from release to the last promoter's exit: all at once, then one after another."""
    models = [f"model-{i:02d}" for i in range(promoters)]
    timings = []
    for mode in ("concurrent", "sequential"):
        config = project(tmp / mode, models)
        work = tmp / f"{mode}-promoters"
        work.mkdir()
        if mode == "concurrent":
            procs = [(work / f"{m}.json", spawn(config, m, work / "go", work / f"{m}.json")) for m in models]
            wait_ready(procs)
            start = time.perf_counter()
            (work / "go").touch()
            for out, proc in procs:
                finish(out, proc)
            timings.append(time.perf_counter() - start)
        else:
            total = 0.0
            for m in models:
                out = work / f"{m}.json"
                proc = spawn(config, m, work / f"{m}.go", out)
                wait_ready([(out, proc)])
                start = time.perf_counter()
                (work / f"{m}.go").touch()
                finish(out, proc)
                total += time.perf_counter() - start
            timings.append(total)
        remote = config.parent / ".mlops-ci" / "gitops.git"
        landed = int(git(remote, "rev-list", "--count", "main")) - 1
        if landed != promoters or git(remote, "rev-list", "--merges", "main"):
            raise SystemExit(f"{mode}: {landed} of {promoters} promotions landed, or history is not linear")
    return timings[0], timings[1]


def worker(config: str, model: str, go: str, out: str) -> int:
    """One promoter process: import and load everything, wait at the barrier, promote."""
    from mlops_ci.backends.gitops import gitops_for
    from mlops_ci.errors import FatalError
    from mlops_ci.stages.promote import promote

    ws = workspace(Path(config))
    cand = candidate(model, 1)
    Path(out).with_suffix(".ready").touch()
    while not Path(go).exists():
        time.sleep(0.002)
    start = time.perf_counter()
    try:
        record = promote(ws, cand, ENV, tracking=NoTracking(), gitops=gitops_for(ws))
    except FatalError as err:
        print(err, file=sys.stderr)
        return err.exit_code
    Path(out).write_text(json.dumps({"commit": record.commit_sha, "seconds": time.perf_counter() - start}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="promotions timed for the latency (median)")
    parser.add_argument("--promoters", type=int, default=20, help="concurrent promoter processes")
    parser.add_argument("--worker", nargs=4, metavar=("CONFIG", "MODEL", "GO", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker)

    with tempfile.TemporaryDirectory(prefix="mlops-ci-bench-promote-") as tmp_name:
        tmp = Path(tmp_name)
        ours, plain = latency(tmp, args.runs)
        concurrent, sequential = throughput(tmp, args.promoters)
        shutil.rmtree(tmp, ignore_errors=True)
    n = args.promoters
    kustomize = shutil.which("kubectl") or shutil.which("kustomize") or "none on PATH"
    print(f"CPU cores: {os.cpu_count()}; load average at the end: {os.getloadavg()[0]:.1f}; "
          f"kustomize build by: {kustomize}; CRD schemas: {bench_env().get('MLOPS_CI_CRDS') or 'not checked'}\n")
    print("| measure | mlops-ci | baseline | baseline is | ratio |")
    print("|---|---:|---:|---|---:|")
    print(f"| one promotion, median of {args.runs} (s) | {ours:.3f} | {plain:.3f} | "
          f"git clone + write + commit + push of the same bytes | {ours / plain:.2f} |")
    print(f"| {n} promotions of {n} new models, wall (s) | {concurrent:.2f} | {sequential:.2f} | "
          f"the same {n} promoter processes one after another | {concurrent / sequential:.2f} |")
    print(f"| throughput (promotions/s) | {n / concurrent:.2f} | {n / sequential:.2f} | "
          f"the same, one after another | {sequential / concurrent:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
