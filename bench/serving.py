"""Time the serving check against a plain baseline (goal: our overhead <= 1.2x).

Two MLflow pyfunc models (a candidate and a champion: numpy logistic regressions over 8 features,
logged with MLflow like a user's model) are served one after the other, as the serving check does:

- **ours:** ``mlops_ci.stages.serve.serve_one`` for each (MLServer started as KServe starts it,
  readiness polled, the sample sent one row per request, then ``--requests`` requests from
  ``--concurrency`` clients, peak memory sampled), plus the parity comparison with the pyfunc;
- **baseline:** MLServer started by hand with a ``model-settings.json`` in a folder, readiness
  polled with ``requests``, the same requests sent with a plain ``requests`` session per client
  thread, the server stopped.

Both use the same runtime environment (built before any timing). Then, to answer "candidate and
champion in parallel or one after the other?", both servers are run at once under the same load and
their p99 is printed beside the sequential numbers. Run: .venv/bin/python bench/serving.py
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

MODEL_CODE = '''
import json
import numpy as np
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class Logistic(PythonModel):
    def load_context(self, context):
        with open(context.artifacts["weights"]) as fh:
            self.p = json.load(fh)

    def predict(self, context, model_input, params=None):
        X = np.column_stack([model_input[c].astype(float) for c in self.p["features"]])
        return 1 / (1 + np.exp(-(X @ np.array(self.p["w"]) + self.p["b"])))


set_model(Logistic())
'''


def log_models(tmp: Path, features: list[str]) -> list[Path]:
    """Two models logged by MLflow to a local store: their artifact folders."""
    import mlflow
    import numpy as np

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    code = tmp / "bench_model.py"
    code.write_text(MODEL_CODE)
    out = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        weights = tmp / f"weights-{seed}.json"
        weights.write_text(json.dumps({"features": features, "w": rng.normal(0, 1, len(features)).tolist(), "b": 0.1}))
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=str(code), artifacts={"weights": str(weights)},
                                           pip_requirements=["numpy", "pandas"])
        out.append(Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp / f"model-{seed}"))))
    return out


def baseline(env, model_dir: Path, bodies: list[bytes], *, requests_n: int, concurrency: int, workdir: Path) -> dict:
    """MLServer started by hand with model-settings.json; plain requests; nothing of mlops-ci's."""
    import requests

    from mlops_ci.runtime.mlserver import free_port

    models = workdir / "models" / "bench"
    models.mkdir(parents=True)
    (models / "model-settings.json").write_text(json.dumps({
        "name": "bench", "implementation": "mlserver_mlflow.MLflowRuntime", "parameters": {"uri": str(model_dir)}}))
    port = free_port()
    (workdir / "models" / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
        "metrics_dir": str(workdir / "metrics")}))
    start = time.perf_counter()
    proc = subprocess.Popen([str(env.python), "-c", "import sys; from mlserver.cli import main; sys.exit(main())",
                             "start", str(workdir / "models")], cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v2/models/bench"
    try:
        while True:
            try:
                if requests.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        ready = time.perf_counter() - start
        for body in bodies:  # the same sample the check sends first
            requests.post(f"{url}/infer", data=body, headers={"Content-Type": "application/json"}, timeout=60)
        latencies: list[float] = []
        lock, state = threading.Lock(), {"next": 0}

        def client():
            s = requests.Session()
            while True:
                with lock:
                    i = state["next"]
                    if i >= requests_n:
                        return
                    state["next"] = i + 1
                t = time.perf_counter()
                s.post(f"{url}/infer", data=bodies[i % len(bodies)], headers={"Content-Type": "application/json"})
                with lock:
                    latencies.append(time.perf_counter() - t)

        load_start = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - load_start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    import numpy as np

    lat = np.asarray(latencies)
    return {"ready_s": ready, "p50_ms": np.percentile(lat, 50) * 1000, "p99_ms": np.percentile(lat, 99) * 1000,
            "rps": len(lat) / wall, "total_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rows", type=int, default=100)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from mlops_ci.config.schema import ServingCheck
    from mlops_ci.console import NullProgress
    from mlops_ci.records import ServedModel
    from mlops_ci.runtime import mlserver, v2
    from mlops_ci.stages import serve as serve_stage

    features = [f"f{i}" for i in range(8)]
    frame = pd.DataFrame(np.random.default_rng(0).normal(0, 1, (2000, len(features))), columns=features)
    sample = v2.sendable(frame).head(args.sample_rows)
    bodies = [v2.request_json(sample.iloc[[i]]).encode() for i in range(len(sample))]
    check = ServingCheck(sample_rows=args.sample_rows, requests=args.requests, concurrency=args.concurrency)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp_:
        tmp = Path(tmp_)
        models = log_models(tmp, features)
        start = time.perf_counter()
        env = mlserver.environment(models[0])
        print(f"runtime environment ready in {time.perf_counter() - start:.1f}s (built once, cached; not timed below)")
        import mlflow.pyfunc

        pyfuncs = [mlflow.pyfunc.load_model(str(m)) for m in models]

        def ours(workdir: Path) -> tuple[float, list[ServedModel]]:
            start = time.perf_counter()
            served = []
            for role, model_dir, pyfunc in zip(("candidate", "champion"), models, pyfuncs):
                target = ServedModel(role=role, label=role)
                answers = serve_stage.serve_one(target, model_dir=model_dir, name="bench", bodies=bodies,
                                                rows=list(range(len(bodies))), check=check, workdir=workdir / role,
                                                progress=NullProgress())
                if role == "candidate":
                    serve_stage._parity(np.asarray(pyfunc.predict(sample)), answers, sample, list(range(len(bodies))),
                                        check.tolerance)
                served.append(target)
            return time.perf_counter() - start, served

        def plain(workdir: Path) -> tuple[float, list[dict]]:
            start = time.perf_counter()
            out = [baseline(env, m, bodies, requests_n=args.requests, concurrency=args.concurrency,
                            workdir=workdir / str(i)) for i, m in enumerate(models)]
            return time.perf_counter() - start, out

        # warm the page cache and the interpreters once, then alternate
        ours(tmp / "warm")
        runs_ours, runs_plain = [], []
        for i in range(2):
            runs_plain.append(plain(tmp / f"plain-{i}"))
            runs_ours.append(ours(tmp / f"ours-{i}"))
        ours_s = min(r[0] for r in runs_ours)
        plain_s = min(r[0] for r in runs_plain)
        served = min(runs_ours)[1]
        base = min(runs_plain)[1]
        print(f"\nserving check (candidate then champion, {args.sample_rows} parity requests + {args.requests} at "
              f"concurrency {args.concurrency} each): {ours_s:.2f}s")
        print(f"plain baseline (MLServer by hand, the same requests with requests.Session): {plain_s:.2f}s")
        print(f"overhead ratio: {ours_s / plain_s:.2f}x (goal <= 1.2x)")
        print("\n| | cold start | p50 | p99 | requests/s | peak memory (PSS) |\n|---|---|---|---|---|---|")
        for s in served:
            print(f"| {s.role} (check) | {s.ready_s:.2f} s | {s.latency.p50_ms:.2f} ms | {s.latency.p99_ms:.2f} ms | "
                  f"{s.latency.rps:.0f} | {s.peak_memory_bytes / 2**20:.0f} MiB |")
        for name, b in zip(("candidate", "champion"), base):
            print(f"| {name} (baseline) | {b['ready_s']:.2f} s | {b['p50_ms']:.2f} ms | {b['p99_ms']:.2f} ms | "
                  f"{b['rps']:.0f} | - |")

        # both at once: what running them in parallel does to the numbers on this machine
        results: dict[str, ServedModel] = {}

        def one(role, model_dir):
            target = ServedModel(role=role, label=role)
            serve_stage.serve_one(target, model_dir=model_dir, name="bench", bodies=bodies,
                                  rows=list(range(len(bodies))), check=check, workdir=tmp / f"par-{role}",
                                  progress=NullProgress())
            results[role] = target

        start = time.perf_counter()
        threads = [threading.Thread(target=one, args=a) for a in zip(("candidate", "champion"), models)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        par_s = time.perf_counter() - start
        print(f"\nin parallel: {par_s:.2f}s wall ({os.cpu_count()} cores); p99 candidate "
              f"{results['candidate'].latency.p99_ms:.2f} ms, champion {results['champion'].latency.p99_ms:.2f} ms "
              f"(sequential: {served[0].latency.p99_ms:.2f} / {served[1].latency.p99_ms:.2f} ms); cold start "
              f"{results['candidate'].ready_s:.2f} / {results['champion'].ready_s:.2f} s (sequential: "
              f"{served[0].ready_s:.2f} / {served[1].ready_s:.2f} s)")


if __name__ == "__main__":
    main()
