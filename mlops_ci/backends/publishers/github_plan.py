"""What the GitHub publisher sends, computed without talking to GitHub (the dry run prints it).

From a RunRecord and its rendered report: the pull-request comment (with the hidden report
marker and a second marker carrying the head SHA, under GitHub's 65,536-character limit), the
check run (conclusion from the verdict, the report as its summary, annotations from the data
check findings in requests of at most 50) and the commit status used when check runs are not
allowed. Everything sent is masked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_ci.backends.github.comments import HEAD_MARKER
from mlops_ci.masking import mask
from mlops_ci.records import ChecksRecord, RunRecord
from mlops_ci.render.document import Report, masked
from mlops_ci.render.report import MARKER, fit_report

CHECK_NAME = "mlops-ci"  # the check run's name and the commit status's context
COMMENT_LIMIT = 65_536
CHECK_SUMMARY_LIMIT = 65_535
STATUS_DESCRIPTION_LIMIT = 140
CONFIG_PATH = ".mlops-ci.yaml"  # where a finding without a data file is annotated
CONCLUSION = {"pass": "success", "warn": "neutral", "fail": "failure", "skipped": "skipped"}
UNTRUSTED_TITLE = "reported by the pull request's own run (not a trusted verdict)"
ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATIONS = 150  # three writes at most, however large the record; the report has every finding
STATUS_STATE = {"pass": "success", "warn": "success", "fail": "failure", "skipped": "success"}
ANNOTATION_LEVEL = {"fail": "failure", "warn": "warning"}
def pointer(run_url: str | None) -> str:
    return f"full report in the job summary of {run_url}" if run_url else \
        "full report in the job summary of this workflow run"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def check_outcome(record: RunRecord) -> tuple[str, str, str | None]:
    """The check run's conclusion and title, and the commit status state (None: post none), decided
    from the record's verdict and its provenance: a record that a pull request's code produced (an
    artifact of its run, a slash-command training) never decides a check. It is always neutral, and
    its title says whose word the verdict is."""
    verdict = record.verdict
    models = ", ".join(f"{name} {entry.verdict}" for name, entry in record.models.items()) or "no models planned"
    if record.provenance != "trusted":
        return "neutral", f"{UNTRUSTED_TITLE}: {verdict}; {models}", None
    return CONCLUSION[verdict], f"{verdict}: {models}", STATUS_STATE[verdict]


def _check_annotations(model: str, checks: ChecksRecord) -> list[dict[str, Any]]:
    """One annotation per data-check finding, on the data file it is about."""
    paths = {d.role: d.path for d in checks.datasets}
    out = []
    for f in checks.findings:
        title = f"{model}: {f.check}" + (f" · {f.column}" if f.column else "")
        out.append({"path": paths.get(f.dataset) or CONFIG_PATH, "start_line": 1, "end_line": 1,
                    "annotation_level": ANNOTATION_LEVEL.get(f.status, "notice"),
                    "title": _clip(mask(title), 255), "message": _clip(mask(f.message), 4_000)})
    return out


def _serving_annotations(model: str, serving: Any) -> list[dict[str, Any]]:
    """A serving gate that warns or fails, on the config that sets it (serving.check)."""
    return [{"path": CONFIG_PATH, "start_line": 1, "end_line": 1,
             "annotation_level": ANNOTATION_LEVEL.get(f.status, "notice"),
             "title": _clip(mask(f"{model}: serving check · {f.check}"), 255), "message": _clip(mask(f.message), 4_000)}
            for f in serving.findings if f.status in ("warn", "fail")]


# one annotator per stage whose result points at files (the others annotate nothing)
ANNOTATORS: dict[str, Callable[[str, Any], list[dict[str, Any]]]] = {"check": _check_annotations,
                                                                     "serve": _serving_annotations}


def annotations(record: RunRecord) -> list[dict[str, Any]]:
    """The check run's annotations, from each stage's annotator; at most :data:`MAX_ANNOTATIONS`
    (the worst first), however large the record."""
    out = []
    for name, entry in record.models.items():
        for stage, result in entry.ordered_results():
            if stage in ANNOTATORS:
                out += ANNOTATORS[stage](name, result)
    out.sort(key=lambda a: a["annotation_level"] != "failure")
    return out[:MAX_ANNOTATIONS]


@dataclass(frozen=True)
class Publication:
    head_sha: str
    verdict: str
    comment: str
    conclusion: str
    title: str
    summary: str
    state: str | None  # the commit status fallback; None: none (a pull request's own record)
    description: str
    job_summary: str
    pointer: str
    annotations: list[dict[str, Any]] = field(default_factory=list)
    name: str = CHECK_NAME  # the check run's name and the commit status's context

    @property
    def annotation_batches(self) -> list[list[dict[str, Any]]]:
        n = ANNOTATIONS_PER_REQUEST
        return [self.annotations[i:i + n] for i in range(0, len(self.annotations), n)]

    def output(self, batch: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The check run's ``output`` object, with one batch of annotations."""
        out: dict[str, Any] = {"title": self.title, "summary": self.summary}
        if batch:
            out["annotations"] = batch
        return out


def plan_publication(record: RunRecord, markdown: str, *, head_sha: str,
                     run_url: str | None = None) -> Publication:
    verdict = record.verdict
    text = masked(markdown)
    if not text.startswith(MARKER):
        text = Report([MARKER, *text.blocks]) if isinstance(text, Report) else f"{MARKER}\n{text}"
    where = pointer(run_url)
    head_marker = HEAD_MARKER.format(sha=head_sha)
    comment = fit_report(text, COMMENT_LIMIT - len(head_marker) - 1, where).rstrip("\n") + "\n" + head_marker
    conclusion, title, state = check_outcome(record)
    return Publication(
        head_sha=head_sha,
        verdict=verdict,
        comment=comment,
        conclusion=conclusion,
        title=_clip(mask(title), 200),
        summary=fit_report(text, CHECK_SUMMARY_LIMIT, where),
        state=state,
        description=_clip(mask(title), STATUS_DESCRIPTION_LIMIT),
        job_summary=text,
        pointer=where,
        annotations=annotations(record),
    )


def describe(pub: Publication, where: str) -> str:
    """What a publication would send, for ``mlops-ci publish --dry-run``."""
    batches = len(pub.annotation_batches)
    return "\n".join([
        f"would publish to {where}",
        f"check run {CHECK_NAME!r} on {pub.head_sha[:12]}: conclusion {pub.conclusion}, title {pub.title!r}, "
        f"{len(pub.annotations)} annotation(s) in {batches} request(s) "
        f"(or commit status {pub.state} {pub.description!r} where check runs are not allowed)",
        f"job summary: {len(pub.job_summary):,} characters",
        f"comment ({len(pub.comment):,} characters):",
        "",
        pub.comment,
    ])
