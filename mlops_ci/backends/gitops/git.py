"""A GitOps repository behind any git URL (a local bare repository by default).

Each promotion works in its own temporary clone. A rejected push (the branch moved) is
retried after fetch + rebase with bounded, jittered backoff. Nothing is ever force-pushed.

A rebase conflict in a kustomization whose ``resources`` list both sides changed (two promotions
each adding a model folder to the environment's list) is resolved by re-applying our entries to
their list; any other conflict stops with PushConflict, naming the files (the promote stage then
plans again on the new tip, or reports a real conflict: see mlops_ci.stages.promote).

A lost race means another push landed, so retrying cannot livelock; attempts are bounded. The
backoff is full jitter over a range that starts at the time the lost attempt took (a competitor's
attempt takes about as long) and doubles with each loss: on a busy branch the contenders spread
out after a few rounds instead of colliding round after round.
"""

from __future__ import annotations

import posixpath
import random
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.backends.gitops.base import HistoryEntry
from mlops_ci.errors import BackendError, PushConflict

MAX_PUSH_ATTEMPTS = 20  # each lost race is another push that landed: enough for 20 pushers at once
MAX_BACKOFF_S = 8.0
_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref",
             "incorrect old value")
KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# one record per commit: \x1e sha \x1f parents \x1f subject \x1f trailers \x1f, then the changed paths
_LOG_FORMAT = "%x1e%H%x1f%P%x1f%ct%x1f%s%x1f%(trailers:only,unfold)%x1f"


def backoff(attempt: int, took: float) -> float:
    """Seconds to wait after the ``attempt``-th lost race, whose attempt took ``took`` seconds."""
    return random.uniform(0, min(MAX_BACKOFF_S, max(0.05, took) * 2 ** (attempt - 1)))


def merge_kustomization(base: bytes | None, theirs: bytes, ours: bytes) -> bytes | None:
    """Our change to a kustomization re-applied to their version, if it only added or removed
    ``resources`` entries and left every other key as it was or as they have it; else None.
    Their file keeps its comments and order; our new entries go at the end of their list."""
    from ruamel.yaml import YAMLError

    from mlops_ci.serving import yamlio

    try:
        o, a, b = (yamlio.load(x) if x else {} for x in (base, theirs, ours))
    except YAMLError:
        return None
    if not all(isinstance(d, dict) for d in (o, a, b)):
        return None
    for key in set(o) | set(a) | set(b):
        if key != "resources" and b.get(key) != o.get(key) and b.get(key) != a.get(key):
            return None  # we changed something else, and not as they did
    lists = [d.get("resources") or [] for d in (o, a, b)]
    if not all(isinstance(r, list) and all(isinstance(x, str) for x in r) for r in lists):
        return None
    old, resources, new = lists
    if a.get("resources") is None:
        a["resources"] = resources
    for entry in old:
        if entry not in new:
            while entry in resources:
                resources.remove(entry)
    for entry in new:
        if entry not in old and entry not in resources:
            yamlio.append_item(resources, entry)
    return yamlio.dump(a)


class GitCheckout:
    def __init__(self, remote: GitRemote, path: Path) -> None:
        self.remote = remote
        self.path = path
        self.head = gitutil.rev_parse("HEAD", path)
        self.proposal: str | None = None  # commits go to the branch itself

    @property
    def workdir(self) -> Path:
        return self.path

    @property
    def branch(self) -> str:
        return self.remote.branch

    def read(self, path: str) -> bytes | None:
        full = self.path / path
        return full.read_bytes() if full.is_file() else None

    def show(self, rev: str, path: str) -> bytes | None:
        return gitutil.show_file(rev, path, self.path)

    def log(self, paths: Sequence[str], *, exclude: Sequence[str] = ()) -> list[HistoryEntry]:
        if self.head is None:
            return []
        spec = [f":(literal){p}" for p in paths] + [f":(exclude,literal){p}" for p in exclude]
        text = gitutil.git(["-c", "core.quotePath=false", "log", "--first-parent", "--name-only", "--no-renames",
                            f"--format={_LOG_FORMAT}", self.head, "--", *spec], self.path).stdout
        entries = []
        for chunk in text.split("\x1e")[1:]:
            sha, parents, committed, subject, trailers, names = chunk.split("\x1f", 5)
            pairs = tuple((k.strip(), v.strip()) for k, sep, v in
                          (line.partition(":") for line in trailers.splitlines()) if sep)
            entries.append(HistoryEntry(sha=sha, parent=(parents.split() or [None])[0], subject=subject,
                                        trailers=pairs, paths=tuple(n for n in names.splitlines() if n),
                                        committed=int(committed)))
        return entries

    def write(self, files: dict[str, bytes | None]) -> None:
        for rel, data in files.items():
            target = (self.path / rel).resolve()
            if self.path.resolve() not in target.parents:
                raise BackendError(f"refusing to write {rel!r}: outside the GitOps checkout")
            if data is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def commit_and_push(self, files: dict[str, bytes | None], message: str) -> str:
        self.write(files)
        env = self.remote.identity_env()
        gitutil.git(["add", "--all", "--", *files], self.path)  # --all: a deleted file is staged too
        gitutil.git(["commit", "--quiet", "--no-verify", "-F", "-"], self.path, env=env,
                    input_text=message)
        branch = self.remote.branch
        started = time.monotonic()
        for attempt in range(1, MAX_PUSH_ATTEMPTS + 1):
            proc = gitutil.git(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], self.path,
                               check=False, env=env)
            if proc.returncode == 0:
                self.head = gitutil.rev_parse("HEAD", self.path)
                return self.head or ""
            text = proc.stderr + proc.stdout
            if not any(marker in text for marker in _REJECTED):
                raise BackendError(f"push to {self.remote.url} ({branch}) failed: "
                                   f"{text.strip().splitlines()[-1] if text.strip() else 'no output'}")
            if attempt == MAX_PUSH_ATTEMPTS:
                break
            time.sleep(backoff(attempt, time.monotonic() - started))
            started = time.monotonic()
            gitutil.git(["fetch", "--quiet", "origin", "--", branch], self.path, env=env)
            rebase = gitutil.git(["rebase", "--quiet", "FETCH_HEAD"], self.path, check=False, env=env)
            if rebase.returncode != 0 and not self._resolve_rebase(env):
                conflicted = gitutil.git(["diff", "--name-only", "--diff-filter=U"], self.path,
                                         check=False).stdout.split()
                gitutil.git(["rebase", "--abort"], self.path, check=False)
                theirs = gitutil.rev_parse("FETCH_HEAD", self.path) or "?"
                raise PushConflict(
                    f"GitOps conflict in {', '.join(conflicted) or 'the manifests'}: {self.remote.url} "
                    f"({branch}) moved to {theirs[:12]} with a change to the same file",
                    hint="re-run the promotion to plan against the new state",
                )
        raise BackendError(f"push to {self.remote.url} ({branch}) was still rejected after "
                           f"{MAX_PUSH_ATTEMPTS} attempts", hint="the branch is busy; retry later")

    def _resolve_rebase(self, env: dict[str, str]) -> bool:
        """Finish a rebase stopped on conflicts if every conflicted file is a kustomization that
        merge_kustomization resolves; False (the rebase still stopped) otherwise."""
        for _ in range(64):  # one round per replayed commit that stops (a promotion replays one)
            listed = gitutil.git(["diff", "--name-only", "--diff-filter=U", "-z"], self.path, check=False)
            conflicted = [p for p in listed.stdout.split("\0") if p]
            if not conflicted:
                return False
            for path in conflicted:
                theirs, ours = self.show(":2", path), self.show(":3", path)
                merged = (merge_kustomization(self.show(":1", path), theirs, ours)
                          if posixpath.basename(path) in KUSTOMIZATIONS and theirs and ours else None)
                if merged is None:
                    return False
                self.write({path: merged})
            gitutil.git(["add", "--", *conflicted], self.path)
            proc = gitutil.git(["rebase", "--continue"], self.path, check=False,
                               env={**env, "GIT_EDITOR": "true"})
            if proc.returncode == 0:
                return True
        return False


