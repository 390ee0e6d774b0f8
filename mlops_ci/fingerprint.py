"""Training fingerprint: a sha256 over everything a trained model is a function of, taken from the
content of the tree that is trained (never from a commit SHA).

Components, each a sha256 kept in the record and as an MLflow tag on the training run and on
the registered version (tag names in mlops_ci.registry):

- ``code``: the git blob ids of the files under the model's configured ``paths`` (and its
  training script), less the params file, the data files and the config file (counted below);
- ``data``: the content ids of the train and eval data (DVC md5 or git blob id; for data from the
  feature store, the id of the service's version and the entity table, mlops_ci.features.data);
- ``params``: the bytes of the params file;
- ``settings``: what the config says about training and evaluation (data columns, script,
  args, env, process counts; task, metrics, threshold) — not the gates, which are applied anew;
- ``image``: the training image digest on Argo, else the trainer kind.

Where the content is read depends on the trainer: a trainer that trains this checkout (torchrun)
is fingerprinted from the work tree as it is, untracked files under the model's paths included
(ignored ones and mlops-ci's state aside); one that clones the head commit elsewhere (Argo) from
that commit. Content ids are the same either way, so a pull request's test-merge checkout, the
merge commit on the default branch, a squash or a rebase of the same change all have the same
fingerprint: identical inputs are never trained twice (mlops_ci.stages.reuse finds the
model they were trained into).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from mlops_ci import gitutil, registry
from mlops_ci.config import PROMOTIONS_NAME
from mlops_ci.config.schema import ModelConfig
from mlops_ci.data.versions import blob_id, worktree_tracked
from mlops_ci.features.data import is_feature_id
from mlops_ci.records import Context, Fingerprint, ModelPlan
from mlops_ci.workspace import STATE_DIR, Workspace

if TYPE_CHECKING:
    from mlops_ci.backends.trainers.base import Trainer

FINGERPRINT_TAG = registry.FINGERPRINT
COMPONENT_TAG_PREFIX = registry.FINGERPRINT_PART
COMPONENTS = ("code", "data", "params", "settings", "image")
SCHEME = "mlops-ci/fingerprint/v2"  # bump when what goes in changes: old fingerprints then never match
MAX_LISTED = 5


def _sha(parts: Iterable[str | bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


def describe(names: Iterable[str]) -> str:
    """'code, data and params' from ['code', 'data', 'params']."""
    names = list(names)
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _shown(paths: list[str]) -> str:
    more = f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
    return ", ".join(paths[:MAX_LISTED]) + more


def _git_z(ws: Workspace, args: list[str]) -> list[str] | None:
    """NUL-separated output of a git command (paths taken literally), or None if git failed."""
    proc = gitutil.git(["--literal-pathspecs", *args], ws.top, check=False)
    if proc.returncode != 0:
        return None
    return [x for x in proc.stdout.split("\0") if x]


def _ours(ws: Workspace, path: str) -> bool:
    """mlops-ci's state folder and Python bytecode are never part of what is trained."""
    return (gitutil.is_under(path, ws.repo_path(STATE_DIR)) or "__pycache__" in path.split("/")
            or path.endswith(".pyc"))


def _worktree_blobs(ws: Workspace, paths: list[str]) -> list[tuple[str, str]] | None:
    """(path, blob id) of every file under ``paths`` as the work tree has it: tracked files that
    exist and untracked files that are not ignored."""
    listed = _git_z(ws, ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *paths])
    if listed is None:
        return None
    out = []
    for rel in sorted(set(listed)):
        full = ws.top / rel
        if _ours(ws, rel) or not os.path.lexists(full):
            continue
        if full.is_symlink():  # git stores a link's target as its blob
            target = os.readlink(full).encode()
            out.append((rel, hashlib.sha1(b"blob %d\0" % len(target) + target, usedforsecurity=False).hexdigest()))
        elif full.is_file():
            out.append((rel, blob_id(full)))
    return out


def _commit_blobs(ws: Workspace, head: str, paths: list[str]) -> list[tuple[str, str]] | None:
    """(path, blob id) of every file under ``paths`` at commit ``head``."""
    listed = _git_z(ws, ["ls-tree", "-r", "-z", "--full-tree", head, "--", *paths])
    if listed is None:
        return None
    out = []
    for entry in listed:
        meta, _, rel = entry.partition("\t")
        if meta.split()[1:2] == ["blob"] and not _ours(ws, rel):
            out.append((rel, meta.split()[2]))
    return out


