"""The local GitHub server with repositories backed by real git repositories.

``server.link_git("acme/gitops", path)`` makes the server's repository ``acme/gitops`` a mirror
of the git repository at ``path`` (bare or not): before every request, the branches there
(``refs/heads/*``) and the objects they reach are imported into the server's object store with
their real SHAs, so what a client pushes with ``git push`` is what the REST API then shows
(pull requests between those branches, contents, commits, deployments on those SHAs). The
mirror is one-way: git is the source of truth for branches; refs the server makes itself
(``refs/pull/N/head``) are kept.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .github import GitHubServer
from .github_state import CommitData, Repo, TreeEntry

__all__ = ["GitBackedGitHubServer"]


def _git(path: Path, *args: str, data: bool = False) -> Any:
    proc = subprocess.run(["git", *args], cwd=path, capture_output=True, check=True)
    return proc.stdout if data else proc.stdout.decode()


def _person(line: str) -> dict[str, str]:
    """``Name <email> 1700000000 +0000`` as the server's signature dict."""
    name, _, rest = line.partition(" <")
    email, _, stamp = rest.partition("> ")
    seconds = int(stamp.split()[0])
    return {"name": name, "email": email,
            "date": datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")}


class GitBackedGitHubServer(GitHubServer):
    """A :class:`GitHubServer` some of whose repositories mirror a git repository on disk."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._git_links: dict[str, Path] = {}

    def link_git(self, full_name: str, path: Path) -> Repo:
        """Mirror the git repository at ``path`` as ``full_name`` (created if needed)."""
        try:
            repo = self.repo(full_name, live=True)
        except KeyError:
            repo = self.add_repo(full_name)
        with self._lock:
            self._git_links[full_name.lower()] = Path(path)
            self.sync_git()
        return repo

    def sync_git(self) -> None:
        with self._lock:
            for name, path in self._git_links.items():
                self._import(self._repos[name], path)

    def _import(self, repo: Repo, path: Path) -> None:
        heads = {}
        for line in _git(path, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads").splitlines():
            sha, ref = line.split(" ", 1)
            heads[ref] = sha
        if any(sha not in repo.objects for sha in heads.values()):
            for sha in _git(path, "rev-list", "--reverse", "--topo-order", *set(heads.values())).split():
                if sha not in repo.objects:
                    self._import_commit(repo, path, sha)
        for ref in [r for r in repo.refs if r.startswith("refs/heads/") and r not in heads]:
            del repo.refs[ref]
        repo.refs.update(heads)
        for number, issue in repo.issues.items():  # GitHub moves an open pull request with its branch
            pull = issue.pull
            if pull is None or issue.state != "open" or pull.head_repo != repo.full_name:
                continue
            sha = heads.get(f"refs/heads/{pull.head_ref}")
            if sha and sha != pull.head_sha:
                pull.head_sha = repo.refs[f"refs/pull/{number}/head"] = sha

    def _import_tree(self, repo: Repo, path: Path, sha: str) -> None:
        if sha in repo.objects:
            return
        entries = []
        for line in _git(path, "ls-tree", sha).splitlines():
            meta, name = line.split("\t", 1)
            mode, kind, child = meta.split()
            if kind == "tree":
                self._import_tree(repo, path, child)
            elif kind == "blob" and child not in repo.objects:
                repo.put_blob(_git(path, "cat-file", "blob", child, data=True))
            entries.append(TreeEntry(mode, kind, name, child))
        got = repo.put_tree(entries)
        assert got == sha, f"tree {sha} imported as {got}"

    def _import_commit(self, repo: Repo, path: Path, sha: str) -> None:
        raw = _git(path, "cat-file", "commit", sha)
        header, _, message = raw.partition("\n\n")
        fields: dict[str, list[str]] = {}
        for line in header.splitlines():
            key, _, value = line.partition(" ")
            fields.setdefault(key, []).append(value)
        tree = fields["tree"][0]
        self._import_tree(repo, path, tree)
        repo.put_commit(CommitData(tree, fields.get("parent", []), message,
                                   _person(fields["author"][0]), _person(fields["committer"][0])), sha=sha)

    def _process(self, req, method, path, query, text, entry):  # type: ignore[no-untyped-def]
        self.sync_git()  # what was pushed since the last request
        return super()._process(req, method, path, query, text, entry)
