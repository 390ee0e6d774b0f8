"""GitHub's REST API, shared by every role that talks to GitHub: the client with its retries
(``client``), the one comment found by a hidden marker (``comments``), check runs and statuses
(``checks``), Deployments (``deployments``), pull requests (``pulls``) and the
conversation on issues and pull requests: permissions, reactions, replies (``issues``). The publisher
(mlops_ci.backends.publishers.github), promotion via pull request
(mlops_ci.backends.gitops.github_pr) and slash commands (mlops_ci.slash.handle) build on it.
PyGithub itself is imported only inside functions (``mlops-ci --help`` stays light)."""
