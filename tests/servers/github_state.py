"""State of the fake GitHub: users and tokens, repositories with a real git object store
(blob/tree/commit SHA-1s are computed as git does), issues and pull requests, comments,
reactions, labels, commit statuses, check runs, deployments, pull-request reviews and
organizations' teams, plus seeding helpers and the inspection helpers tests use (the seeding of
reviews and teams is in :mod:`github_api_teams`). Everything is guarded by one re-entrant lock."""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ROLES = ("none", "read", "triage", "write", "maintain", "admin")


def rank(role: str) -> int:
    return ROLES.index(role)


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass
class User:
    login: str
    id: int
    type: str = "User"  # "User", "Bot" or "Organization"
    name: str | None = None
    email: str | None = None


@dataclass
class Token:
    token: str
    login: str
    read_only: bool = False  # every write answers 403 (a fork PR's GITHUB_TOKEN)
    checks_forbidden: bool = False  # check runs answer 403 (no `checks: write`)
    can_get_user: bool = True  # GET /user; False for GITHUB_TOKEN, which gets 403 there
    rate_limit: int = 5000
    used: int = 0
    window_start: float = 0.0


@dataclass
class TreeEntry:
    mode: str  # "100644", "100755", "040000", "160000", "120000"
    type: str  # "blob", "tree", "commit"
    name: str
    sha: str


@dataclass
class CommitData:
    tree: str
    parents: list[str]
    message: str
    author: dict[str, str]  # name, email, date (ISO 8601)
    committer: dict[str, str]


@dataclass
class GitObject:
    type: str  # "blob", "tree" or "commit"
    data: bytes | list[TreeEntry] | CommitData


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class Reaction:
    id: int
    content: str
    user: str
    created_at: datetime


@dataclass
class Comment:
    id: int
    repo: str  # full name
    issue_number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime
    reactions: list[Reaction] = field(default_factory=list)


@dataclass
class Review:
    id: int
    user: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED (PENDING ones are never listed)
    commit_id: str
    body: str
    submitted_at: datetime


@dataclass
class Pull:
    head_ref: str
    head_sha: str
    head_repo: str  # full name; differs from the base repository for a fork
    base_ref: str
    draft: bool = False
    merged: bool = False
    maintainer_can_modify: bool = False
    merged_at: datetime | None = None
    reviews: list[Review] = field(default_factory=list)  # in the order they were submitted


@dataclass
class Team:
    id: int
    org: str
    slug: str
    members: dict[str, tuple[str, str]] = field(default_factory=dict)  # login.lower() -> (role, state)


@dataclass
class Issue:
    number: int
    id: int
    title: str
    body: str | None
    user: str
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    closed_at: datetime | None = None
    state_reason: str | None = None  # completed, not_planned, duplicate, reopened
    labels: list[str] = field(default_factory=list)  # names as in Repo.labels
    locked: bool = False
    pull: Pull | None = None


@dataclass
class CheckRun:
    id: int
    repo: str
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    details_url: str | None
    external_id: str | None
    output: dict[str, Any]
    annotations: list[dict[str, Any]]
    app_owner: str  # login of the token that created it


@dataclass
class CommitStatus:
    id: int
    repo: str
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator: str
    created_at: datetime


@dataclass
class DeploymentStatus:
    id: int
    deployment_id: int
    state: str
    description: str
    environment: str
    environment_url: str
    log_url: str
    creator: str
    created_at: datetime


