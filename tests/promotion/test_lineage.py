"""Lineage is owned whole: every promotion rewrites all the mlops-ci.dev/* labels and annotations,
so nothing of an earlier version or of a rollback survives (promote → rollback → clear-hold →
promote, golden files of the InferenceService after each step), while the user's own keys stay.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import git, golden
from mlops_ci.backends.gitops import gitops_for
from mlops_ci.backends.tracking import tracking_for
from mlops_ci.config import load_config
from mlops_ci.serving import yamlio
from mlops_ci.stages.candidate import candidate_from_registry
from mlops_ci.stages.promote import promote
from mlops_ci.stages.rollback import clear_hold, rollback
from mlops_ci.workspace import Workspace
from registry import build_registry

ISVC = "environments/staging/tiny/inferenceservice.yaml"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    return build_registry(tmp_path_factory.mktemp("registry"), 3, lambda n: {
        "mlops_ci.evaluation": "pass", "mlops_ci.head_sha": str(n) * 40, "mlops_ci.pr": str(10 + n),
        **({"mlops_ci.data.train": "md5:" + str(n) * 32} if n < 3 else {})})


@pytest.fixture
def ws(tiny_repo, registry) -> Workspace:
    (tiny_repo / ".mlops-ci").mkdir()
    shutil.copy(registry, tiny_repo / ".mlops-ci" / "mlflow.db")
    return Workspace.from_config(load_config(tiny_repo / ".mlops-ci.yaml"), env={})


def served(ws: Workspace, registry: Path) -> str:
    """The served manifest, with the registry's temporary folder written as <registry>."""
    text = git(Path(ws.gitops_remote), "show", f"main:{ISVC}") + "\n"
    return text.replace(str(registry.parent), "<registry>")


def owned(text: str) -> dict[str, dict[str, str]]:
    meta = yamlio.load(text)["metadata"]
    return {part: {k: str(v) for k, v in meta[part].items() if k.startswith("mlops-ci.dev/")}
            for part in ("labels", "annotations")}


def test_promote_rollback_clear_hold_promote_leaves_no_stale_lineage(ws, registry):
    tracking, gitops = tracking_for(ws), gitops_for(ws)

    def promote_version(version: str) -> None:
        promote(ws, candidate_from_registry(tracking, "tiny", version), "staging", tracking=tracking, gitops=gitops)

    promote_version("1")
    promote_version("2")
    # a hand-written annotation of the user's, and one of ours that no version writes any more
    clone = ws.root.parent / "gitops-clone"
    git(ws.root.parent, "clone", "--quiet", ws.gitops_remote, str(clone))
    isvc = clone / ISVC
    isvc.write_text(isvc.read_text().replace("  annotations:\n", "  annotations:\n    team.example.com/owner: ml"
                                             "  # by hand\n    mlops-ci.dev/legacy-note: from an old mlops-ci\n"))
    git(clone, "commit", "--quiet", "-am", "by hand")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    golden("lineage-1-promoted-v2-then-edited.yaml", served(ws, registry))

    rollback(ws, "tiny", "staging", tracking=tracking, gitops=gitops, to="1", reason="v2 regressed", actor="alice")
    after_rollback = served(ws, registry)
    golden("lineage-2-rolled-back-to-v1.yaml", after_rollback)
    assert owned(after_rollback)["annotations"]["mlops-ci.dev/rollback-of"] == "2"

    clear_hold(ws, "tiny", "staging", gitops=gitops, reason="fixed", actor="alice")
    promote_version("3")
    final = served(ws, registry)
    golden("lineage-3-promoted-v3.yaml", final)
    ours = owned(final)
    assert ours["labels"] == {"mlops-ci.dev/model": "tiny", "mlops-ci.dev/model-version": "3",
                              "mlops-ci.dev/environment": "staging"}
    assert set(ours["annotations"]) == {f"mlops-ci.dev/{k}" for k in (
        "model-version", "artifact-uri", "digest", "source-commit", "source-pr")}  # v3: no run, no data tags
    assert ours["annotations"]["mlops-ci.dev/source-commit"] == "3" * 40
    assert "team.example.com/owner: ml  # by hand" in final  # the user's key and comment stay
