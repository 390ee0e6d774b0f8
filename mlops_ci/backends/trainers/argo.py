"""Argo Workflows on Kubernetes: submit the training Workflow, watch it, read its outputs.

    build (mlops_ci.argo) -> stop older runs of the same PR -> create (409: adopt after checking
    labels) -> watch (poll, backoff, deadline) -> logs into the job log -> outputs -> result file

The Workflow's name is deterministic from repository, PR, head SHA and model, so a re-run of
the same job finds the Workflow it (or an earlier attempt) submitted instead of starting a
second one on the same GPUs. A Workflow of that name whose labels say it is for something else
is never adopted. A newer push stops the older head's run of the same PR and model, and
:meth:`ArgoTrainer.stop_pull_request` stops every run of a pull request when it closes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_ci.backends.argo import AlreadyExists, ArgoTransport, TransportError, transport_class
from mlops_ci.backends.argo.watch import watch
from mlops_ci.backends.trainers.base import TrainResult, TrainSpec
from mlops_ci.console import Progress
from mlops_ci.errors import TrainingError, UsageError
from mlops_ci.records import write_text_atomic

LABEL = "mlops-ci.dev/"
IDENTITY = ("repository", "pr", "model")  # labels of one PR's runs of one model
ACTIVE = ("", "Pending", "Running")
LOG_TAIL = 200


@dataclass(frozen=True)
class StoppedRun:
    """A pull request's training Workflow that was stopped (or, in a dry run, would be)."""

    name: str
    namespace: str
    model: str  # from its labels: a model the config no longer names is still found
    head_sha: str
    phase: str  # when it was found: Pending or Running
    stopped: bool  # False in a dry run, or when it finished before the stop reached it


def transport_for(argo: Any, env: Mapping[str, str] | None = None) -> ArgoTransport:
    """The transport ``train.argo`` configures (credentials from the environment only)."""
    cls = transport_class(argo.transport)
    common = dict(ca_file=argo.ca_file, insecure_skip_tls_verify=argo.insecure_skip_tls_verify, env=env)
    if argo.transport == "server":
        return cls(str(argo.server_url), argo.namespace, **common)
    return cls(argo.namespace, context=argo.context, **common)