def settings_of(cfg: ModelConfig) -> dict:
    """A model's training and evaluation settings in the config: what changes the model or its metrics."""
    train, ev = cfg.train, cfg.evaluation
    out = {
        "data": cfg.data.model_dump(mode="json"),
        "train": {"script": train.script, "args": list(train.args), "env": dict(train.env),
                  "nproc_per_node": train.nproc_per_node},
        "evaluation": {"task": ev.task, "metrics": ev.metrics, "threshold": ev.threshold},
    }
    if train.argo is not None:
        out["train"].update(nodes=train.argo.nodes, gpus_per_node=train.argo.gpus_per_node)
    if cfg.features is not None:  # only then: the fingerprints of models without features stay as they were
        out["features"] = cfg.features.model_dump(mode="json")
    return out


def compute(ws: Workspace, ctx: Context, plan: ModelPlan, *, trainer: Trainer,
            worktree: bool | None = None) -> Fingerprint:
    """The fingerprint of ``plan.model`` trained by ``trainer``: from the work tree as it is where
    the trainer reads it (or ``worktree`` says so), else from commit ``ctx.head_sha``. The image is
    the one the trainer runs in (pinned by digest), else the trainer's name."""
    worktree = trainer.reads_worktree if worktree is None else worktree
    cfg = ws.model(plan.model)
    head = ctx.head_sha
    params = ws.repo_path(cfg.params)
    config = ws.repo_path(ws.loaded.path.name)  # the project root is the config file's folder
    data_files = {dv.path for dv in plan.data} | {dv.path + ".dvc" for dv in plan.data}
    paths = sorted({ws.repo_path(p) for p in (*cfg.paths, cfg.train.script)})
    # the promotions file says what serves where; it never changes what training produces
    counted_elsewhere = data_files | {params, config, ws.repo_path(PROMOTIONS_NAME)}

    unavailable = None
    if worktree:
        source = "the work tree"
        blobs = _worktree_blobs(ws, paths)
        data_ids = {}
        for dv in plan.data:
            if is_feature_id(dv.head_md5):  # written from the feature store: the id of what produced it
                data_ids[dv.role] = (dv.path, dv.head_md5)
                continue
            tracked = worktree_tracked(ws.top, dv.path)
            data_ids[dv.role] = (dv.path, tracked.hash if tracked else None)
        params_file = ws.top / params
        params_bytes = params_file.read_bytes() if params_file.is_file() else None
    else:
        source = f"commit {head[:12]}"
        blobs = _commit_blobs(ws, head, paths)
        data_ids = {dv.role: (dv.path, dv.head_md5) for dv in plan.data}
        params_bytes = gitutil.show_file(head, params, ws.top)
    if blobs is None:
        unavailable = (f"commit {head[:12]} is not in this clone" if not worktree
                       else "git cannot list the work tree's files")
        blobs = []
    code = _sha([SCHEME, *(f"{blob}\t{rel}" for rel, blob in blobs if rel not in counted_elsewhere)])

    missing = [path for path, value in data_ids.values() if not value]
    if missing and unavailable is None:
        unavailable = f"{_shown(missing)} has no content hash in {source} (tracked by neither git nor DVC)"
    data = _sha([f"{role}\t{path}\t{value}" for role, (path, value) in sorted(data_ids.items())])
    params_hash = _sha([params, params_bytes if params_bytes is not None else b"(absent)"])
    settings = _sha([json.dumps(settings_of(cfg), sort_keys=True)])
    image = _sha([trainer.image(cfg.train) or f"trainer:{trainer.name}"])
    components = {"code": code, "data": data, "params": params_hash, "settings": settings, "image": image}
    digest = None if unavailable else _sha([SCHEME, *(f"{k}={components[k]}" for k in COMPONENTS)])
    return Fingerprint(digest=digest, components=components, unavailable=unavailable, source=source)


def tags(fp: Fingerprint | None) -> dict[str, str]:
    """MLflow tags for a run or a model version; none without a digest (such a model never matches)."""
    if fp is None or fp.digest is None:
        return {}
    return {FINGERPRINT_TAG: fp.digest, **{COMPONENT_TAG_PREFIX + k: v for k, v in fp.components.items()}}


def compare(fp: Fingerprint, theirs: Mapping[str, str], *, label: str) -> bool:
    """Whether ``fp`` equals the fingerprint in tags ``theirs`` of the model called ``label``
    (e.g. "champion v3"); notes the outcome (and which components changed) in ``fp``."""
    fp.compared_with = label
    fp.changed = []
    digest = theirs.get(FINGERPRINT_TAG)
    if fp.digest is None:
        fp.note = f"not compared with {label}: {fp.unavailable}"
        return False
    if not digest:
        fp.note = (f"{label} has no training fingerprint (registered by an older mlops-ci, "
                   "or trained from a tree without content hashes)")
        return False
    if digest == fp.digest:
        fp.note = f"{describe(COMPONENTS)} are unchanged since {label}"
        return True
    fp.changed = [k for k in COMPONENTS if theirs.get(COMPONENT_TAG_PREFIX + k) != fp.components.get(k)]
    what = describe(fp.changed) if fp.changed else "the fingerprint scheme"
    fp.note = f"{what} changed since {label}"
    return False
