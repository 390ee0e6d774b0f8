"""Drives Feast inside the Feast environment: ``python mlops_ci_feast_worker.py request.json``.

This folder is executed by the environment's interpreter as a script and its siblings (that
environment has Feast's pins and cannot import mlops_ci), so it uses only the standard library
at import time and Feast, pandas and pyarrow inside the operations: ``mlops_ci_feast_common``
(the protocol's constants, errors, messages), ``mlops_ci_feast_stores`` (the configuration,
registries and stores; plan, apply) and ``mlops_ci_feast_data`` (describe, historical, skew).
Every file is named ``mlops_ci_feast_*`` so that none shadows, or is shadowed by, a module of the
user's repository (both folders are on ``sys.path``). The core imports only
``mlops_ci_feast_common``, for ``PROTOCOL`` and ``EXIT_REQUEST``.

The request (JSON): protocol, op, response (the path this worker writes its answer to), repo (the
folder holding feature_store.yaml and the definitions), optional registry (a path or URI that
replaces feature_store.yaml's) and online_store (a SQLite path that replaces its online store's),
and the op's own fields:

    describe                                   the definitions, parsed; no registry or store touched
    plan                                       `feast plan`; writes nothing, creates no store
    apply       materialize {end, start|null}  `feast apply` (+ materialize, -incremental when no start)
    historical  service, jobs [{entities, out}] get_historical_features of a service into Parquet
    skew        service, entities, sample, seed, at, tolerance, scratch
                                               online values against the offline store's, at ``at``
    batch       ops [{op, repo, ...}, ...]     each of those requests (without protocol and
                                               response) in turn, in this one process

The answer (JSON): protocol, op, ok, feast_version, duration_s, warnings (those raised from the
repository's files, "file:line: Category: message"), and either result (the op's) or error
{kind, message, file, line}: what the user can fix (kind: config, definitions, registry, data,
not_found), in one paragraph, with the file and line of the definitions when Python gives one.
A batch answers ok and results: each op's answer as that op alone would have given it, in order;
one that failed with the user's error does not stop the next. Where that op alone would have
exited 3 or crashed, its answer is an error of kind refused or crashed (the traceback goes to the
log), and the batch goes on. Between its ops the working directory, ``sys.path``
and the repository's modules are put back, so that each op imports its definitions afresh.

Exit codes: 0 the answer was written; 3 the request is unusable (a message on stderr says why);
anything else a crash (a traceback on stderr).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings
from importlib.metadata import version
from pathlib import Path

from mlops_ci_feast_common import (
    EXIT_REQUEST,
    PROTOCOL,
    RequestError,
    UserError,
    inside,
    paragraph,
    timestamp,
)
from mlops_ci_feast_data import op_describe, op_historical, op_skew
from mlops_ci_feast_stores import op_apply, op_plan

OPS = {"describe": op_describe, "plan": op_plan, "apply": op_apply, "historical": op_historical, "skew": op_skew}
# each op's fields beyond protocol, op, response, repo: (name, types, required)
FIELDS = {
    "historical": (("service", str, True), ("jobs", list, True)),
    "skew": (("service", str, True), ("entities", str, True), ("sample", int, True), ("seed", int, True),
             ("tolerance", (int, float), True), ("at", str, False), ("scratch", str, False)),
    "apply": (("materialize", dict, False),),
}
COMMON = (("repo", str, True), ("registry", str, False), ("online_store", str, False))
RESPONSE = (("response", str, True),)


# --- the request -------------------------------------------------------------------------------

def check_op(req: object, *, where: str = "", top: bool = True) -> dict:
    """One operation's request, checked (``top``: the whole request, with its response path)."""
    if not isinstance(req, dict):
        raise RequestError(f"{where}each request is an object {{op, repo, ...}}, got {type(req).__name__}")
    if req.get("op") not in OPS:
        known = [*OPS, "batch"] if top else list(OPS)
        raise RequestError(f"{where}unknown op {req.get('op')!r}; known: {', '.join(known)}")
    op = req["op"]
    for name, types, required in (RESPONSE if top else ()) + COMMON + FIELDS.get(op, ()):
        value = req.get(name)
        if (value is None and required) or (value is not None and not isinstance(value, types)):
            raise RequestError(f"{where}{op}: {name} must be {getattr(types, '__name__', 'a number')}, got {value!r}")
    for job in req.get("jobs") or []:
        if not (isinstance(job, dict) and isinstance(job.get("entities"), str) and isinstance(job.get("out"), str)):
            raise RequestError(f"{where}historical: each job is {{entities, out}} (paths), got {job!r}")
    if op == "skew" and req["sample"] < 1:
        raise RequestError(f"{where}skew: sample must be at least 1, got {req['sample']}")
    if op == "skew" and req.get("at"):
        timestamp(req["at"], f"{where}at")
    spec = req.get("materialize")
    if op == "apply" and spec:
        timestamp(spec.get("end"), f"{where}materialize.end")
        if spec.get("start"):
            timestamp(spec["start"], f"{where}materialize.start")
    return req


