"""Runs a deepchecks suite in its own environment and returns a typed, gated result.

The core never imports deepchecks: it samples the frames, writes them as Parquet (and the
precomputed predictions as ``.npy``) into ``out_dir``, runs ``worker.py`` with the
environment's interpreter (:func:`mlops_ci.toolenv.call`: the spec as a file named on its
command line, the result as a file the spec names), and reads back the worker's JSON, which it
treats as untrusted: size-capped, parsed without NaN, validated, then mapped through the
suite's policy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlops_ci.checks.suites import env as envs
from mlops_ci.checks.suites.models import Predictions, SuiteSpec, WorkerCheck, WorkerResult
from mlops_ci.checks.suites.worker import EXIT_SPEC, PREDICTION_KEYS, PROTOCOL
from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import ConfigError, DataError
from mlops_ci.masking import mask
from mlops_ci.records.suites import ConditionOutcome, SuiteCheckResult, SuiteResult
from mlops_ci.toolenv import (
    MAX_RESPONSE_BYTES,
    ToolEnv,
    WorkerExited,
    WorkerFailed,
    WorkerTimeout,
    call,
    read_response,
    tail,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

WORKER = Path(__file__).with_name("worker.py")
MAX_RESULT_BYTES = MAX_RESPONSE_BYTES
TASKS = ("binary", "multiclass", "regression")
REGRESSION_STRATA = 10


# --- sampling ---------------------------------------------------------------------------------

def sample_indices(labels: pd.Series, cap: int, seed: int, *, task: str = "binary") -> np.ndarray:
    """Sorted row positions of a sample of at most ``cap`` rows, stratified by ``labels``.

    Each label (for regression: each of 10 quantile bins of the label; missing labels are a
    stratum of their own) keeps its share of rows, rounded by largest remainder, and every
    stratum keeps at least one row while ``cap`` allows. Deterministic for a given ``seed``.
    """
    import numpy as np
    import pandas as pd

    n = len(labels)
    if cap <= 0:
        raise ValueError(f"cap must be positive, got {cap}")
    if n <= cap:
        return np.arange(n)
    if task == "regression":
        ranks = pd.to_numeric(labels, errors="coerce").rank(method="first")
        codes = pd.qcut(ranks, q=min(REGRESSION_STRATA, n), labels=False).fillna(-1).to_numpy()
        codes = pd.factorize(codes, sort=True)[0]
    else:
        codes = pd.factorize(labels, sort=True, use_na_sentinel=False)[0]
    counts = np.bincount(codes)
    exact = counts * (cap / n)
    quota = np.floor(exact).astype(int)
    order = np.lexsort((np.arange(len(counts)), -(exact - quota)))
    quota[order[: cap - quota.sum()]] += 1
    for stratum in np.flatnonzero((quota == 0) & (counts > 0)):  # keep rare labels present
        donor = int(np.argmax(quota))
        if quota[donor] <= 1:
            break
        quota[donor] -= 1
        quota[stratum] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(codes == s), size=int(q), replace=False)
              for s, q in enumerate(quota) if q > 0]
    return np.sort(np.concatenate(picked))


# --- inputs ------------------------------------------------------------------------------------

def infer_categorical(frame: pd.DataFrame, label: str) -> list[str]:
    import pandas as pd

    return [str(col) for col in frame.columns if col != label and (
        pd.api.types.is_object_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col])
        or isinstance(frame[col].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(frame[col]))]


def _check_frame(kind: str, frame: pd.DataFrame, label: str) -> None:
    bad = [col for col in frame.columns if not isinstance(col, str)]
    if bad:
        raise DataError(f"{kind} frame: column names must be strings, got {bad[:5]!r}",
                        hint="rename the columns before running the deepchecks suites")
    if label not in frame.columns:
        raise DataError(f"{kind} frame has no label column {label!r}; its columns: "
                        f"{', '.join(map(str, frame.columns[:20]))}")
    if len(frame) == 0:
        raise DataError(f"{kind} frame is empty: the deepchecks suites need rows")


def _prediction_array(key: str, values: Any, rows: int) -> np.ndarray:
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        arr = np.asarray(arr.tolist())
    if arr.dtype.kind not in "biufU":
        raise DataError(f"predictions {key}: numbers or strings expected, got dtype {arr.dtype}")
    if len(arr) != rows:
        raise DataError(f"predictions {key} has {len(arr)} rows, its frame has {rows}",
                        hint="predictions must be row-aligned with the frame they were made on")
    if key.startswith("y_proba") and arr.ndim != 2:
        raise DataError(f"predictions {key} must be 2-D (rows x classes), got shape {arr.shape}")
    return arr


def _check_probabilities(preds: dict, classes: list | None, task: str) -> None:
    probas = {key: arr for key, arr in preds.items() if key.startswith("y_proba")}
    if not probas:
        return
    if task == "regression":
        raise DataError("probabilities were given for a regression task", hint="pass y_pred_* only")
    if not classes:
        raise DataError("probabilities were given without Predictions.classes (the label of each column)")
    if list(classes) != sorted(classes):
        raise DataError(f"Predictions.classes must be sorted (as model.classes_), got {classes!r}")
    for key, arr in probas.items():
        if arr.shape[1] != len(classes):
            raise DataError(f"predictions {key} has {arr.shape[1]} columns for {len(classes)} classes")


def _write_inputs(out_dir: Path, frames: dict, preds: dict) -> dict[str, str]:
    paths = {}
    for kind, frame in frames.items():
        path = out_dir / f"{kind}.parquet"
        try:
            frame.reset_index(drop=True).to_parquet(path, index=False)
        except (TypeError, ValueError, ImportError) as err:  # pyarrow's errors subclass these
            raise DataError(f"cannot write the {kind} frame as Parquet for deepchecks: {err}",
                            hint="give mixed-type object columns one type") from err
        paths[kind] = str(path)
    for key, arr in preds.items():
        import numpy as np

        path = out_dir / f"{key}.npy"
        np.save(path, arr, allow_pickle=False)
        paths[key] = str(path)
    return paths


# --- the worker --------------------------------------------------------------------------------

# matplotlib without a display; deepchecks' FutureWarnings would bury a traceback in the log
WORKER_ENV = {"MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore::FutureWarning"}


def parse_result(path: Path, suite: str, *, max_bytes: int = MAX_RESULT_BYTES) -> WorkerResult:
    """The worker's result file, validated; :class:`WorkerFailed` when it cannot be trusted."""
    return validate_result(read_response(path, max_bytes=max_bytes), path, suite)