class ArgoTrainer:
    name = "argo"
    reads_worktree = False  # the pods clone the head commit
    stops_pull_requests = True  # a closed pull request's Workflows are stopped

    def image(self, train) -> str | None:
        return train.argo.image if train.argo is not None else None

    def title(self, model: str, spec: TrainSpec) -> str:
        return f"training {model} on {self.name}"

    def __init__(self, transport: ArgoTransport | None = None, *, poll_s: float = 5.0, max_poll_s: float = 30.0,
                 env: Mapping[str, str] | None = None) -> None:
        self._transport = transport
        self.poll_s, self.max_poll_s = poll_s, max_poll_s
        self.env = os.environ if env is None else env

    # -- what would be submitted ----------------------------------------------------------------
    @staticmethod
    def settings(spec: TrainSpec) -> Any:
        """``train.argo`` of the model being trained."""
        if spec.remote is None:
            raise TrainingError("the argo trainer needs the repository's context (an internal error)")
        return spec.remote.config.models[spec.model].train.argo

    def workflow(self, spec: TrainSpec) -> dict[str, Any]:
        from mlops_ci.argo.checkout import clone_url
        from mlops_ci.argo.workflow import MlflowRun, build_workflow

        argo, r = self.settings(spec), spec.remote
        repo = (argo.repo if argo is not None else None) or clone_url(r.root, r.repository, self.env)
        return build_workflow(r.config, spec.model, repo=repo, head_sha=r.head_sha, pr=r.pr,
                              repository=r.repository, config_path=r.config_path,
                              mlflow=MlflowRun(tracking_uri=r.tracking_uri, experiment_id=r.experiment_id,
                                               run_id=r.run_id))

    def command(self, spec: TrainSpec) -> list[str]:
        """The `argo submit` equivalent of the Workflow (for --dry-run and the record)."""
        wf = self.workflow(spec)
        argv = ["argo", "submit", "-n", self.settings(spec).namespace,
                "--from", f"workflowtemplate/{wf['spec']['workflowTemplateRef']['name']}",
                "--name", wf["metadata"]["name"]]
        for p in wf["spec"]["arguments"]["parameters"]:
            argv += ["-p", f"{p['name']}={p['value']}"]
        for key, value in sorted(wf["metadata"].get("labels", {}).items()):
            argv += ["-l", f"{key}={value}"]
        return argv

    # -- run ------------------------------------------------------------------------------------
    def transport(self, spec: TrainSpec) -> ArgoTransport:
        """The injected transport, else one for this model's settings (models may differ)."""
        return self._transport or transport_for(self.settings(spec), self.env)

    def run(self, spec: TrainSpec, progress: Progress) -> TrainResult:
        start = time.monotonic()
        wf = self.workflow(spec)
        name = wf["metadata"]["name"]
        labels = wf["metadata"]["labels"]
        transport = self.transport(spec)
        argo = self.settings(spec)
        url = self._url(argo, transport, name)
        try:
            self._stop_superseded(transport, labels, progress)
            adopted_run = self._submit(transport, wf, progress)
            progress.log(f"Argo Workflow {argo.namespace}/{name}" + (f": {url}" if url else "") + "\n")
            deadline = (argo.timeout_minutes or spec.timeout_s / 60) * 60
            result = watch(transport, name, deadline_s=deadline, interval_s=self.poll_s,
                           max_interval_s=self.max_poll_s,
                           on_change=lambda phase, msg: progress.log(f"{name}: {phase}" + (f": {msg}" if msg else "")
                                                                     + "\n"))
            if result.phase == "Timeout":
                transport.stop(name, f"mlops-ci: no result within {deadline / 60:g} min")
            tail = self._logs(transport, name, progress)
        except TransportError as err:
            raise TrainingError(f"Argo Workflow {name}: {err.message}", hint=err.hint) from err
        ok = result.succeeded
        run_id = None
        if ok:
            run_id = self._write_result(result.outputs.get("result"), spec, name)
        message = result.message or (f"phase {result.phase}" if not ok else "")
        if adopted_run is not None and not ok:  # the same commit's earlier run, adopted, had failed
            message += (f" (an earlier attempt's Workflow, adopted: `argo retry -n {argo.namespace} {name}` resumes "
                        f"it from its last checkpoint, `argo delete` it to start over)")
        return TrainResult(returncode=0 if ok else 1, timed_out=result.phase == "Timeout", log_tail=tail,
                           duration_s=round(time.monotonic() - start, 3),
                           error_line=f"Argo Workflow {name} {result.phase.lower()}: {message}" if not ok else "",
                           workflow=name, workflow_url=url, run_id=run_id or adopted_run)

    # -- a closed pull request ------------------------------------------------------------------
    def stop_pull_request(self, config: Any, models: Sequence[str], *, repository: str, pr: int,
                          reason: str, dry_run: bool = False) -> list[StoppedRun]:
        """Stop the still-running training Workflows of pull request ``pr`` of ``repository``.

        Found by their labels (repository and PR, any model and head commit) in every namespace
        the ``train.argo`` sections of ``models`` name; stopped, not deleted, so that exit
        handlers run (the JobSet template's deletes its JobSet) and the logs stay. ``dry_run``
        only lists them.
        """
        from mlops_ci.argo.workflow import label_value

        selector = {LABEL + "repository": label_value(repository), LABEL + "pr": str(pr)}
        targets: dict[tuple, Any] = {}
        for model in models:
            if model not in config.models:
                raise UsageError(f"no model {model!r} in the config", hint=f"use one of {sorted(config.models)}")
            argo = config.models[model].train.argo
            if argo is not None:
                key = (argo.transport, str(argo.server_url), argo.namespace, argo.context)
                targets.setdefault(key, argo)
        found: list[StoppedRun] = []
        for argo in targets.values():
            try:
                transport = self._transport or transport_for(argo, self.env)
                for wf in sorted(transport.list(selector), key=lambda w: (w.get("metadata") or {}).get("name", "")):
                    meta, status = wf.get("metadata") or {}, wf.get("status") or {}
                    labels, phase = meta.get("labels") or {}, status.get("phase") or ""
                    if phase not in ACTIVE:
                        continue
                    stopped = not dry_run and self._stop(transport, meta["name"], reason)
                    found.append(StoppedRun(name=meta["name"], namespace=argo.namespace,
                                            model=labels.get(LABEL + "model", ""),
                                            head_sha=labels.get(LABEL + "head-sha", ""), phase=phase or "Pending",
                                            stopped=stopped))
            except TransportError as err:
                raise TrainingError(f"stopping the training Workflows of PR #{pr} in {argo.namespace}: "
                                    f"{err.message}", hint=err.hint) from err
        return found

    @staticmethod
    def _stop(transport: ArgoTransport, name: str, reason: str) -> bool:
        """Stop ``name``; False when it had already finished (Argo refuses to stop a finished run)."""
        try:
            transport.stop(name, reason)
            return True
        except TransportError:
            now = transport.get(name, fields=("metadata.name", "status.phase"))
            if now is None or ((now.get("status") or {}).get("phase") or "") not in ACTIVE:
                return False
            raise

    def _url(self, argo: Any, transport: ArgoTransport, name: str) -> str | None:
        if argo.ui_url:
            return f"{str(argo.ui_url).rstrip('/')}/workflows/{argo.namespace}/{name}"
        return transport.ui_url(name)

    def _stop_superseded(self, transport: ArgoTransport, labels: dict[str, str], progress: Progress) -> None:
        """Stop the still-running runs of the same PR and model for another head commit."""
        if labels.get(LABEL + "pr", "none") == "none":
            return  # pushes to a branch are not superseded: each commit's run stands
        mine = {k: labels[LABEL + k] for k in IDENTITY}
        for other in transport.list({LABEL + k: v for k, v in mine.items()}):
            meta, status = other.get("metadata") or {}, other.get("status") or {}
            sha = (meta.get("labels") or {}).get(LABEL + "head-sha")
            if sha and sha != labels[LABEL + "head-sha"] and status.get("phase", "") in ACTIVE:
                transport.stop(meta["name"], f"superseded by {labels[LABEL + 'head-sha'][:12]}")
                progress.log(f"stopped {meta['name']}: superseded by {labels[LABEL + 'head-sha'][:12]}\n")

    def _submit(self, transport: ArgoTransport, wf: dict[str, Any], progress: Progress) -> str | None:
        """Create ``wf``. When a Workflow of that name for the same run exists, adopt it and return
        the MLflow run it was given (its ``mlflow-run-id`` parameter); else None."""
        name = wf["metadata"]["name"]
        try:
            transport.create(wf)
            return None
        except AlreadyExists:
            existing = transport.get(name, fields=("metadata.name", "metadata.labels", "status.phase",
                                                   "spec.arguments"))
        have = ((existing or {}).get("metadata") or {}).get("labels") or {}
        want = wf["metadata"]["labels"]
        differ = sorted(k for k in (*(LABEL + i for i in IDENTITY), LABEL + "head-sha") if have.get(k) != want.get(k))
        if existing is None or differ:
            raise TrainingError(f"a Workflow named {name} already exists but is not this run "
                                f"(labels differ: {', '.join(differ) or 'it vanished'})",
                                hint="delete it (argo delete) if it is stale, or check who created it")
        progress.log(f"{name} exists for this commit ({(existing.get('status') or {}).get('phase') or 'Pending'}): "
                     "adopting it instead of submitting a duplicate\n")
        params = ((existing.get("spec") or {}).get("arguments") or {}).get("parameters") or []
        return next((str(p.get("value") or "") for p in params if p.get("name") == "mlflow-run-id"), "") or None

    def _logs(self, transport: ArgoTransport, name: str, progress: Progress) -> tuple[str, ...]:
        """The run's log, folded into a group in the GitHub Actions log; its tail for errors."""
        actions = self.env.get("GITHUB_ACTIONS") == "true"
        lines: list[str] = []
        try:
            for line in transport.logs(name):
                lines.append(line)
        except TransportError as err:
            lines.append(f"(logs unavailable: {err.message})")
        if actions:
            progress.log(f"::group::log of Argo Workflow {name}\n")
        for line in lines[-LOG_TAIL:] if not actions else lines:
            progress.log(line + "\n")
        if actions:
            progress.log("::endgroup::\n")
        return tuple(lines[-LOG_TAIL:])

    def _write_result(self, text: str | None, spec: TrainSpec, name: str) -> str | None:
        """Write the ``result`` output where the train stage reads it; the run id it names."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise TrainingError(f"Argo Workflow {name}: its 'result' output is not JSON") from None
        if not isinstance(data, dict):
            raise TrainingError(f"Argo Workflow {name}: its 'result' output is not a JSON object")
        write_text_atomic(spec.result_path, json.dumps(data))
        run_id = data.get("run_id")
        return run_id if isinstance(run_id, str) and run_id else None