def load_request(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            req = json.load(fh)
    except (OSError, ValueError) as err:
        raise RequestError(f"cannot read the request {path}: {err}") from err
    if not isinstance(req, dict) or req.get("protocol") != PROTOCOL:
        raise RequestError(f"request protocol {req.get('protocol') if isinstance(req, dict) else None!r}, "
                           f"this worker speaks {PROTOCOL}")
    if req.get("op") != "batch":
        return check_op(req)
    if not isinstance(req.get("response"), str):
        raise RequestError(f"batch: response must be str, got {req.get('response')!r}")
    if not isinstance(req.get("ops"), list):
        raise RequestError(f"batch: ops must be a list of requests {{op, repo, ...}}, "
                           f"got {type(req.get('ops')).__name__}")
    for i, item in enumerate(req["ops"]):
        check_op(item, where=f"batch: ops[{i}]: ", top=False)
    return req


# --- the answer --------------------------------------------------------------------------------

def write_json(path: str, data: dict) -> None:
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as fh:
        json.dump(data, fh, allow_nan=False)
    os.replace(partial, path)


def _repo_warnings(caught, repo: Path | None) -> list[str]:
    out = []
    for w in caught:
        print(warnings.formatwarning(w.message, w.category, w.filename, w.lineno).rstrip(), file=sys.stderr)
        rel = inside(w.filename, repo)
        text = f"{rel}:{w.lineno}: {w.category.__name__}: {paragraph(w.message)}"
        if rel and text not in out:
            out.append(text)
    return out


def _framed(answer: dict, op: str, started: float, found: list[str]) -> dict:
    answer.update(protocol=PROTOCOL, op=op, feast_version=version("feast"),
                  duration_s=round(time.monotonic() - started, 3), warnings=found)
    return answer


def run_op(req: dict) -> dict:
    """One operation's answer: its result, or the user's error; a refused request or a crash raises."""
    started, repo = time.monotonic(), Path(req["repo"]).resolve()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            answer = {"ok": True, "result": OPS[req["op"]](req)}
        except UserError as err:
            answer = {"ok": False, "error": err.as_json()}
    return _framed(answer, req["op"], started, _repo_warnings(caught, repo))


def forget_modules(repo: Path) -> None:
    """The repository's modules dropped: Feast's parse_repo imports each file once per process, and
    apply and plan change the objects they are given, so the next op must import them afresh."""
    root = str(repo)
    for name, module in list(sys.modules.items()):
        places = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
        if any(isinstance(p, str) and "site-packages" not in p and (p == root or p.startswith(root + os.sep))
               for p in places):
            del sys.modules[name]


def run_isolated(req: dict) -> dict:
    """A batch's op: its answer, where a refused request or a crash is an answer too; the working
    directory, ``sys.path`` and the repository's modules are put back after it."""
    started, cwd, path = time.monotonic(), os.getcwd(), list(sys.path)
    try:
        answer = run_op(req)
        json.dumps(answer, allow_nan=False)  # what cannot be written is this op's crash, not the batch's
        return answer
    except RequestError as err:
        print(f"feast worker: {req['op']}: {err}", file=sys.stderr)
        failed = {"kind": "refused", "message": paragraph(err)}
    except Exception as err:  # noqa: BLE001 - this op's crash: its traceback goes to the log
        traceback.print_exc()
        failed = {"kind": "crashed", "message": f"{type(err).__name__}: {paragraph(err)}"}
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        forget_modules(Path(req["repo"]).resolve())
    return _framed({"ok": False, "error": {**failed, "file": None, "line": None}}, req["op"], started, [])


def run_batch(req: dict) -> dict:
    started = time.monotonic()
    results = [run_isolated(item) for item in req["ops"]]
    return _framed({"ok": True, "results": results}, "batch", started, [])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: mlops_ci_feast_worker.py REQUEST.json", file=sys.stderr)
        return EXIT_REQUEST
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) != here]  # its siblings are imported
    sys.dont_write_bytecode = True  # nothing written into the user's repository
    try:
        req = load_request(argv[1])
    except RequestError as err:
        print(f"feast worker: {err}", file=sys.stderr)
        return EXIT_REQUEST
    try:
        answer = run_batch(req) if req["op"] == "batch" else run_op(req)
    except RequestError as err:
        print(f"feast worker: {err}", file=sys.stderr)
        return EXIT_REQUEST
    except Exception:  # noqa: BLE001 - a crash: its traceback goes to the log
        traceback.print_exc()
        return 1
    write_json(req["response"], answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
