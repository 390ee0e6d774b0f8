"""The facts the environment-order and freeze rules judge (mlops_ci.policy), read from the GitOps
checkout: shared by every planner that changes what an environment serves (a promotion, a rollout
step, a rollback to a version the environment never served)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from mlops_ci import policy
from mlops_ci.backends.gitops.base import Checkout
from mlops_ci.serving import layout
from mlops_ci.workspace import Workspace


def order_and_freezes(ws: Workspace, co: Checkout, intent: policy.Intent, model: str, version: str,
                      facts: policy.Facts) -> policy.Facts:
    """``facts`` with what the environment-order and freeze rules judge: the freezes holding the
    environment now, and the spans in which its ``policy.after`` environment served ``version``
    (from the GitOps history). For a rollback, also whether it ships a version never served here."""
    from mlops_ci.config.monitoring import parse_duration
    from mlops_ci.serving import freeze, history

    root, serving = ws.config.gitops.path, ws.model(model).serving
    rules = ws.config.environments[intent.env].policy
    served_after: tuple = ()
    if rules.after is not None:
        served_after = history.served_spans(co.log, co.show, layout.workload_path(root, rules.after, model, serving),
                                            version)
    ships_new = intent.action == "rollback" and not history.served_spans(
        co.log, co.show, layout.workload_path(root, intent.env, model, serving), version)
    now = datetime.now(UTC)
    return replace(facts, freezes=freeze.active(ws.config, intent.env, co.read, now), now=now, after=rules.after,
                   soak=parse_duration(rules.soak) if rules.soak else None, served_after=served_after,
                   ships_new=ships_new)


__all__ = ["order_and_freezes"]
