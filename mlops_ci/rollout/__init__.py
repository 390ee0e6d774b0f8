"""Progressive delivery as commits: rollout plans, their state in the GitOps repository, the
analysis that decides each step (Prometheus, inference logs) and the stateless ``advance``."""