@dataclass
class Deployment:
    id: int
    repo: str
    sha: str
    ref: str
    task: str
    environment: str
    description: str | None
    payload: Any
    production_environment: bool
    transient_environment: bool
    creator: str
    created_at: datetime
    statuses: list[DeploymentStatus] = field(default_factory=list)


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    private: bool
    default_branch: str
    created_at: datetime
    description: str | None = None
    parent: str | None = None  # full name of the repository this one is a fork of
    has_issues: bool = True  # False: creating or editing an issue answers 410
    objects: dict[str, GitObject] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> sha
    issues: dict[int, Issue] = field(default_factory=dict)
    collaborators: dict[str, str] = field(default_factory=dict)  # login.lower() -> role
    labels: dict[str, Label] = field(default_factory=dict)  # name.lower() -> label
    statuses: dict[str, list[CommitStatus]] = field(default_factory=dict)  # sha -> statuses

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    # -- git object store ---------------------------------------------------------------------
    def _store(self, kind: str, payload: bytes, obj: GitObject, sha: str | None = None) -> str:
        sha = sha or hashlib.sha1(f"{kind} {len(payload)}\0".encode() + payload).hexdigest()
        self.objects.setdefault(sha, obj)
        return sha

    def put_blob(self, data: bytes) -> str:
        return self._store("blob", data, GitObject("blob", data))

    def put_tree(self, entries: list[TreeEntry]) -> str:
        entries = sorted(entries, key=lambda e: e.name + ("/" if e.type == "tree" else ""))
        payload = b"".join(f"{e.mode.lstrip('0')} {e.name}".encode() + b"\0" + _raw_sha(e.sha)
                           for e in entries)
        return self._store("tree", payload, GitObject("tree", entries))

    def put_commit(self, data: CommitData, sha: str | None = None) -> str:
        lines = [f"tree {data.tree}", *(f"parent {p}" for p in data.parents)]
        for role, who in (("author", data.author), ("committer", data.committer)):
            moment = datetime.fromisoformat(who["date"])
            stamp = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
            lines.append(f"{role} {who['name']} <{who['email']}> {stamp} +0000")
        payload = ("\n".join(lines) + "\n\n" + data.message).encode()
        return self._store("commit", payload, GitObject("commit", data), sha)

    def get(self, sha: str, kind: str) -> Any:
        obj = self.objects.get(sha)
        return obj.data if obj and obj.type == kind else None

    def resolve(self, ref: str) -> str | None:
        """A commit SHA for a full or abbreviated SHA, a branch, a tag or a ``refs/...`` name."""
        for name in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if name in self.refs:
                return self.refs[name]
        if self.get(ref, "commit"):
            return ref
        if len(ref) >= 7:
            found = [s for s, o in self.objects.items() if s.startswith(ref) and o.type == "commit"]
            if len(found) == 1:
                return found[0]
        return None

    def flatten(self, tree_sha: str, prefix: str = "") -> dict[str, TreeEntry]:
        """Every non-tree entry below ``tree_sha`` keyed by its full path."""
        out: dict[str, TreeEntry] = {}
        for entry in self.get(tree_sha, "tree") or []:
            path = prefix + entry.name
            if entry.type == "tree":
                out.update(self.flatten(entry.sha, path + "/"))
            else:
                out[path] = TreeEntry(entry.mode, entry.type, path, entry.sha)
        return out

    def tree_from_flat(self, flat: dict[str, TreeEntry]) -> str:
        here: list[TreeEntry] = []
        subdirs: dict[str, dict[str, TreeEntry]] = {}
        for path, entry in flat.items():
            head, sep, rest = path.partition("/")
            if sep:
                subdirs.setdefault(head, {})[rest] = entry
            else:
                here.append(TreeEntry(entry.mode, entry.type, head, entry.sha))
        for name, sub in subdirs.items():
            here.append(TreeEntry("040000", "tree", name, self.tree_from_flat(sub)))
        return self.put_tree(here)

    def ancestors(self, sha: str) -> list[str]:
        """``sha`` and every commit reachable from it, nearest first."""
        seen, order, queue = set(), [], [sha]
        while queue:
            current = queue.pop(0)
            if current in seen or not self.get(current, "commit"):
                continue
            seen.add(current)
            order.append(current)
            queue.extend(self.get(current, "commit").parents)
        return order

    def merge_base(self, a: str, b: str) -> str | None:
        of_b = set(self.ancestors(b))
        return next((s for s in self.ancestors(a) if s in of_b), None)

    def diff(self, old_commit: str | None, new_commit: str) -> list[tuple[str, str, str | None, str | None]]:
        """(path, status, old blob sha, new blob sha) for every file that differs."""
        old = self.flatten(self.get(old_commit, "commit").tree) if old_commit else {}
        new = self.flatten(self.get(new_commit, "commit").tree)
        out = []
        for path in sorted(set(old) | set(new)):
            before, after = old.get(path), new.get(path)
            if before and after and before.sha == after.sha:
                continue
            status = "added" if not before else "removed" if not after else "modified"
            out.append((path, status, before and before.sha, after and after.sha))
        return out


def _raw_sha(sha: str) -> bytes:
    try:
        return bytes.fromhex(sha)
    except ValueError:
        return hashlib.sha1(sha.encode()).digest()