def validate_result(data: Any, path: Path, suite: str) -> WorkerResult:
    """The worker's parsed result (from ``path``) checked against the protocol and ``suite``."""
    try:
        raw = WorkerResult.model_validate(data)
    except ValidationError as err:
        raise WorkerFailed(mask(f"the worker's result {path} is not valid: {str(err)[:1000]}")) from err
    if raw.protocol != PROTOCOL:
        raise WorkerFailed(f"the worker speaks protocol {raw.protocol}, this mlops-ci {PROTOCOL}")
    if raw.suite != suite:
        raise WorkerFailed(f"the worker's result is for suite {raw.suite!r}, not {suite!r}")
    if not raw.checks:
        raise WorkerFailed(f"the worker's result {path} lists no checks")
    return raw


# --- policy ------------------------------------------------------------------------------------

def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ACTION_OUTCOME = {"fail": "fail", "warn": "warn", "ignore": "ignored"}
_RANK = {"ignored": 0, "pass": 0, "warn": 1, "fail": 2}


def gate_check(raw: WorkerCheck, spec: SuiteSpec) -> SuiteCheckResult:
    statuses = {_key(name): action for name, action in spec.config.statuses.items()}
    header = raw.header.rsplit(" - ", 1)[0] if raw.dataset else raw.header
    action = statuses.get(_key(raw.name), statuses.get(_key(header), "fail"))
    if raw.status in ("error", "not_run"):
        outcome = _ACTION_OUTCOME[spec.config.on_error]
    elif raw.status == "skipped":
        outcome = "ignored"
    elif raw.status == "fail":
        outcome = _ACTION_OUTCOME[action]
    elif raw.status == "warn":
        outcome = "ignored" if action == "ignore" else "warn"
    else:
        outcome = "pass"
    return SuiteCheckResult(
        name=raw.name, header=raw.header, dataset=raw.dataset, status=raw.status, outcome=outcome,
        conditions=[ConditionOutcome(**c.model_dump()) for c in raw.conditions],
        values=raw.values, error=raw.error, duration_s=raw.duration_s)


