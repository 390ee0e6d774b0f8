"""Argo transports: how mlops-ci reaches Argo Workflows (one registry line each)."""

from __future__ import annotations

from mlops_ci.backends.argo.base import AlreadyExists, ArgoTransport, TransportError

TRANSPORTS: dict[str, str] = {
    "server": "mlops_ci.backends.argo.server:ArgoServerTransport",  # the Argo Server's REST API
    "kubernetes": "mlops_ci.backends.argo.kube:KubernetesTransport",  # the Kubernetes API
}


def transport_class(name: str) -> type:
    """The class for ``name`` (imported on use: ``requests`` / ``kubernetes`` stay out of start-up)."""
    import importlib

    module, _, cls = TRANSPORTS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["TRANSPORTS", "AlreadyExists", "ArgoTransport", "TransportError", "transport_class"]
