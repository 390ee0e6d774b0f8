"""Serving manifests: what a promotion writes into the GitOps repository."""
