"""The real sources a rollout is judged by, built from the environment's ``rollout`` section:
the Argo CD Application that syncs it, and the analyses of a step (Prometheus, inference logs).

A rollout with no analysis source configured is never judged a pass: every step is inconclusive,
so it holds (or aborts) at ``max_soak`` unless a person advances it with ``--force --reason``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlops_ci.rollout.verdict import Finding, Verdict, Window, combine
from mlops_ci.serving import canary
from mlops_ci.workspace import Workspace


@dataclass
class Sources:
    """Where ``advance`` looks: the Argo CD Application's status (None: a step is live from its
    commit) and the analysis of a step over a window."""

    argocd: Callable[[], object] | None
    analyse: Callable[[canary.Step, Window], Verdict]


def sources_for(ws: Workspace, model: str, env: str) -> Sources:
    plan = ws.config.environments[env].rollout
    assert plan is not None
    argocd = None
    if plan.argocd is not None:
        from mlops_ci.backends.argocd import ArgoCD

        cfg = plan.argocd
        client = ArgoCD(cfg.url, ca_file=cfg.ca_file, insecure_skip_tls_verify=cfg.insecure_skip_tls_verify,
                        env=ws.env)
        name = cfg.application or f"mlops-ci-{env}"

        def argocd():
            return client.application(name, app_namespace=cfg.app_namespace, project=cfg.project)

    serving = ws.model(model).serving
    namespace = ws.config.environments[env].namespace
    metrics = plan.analysis.prometheus
    prometheus = None
    if metrics is not None:
        from mlops_ci.backends.prometheus import PrometheusClient

        prometheus = PrometheusClient.from_config(metrics, env=ws.env)

    def analyse(step: canary.Step, window: Window) -> Verdict:
        findings: list[Finding] = []
        if metrics is not None and prometheus is not None:
            from mlops_ci.rollout.metrics import analyse_metrics

            findings += analyse_metrics(metrics, prometheus, namespace=namespace, name=model,
                                        canary_version=step.version, primary_version=step.primary,
                                        deployment_mode=serving.deployment_mode, window=window)
        if plan.analysis.logs is not None:
            findings += _from_logs(ws, model, env, plan.analysis.logs, window)
        return combine(findings)

    return Sources(argocd=argocd, analyse=analyse)


def _from_logs(ws: Workspace, model: str, env: str, cfg, window: Window) -> list[Finding]:
    """The step's logged traffic (labels joined where monitoring.labels says where they are), judged."""
    from mlops_ci.monitor.logs import read_objects
    from mlops_ci.monitor.traffic import pair
    from mlops_ci.rollout.logs import LogThresholds, analyse_logs
    from mlops_ci.stages.monitor import join_labels, logs_location

    mcfg = ws.model(model)
    frame = pair(list(read_objects(logs_location(ws, model, env), since=window.start))).frame
    if len(frame) and mcfg.monitoring.labels is not None:
        frame = join_labels(ws, model, frame, mcfg.monitoring.labels).frame
    task = mcfg.evaluation.task
    metric = cfg.metric or ("rmse" if task == "regression" else "accuracy")
    thresholds = LogThresholds(psi=cfg.psi, js=cfg.js, metric=metric, max_drop=cfg.max_drop, task=task,
                               decision_threshold=mcfg.evaluation.threshold)
    return analyse_logs(frame, window=window, min_rows=cfg.min_rows, thresholds=thresholds)


__all__ = ["Sources", "sources_for"]
