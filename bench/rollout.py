"""Time a rollout's two costs: how fast a failing canary is rolled back, and what one `advance` costs.

(1) Time to rollback. Debian's ``prometheus`` scrapes (every 5 s) two real MLServer processes
    serving the tiny champion, labelled as a cluster's relabelling would (tests/rollout/
    prometheus_support.py): the primary (v1) and a canary whose planted code raises on every second
    request once a flag file exists. Load goes to both throughout. Each trial commits a canary step
    (``mlops-ci promote`` into prod, one step at 50 %, soak 1h, ``lookback`` 30s), then a loop runs
    ``mlops-ci rollout advance`` as a subprocess every 15 s (a schedule's or an Argo loop's ticks,
    the first a random 0-15 s after the step; one run at a time).
    The step is healthy and live for the whole lookback plus a random 0-15 s (so the flag falls at
    a random phase of the ticks and of the scrapes), then the flag appears; the time to rollback runs from the flag to the moment the rollback commit
    lands on the GitOps repository's branch (its ref watched every 10 ms). Each trial's canary is a
    new version (v2, v3, ...) served by a new MLServer process labelled with it, as a new canary pod
    is: its counters start at 0 and it has no 5xx series until its first error (Prometheus 2.x's
    increase() needs two samples of a series, so the first scrape of that series counts nothing).
    Between trials the hold is cleared (``mlops-ci rollback --clear-hold``).
    Printed: p50 / p95 / max, the floor (scrape + evaluation interval), the share of the time spent
    inside advance runs, and when an in-process poll of the same analysis (every 0.5 s) first saw
    the failure.

(2) One ``mlops-ci rollout advance --env prod`` run's wall time (a subprocess, as a job runs it) for a
    project of 1 model and one of ``--models`` models (tiny's model section under each name, a
    registry with two passing versions of each), every model mid-rollout: each model mid-soak (read
    only: nothing committed), and with ``--force --reason bench`` (every model takes a step: one
    commit and push each). Baseline in the same run: ``git clone`` + commit + ``git push`` of the
    same GitOps repository, and ``mlops-ci promote`` of one model into it.

Needs: .venv, Debian's prometheus (installed with apt-get as the tests do when missing, or
$MLOPS_CI_PROMETHEUS), the MLServer tool environment (built under .cache/mlops-ci-test on first
use, as the tests' is; the time it took is printed when it was built now). The tiny champion is
trained once into bench/.data/rollout/ (ignored by git) and reused.

Run: .venv/bin/python bench/rollout.py [--trials N] [--models N] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "rollout"))
DATA = ROOT / "bench" / ".data" / "rollout"

SCRAPE_S = 5
EVERY_S = 15
LOOKBACK_S = 30
NAMESPACE = "tiny-prod"
ANALYSIS = ("      lookback: {lookback}s\n      analysis:\n        prometheus:\n          url: '{url}'\n"
            # the tests' latency floor: tail latencies under 100 ms are this 2-core machine's noise
            "          thresholds: {{latency_p99: {{ratio_floor: 0.1}}}}\n")
FLAKY = ("import os\nif os.path.exists({flag!r}):\n    _n = globals().setdefault('_n', [0])\n    _n[0] += 1\n"
         "    if _n[0] % 2 == 0:\n        raise RuntimeError('planted: the canary fails')")


# -- the environment ----------------------------------------------------------------------------------

def isolate(tmp: Path) -> None:
    """tests/conftest.py's isolated_env, for this process and the CLI processes it starts."""
    from conftest import AUTHOR, SHARED_CACHE

    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update({"HOME": str(home), "XDG_CACHE_HOME": str(tmp / "xdg-cache"),
                       "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1",
                       "DVC_NO_ANALYTICS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                       "MLOPS_CI_CACHE_DIR": str(SHARED_CACHE), **AUTHOR})
    for key in list(os.environ):
        if key.startswith(("GITHUB_", "MLFLOW_TRACKING", "MLFLOW_RUN", "MLFLOW_EXPERIMENT", "RUNNER_")):
            del os.environ[key]
    os.environ.pop("CI", None)
    crds = ROOT.parent / "shared" / "contracts" / "kserve"
    if "MLOPS_CI_CRDS" not in os.environ and crds.is_dir():
        os.environ["MLOPS_CI_CRDS"] = str(crds)  # every manifest checked against KServe's CRD, as in the tests


def quiet_main(*argv: str) -> tuple[int, str]:
    """`mlops-ci ARGV` in this process (set-up only: nothing timed), its output captured."""
    from mlops_ci.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


def must(*argv: str) -> str:
    code, out = quiet_main(*argv)
    if code != 0:
        raise SystemExit(f"mlops-ci {' '.join(argv)} failed ({code}):\n{out[-3000:]}")
    return out


def cli(config: Path, *args: str) -> tuple[float, float, int, str]:
    """`mlops-ci ARGS` as a job runs it (a new process): start and end (monotonic), exit code, output."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mlops_ci", args[0], "--config", str(config), *args[1:]],
                          cwd=config.parent, capture_output=True, text=True, timeout=900, check=False)
    return start, time.monotonic(), proc.returncode, proc.stdout + proc.stderr


def git(cwd: Path, *args: str) -> str:
    from conftest import git as test_git

    return test_git(cwd, *args)


def project(folder: Path, models: list[str], prod_rollout: str) -> Path:
    """The tiny project (tests/fixtures/tiny, its data) as a git repository whose config has a prod
    environment with ``prod_rollout`` (YAML under ``rollout:``, indented 6) and tiny's model section
    under each name in ``models`` (RawDeployment). Returns the config's path."""
    from conftest import FIXTURES, commit, write_tiny_data

    shutil.copytree(FIXTURES / "tiny", folder)
    (folder / ".gitignore").write_text(".mlops-ci/\n")
    write_tiny_data(folder)
    text = (FIXTURES / "tiny" / ".mlops-ci.yaml").read_text()
    head, section = text.split("models:\n", 1)
    section = section.replace("      check: {enabled: false}\n",
                              "      check: {enabled: false}\n      deployment_mode: RawDeployment\n", 1)
    assert section.startswith("  tiny:\n"), section[:40]
    head = head.replace("    namespace: tiny-staging\n", "    namespace: tiny-staging\n  prod:\n"
                        f"    namespace: {NAMESPACE}\n    rollout:\n{prod_rollout}", 1)
    config = folder / ".mlops-ci.yaml"
    config.write_text(head + "models:\n" + "".join(section.replace("  tiny:\n", f"  {m}:\n", 1) for m in models))
    git(folder, "init", "--quiet", "--initial-branch=main")
    commit(folder, "bench project")
    return config


def registry(config: Path, models: list[str], versions: int) -> None:
    """``versions`` passing versions of each model in the project's embedded MLflow (as
    tests/registry.py's build_registry does for tiny: a file each, a digest, a passing evaluation)."""
    from mlops_ci.backends.tracking.mlflow import MlflowTracking
    from mlops_ci.stages.register import EVALUATION_TAG

    state = config.parent / ".mlops-ci"
    state.mkdir(exist_ok=True)
    tracking = MlflowTracking(uri=f"sqlite:///{(state / 'mlflow.db').as_posix()}",
                              artifact_root=(state / "mlartifacts").as_uri())
    for model in models:
        for n in range(1, versions + 1):
            folder = state / "models" / model / f"m-{n}"
            folder.mkdir(parents=True)
            (folder / "model.bin").write_text(f"{model} {n}\n")
            tags = {"mlops_ci.digest": f"sha256:{n % 10}{model.encode().hex()[:63].ljust(63, '0')}",
                    "mlops_ci.head_sha": "c" * 40, EVALUATION_TAG: "pass"}
            got = tracking.register(model, str(folder), run_id=None, tags=tags).version
            assert got == str(n), (model, got, n)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), linear between order statistics."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


# -- (1) time to rollback --------------------------------------------------------------------------------

class Load:
    """V2 inference requests to each role's server from its own thread, one every ``every_s``, until
    stopped; a role's URL is read before each request (a restarted server has a new port)."""

    def __init__(self, urls: dict[str, str], every_s: float = 0.05) -> None:
        from prometheus_support import bodies

        self.urls, self.every_s, self.payloads = urls, every_s, bodies()
        self.sent = {role: Counter() for role in urls}
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._drive, args=(role,), daemon=True) for role in urls]

    def _drive(self, role: str) -> None:
        import requests

        with requests.Session() as session:
            i = 0
            while not self.stopping.is_set():
                now = time.monotonic()
                try:
                    code = session.post(self.urls[role], data=self.payloads[i % len(self.payloads)], timeout=10,
                                        headers={"Content-Type": "application/json"}).status_code
                except requests.RequestException as err:
                    code = type(err).__name__
                self.sent[role][code] += 1
                i += 1
                self.stopping.wait(max(0.0, self.every_s - (time.monotonic() - now)))

    def __enter__(self) -> Load:  # noqa: PYI034
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(15)


