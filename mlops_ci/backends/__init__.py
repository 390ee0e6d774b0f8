"""Backends, one module each behind a Protocol, registered in one explicit dict per role.

| role      | registry                                   | embedded default        |
|-----------|--------------------------------------------|-------------------------|
| tracking  | mlops_ci.backends.tracking.TRACKING        | MLflow on SQLite        |
| trainer   | mlops_ci.backends.trainers.TRAINERS        | torchrun on this machine|
| publisher | mlops_ci.backends.publishers.PUBLISHERS    | Markdown file + terminal|
| gitops    | mlops_ci.backends.gitops.GITOPS            | local bare git repo     |

Adding a backend is one new module and one registry line.
"""
