"""Training fingerprint: a sha256 over everything a trained model is a function of.

Components, each a sha256 kept in the record and as an MLflow tag on the training run and on
the registered version:

- ``code``: the git blob ids of the model's configured ``paths`` (and its training script) at
  the head commit, less the params file, the data files and the config file (counted below);
- ``data``: the content hashes of the train and eval data (DVC md5 or git blob id);
- ``params``: the bytes of the params file at the head commit;
- ``settings``: what the config says about training and evaluation (data columns, script,
  args, env, process counts; task, metrics, threshold) — not the gates, which are applied anew;
- ``image``: the training image digest on Argo, else the trainer kind.

A model whose fingerprint equals the champion's would be trained from the same inputs, so the
train stage reuses the champion instead (mlops_ci.stages.train). There is no fingerprint, so
the model is always trained, when the work tree differs from the head commit in those paths
(uncommitted or untracked files, or a checkout of another commit such as a pull request's
merge commit) or a data file has no content hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from mlops_ci import gitutil
from mlops_ci.config.schema import ModelConfig
from mlops_ci.promotions import PROMOTIONS_NAME
from mlops_ci.records import Context, Fingerprint, ModelPlan
from mlops_ci.workspace import STATE_DIR, Workspace

FINGERPRINT_TAG = "mlops_ci.fingerprint"
COMPONENT_TAG_PREFIX = "mlops_ci.fingerprint."
COMPONENTS = ("code", "data", "params", "settings", "image")
SCHEME = "mlops-ci/fingerprint/v1"  # bump when what goes in changes: old fingerprints then never match
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


def _worktree_changes(ws: Workspace, head: str, paths: list[str]) -> list[str] | None:
    """Files under ``paths`` whose work-tree content differs from ``head``: modified, staged,
    deleted, or untracked and not ignored (mlops-ci's state folder and Python bytecode aside)."""
    diff = _git_z(ws, ["diff", "--no-ext-diff", "--name-only", "-z", head, "--", *paths])
    untracked = _git_z(ws, ["ls-files", "--others", "--exclude-standard", "-z", "--", *paths])
    if diff is None or untracked is None:
        return None
    state = ws.repo_path(STATE_DIR)
    return sorted({p for p in (*diff, *untracked) if not gitutil.is_under(p, state)
                   and "__pycache__" not in p.split("/") and not p.endswith(".pyc")})


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
    return out


def image_of(ws: Workspace, model: str, backend: str) -> str:
    """The training image pinned by digest on Argo, else the trainer kind."""
    argo = ws.model(model).train.argo
    if backend == "argo" and argo is not None:
        return argo.image
    return f"trainer:{backend}"


def compute(ws: Workspace, ctx: Context, plan: ModelPlan, *, backend: str) -> Fingerprint:
    """The fingerprint of ``plan.model`` at ``ctx.head_sha`` for training on ``backend``."""
    cfg = ws.model(plan.model)
    head = ctx.head_sha
    params = ws.repo_path(cfg.params)
    config = ws.repo_path(ws.loaded.path.name)  # the project root is the config file's folder
    data_files = {dv.path for dv in plan.data} | {dv.path + ".dvc" for dv in plan.data}
    paths = sorted({ws.repo_path(p) for p in (*cfg.paths, cfg.train.script)})
    # the promotions file says what serves where; it never changes what training produces
    counted_elsewhere = data_files | {params, config, ws.repo_path(PROMOTIONS_NAME)}

    unavailable = None
    listing = _git_z(ws, ["ls-tree", "-r", "-z", "--full-tree", head, "--", *paths])
    if listing is None:
        unavailable = f"commit {head[:12]} is not in this clone"
        listing = []
    code = _sha([SCHEME, *(e for e in listing if e.split("\t", 1)[-1] not in counted_elsewhere)])

    missing = [dv.path for dv in plan.data if not dv.head_md5]
    if missing and unavailable is None:
        unavailable = f"{_shown(missing)} has no content hash at {head[:12]} (tracked by neither git nor DVC)"
    data = _sha([f"{dv.role}\t{dv.path}\t{dv.head_md5}" for dv in sorted(plan.data, key=lambda d: d.role)])

    blob = gitutil.show_file(head, params, ws.top)
    params_hash = _sha([params, blob if blob is not None else b"(absent)"])
    settings = _sha([json.dumps(settings_of(cfg), sort_keys=True)])
    image = _sha([image_of(ws, plan.model, backend)])
    components = {"code": code, "data": data, "params": params_hash, "settings": settings, "image": image}

    if unavailable is None:
        watched = sorted({*paths, params, *data_files})
        changed = _worktree_changes(ws, head, watched)
        if changed:  # settings are read from the work tree's config as it is: not a difference here
            changed = [p for p in changed if p != config]
        if changed is None:
            unavailable = f"cannot compare the work tree with commit {head[:12]}"
        elif changed:
            unavailable = f"the work tree differs from commit {head[:12]}: {_shown(changed)}"
    digest = None if unavailable else _sha([SCHEME, *(f"{k}={components[k]}" for k in COMPONENTS)])
    return Fingerprint(digest=digest, components=components, unavailable=unavailable)


def tags(fp: Fingerprint | None) -> dict[str, str]:
    """MLflow tags for a run or a model version; none without a digest (such a model never matches)."""
    if fp is None or fp.digest is None:
        return {}
    return {FINGERPRINT_TAG: fp.digest, **{COMPONENT_TAG_PREFIX + k: v for k, v in fp.components.items()}}


def compare(fp: Fingerprint, champion_tags: Mapping[str, str], *, version: str) -> bool:
    """Whether ``fp`` equals the fingerprint recorded on champion ``version``; notes the outcome
    (and which components changed) in ``fp``."""
    fp.champion_version = version
    fp.changed = []
    theirs = champion_tags.get(FINGERPRINT_TAG)
    if fp.digest is None:
        fp.note = f"not compared with champion v{version}: {fp.unavailable}"
        return False
    if not theirs:
        fp.note = (f"champion v{version} has no training fingerprint (registered by an older mlops-ci, "
                   "or trained from uncommitted changes)")
        return False
    if theirs == fp.digest:
        fp.note = f"{describe(COMPONENTS)} are unchanged since champion v{version}"
        return True
    fp.changed = [k for k in COMPONENTS if champion_tags.get(COMPONENT_TAG_PREFIX + k) != fp.components.get(k)]
    what = describe(fp.changed) if fp.changed else "the fingerprint scheme"
    fp.note = f"{what} changed since champion v{version}"
    return False