class RefWatch(threading.Thread):
    """When the branch of a bare repository moves (its loose ref or packed-refs, read every 10 ms)."""

    def __init__(self, bare: Path, branch: str = "main") -> None:
        super().__init__(daemon=True)
        self.bare, self.branch = bare, branch
        self.start_sha = self.sha()
        self.moved_at: float | None = None
        self.stopping = threading.Event()

    def sha(self) -> str:
        loose = self.bare / "refs" / "heads" / self.branch
        with contextlib.suppress(FileNotFoundError):
            text = loose.read_text().strip()
            if text:
                return text
        packed = self.bare / "packed-refs"
        with contextlib.suppress(FileNotFoundError):
            for line in packed.read_text().splitlines():
                if line.endswith(f" refs/heads/{self.branch}"):
                    return line.split()[0]
        return ""

    def run(self) -> None:
        while not self.stopping.is_set() and self.moved_at is None:
            if self.sha() not in (self.start_sha, ""):
                self.moved_at = time.monotonic()
            time.sleep(0.01)


@dataclass
class Trial:
    version: int
    healthy_s: float  # the step live and healthy before the flag
    phase_s: float  # the loop's first tick after the step's commit (its phase against the scrapes)
    flag_at: float = 0.0
    pushed_at: float | None = None
    seen_at: float | None = None  # the in-process poll's first failing analysis
    runs: list[tuple[float, float, int, str]] = field(default_factory=list)
    aborted_early: bool = False
    step_at: float = 0.0

    @property
    def rollback_s(self) -> float:
        assert self.pushed_at is not None
        return self.pushed_at - self.flag_at

    def aborting(self) -> tuple[float, float, int, str]:
        return next(r for r in self.runs if r[2] == 1 and "aborted" in r[3])

    def inside_s(self) -> float:
        """Seconds of [flag, pushed] during which an advance run was running."""
        assert self.pushed_at is not None
        return sum(max(0.0, min(end, self.pushed_at) - max(start, self.flag_at)) for start, end, _, _ in self.runs)