class GitHubState:
    """Seeding and inspection; the HTTP side lives in :mod:`github` and :mod:`github_api`."""

    def __init__(self, html_url: str = "https://github.com"):
        self._lock = threading.RLock()
        self.html_base = html_url.rstrip("/")
        self._time_offset = 0.0
        self._users: dict[str, User] = {}
        self._tokens: dict[str, Token] = {}
        self._repos: dict[str, Repo] = {}
        self._comments: dict[int, Comment] = {}
        self._check_runs: dict[int, CheckRun] = {}
        self._deployments: dict[int, Deployment] = {}
        self._teams: dict[str, Team] = {}  # "org/slug".lower() -> team
        self._org_members: dict[str, set[str]] = {}  # org.lower() -> logins.lower() (who may see its teams)
        self._members_readers: dict[str, set[str]] = {}  # org.lower() -> apps' logins with members: read
        # Distinct id ranges catch a client that mixes up, say, a comment id and a PR number.
        self._ids = {kind: itertools.count(start) for kind, start in {
            "user": 1001, "repo": 500001, "issue": 900000001, "comment": 1000000001,
            "reaction": 1500000001, "label": 2500000001, "check_run": 3000000001,
            "status": 4000000001, "deployment": 5000000001, "deployment_status": 6000000001,
            "review": 7000000001, "team": 8000001,
        }.items()}

    def next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    # -- time ---------------------------------------------------------------------------------
    def now(self) -> datetime:
        moment = datetime.now(UTC) + timedelta(seconds=self._time_offset)
        return moment.replace(microsecond=0)

    def advance_time(self, seconds: float) -> None:
        """Move the server's clock forward (timestamps, rate-limit windows)."""
        self._time_offset += seconds

    # -- roles and rate limits ----------------------------------------------------------------
    def role_of(self, repo: Repo, login: str) -> str:
        """The caller's role; anyone can read a public repository."""
        role = repo.collaborators.get(login.lower(), "none")
        return "read" if rank(role) < rank("read") and not repo.private else role

    def _tick(self, token: Token) -> None:
        now = self.now().timestamp()
        if now >= token.window_start + 3600:
            token.window_start, token.used = now, 0

    def rate_status(self, token: Token) -> dict[str, Any]:
        self._tick(token)
        return {"limit": token.rate_limit, "remaining": max(token.rate_limit - token.used, 0),
                "reset": int(token.window_start + 3600), "used": token.used, "resource": "core"}

    # -- seeding ------------------------------------------------------------------------------
    def add_user(self, login: str, *, token: str | None = None, type: str = "User",
                 name: str | None = None, email: str | None = None, **token_options: Any) -> User:
        """A user (``type="Bot"`` for ``github-actions[bot]``); ``token`` also registers a token
        for it with :meth:`add_token`'s options."""
        with self._lock:
            user = self._users.get(login.lower())
            if user is None:
                user = User(login, self.next_id("user"), type, name, email)
                self._users[login.lower()] = user
            if token:
                self.add_token(token, login, **token_options)
            return user

    def add_token(self, token: str, login: str, *, read_only: bool = False,
                  checks_forbidden: bool = False, can_get_user: bool = True,
                  rate_limit: int = 5000) -> Token:
        with self._lock:
            self.add_user(login)
            entry = Token(token, login, read_only, checks_forbidden, can_get_user, rate_limit,
                          window_start=self.now().timestamp())
            self._tokens[token] = entry
            return entry

    def add_repo(self, full_name: str, *, private: bool = False, default_branch: str = "main",
                 files: dict[str, str | bytes] | None = None, description: str | None = None,
                 fork_of: str | None = None, has_issues: bool = True) -> Repo:
        """A repository whose default branch has one commit with ``files`` (a README if none).
        Its owner is created as a user with the admin role. ``fork_of`` makes it a fork that
        shares the parent's objects and branches."""
        owner, name = full_name.split("/")
        with self._lock:
            self.add_user(owner)
            repo = Repo(self.next_id("repo"), owner, name, private, default_branch, self.now(),
                        description, fork_of, has_issues)
            repo.collaborators[owner.lower()] = "admin"
            self._repos[full_name.lower()] = repo
            if fork_of:
                parent = self.repo(fork_of, live=True)
                repo.objects, repo.refs = parent.objects, {
                    k: v for k, v in parent.refs.items() if k.startswith("refs/heads/")}
                repo.default_branch = parent.default_branch
            else:
                self.commit_files(full_name, default_branch, files or {"README.md": f"# {name}\n"},
                                  message="Initial commit")
            return repo

    def add_collaborator(self, full_name: str, login: str, permission: str = "write") -> None:
        """``permission`` is a role: admin, maintain, write, triage, read or none."""
        assert permission in ROLES, permission
        with self._lock:
            self.add_user(login)
            self.repo(full_name, live=True).collaborators[login.lower()] = permission

    def commit_files(self, full_name: str, branch: str, files: dict[str, str | bytes | None], *,
                     message: str = "Update files", base: str | None = None,
                     author: str | None = None, sha: str | None = None) -> str:
        """Commit ``files`` (None deletes a path) on ``branch``, creating the branch from
        ``base`` (default: the default branch) if needed. ``sha`` forces the commit's SHA, so a
        test can use a head SHA it chose. Returns the commit SHA."""
        with self._lock:
            repo = self.repo(full_name, live=True)
            parent = repo.refs.get(f"refs/heads/{branch}") or (
                repo.resolve(base or repo.default_branch) if repo.refs else None)
            flat = repo.flatten(repo.get(parent, "commit").tree) if parent else {}
            for path, content in files.items():
                if content is None:
                    flat.pop(path, None)
                else:
                    data = content.encode() if isinstance(content, str) else content
                    flat[path] = TreeEntry("100644", "blob", path, repo.put_blob(data))
            who = self._signature(author or repo.owner)
            commit = repo.put_commit(CommitData(repo.tree_from_flat(flat), [parent] if parent else [],
                                                message, who, who), sha=sha)
            repo.refs[f"refs/heads/{branch}"] = commit
            return commit

    def add_issue(self, full_name: str, title: str = "An issue", *, user: str = "octocat",
                  body: str | None = None, number: int | None = None,
                  labels: list[str] | None = None, state: str = "open",
                  state_reason: str | None = None) -> Issue:
        """An issue (pull requests share the numbering); ``labels`` are created in the repository
        if missing. ``state="closed"`` closes it now, ``state_reason`` "completed" if not given."""
        assert state in ("open", "closed"), state
        with self._lock:
            repo = self.repo(full_name, live=True)
            self.add_user(user)
            number = number or max(repo.issues, default=0) + 1
            assert number not in repo.issues, f"#{number} exists"
            issue = Issue(number, self.next_id("issue"), title, body, user, self.now(), self.now())
            issue.labels = [self.ensure_label(repo, name).name for name in labels or []]
            if state == "closed":
                issue.state, issue.closed_at = state, self.now()
                issue.state_reason = state_reason or "completed"
            repo.issues[number] = issue
            return issue

    def ensure_label(self, repo: Repo, name: str) -> Label:
        """The repository's label ``name`` (case-insensitive), created as GitHub does when an issue
        is given a label that does not exist yet."""
        with self._lock:
            if name.lower() not in repo.labels:
                repo.labels[name.lower()] = Label(self.next_id("label"), name)
            return repo.labels[name.lower()]

    def add_pull(self, full_name: str, *, number: int | None = None, title: str = "A change",
                 user: str = "octocat", body: str | None = None, head_ref: str = "feature",
                 head_sha: str | None = None, head_repo: str | None = None,
                 base_ref: str | None = None, files: dict[str, str | bytes | None] | None = None,
                 draft: bool = False, state: str = "open") -> Issue:
        """A pull request. Its head commit holds ``files`` on top of the base branch and has SHA
        ``head_sha`` if given. ``head_repo`` other than ``full_name`` makes it a PR from a fork
        (the fork is created for ``user``'s login if missing)."""
        with self._lock:
            repo = self.repo(full_name, live=True)
            base_ref = base_ref or repo.default_branch
            head_repo = head_repo or full_name
            if head_repo.lower() != full_name.lower() and head_repo.lower() not in self._repos:
                self.add_repo(head_repo, fork_of=full_name)
            if head_sha and repo.get(head_sha, "commit"):
                self.repo(head_repo, live=True).refs[f"refs/heads/{head_ref}"] = head_sha
            else:
                head_sha = self.commit_files(head_repo, head_ref, files or {f"{head_ref}.txt": title},
                                             message=title, base=base_ref, author=user, sha=head_sha)
            issue = self.add_issue(full_name, title, user=user, body=body, number=number)
            issue.pull = Pull(head_ref, head_sha, self.repo(head_repo, live=True).full_name,
                              base_ref, draft)
            repo.refs[f"refs/pull/{issue.number}/head"] = head_sha
            if state != "open":
                issue.state, issue.closed_at = state, self.now()
            return issue

    def add_comment(self, full_name: str, number: int, body: str, *, user: str = "octocat") -> Comment:
        """An existing comment on issue/PR ``number`` (a stale bot comment, a slash command)."""
        with self._lock:
            self.add_user(user)
            repo = self.repo(full_name, live=True)
            assert number in repo.issues, f"no issue #{number} in {full_name}"
            comment = Comment(self.next_id("comment"), repo.full_name, number, body, user,
                              self.now(), self.now())
            self._comments[comment.id] = comment
            return comment

    def _signature(self, login: str) -> dict[str, str]:
        user = self._users.get(login.lower())
        email = (user and user.email) or f"{login}@users.noreply.github.com"
        return {"name": (user and user.name) or login, "email": email, "date": iso(self.now())}

    # -- inspection (snapshots: deep copies, safe to keep) -------------------------------------
    def repo(self, full_name: str, *, live: bool = False) -> Repo:
        with self._lock:
            repo = self._repos.get(full_name.lower())
            if repo is None:
                raise KeyError(f"no repository {full_name}")
            return repo if live else copy.deepcopy(repo)

    def user(self, login: str) -> User:
        return copy.deepcopy(self._users[login.lower()])

    def token_info(self, token: str) -> Token:
        return copy.deepcopy(self._tokens[token])

    def comments(self, full_name: str, number: int | None = None) -> list[Comment]:
        with self._lock:
            return [copy.deepcopy(c) for c in sorted(self._comments.values(), key=lambda c: c.id)
                    if c.repo.lower() == full_name.lower()
                    and (number is None or c.issue_number == number)]

    def comment(self, comment_id: int) -> Comment | None:
        with self._lock:
            return copy.deepcopy(self._comments.get(comment_id))

    def issue(self, full_name: str, number: int) -> Issue:
        with self._lock:
            return copy.deepcopy(self.repo(full_name, live=True).issues[number])

    def issues(self, full_name: str, *, state: str = "all", label: str | None = None,
               pulls: bool = False) -> list[Issue]:
        """The issues of a repository by number: ``state`` open, closed or all, only those
        carrying ``label`` if given, and pull requests too if ``pulls``."""
        assert state in ("open", "closed", "all"), state
        with self._lock:
            repo = self.repo(full_name, live=True)
            return [copy.deepcopy(i) for _, i in sorted(repo.issues.items())
                    if (pulls or i.pull is None) and state in ("all", i.state)
                    and (label is None or label.lower() in (n.lower() for n in i.labels))]

    def check_runs(self, full_name: str, head_sha: str | None = None) -> list[CheckRun]:
        with self._lock:
            return [copy.deepcopy(r) for r in sorted(self._check_runs.values(), key=lambda r: r.id)
                    if r.repo.lower() == full_name.lower()
                    and (head_sha is None or r.head_sha == head_sha)]

    def statuses(self, full_name: str, sha: str) -> list[CommitStatus]:
        with self._lock:
            return copy.deepcopy(self.repo(full_name, live=True).statuses.get(sha, []))

    def deployments(self, full_name: str) -> list[Deployment]:
        with self._lock:
            return [copy.deepcopy(d) for d in sorted(self._deployments.values(), key=lambda d: d.id)
                    if d.repo.lower() == full_name.lower()]

    def ref_sha(self, full_name: str, ref: str) -> str | None:
        with self._lock:
            return self.repo(full_name, live=True).resolve(ref)

    def file(self, full_name: str, path: str, ref: str | None = None) -> bytes | None:
        """A file's bytes at ``ref`` (default branch if None), or None if it does not exist."""
        with self._lock:
            repo = self.repo(full_name, live=True)
            sha = repo.resolve(ref or repo.default_branch)
            entry = repo.flatten(repo.get(sha, "commit").tree).get(path) if sha else None
            return repo.get(entry.sha, "blob") if entry else None
