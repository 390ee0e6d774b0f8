"""Data read at the base revision through DVC with a local remote; hashes decide what runs."""

from __future__ import annotations

import shutil

import pytest

from conftest import commit, dvc, git, write_tiny_data
from mlops_ci.config import load_config
from mlops_ci.context import local_context
from mlops_ci.data.versions import tracked_file
from mlops_ci.errors import DataError
from mlops_ci.plan import plan_model
from mlops_ci.stages.check import run_checks
from mlops_ci.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def dvc_repo(tiny_repo, tmp_path):
    repo = tiny_repo
    git(repo, "rm", "--quiet", "--cached", "data/train.csv", "data/eval.csv")
    dvc(repo, "init", "--quiet")
    dvc(repo, "remote", "add", "--default", "local", str(tmp_path / "remote"))
    dvc(repo, "add", "--quiet", "data/train.csv", "data/eval.csv")
    dvc(repo, "push", "--quiet")
    commit(repo, "track data with DVC")
    return repo


def workspace(repo):
    return Workspace.from_config(load_config(repo / ".mlops-ci.yaml"), env={})


def test_tracked_file_reads_md5_from_dvc_files(dvc_repo):
    head = git(dvc_repo, "rev-parse", "HEAD")
    tf = tracked_file(dvc_repo, head, "data/train.csv")
    assert tf.dvc and tf.hash.startswith("md5:") and len(tf.md5) == 32
    assert tracked_file(dvc_repo, "HEAD~1", "data/train.csv").hash.startswith("git:")  # before DVC took over
    assert tracked_file(dvc_repo, head, "data/missing.csv") is None


def test_base_side_is_fetched_from_the_dvc_remote(dvc_repo):
    repo = dvc_repo
    git(repo, "checkout", "--quiet", "-b", "pr/more")
    write_tiny_data(repo, seed=3, shift=1.0, colors=("red", "green", "blue", "violet"))
    dvc(repo, "add", "--quiet", "data/train.csv", "data/eval.csv")
    commit(repo, "new data")
    shutil.rmtree(repo / ".dvc" / "cache")  # as in CI: only the head's files are checked out
    ws = workspace(repo)
    ctx = local_context(repo, default_branch="main")
    plan = plan_model(ws, ctx, "tiny")
    assert plan.stages == ["check", "train", "evaluate"]
    assert plan.reasons[:2] == ["train data changed: data/train.csv", "eval data changed: data/eval.csv"]
    checks = run_checks(ws, ctx, plan)
    messages = [f.message for f in checks.findings]
    assert any(m.startswith("column 'color' has new categories (") and m.endswith(" rows): 'violet'")
               for m in messages), messages
    assert any(m.startswith("column 'x1' drifted") for m in messages)
    assert {d.role: (d.base_rows, d.head_rows) for d in checks.datasets} == {"train": (450, 450), "eval": (150, 150)}
    assert (ws.cache_dir / "data" / "dvc").is_dir()  # fetched through DVCFileSystem, cached by md5


def test_unchanged_data_skips_checks_with_reason(dvc_repo):
    repo = dvc_repo
    git(repo, "checkout", "--quiet", "-b", "pr/params")
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("epochs: 150", "epochs: 120"))
    commit(repo, "fewer epochs")
    ws = workspace(repo)
    ctx = local_context(repo, default_branch="main")
    plan = plan_model(ws, ctx, "tiny")
    assert plan.stages == ["train", "evaluate"] and plan.reasons == ["changed: params.yaml"]
    checks = run_checks(ws, ctx, plan)
    assert checks.status == "skipped" and checks.skip_reason.startswith("data unchanged: data/train.csv md5:")


def test_work_tree_out_of_sync_with_dvc_file(dvc_repo):
    repo = dvc_repo
    git(repo, "checkout", "--quiet", "-b", "pr/forgot")
    write_tiny_data(repo, seed=4)
    dvc(repo, "add", "--quiet", "data/train.csv", "data/eval.csv")
    commit(repo, "data")
    (repo / "data" / "train.csv").write_text("x1,x2,color,label\n1,2,red,0\n")  # edited, not `dvc add`ed
    ws = workspace(repo)
    ctx = local_context(repo, default_branch="main")
    with pytest.raises(DataError, match=r"data/train.csv: the file differs from the version recorded in "
                                        r"data/train.csv.dvc .*run `dvc add data/train.csv`"):
        run_checks(ws, ctx, plan_model(ws, ctx, "tiny"))