class Scene:
    """The primary and the flaky canary (MLServer), Prometheus scraping them every SCRAPE_S, and load."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.flag = tmp / "canary-fails"
        self.servers: dict = {}
        self.prom = None
        self.env_build_s: float | None = None

    def start(self) -> Scene:
        import prometheus_support as ps
        from prometheus_support import champion_files, plant

        from mlops_ci.runtime import mlserver

        DATA.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        model = champion_files(DATA, self.tmp / "model-primary")  # trained once into bench/.data/rollout
        self.champion_s = time.monotonic() - started
        started = time.monotonic()
        env = mlserver.environment(model)
        took = time.monotonic() - started
        if took > 20:  # a cold build (the cached environment is reused in well under a second)
            self.env_build_s = took
        canary = self.tmp / "model-canary"
        shutil.copytree(model, canary)
        plant(canary, FLAKY.format(flag=str(self.flag)))
        self.env, self.canary_dir = env, canary
        self.servers = {role: mlserver.MLServer(env, path, ps.NAME, self.tmp / f"serve-{role}-2")
                        for role, path in (("primary", model), ("canary", canary))}
        for server in self.servers.values():
            server.start()
        for server in self.servers.values():
            server.wait_ready()
        self.urls = {role: server.infer_url for role, server in self.servers.items()}  # what Load reads
        ps.SCRAPE = f"{SCRAPE_S}s"
        self.prom = ps.Prometheus(ps.prometheus_binary(), self.tmp / "prometheus", self.targets(2)).start()
        return self

    def targets(self, canary_version: int) -> list[tuple[str, dict[str, str]]]:
        from prometheus_support import NAME, metrics_port

        common = {"namespace": NAMESPACE, "serving_kserve_io_inferenceservice": NAME}
        return [(f"127.0.0.1:{metrics_port(self.servers['primary'])}", {**common, "mlops_ci_dev_model_version": "1"}),
                (f"127.0.0.1:{metrics_port(self.servers['canary'])}",
                 {**common, "mlops_ci_dev_model_version": str(canary_version)})]

    def new_canary(self, canary_version: int) -> None:
        """A new canary server (a new pod: its counters start at 0, it has answered no 5xx yet) labelled
        ``canary_version``; Prometheus reloads its config (SIGHUP) and has scraped both targets since."""
        import requests
        from prometheus_support import NAME

        from mlops_ci.runtime import mlserver

        assert self.prom is not None and self.prom.proc is not None
        if self.servers["canary"].workdir.name != f"serve-canary-{canary_version}":
            self.servers["canary"].stop()
            self.servers["canary"] = mlserver.MLServer(self.env, self.canary_dir, NAME,
                                                       self.tmp / f"serve-canary-{canary_version}").start()
            self.servers["canary"].wait_ready()
            self.urls["canary"] = self.servers["canary"].infer_url
        self.prom.targets = self.targets(canary_version)
        groups = [{"targets": [address], "labels": labels} for address, labels in self.prom.targets]
        config = {"global": {"scrape_interval": f"{SCRAPE_S}s", "scrape_timeout": f"{SCRAPE_S}s",
                             "evaluation_interval": "1m"},
                  "scrape_configs": [{"job_name": "models", "static_configs": groups}]}
        (self.prom.workdir / "prometheus.yml").write_text(json.dumps(config, indent=1))
        moment = time.time()
        self.prom.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 4 * SCRAPE_S + 30
        while True:
            active = requests.get(self.prom.url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            versions = sorted(t["labels"].get("mlops_ci_dev_model_version", "") for t in active
                              if t["health"] == "up" and datetime.fromisoformat(t["lastScrape"]).timestamp() > moment)
            if versions == sorted(["1", str(canary_version)]) and len(active) == 2:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"prometheus did not scrape the relabelled targets: {active}")
            time.sleep(0.2)


    def stop(self) -> None:
        if self.prom is not None:
            self.prom.stop()
        stopping = [threading.Thread(target=s.stop) for s in self.servers.values()]
        for t in stopping:
            t.start()
        for t in stopping:
            t.join()


def poll_analysis(url: str, version: int, step_wall: datetime, stop: threading.Event, trial: Trial) -> None:
    """The step's analysis asked in this process every 0.5 s (what advance would conclude now)."""
    from mlops_ci.backends.prometheus import PrometheusClient
    from mlops_ci.config.analysis import PrometheusAnalysis
    from mlops_ci.rollout.metrics import analyse_metrics
    from mlops_ci.rollout.verdict import FAIL, Window, combine

    cfg = PrometheusAnalysis(url=url, thresholds={"latency_p99": {"ratio_floor": 0.1}})
    client = PrometheusClient.from_config(cfg)
    while not stop.wait(0.5):
        if not trial.flag_at:
            continue
        now = datetime.now(UTC)
        window = Window(max(step_wall, now - timedelta(seconds=LOOKBACK_S)), now)
        found = analyse_metrics(cfg, client, namespace=NAMESPACE, name="tiny", canary_version=str(version),
                                primary_version="1", deployment_mode="RawDeployment", window=window)
        if combine(found).status == FAIL:
            trial.seen_at = time.monotonic()
            return


