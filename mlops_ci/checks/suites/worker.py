"""Runs one deepchecks suite inside the deepchecks environment: ``python worker.py spec.json``.

This file is executed by the environment's interpreter as a script (that environment has
numpy 1 and cannot import mlops_ci), so it uses only the standard library at import time and
deepchecks, pandas and numpy inside ``main``. The core imports it only for ``PROTOCOL``.

Input, the spec (JSON): protocol, suite, train/test Parquet paths (test may be null), label,
categorical, task (binary|multiclass|regression), predictions ({y_pred_train: path.npy, ...},
only those given), classes (labels in the order of the probability columns), conditions
({check: {condition: kwargs | null}}), statuses ({check: action}, names are only validated
here), output {result: path.json, html: path.html}.

Output, the result (JSON): protocol, suite, deepchecks_version, duration_s, html (path or null),
html_error, and checks: one entry per result and one per check that produced none, each with
name, header, dataset (train|test|null), status (pass|warn|fail|error|not_run|skipped),
conditions [{name, status, message}], values {key: number}, error, duration_s.

Exit codes: 0 the result was written; 3 the spec is unusable (a message on stderr says why);
anything else a crash (a traceback on stderr).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import traceback

PROTOCOL = 1
EXIT_SPEC = 3
MAX_VALUES = 200
MAX_TEXT = 2000
SUITES = ("data_integrity", "train_test_validation", "model_evaluation")
TASKS = ("binary", "multiclass", "regression")
PREDICTION_KEYS = ("y_pred_train", "y_pred_test", "y_proba_train", "y_proba_test")
# deepchecks raises these when a check does not apply to the inputs (no datetime or index
# column, no model object, too few samples): reported as "skipped", not as a crash.
NOT_APPLICABLE = ("DeepchecksNotSupportedError", "DatasetValidationError",
                  "ModelValidationError", "NotEnoughSamplesError",
                  "DeepchecksSkippedFeatureImportance")
# ... and this one, from checks that need feature importance, which needs the model object.
NOT_APPLICABLE_MESSAGES = ("Feature Importance is not available",)


class SpecError(Exception):
    """The spec cannot be used as given (unknown suite, check or condition name...)."""


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _text(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def load_spec(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            spec = json.load(fh)
    except (OSError, ValueError) as err:
        raise SpecError(f"cannot read the spec {path}: {err}") from err
    if spec.get("protocol") != PROTOCOL:
        raise SpecError(f"spec protocol {spec.get('protocol')!r}, this worker speaks {PROTOCOL}")
    if spec.get("suite") not in SUITES:
        raise SpecError(f"unknown suite {spec.get('suite')!r}; known: {', '.join(SUITES)}")
    if spec.get("task") not in TASKS:
        raise SpecError(f"unknown task {spec.get('task')!r}; known: {', '.join(TASKS)}")
    if not spec.get("train"):
        raise SpecError("the spec names no train frame")
    unknown = set(spec.get("predictions") or {}) - set(PREDICTION_KEYS)
    if unknown:
        raise SpecError(f"unknown predictions {sorted(unknown)}; known: {', '.join(PREDICTION_KEYS)}")
    return spec


def build_suite(name: str):
    from deepchecks.tabular import suites

    return getattr(suites, name)()


def _find_check(suite, name: str):
    wanted = _key(name)
    for check in suite.checks.values():
        if wanted in (_key(type(check).__name__), _key(check.name())):
            return check
    known = ", ".join(sorted(type(c).__name__ for c in suite.checks.values()))
    raise SpecError(f"the {suite.name} suite has no check {name!r}; its checks: {known}")


def apply_conditions(suite, conditions: dict, statuses: dict) -> None:
    """Replace the conditions of the named checks; an unknown name is a SpecError."""
    for name in statuses or {}:
        _find_check(suite, name)
    for name, wanted in (conditions or {}).items():
        check = _find_check(suite, name)
        if not isinstance(wanted, dict):
            raise SpecError(f"conditions for {name!r} must be a mapping of condition -> arguments")
        check.clean_conditions()
        for condition, kwargs in wanted.items():
            method = condition if condition.startswith("add_condition_") else f"add_condition_{condition}"
            func = getattr(check, method, None)
            if not callable(func):
                known = ", ".join(m[len("add_condition_"):] for m in dir(check)
                                  if m.startswith("add_condition_"))
                raise SpecError(f"{type(check).__name__} has no condition {condition!r}; "
                                f"its conditions: {known or 'none'}")
            try:
                func(**(kwargs or {}))
            except Exception as err:  # deepchecks validates arguments with its own errors
                raise SpecError(f"{type(check).__name__}.{method}({kwargs}): {err}") from err


def load_inputs(spec: dict):
    import numpy as np
    import pandas as pd
    from deepchecks.tabular import Dataset

    frames = {}
    for kind in ("train", "test"):
        path = spec.get(kind)
        if path:
            frames[kind] = pd.read_parquet(path)
    if "test" in frames:  # distinct indexes, so static predictions map to the right rows
        frames["test"].index = pd.RangeIndex(len(frames["train"]), len(frames["train"]) + len(frames["test"]))
    label = spec.get("label")
    for kind, frame in frames.items():
        if label and label not in frame.columns:
            raise SpecError(f"the {kind} frame has no label column {label!r}")
    datasets = {
        kind: Dataset(frame, label=label or None, cat_features=list(spec.get("categorical") or []),
                      label_type=spec["task"] if label else None)
        for kind, frame in frames.items()
    }
    predictions = {key: np.load(path, allow_pickle=False)
                   for key, path in (spec.get("predictions") or {}).items()}
    return datasets, predictions


def _numbers(value, prefix: str, out: dict, depth: int = 0) -> None:
    import numpy as np
    import pandas as pd

    if len(out) >= MAX_VALUES or depth > 3:
        return
    if isinstance(value, (bool, np.bool_)):
        return
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if math.isfinite(number) and prefix:
            out[_text(prefix)[:200]] = number
        return
    if isinstance(value, pd.DataFrame):
        if value.size <= MAX_VALUES:
            value = {f"{row}.{col}": value.at[row, col] for row in value.index for col in value.columns}
        else:
            return
    if isinstance(value, pd.Series):
        value = value.to_dict()
    if isinstance(value, dict):
        for key, item in value.items():
            _numbers(item, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)


def _dataset_of(header: str) -> str | None:
    for kind in ("train", "test"):
        if header.endswith(f" - {kind.title()} Dataset"):
            return kind
    return None


def describe(result) -> dict:
    """One check result as plain JSON."""
    header = _text(result.get_header())
    entry = {"name": type(result.check).__name__, "header": header, "dataset": _dataset_of(header),
             "conditions": [], "values": {}, "error": None,
             "duration_s": getattr(result, "run_time", None)}
    exception = getattr(result, "exception", None)
    if exception is not None:  # a CheckFailure
        kind = type(exception).__name__
        skipped = kind in NOT_APPLICABLE or str(exception).startswith(NOT_APPLICABLE_MESSAGES)
        entry["status"] = "skipped" if skipped else "error"
        entry["error"] = _text(f"{kind}: {exception}")
        return entry
    order = {"PASS": 0, "WARN": 1, "FAIL": 2, "ERROR": 3}
    worst = "PASS"
    for condition in result.conditions_results or []:
        category = condition.category.value
        worst = max(worst, category, key=order.get)
        entry["conditions"].append({"name": _text(condition.name), "status": category.lower(),
                                    "message": _text(condition.details)})
    entry["status"] = worst.lower()
    if worst == "ERROR":
        entry["error"] = next(c["message"] for c in entry["conditions"] if c["status"] == "error")
    try:
        _numbers(result.value, "", entry["values"])
    except Exception as err:  # a value we cannot read is no reason to lose the check
        entry["values"] = {}
        entry["error"] = entry["error"] or _text(f"cannot read the check's value: {err}")
    return entry


def collect(checks, results) -> list[dict]:
    """One entry per result, and a ``not_run`` entry for each check that has none."""
    entries = []
    for result in results:
        try:
            entries.append(describe(result))
        except Exception as err:
            entries.append({"name": type(result.check).__name__, "header": _text(result.get_header()),
                            "dataset": None, "status": "error", "conditions": [], "values": {},
                            "error": _text(f"cannot read the result: {type(err).__name__}: {err}")})
    seen = {id(result.check) for result in results}
    for check in checks:
        if id(check) not in seen:
            entries.append({"name": type(check).__name__, "header": check.name(), "dataset": None,
                            "status": "not_run", "conditions": [], "values": {},
                            "error": "the suite returned no result for this check"})
    return entries


def run(spec: dict) -> dict:
    import deepchecks

    deepchecks.set_verbosity(40)  # logging.ERROR: no progress bars
    started = time.monotonic()
    suite = build_suite(spec["suite"])
    apply_conditions(suite, spec.get("conditions") or {}, spec.get("statuses") or {})
    datasets, predictions = load_inputs(spec)
    classes = spec.get("classes")
    suite_result = suite.run(train_dataset=datasets["train"], test_dataset=datasets.get("test"),
                             model_classes=list(classes) if classes else None, **predictions)
    checks = collect(suite.checks.values(), suite_result.results)
    html, html_error = spec["output"].get("html"), None
    if html:
        try:
            suite_result.save_as_html(html, as_widget=False)
        except Exception as err:
            html, html_error = None, _text(f"{type(err).__name__}: {err}")
    return {"protocol": PROTOCOL, "suite": spec["suite"], "deepchecks_version": deepchecks.__version__,
            "duration_s": round(time.monotonic() - started, 3), "html": html,
            "html_error": html_error, "checks": checks}


def write_json(path: str, data: dict) -> None:
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as fh:
        json.dump(data, fh, allow_nan=False)
    os.replace(partial, path)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: worker.py SPEC.json", file=sys.stderr)
        return EXIT_SPEC
    try:
        spec = load_spec(argv[1])
        write_json(spec["output"]["result"], run(spec))
    except SpecError as err:
        print(f"deepchecks worker: {err}", file=sys.stderr)
        return EXIT_SPEC
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