def suite_status(checks: Sequence[SuiteCheckResult]) -> str:
    worst = max((_RANK[c.outcome] for c in checks), default=0)
    return {0: "pass", 1: "warn", 2: "fail"}[worst]


# --- the entry point ---------------------------------------------------------------------------

def run_suite(
    spec: SuiteSpec,
    *,
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    label: str,
    task: str,
    predictions: Predictions | None = None,
    out_dir: Path,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    timeout_s: float | None = None,
    sample_rows: int | None = None,
    seed: int = 0,
    categorical: Sequence[str] | None = None,
    env: ToolEnv | None = None,
) -> SuiteResult:
    """Run ``spec.name`` on ``train``/``test`` in the deepchecks environment.

    ``timeout_s`` and ``sample_rows`` default to the suite's config; ``categorical`` to the
    object, bool, string and category columns; ``env`` to ``ensure_env(cache_dir=cache_dir)``
    (pass one to run several suites without checking it each time). Raises
    :class:`DataError` for unusable inputs, :class:`ConfigError` when the worker rejects the
    config's check or condition names, and :class:`~mlops_ci.toolenv.EnvBuildError` when the
    environment cannot be built; a worker that crashes, times out or writes garbage gives a
    result gated by ``on_error``.
    """
    started = time.monotonic()
    progress = progress or NullProgress()
    config = spec.config
    frames, preds, classes, categorical = _validated_inputs(
        spec, train, test, label, task, predictions, categorical)
    cap = sample_rows if sample_rows is not None else config.sample_rows
    total = {kind: len(frame) for kind, frame in frames.items()}
    _sample(frames, preds, label, cap, seed, task)
    sampled = {kind: len(frame) for kind, frame in frames.items()}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = _write_inputs(out_dir, frames, preds)
    result_path, html_path, log = out_dir / "result.json", out_dir / "report.html", out_dir / "worker.log"
    for stale in (result_path, html_path):
        stale.unlink(missing_ok=True)
    request = {
        "protocol": PROTOCOL, "suite": spec.name, "train": paths["train"], "test": paths.get("test"),
        "label": label, "task": task, "categorical": categorical,
        "predictions": {key: paths[key] for key in preds}, "classes": classes,
        "conditions": config.conditions, "statuses": config.statuses,
        "output": {"result": str(result_path), "html": str(html_path)},
    }

    env = env or envs.ensure_env(cache_dir=cache_dir, progress=progress)
    timeout_s = timeout_s if timeout_s is not None else config.timeout_minutes * 60
    common = {"suite": spec.name, "sampled_rows": sampled, "total_rows": total}
    rows = " + ".join(f"{n} {kind}" for kind, n in sampled.items())
    try:
        with progress.step(f"deepchecks {spec.name} ({rows} rows)"):
            raw = validate_result(_call_worker(env, request, out_dir, log, timeout_s, spec.name),
                                  result_path, spec.name)
    except WorkerFailed as failed:
        progress.log(f"deepchecks {spec.name} failed: {str(failed).splitlines()[0]}")
        status = {"fail": "fail", "warn": "warn", "ignore": "error"}[config.on_error]
        return SuiteResult(status=status, error=str(failed), duration_s=time.monotonic() - started,
                           **common)
    checks = [gate_check(check, spec) for check in raw.checks]
    html = str(html_path) if raw.html == str(html_path) and html_path.is_file() else None
    return SuiteResult(status=suite_status(checks), checks=checks, html_path=html,
                       result_path=str(result_path), duration_s=time.monotonic() - started,
                       error=raw.html_error and f"the HTML report could not be written: {raw.html_error}",
                       deepchecks_version=raw.deepchecks_version, **common)