def run_trial(scene: Scene, config: Path, trial: Trial, first: bool) -> Trial:
    bare = config.parent / ".mlops-ci" / "gitops.git"
    scene.new_canary(trial.version)
    if not first:
        must("rollback", "--config", str(config), "--model", "tiny", "--env", "prod", "--clear-hold",
             "--reason", "bench: the next trial")
    step_wall = datetime.now(UTC).replace(microsecond=0)
    out = must("promote", "--config", str(config), "--model", "tiny", "--env", "prod", "--version", str(trial.version))
    assert "step 1/1" in out, out
    step_at = trial.step_at = time.monotonic()
    watch = RefWatch(bare)
    stop = threading.Event()

    def raise_flag() -> None:
        if not stop.wait(max(0.0, step_at + trial.healthy_s - time.monotonic())):
            scene.flag.touch()
            trial.flag_at = time.monotonic()
            watch.start_sha = watch.sha()  # the rollback is the first move after the flag
            watch.start()

    flagger = threading.Thread(target=raise_flag, daemon=True)
    poller = threading.Thread(target=poll_analysis, daemon=True,
                              args=(scene.prom.url, trial.version, step_wall, stop, trial))
    flagger.start()
    poller.start()
    tick = step_at + trial.phase_s
    try:
        while True:
            time.sleep(max(0.0, tick - time.monotonic()))
            run = cli(config, "rollout", "advance", "--model", "tiny", "--env", "prod")
            trial.runs.append(run)
            if run[2] not in (0, 1):
                raise SystemExit(f"rollout advance failed ({run[2]}):\n{run[3][-3000:]}")
            if run[2] == 1:
                if not trial.flag_at:
                    trial.aborted_early = True  # a healthy canary rolled back: a false alarm
                break
            if trial.flag_at and time.monotonic() - trial.flag_at > 300:
                raise SystemExit("no rollback 300 s after the canary started failing:\n" + run[3][-3000:])
            tick += EVERY_S
            while tick < run[1]:  # a tick missed while a run still went on is skipped: one run at a time
                tick += EVERY_S
    finally:
        stop.set()
        flagger.join()
        poller.join(10)
        scene.flag.unlink(missing_ok=True)
    if trial.aborted_early:
        return trial
    watch.join(5)
    watch.stopping.set()
    trial.pushed_at = watch.moved_at or trial.aborting()[1]
    rollout_step = git(bare, "log", "-1", "--format=%(trailers:key=Rollout-Step,valueonly)", "main")
    assert rollout_step.strip() == "aborted at 1/1", rollout_step
    return trial


