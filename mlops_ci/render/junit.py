"""JUnit XML rendered from a RunRecord (``--junit PATH``), for CI systems that show test results.

One ``testsuite`` per model and stage; one ``testcase`` per compared column, per table-level
finding (rows, schema), per suite check, per evaluation gate and per serving gate. A failed check is a
``failure``, a warning stays a passing case with the warning in ``system-out``, a skipped stage
is ``skipped`` with its reason. Every text from the record is masked and kept on one line.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from mlops_ci.records import ChecksRecord, EvaluationRecord, Finding, RunRecord, ServingCheckRecord, StageResult
from mlops_ci.render.markdown import plain


def _case(suite: ET.Element, classname: str, name: str, *, status: str, messages: list[str],
          seconds: float = 0.0) -> None:
    # masked, one line each, no control characters (XML 1.0 has no place for them)
    classname, name, messages = plain(classname), plain(name), [plain(m) for m in messages]
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    text = "\n".join(messages)
    if status == "fail":
        ET.SubElement(case, "failure", message=messages[0] if messages else "failed", type="fail").text = text
    elif status == "skipped":
        ET.SubElement(case, "skipped", message=messages[0] if messages else "skipped")
    elif status == "warn":
        ET.SubElement(case, "system-out").text = "warning: " + text


def _checks(root: ET.Element, model: str, checks: ChecksRecord) -> None:
    suite = ET.SubElement(root, "testsuite", name=f"{model}.checks")
    if checks.status == "skipped":
        _case(suite, f"{model}.checks", "data checks", status="skipped", messages=[checks.skip_reason or "skipped"])
        return
    by_column: dict[tuple[str, str], list[Finding]] = {}
    table_level: list[Finding] = []
    compared = {(ds.role, col.column) for ds in checks.datasets for col in ds.columns}
    for f in checks.findings:
        key = (f.dataset, f.column or "")
        (by_column.setdefault(key, []) if key in compared else table_level).append(f)
    for ds in checks.datasets:
        for col in ds.columns:
            found = by_column.get((ds.role, col.column), [])
            _case(suite, f"{model}.checks.{ds.role}", f"column {col.column}", status=col.status,
                  messages=[f.message for f in sorted(found, key=lambda f: f.status != "fail")])
    for f in table_level:
        name = f"{f.check} {f.column}" if f.column else f.check
        _case(suite, f"{model}.checks.{f.dataset}", name, status=f.status, messages=[f.message])
    _suites(suite, model, checks.suites)


def _suites(suite: ET.Element, model: str, results) -> None:
    for result in results:
        classname = f"{model}.suites.{result.suite}"
        for check in result.checks:
            status = {"ignored": "pass"}.get(check.outcome, check.outcome)
            messages = [f"{c.name}: {c.message}" for c in check.conditions if c.status != "pass"]
            if check.error:
                messages.append(f"{check.status}: {check.error}")
            name = check.header + (f" ({check.dataset})" if check.dataset else "")
            _case(suite, classname, name, status=status, messages=messages or [check.status],
                  seconds=check.duration_s or 0.0)
        if result.error:
            status = "skipped" if result.status == "error" else result.status
            _case(suite, classname, "suite run", status=status, messages=[result.error])


def _evaluation(root: ET.Element, model: str, evaluation: EvaluationRecord) -> None:
    suite = ET.SubElement(root, "testsuite", name=f"{model}.evaluation")
    for gate in evaluation.gates:
        _case(suite, f"{model}.evaluation", f"{gate.kind} {gate.metric}", status=gate.status,
              messages=[gate.message])
    _suites(suite, model, evaluation.suites)


def _serving(root: ET.Element, model: str, serving: ServingCheckRecord) -> None:
    suite = ET.SubElement(root, "testsuite", name=f"{model}.serving")
    if serving.status == "skipped" and not serving.findings:
        _case(suite, f"{model}.serving", "serving check", status="skipped",
              messages=[serving.skip_reason or "skipped"])
    for f in serving.findings:
        _case(suite, f"{model}.serving", f.check, status=f.status, messages=[f.message])


# one writer per stage whose result holds test cases (the others add no suite)
SUITES: dict[str, Callable[[ET.Element, str, StageResult], None]] = {"check": _checks, "evaluate": _evaluation,
                                                                     "serve": _serving}


def render_junit(record: RunRecord) -> str:
    root = ET.Element("testsuites", name="mlops-ci")
    for model, entry in record.models.items():
        for stage, result in entry.ordered_results():
            if stage in SUITES:
                SUITES[stage](root, model, result)
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