def _call_worker(env: ToolEnv, request: dict, out_dir: Path, log: Path, timeout_s: float, suite: str) -> Any:
    """``worker.py spec.json``, which writes ``result.json``; exit 3 (the spec is unusable) is
    a ConfigError, any other failure a :class:`WorkerFailed`."""
    try:
        return call(env.python, WORKER, request, log=log, timeout_s=timeout_s, env=WORKER_ENV,
                    request_path=out_dir / "spec.json", response_path=Path(request["output"]["result"]),
                    max_response_bytes=MAX_RESULT_BYTES)
    except WorkerTimeout as late:
        raise WorkerFailed(f"{late} (raise timeout_minutes or lower sample_rows)") from late
    except WorkerExited as exited:
        if exited.code != EXIT_SPEC:
            raise
        raise ConfigError(f"deepchecks {suite}: {tail(log, 5)}",
                          hint=f"fix checks.suites.{suite}.conditions / statuses") from exited


def _validated_inputs(spec, train, test, label, task, predictions, categorical):
    """The frames, prediction arrays, classes and categorical columns, or a DataError."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r} for the deepchecks suites; known: {', '.join(TASKS)}")
    if test is None and spec.name != "data_integrity":
        raise DataError(f"the {spec.name} suite needs a test frame as well as a train frame")
    frames = {"train": train} if test is None else {"train": train, "test": test}
    for kind, frame in frames.items():
        _check_frame(kind, frame, label)
    if test is not None and set(train.columns) != set(test.columns):
        differ = sorted(set(train.columns) ^ set(test.columns))
        raise DataError(f"the train and test frames have different columns: {differ[:10]}",
                        hint="deepchecks compares frames with the same columns")
    categorical = list(categorical) if categorical is not None else infer_categorical(train, label)
    unknown = [col for col in categorical if col not in train.columns or col == label]
    if unknown:
        raise DataError(f"categorical columns {unknown} are not feature columns of the frames")
    preds = {}
    for key in PREDICTION_KEYS:
        value, kind = getattr(predictions, key, None), key.rsplit("_", 1)[1]
        if value is not None and kind in frames:
            preds[key] = _prediction_array(key, value, len(frames[kind]))
    classes = None
    if predictions is not None and predictions.classes is not None:
        classes = [v.item() if hasattr(v, "item") else v for v in predictions.classes]  # numpy scalars
    _check_probabilities(preds, classes, task)
    if spec.name == "model_evaluation" and not preds:
        raise DataError("the model_evaluation suite needs predictions or probabilities",
                        hint="pass Predictions(y_pred_test=..., y_proba_test=..., classes=...)")
    return frames, preds, classes, categorical


def _sample(frames: dict, preds: dict, label: str, cap: int, seed: int, task: str) -> None:
    """Cap each frame (in place), with its predictions on the same rows."""
    for i, (kind, frame) in enumerate(list(frames.items())):
        idx = sample_indices(frame[label], cap, seed + i, task=task)
        if len(idx) < len(frame):
            frames[kind] = frame.iloc[idx]
            for key in [k for k in preds if k.endswith(f"_{kind}")]:
                preds[key] = preds[key][idx]