def time_to_rollback(tmp: Path, trials: int, seed: int) -> tuple[list[Trial], Scene, dict]:
    rng = random.Random(seed)
    scene = Scene(tmp / "scene").start()
    info: dict = {}
    try:
        with Load(scene.urls) as load:
            steps = "[{canary: 50, soak: 1h}]"
            config = project(tmp / "rollback" / "tiny", ["tiny"],
                             f"      steps: {steps}\n      max_soak: 2h\n"
                             + ANALYSIS.format(lookback=LOOKBACK_S, url=scene.prom.url))
            registry(config, ["tiny"], trials + 4)
            must("promote", "--config", str(config), "--model", "tiny", "--env", "prod", "--version", "1")
            done: list[Trial] = []
            version = 2
            # a healthy canary aborted before its flag (a false alarm) is reported, and another trial
            # run in its place, up to 3 more
            while sum(not t.aborted_early for t in done) < trials and len(done) < trials + 3:
                # the flag and the loop's ticks at random phases: of each other and of the scrapes (the
                # step is committed just after a scrape: the set-up waits for one)
                trial = Trial(version=version, healthy_s=LOOKBACK_S + rng.uniform(0, EVERY_S),
                              phase_s=rng.uniform(0, EVERY_S))
                done.append(run_trial(scene, config, trial, first=version == 2))
                version += 1
                t = done[-1]
                what = "aborted before the flag (a false alarm)" if t.aborted_early else f"{t.rollback_s:.1f} s"
                print(f"  trial {len(done)}: v{t.version}, healthy {t.healthy_s:.1f} s, time to rollback {what}",
                      file=sys.stderr, flush=True)
        info["sent"] = {role: dict(codes) for role, codes in load.sent.items()}
    finally:
        scene.stop()
    return done, scene, info