class GitRemote:
    def __init__(self, url: str, branch: str, author: tuple[str, str], *, create_if_missing: bool = False) -> None:
        self.url = url
        self.branch = branch
        self.author = author
        self.create_if_missing = create_if_missing

    def identity_env(self) -> dict[str, str]:
        name, email = self.author
        return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}

    def ensure_exists(self) -> None:
        """Create the default local bare repository on first use."""
        path = Path(self.url)
        if self.create_if_missing and not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            gitutil.git(["init", "--quiet", "--bare", f"--initial-branch={self.branch}", str(path)], path.parent)

    def check(self) -> None:
        """The remote answers, and has the branch or no branch at all (a new repository)."""
        if self.create_if_missing:
            return  # the embedded default is created on first use
        proc = gitutil.git(["ls-remote", "--heads", "--", self.url], Path.cwd(), check=False)
        if proc.returncode != 0:
            lines = [x.strip() for x in proc.stderr.strip().splitlines() if x.strip()]
            cause = next((x for x in lines if x.startswith(("fatal:", "error:"))), lines[0] if lines else "no output")
            raise BackendError(f"the GitOps repository {self.url} does not exist or cannot be read (git: {cause})",
                               hint="check gitops.remote in .mlops-ci.yaml and the credentials; for a new local "
                                    f"one, `git init --bare {self.url}`")
        heads = [line.split("\t", 1)[-1] for line in proc.stdout.splitlines() if "\t" in line]
        if heads and f"refs/heads/{self.branch}" not in heads:
            shown = ", ".join(h.removeprefix("refs/heads/") for h in heads[:5])
            raise BackendError(f"the GitOps repository {self.url} has no branch {self.branch!r} (it has: {shown})",
                               hint="set gitops.branch in .mlops-ci.yaml to the branch Argo CD syncs")

    @contextmanager
    def checkout(self) -> Iterator[GitCheckout]:
        self.ensure_exists()
        tmp = Path(tempfile.mkdtemp(prefix="mlops-ci-gitops-"))
        try:
            work = tmp / "repo"
            proc = gitutil.git(["clone", "--quiet", "--no-tags", "--single-branch", "--branch", self.branch,
                                "--", self.url, str(work)], tmp, check=False)
            if proc.returncode != 0:
                # an empty repository (or a branch that does not exist yet) clones without a branch
                if "not found in upstream" in proc.stderr or "Remote branch" in proc.stderr:
                    shutil.rmtree(work, ignore_errors=True)
                    gitutil.git(["clone", "--quiet", "--no-tags", "--", self.url, str(work)], tmp)
                    gitutil.git(["checkout", "--quiet", "--orphan", self.branch], work)
                    gitutil.git(["rm", "-r", "--quiet", "--cached", "--ignore-unmatch", "."], work, check=False)
                    for entry in work.iterdir():
                        if entry.name != ".git":
                            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                else:
                    raise BackendError(f"cannot clone GitOps repository {self.url}: "
                                       f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}",
                                       hint="check gitops.remote in .mlops-ci.yaml and your credentials")
            yield GitCheckout(self, work)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["GitCheckout", "GitRemote"]
