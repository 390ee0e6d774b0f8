"""Handlers for repository data: commits and comparisons, contents, deployments and the git
database (blobs, trees, commits, refs)."""

from __future__ import annotations

import base64
import binascii

from .github_api import ApiBase, ApiError, Ctx, Reply, invalid
from .github_state import CommitData, Deployment, DeploymentStatus, Repo, TreeEntry


class GitHandlers(ApiBase):
    """Commits, comparisons, contents, deployments and git data."""

    # -- commits ----------------------------------------------------------------------------------
    def get_commit(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        sha = self.commit_or_422(repo, ctx.params["ref"])
        parents = repo.get(sha, "commit").parents
        files = self.file_diffs(repo, parents[0] if parents else None, sha, sha)
        page, headers = self.paginate(ctx, files)
        return Reply(200, self.commit_json(repo, sha, page), headers)

    def compare_commits(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        base, head = self._resolve_in_network(repo, ctx.params["base"]), self._resolve_in_network(
            repo, ctx.params["head"])
        if base is None or head is None:
            raise ApiError(404, "Not Found")
        merge_base = repo.merge_base(base, head) or base
        of_base, of_head = set(repo.ancestors(base)), set(repo.ancestors(head))
        ahead = [s for s in reversed(repo.ancestors(head)) if s not in of_base]
        behind = len(of_base - of_head)
        status = ("identical" if base == head else "ahead" if not behind
                  else "behind" if not ahead else "diverged")
        commits, headers = self.paginate(ctx, ahead)
        name = f"{ctx.params['base']}...{ctx.params['head']}"
        html = f"{self.html(repo)}/compare/{name}"
        return Reply(200, {
            "url": f"{self.api(repo)}/compare/{name}", "html_url": html,
            "permalink_url": f"{self.html(repo)}/compare/{base}...{head}",
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
            "base_commit": self.commit_json(repo, base),
            "merge_base_commit": self.commit_json(repo, merge_base), "status": status,
            "ahead_by": len(ahead), "behind_by": behind, "total_commits": len(ahead),
            "commits": [self.commit_json(repo, s) for s in commits],
            "files": self.file_diffs(repo, merge_base, head, head)}, headers)

    def _resolve_in_network(self, repo: Repo, spec: str) -> str | None:
        """``ref`` or ``owner:ref`` (a branch of ``owner``'s fork, as in a cross-repo compare)."""
        owner, _, ref = spec.rpartition(":")
        if owner and owner.lower() != repo.owner.lower():
            forks = [r for r in self._repos.values()
                     if r.owner.lower() == owner.lower() and r.parent == repo.full_name]
            return forks[0].resolve(ref) if forks else None
        return repo.resolve(ref)

    # -- contents ---------------------------------------------------------------------------------
    def get_content(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        ref = ctx.params.get("ref") or repo.default_branch
        sha = repo.resolve(ref)
        if sha is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        path = ctx.params["path"].strip("/")
        flat = repo.flatten(repo.get(sha, "commit").tree)
        if path in flat:
            return Reply(200, self.content_json(repo, flat[path], ref, with_content=True,
                                                kind="content-file"))
        listing = self.directory(repo, flat, path)
        if not listing:
            raise ApiError(404, "Not Found")
        return Reply(200, [self.content_json(repo, e, ref, with_content=False) for e in listing])

    def directory(self, repo: Repo, flat: dict[str, TreeEntry], path: str) -> list[TreeEntry]:
        prefix = f"{path}/" if path else ""
        children: dict[str, TreeEntry] = {}
        for full, entry in flat.items():
            if full.startswith(prefix):
                head, sep, _ = full[len(prefix):].partition("/")
                name = prefix + head
                children.setdefault(name, TreeEntry("040000", "tree", name, "") if sep
                                    else TreeEntry(entry.mode, entry.type, name, entry.sha))
        for name, entry in children.items():
            if entry.type == "tree":
                sub = {k[len(name) + 1:]: v for k, v in flat.items() if k.startswith(name + "/")}
                entry.sha = repo.tree_from_flat(sub)
        return sorted(children.values(), key=lambda e: e.name)

    def put_content(self, ctx: Ctx) -> Reply:
        repo, body, path = ctx.need_repo(), ctx.body, ctx.params["path"].strip("/")
        try:
            data = base64.b64decode(body["content"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid("Commit", "content", "content is not valid Base64") from None
        branch = body.get("branch") or repo.default_branch
        head = repo.refs.get(f"refs/heads/{branch}")
        if head is None:
            raise ApiError(404, f"Branch {branch} not found")
        flat = repo.flatten(repo.get(head, "commit").tree)
        existing = flat.get(path)
        if existing and "sha" not in body:
            raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        if existing and body["sha"] != existing.sha:
            raise ApiError(409, f"{path} does not match {body['sha']}")
        flat[path] = TreeEntry("100644", "blob", path, repo.put_blob(data))
        who = self._signature(ctx.user.login)
        author = {**who, **body.get("author", {})}
        committer = {**who, **body.get("committer", body.get("author", {}))}
        sha = repo.put_commit(CommitData(repo.tree_from_flat(flat), [head], body["message"],
                                         author, committer))
        repo.refs[f"refs/heads/{branch}"] = sha
        commit = self.git_commit_json(repo, sha)
        content = self.content_json(repo, flat[path], branch, with_content=False)
        return Reply(200 if existing else 201, {"content": content, "commit": commit})

    # -- deployments ------------------------------------------------------------------------------
    def list_deployments(self, ctx: Ctx) -> Reply:
        repo, p = ctx.need_repo(), ctx.params
        found = [d for d in sorted(self._deployments.values(), key=lambda d: -d.id)
                 if d.repo == repo.full_name
                 and all(p.get(k, "none") in ("none", None, getattr(d, k))
                         for k in ("sha", "ref", "task", "environment"))]
        page, headers = self.paginate(ctx, found)
        return Reply(200, [self.deployment_json(repo, d) for d in page], headers)

    def create_deployment(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        sha = repo.resolve(body["ref"])
        if sha is None:
            raise invalid("Deployment", "ref", f"No ref found for: {body['ref']}")
        latest = {s.context: s.state for s in repo.statuses.get(sha, [])}
        required = body.get("required_contexts", list(latest))
        failing = [c for c in required if latest.get(c) != "success"]
        if failing:
            raise ApiError(409, f"Conflict: Commit status checks failed for {body['ref']}.", [
                {"contexts": [{"context": c, "state": latest.get(c, "missing")} for c in failing],
                 "resource": "Deployment", "field": "required_contexts", "code": "invalid"}])
        environment = body.get("environment", "production")
        deployment = Deployment(
            self.next_id("deployment"), repo.full_name, sha, body["ref"],
            body.get("task", "deploy"), environment, body.get("description", ""),
            body.get("payload", {}), body.get("production_environment", environment == "production"),
            body.get("transient_environment", False), ctx.user.login, self.now())
        self._deployments[deployment.id] = deployment
        return Reply(201, self.deployment_json(repo, deployment))

    def deployment_or_404(self, ctx: Ctx) -> Deployment:
        deployment = self._deployments.get(ctx.params["deployment_id"])
        if deployment is None or deployment.repo != ctx.need_repo().full_name:
            raise ApiError(404, "Not Found")
        return deployment

    def get_deployment(self, ctx: Ctx) -> Reply:
        return Reply(200, self.deployment_json(ctx.need_repo(), self.deployment_or_404(ctx)))

    def list_deployment_statuses(self, ctx: Ctx) -> Reply:
        repo, deployment = ctx.need_repo(), self.deployment_or_404(ctx)
        page, headers = self.paginate(ctx, list(reversed(deployment.statuses)))
        return Reply(200, [self.deployment_status_json(repo, s) for s in page], headers)

    def create_deployment_status(self, ctx: Ctx) -> Reply:
        repo, deployment, body = ctx.need_repo(), self.deployment_or_404(ctx), ctx.body
        if len(body.get("description", "")) > 140:
            raise invalid("DeploymentStatus", "description",
                          "description is too long (maximum is 140 characters)")
        environment = body.get("environment") or (
            deployment.statuses[-1].environment if deployment.statuses else deployment.environment)
        status = self._add_deployment_status(
            deployment, body["state"], ctx.user.login, body.get("description", ""), environment,
            body.get("environment_url", ""), body.get("log_url", body.get("target_url", "")))
        if body["state"] == "success" and body.get("auto_inactive", True):
            for other in self._deployments.values():
                if (other.repo == repo.full_name and other.id < deployment.id
                        and other.environment == deployment.environment
                        and not other.transient_environment and not other.production_environment
                        and other.statuses and other.statuses[-1].state == "success"):
                    self._add_deployment_status(other, "inactive", ctx.user.login, "", other.environment,
                                                other.statuses[-1].environment_url, "")
        data = self.deployment_status_json(repo, status)
        return Reply(201, data, {"Location": data["url"]})

    def _add_deployment_status(self, deployment: Deployment, state: str, creator: str,
                               description: str, environment: str, environment_url: str,
                               log_url: str) -> DeploymentStatus:
        status = DeploymentStatus(self.next_id("deployment_status"), deployment.id, state,
                                  description, environment, environment_url, log_url, creator,
                                  self.now())
        deployment.statuses.append(status)
        return status

    # -- git data ---------------------------------------------------------------------------------
    def create_blob(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        encoding = body.get("encoding", "utf-8")
        if encoding not in ("utf-8", "base64"):
            raise invalid("Blob", "encoding", f"encoding {encoding} is not supported")
        try:
            data = (base64.b64decode(body["content"], validate=True) if encoding == "base64"
                    else body["content"].encode())
        except (binascii.Error, ValueError):
            raise invalid("Blob", "content", "content is not valid Base64") from None
        sha = repo.put_blob(data)
        url = f"{self.api(repo)}/git/blobs/{sha}"
        return Reply(201, {"url": url, "sha": sha}, {"Location": url})

    def create_tree(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        flat: dict[str, TreeEntry] = {}
        if body.get("base_tree"):
            if not repo.get(body["base_tree"], "tree"):
                raise invalid("Tree", "base_tree", "base_tree is not a valid tree oid")
            flat = repo.flatten(body["base_tree"])
        for index, item in enumerate(body["tree"]):
            path = item.get("path", "")
            if not path or "mode" not in item or "type" not in item:
                raise invalid("Tree", f"tree.{index}", "tree entry needs path, mode and type")
            if "content" in item:
                flat[path] = TreeEntry(item["mode"], "blob", path, repo.put_blob(item["content"].encode()))
            elif item.get("sha") is None:
                for key in [k for k in flat if k == path or k.startswith(path + "/")]:
                    del flat[key]
            elif item["type"] == "tree":
                if not repo.get(item["sha"], "tree"):
                    raise invalid("Tree", f"tree.{index}.sha", f"{item['sha']} is not a valid tree")
                for sub_path, entry in repo.flatten(item["sha"], path + "/").items():
                    flat[sub_path] = entry
            else:
                if item["type"] == "blob" and not repo.get(item["sha"], "blob"):
                    raise invalid("Tree", f"tree.{index}.sha", f"{item['sha']} is not a valid blob")
                flat[path] = TreeEntry(item["mode"], item["type"], path, item["sha"])
        sha = repo.tree_from_flat(flat)
        data = self.git_tree_json(repo, sha, recursive=False)
        return Reply(201, data, {"Location": data["url"]})

    def get_tree(self, ctx: Ctx) -> Reply:
        repo, ref = ctx.need_repo(), ctx.params["tree_sha"]
        sha = ref if repo.get(ref, "tree") else None
        if sha is None and (commit := repo.resolve(ref)):
            sha = repo.get(commit, "commit").tree
        if sha is None:
            raise ApiError(404, "Not Found")
        return Reply(200, self.git_tree_json(repo, sha, recursive="recursive" in ctx.params))

    def create_git_commit(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        if not repo.get(body["tree"], "tree"):
            raise invalid("Commit", "tree", "Tree SHA does not exist")
        for parent in body.get("parents", []):
            if not repo.get(parent, "commit"):
                raise invalid("Commit", "parents", "Parent SHA does not exist or is not a commit object")
        who = self._signature(ctx.user.login)
        author = {**who, **body.get("author", {})}
        committer = {**author, **body.get("committer", {})}
        sha = repo.put_commit(CommitData(body["tree"], list(body.get("parents", [])), body["message"],
                                         author, committer))
        data = self.git_commit_json(repo, sha)
        return Reply(201, data, {"Location": data["url"]})

    def get_git_commit(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        if not repo.get(ctx.params["commit_sha"], "commit"):
            raise ApiError(404, "Not Found")
        return Reply(200, self.git_commit_json(repo, ctx.params["commit_sha"]))

    def get_ref(self, ctx: Ctx) -> Reply:
        repo, ref = ctx.need_repo(), "refs/" + ctx.params["ref"].removeprefix("refs/")
        if ref not in repo.refs:
            raise ApiError(404, "Not Found")
        return Reply(200, self.git_ref_json(repo, ref))

    def create_ref(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        ref = body["ref"]
        if not ref.startswith("refs/") or ref.count("/") < 2 or ".." in ref or ref.endswith("/"):
            raise ApiError(422, f"{ref} is not a valid ref name.")
        if ref in repo.refs:
            raise ApiError(422, "Reference already exists")
        if not repo.get(body["sha"], "commit"):
            raise ApiError(422, "Object does not exist")
        repo.refs[ref] = body["sha"]
        data = self.git_ref_json(repo, ref)
        return Reply(201, data, {"Location": data["url"]})

    def update_ref(self, ctx: Ctx) -> Reply:
        repo, body = ctx.need_repo(), ctx.body
        ref = "refs/" + ctx.params["ref"].removeprefix("refs/")
        if ref not in repo.refs:
            raise ApiError(422, "Reference does not exist")
        if not repo.get(body["sha"], "commit"):
            raise ApiError(422, "Object does not exist")
        if not body.get("force") and repo.refs[ref] not in repo.ancestors(body["sha"]):
            raise ApiError(422, "Update is not a fast forward")
        repo.refs[ref] = body["sha"]
        return Reply(200, self.git_ref_json(repo, ref))

    def delete_ref(self, ctx: Ctx) -> Reply:
        repo = ctx.need_repo()
        ref = "refs/" + ctx.params["ref"].removeprefix("refs/")
        if ref not in repo.refs:
            raise ApiError(422, "Reference does not exist")
        if ref == f"refs/heads/{repo.default_branch}":
            raise ApiError(422, "Cannot delete the default branch")
        del repo.refs[ref]
        return Reply(204)