# -- (2) one advance run -----------------------------------------------------------------------------------

def advance_costs(tmp: Path, models_n: int, repeats: int) -> list[tuple[str, int, list[float], str]]:
    """Rows: (what, models, seconds of each run, note)."""
    rows: list[tuple[str, int, list[float], str]] = []
    steps = "[" + ", ".join(f"{{canary: {c}, soak: 1h}}" for c in
                            [5 + 80 * i // (repeats + 1) for i in range(repeats + 1)]) + "]"
    rollout_yaml = f"      steps: {steps}\n      max_soak: 2h\n"
    for count in (1, models_n):
        names = ["tiny"] + [f"tiny{i:02d}" for i in range(1, count)]
        config = project(tmp / f"advance-{count}" / "tiny", names, rollout_yaml)
        started = time.monotonic()
        registry(config, names, 2)
        for version in ("1", "2"):  # served whole, then the first step of v2 beside it
            for name in names:
                must("promote", "--config", str(config), "--model", name, "--env", "prod", "--version", version)
        print(f"  {count} model(s): registry and {2 * count} promotions set up in {time.monotonic() - started:.0f} s",
              file=sys.stderr, flush=True)
        bare = config.parent / ".mlops-ci" / "gitops.git"
        commits = int(git(bare, "rev-list", "--count", "main"))
        soaking, forced = [], []
        for _ in range(repeats):
            start, end, code, out = cli(config, "rollout", "advance", "--env", "prod")
            assert code == 0 and out.count(": wait (step ") == count, out[-2000:]
            soaking.append(end - start)
        assert int(git(bare, "rev-list", "--count", "main")) == commits  # read only
        for _ in range(repeats):
            start, end, code, out = cli(config, "rollout", "advance", "--env", "prod", "--force", "--reason", "bench")
            assert code == 0 and out.count(": advanced to step ") == count, out[-2000:]
            forced.append(end - start)
        assert int(git(bare, "rev-list", "--count", "main")) == commits + repeats * count
        rows.append(("advance, every model mid-soak (read-only looks)", count, soaking, ""))
        rows.append(("advance --force --reason bench, every model takes a step (a commit + push each)", count, forced, ""))
        if count > 1:
            one = []
            for _ in range(repeats):
                start, end, code, out = cli(config, "rollout", "advance", "--model", "tiny", "--env", "prod")
                assert code == 0 and ": wait (step " in out, out[-2000:]
                one.append(end - start)
            rows.append((f"advance --model tiny (one model of the {count}), mid-soak", 1, one, ""))
            rows += baselines(tmp, config, names, repeats)
    return rows


def baselines(tmp: Path, config: Path, names: list[str], repeats: int) -> list[tuple[str, int, list[float], str]]:
    bare = config.parent / ".mlops-ci" / "gitops.git"
    plain = []
    for i in range(repeats):
        work = tmp / f"plain-{i}"
        start = time.monotonic()
        git(tmp, "clone", "--quiet", "--no-tags", "--single-branch", "--branch", "main", str(bare), str(work))
        (work / "bench.txt").write_text(f"{i}\n")
        git(work, "add", "--all")
        git(work, "commit", "--quiet", "-m", "bench")
        git(work, "push", "--quiet", "origin", "HEAD:main")
        plain.append(time.monotonic() - start)
        shutil.rmtree(work)
    promotes = []
    for i in range(repeats):  # a new model into staging each time: a real commit
        start, end, code, out = cli(config, "promote", "--model", names[i % len(names)], "--env", "staging",
                                    "--version", "1")
        assert code == 0 and "commit" in out, out[-2000:]
        promotes.append(end - start)
    size = sum(f.stat().st_size for f in bare.rglob("*") if f.is_file()) / 1e6
    commits = git(bare, "rev-list", "--count", "main")
    clone = (f"baseline: git clone + commit + git push of this GitOps repository ({commits} commits, "
             f"{size:.1f} MB)")
    return [(clone, 0, plain, "plain"),
            ("baseline: mlops-ci promote of one model (to staging, a commit + push + MLflow alias)", 1, promotes,
             "promote")]


def warm(tmp: Path) -> float:
    """One CLI process before anything is timed (the interpreter's caches, MLflow's schema cache)."""
    config = project(tmp / "warm" / "tiny", ["tiny"], "      steps: [{canary: 50, soak: 1h}]\n")
    registry(config, ["tiny"], 1)
    for args in (("promote", "--model", "tiny", "--env", "staging", "--version", "1"),
                 ("rollout", "status", "--env", "prod")):
        code, out = cli(config, *args)[2:]
        assert code == 0, out
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.monotonic() - t0


# -- printing -----------------------------------------------------------------------------------------------

def report_rollback(trials: list[Trial], scene: Scene, info: dict) -> None:
    ok = [t for t in trials if not t.aborted_early]
    false_alarms = len(trials) - len(ok)
    print("### (1) time to rollback: canary fails on 1 request in 2 -> rollback commit pushed\n")
    print(f"scrape interval {SCRAPE_S} s; `mlops-ci rollout advance` (a subprocess) every {EVERY_S} s; "
          f"rollout.lookback {LOOKBACK_S}s; one step at 50 %, soak 1h; each step healthy for the lookback + "
          f"U(0, {EVERY_S}) s before the flag; the loop's first tick U(0, {EVERY_S}) s after the step; "
          f"n = {len(ok)} trials"
          + (f"; **{false_alarms} healthy canaries aborted before the flag**" if false_alarms else "") + "\n")
    for t in trials:
        if t.aborted_early:
            run = next(r for r in t.runs if r[2] == 1)
            found = [line.strip() for line in run[3].splitlines() if line.strip().startswith("fail ")]
            print(f"- false alarm: v{t.version} (healthy) aborted by the advance run that started "
                  f"{run[0] - t.step_at:.1f} s after its step's commit: " + "; ".join(found))
    if false_alarms:
        print()
    if not ok:
        return
    times = [t.rollback_s for t in ok]
    waits = [t.aborting()[0] - t.flag_at for t in ok]
    durations = [t.aborting()[1] - t.aborting()[0] for t in ok]
    seen = [t.seen_at - t.flag_at for t in ok if t.seen_at]
    inside = sum(t.inside_s() for t in ok) / sum(times)
    runs_all = [r[1] - r[0] for t in ok for r in t.runs if r[2] == 0]
    print("| measure | p50 | p95 | max | min | n |")
    print("|---|---:|---:|---:|---:|---:|")

    def row(name: str, values: list[float]) -> None:
        print(f"| {name} | {pct(values, .5):.1f} | {pct(values, .95):.1f} | {max(values):.1f} | {min(values):.1f} "
              f"| {len(values)} |")

    row("**time to rollback** (s): flag -> the rollback commit on the GitOps branch", times)
    row("flag -> an in-process analysis (polled every 0.5 s) first fails (s)", seen) if seen else None
    row("flag -> the aborting advance run starts (s)", waits)
    row("the aborting advance run, start to exit (s)", durations)
    row("the other advance runs (each a wait: nothing to commit), start to exit (s)", runs_all)
    print(f"\nfloor: scrape interval + evaluation interval = {SCRAPE_S} + {EVERY_S} = {SCRAPE_S + EVERY_S} s "
          f"(a perfect loop's worst case); goal p95 <= 60 s: **{'met' if pct(times, .95) <= 60 else 'not met'}** "
          f"(p95 {pct(times, .95):.1f} s)")
    print(f"share of the time to rollback spent inside advance runs: {inside * 100:.0f} %")
    sent = info.get("sent", {})
    print("requests sent (status: count): " + "; ".join(f"{role} {dict(codes)}" for role, codes in sent.items()))
    if scene.env_build_s:
        print(f"the MLServer tool environment was built now (cold): {scene.env_build_s:.0f} s")
    print()


def report_advance(rows: list[tuple[str, int, list[float], str]], models_n: int, repeats: int) -> None:
    print(f"### (2) one `mlops-ci rollout advance --env prod` run (a subprocess), wall seconds, median of {repeats}\n")
    plain = next(statistics.median(v) for _, _, v, note in rows if note == "plain")
    promote = next(statistics.median(v) for _, _, v, note in rows if note == "promote")
    print("| what | models | median (s) | min | max | per model (s) | / clone+push | / promote |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for what, count, values, note in rows:
        med = statistics.median(values)
        per = f"{med / count:.2f}" if count else ""
        print(f"| {what} | {count or ''} | {med:.2f} | {min(values):.2f} | {max(values):.2f} | {per} | "
              f"{med / plain:.1f}x | {med / promote:.2f}x |")
    one = [statistics.median(v) for what, c, v, _ in rows if c == 1 and what.startswith("advance --force")]
    many = [statistics.median(v) for what, c, v, _ in rows if c == models_n and what.startswith("advance")]
    if one and many:
        print(f"\ngoals: 1 model <= 5 s: **{'met' if max(one) <= 5 else 'not met'}** ({max(one):.1f} s, forced); "
              f"{models_n} models <= 60 s: **{'met' if max(many) <= 60 else 'not met'}** ({max(many):.1f} s, slowest)")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="time-to-rollback trials (default 8)")
    parser.add_argument("--models", type=int, default=50, help="models in the many-model GitOps repository")
    parser.add_argument("--repeats", type=int, default=3, help="advance runs timed per row (median)")
    parser.add_argument("--quick", action="store_true", help="1 trial, 10 models, 1 run per row (about 2 minutes)")
    parser.add_argument("--skip-rollback", action="store_true", help="only (2)")
    parser.add_argument("--skip-advance", action="store_true", help="only (1)")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    if args.quick:
        args.trials, args.models, args.repeats = 1, 10, 1
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlops-ci-bench-rollout-") as tmp_name:
        tmp = Path(tmp_name)
        isolate(tmp)
        python_s = warm(tmp)
        print(f"CPU cores: {os.cpu_count()}; load average at the start: {os.getloadavg()[0]:.1f}; "
              f"`python -c pass`: {python_s:.2f} s; CRD schemas: {os.environ.get('MLOPS_CI_CRDS') or 'not checked'}\n",
              flush=True)
        if not args.skip_rollback:
            trials, scene, info = time_to_rollback(tmp, args.trials, args.seed)
            report_rollback(trials, scene, info)
            sys.stdout.flush()
        if not args.skip_advance:
            rows = advance_costs(tmp, args.models, args.repeats)
            report_advance(rows, args.models, args.repeats)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}; the whole run took {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
