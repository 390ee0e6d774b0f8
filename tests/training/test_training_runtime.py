"""The training runtime (`mlops_ci.training`) under real torchrun on CPU (gloo): DDP matches one
process, a preempted run resumes from its last complete checkpoint and ends where an uninterrupted
run ends, half-written checkpoints are ignored, old ones pruned, and the result file is atomic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci import training
from mlops_ci.errors import ConfigError

STEPS = 12  # 3 epochs x 4 steps of a global batch of 16 out of 64 samples

SCRIPT = '''
import os, signal
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DistributedSampler
from mlops_ci import training

N, GLOBAL_BATCH, EPOCHS = 64, 16, 3
dist = training.setup(seed=0)
g = torch.Generator().manual_seed(123)
x = torch.randn(N, 8, generator=g)
y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(N, 1, generator=g)
samples = list(range(N))
# one order of samples per epoch, whatever the world size: rank r takes positions r, r+W, ...
sampler = dist.sampler(samples, seed=3) or DistributedSampler(samples, num_replicas=1, rank=0, seed=3)
net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
model = DDP(net) if dist.distributed else net
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
ckpt = training.Checkpointer(dist, every_steps=int(os.environ.get("EVERY", "0")))
per_rank, steps_per_epoch = GLOBAL_BATCH // dist.world_size, N // GLOBAL_BATCH
fault = int(os.environ.get("FAULT_AT_STEP", "0"))

step = ckpt.load_latest(model, optimizer, sampler=sampler)
loss = torch.tensor(float("nan"))
while step < EPOCHS * steps_per_epoch:
    epoch, skip = divmod(step, steps_per_epoch)
    sampler.set_epoch(epoch)
    order = list(sampler)
    for b in range(skip, steps_per_epoch):
        if fault and step == fault and dist.rank == dist.world_size - 1:
            os.kill(os.getpid(), signal.SIGKILL)  # preempted
        idx = order[b * per_rank:(b + 1) * per_rank]
        # random draws every step (the same on every rank), so a resume must restore the RNG
        noise = 0.01 * torch.randn(GLOBAL_BATCH, 8)[dist.rank::dist.world_size]
        with training.autocast(dist):
            loss = ((model(x[idx] + noise) - y[idx]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        ckpt.maybe_save(step, model, optimizer, epoch=epoch)
if dist.is_main:
    torch.save(net.state_dict(), os.environ["WEIGHTS"])
training.finish(dist, model_uri="models:/toy/1", metrics={"loss": dist.mean(loss.item())}, steps=step)
'''


class Runs:
    """Launches the script above (cached by name: several tests share the reference runs)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.script = root / "train.py"
        self.script.write_text(SCRIPT)
        self.done: dict[str, subprocess.CompletedProcess] = {}

    def env(self, name: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_CI_", "TORCHELASTIC"))}
        env.update(HOME=str(self.root), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                   WEIGHTS=str(self.root / f"{name}.pt"), MLOPS_CI_RESULT=str(self.root / f"{name}.json"), **extra)
        return env

    def launch(self, name: str, nproc: int, *, every: int = 0, checkpoints: str | None = None,
               fault: int = 0, key: str | None = None) -> subprocess.CompletedProcess:
        key = key or name
        if key not in self.done:
            extra = {"EVERY": str(every), "FAULT_AT_STEP": str(fault)}
            if checkpoints:
                extra["MLOPS_CI_CHECKPOINT_URI"] = str(self.root / checkpoints)
            if nproc == 1:  # one process, no process group: plain python
                cmd = [sys.executable, str(self.script)]
            else:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc-per-node", str(nproc), "--monitor-interval", "0.1", str(self.script)]
            self.done[key] = subprocess.run(cmd, cwd=self.root, env=self.env(name, **extra),
                                            capture_output=True, text=True, timeout=180)
        return self.done[key]

    def weights(self, name: str):
        import torch

        return torch.load(self.root / f"{name}.pt")

    def result(self, name: str) -> dict:
        return json.loads((self.root / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("runs"))


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    import torch

    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=atol), (key, (a[key] - b[key]).abs().max())


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(runs):
    ok(runs.launch("one", 1))
    ok(runs.launch("two", 2, every=3, checkpoints="ckpt-two"))

    assert_same_weights(runs.weights("one"), runs.weights("two"), atol=1e-5)
    for name in ("one", "two"):
        result = runs.result(name)
        assert result["steps"] == STEPS and result["model_uri"] == "models:/toy/1" and result["run_id"] is None
    # checkpoints every 3 steps, the last 2 kept, and the result beside them for multi-node Workflows
    assert sorted(p.name for p in (runs.root / "ckpt-two").iterdir()) == ["result.json", "step-12", "step-9"]


@pytest.mark.slow
def test_a_preempted_run_resumes_from_its_last_complete_checkpoint(runs):
    killed = runs.launch("pre", 2, every=3, checkpoints="ckpt-pre", fault=8, key="pre-killed")
    assert killed.returncode != 0
    assert not (runs.root / "pre.json").exists()
    left = sorted(p.name for p in (runs.root / "ckpt-pre").iterdir())
    assert left == ["step-3", "step-6"], left
    assert all((runs.root / "ckpt-pre" / name / "COMPLETE").exists() for name in left)

    resumed = ok(runs.launch("pre", 2, every=3, checkpoints="ckpt-pre"))  # the same command, no fault

    assert "resumed from checkpoint" in resumed.stdout and "at step 6 (epoch 1)" in resumed.stdout
    assert runs.result("pre")["steps"] == STEPS
    ok(runs.launch("two", 2, every=3, checkpoints="ckpt-two"))  # the uninterrupted run
    assert_same_weights(runs.weights("pre"), runs.weights("two"), atol=1e-6)
    assert runs.result("pre")["metrics"]["loss"] == pytest.approx(runs.result("two")["metrics"]["loss"], abs=1e-6)


def _toy(seed: int):
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _train_step(model, optimizer) -> None:
    import torch

    optimizer.zero_grad()
    model(torch.randn(3, 4)).pow(2).mean().backward()
    optimizer.step()


@pytest.mark.parametrize("scheme", ["path", "file://"])
def test_half_written_checkpoints_are_ignored_and_old_ones_pruned(tmp_path, monkeypatch, scheme):
    import shutil

    import torch

    monkeypatch.delenv("MLOPS_CI_CHECKPOINT_URI", raising=False)
    root = tmp_path / "ckpt"
    uri = str(root) if scheme == "path" else f"file://{root}"
    dist = training.Dist(rank=0, local_rank=0, world_size=1, backend=None, device=torch.device("cpu"))
    ckpt = training.Checkpointer(dist, uri, every_steps=2, keep_last=2)
    model, optimizer = _toy(0)
    for step in range(1, 6):
        _train_step(model, optimizer)
        ckpt.maybe_save(step, model, optimizer, epoch=step // 4)
    assert ckpt.steps() == [2, 4]

    # step 7: every file written but no completion marker; step 9: a partial directory
    shutil.copytree(root / "step-4", root / "step-7")
    (root / "step-7" / "COMPLETE").unlink()
    shutil.copytree(root / "step-7", root / "step-9.partial")
    assert ckpt.latest() == 4

    ckpt.save(8, model, optimizer)  # complete: prunes step-2 and the debris below step 8
    assert sorted(p.name for p in root.iterdir()) == ["step-4", "step-8", "step-9.partial"]
    shutil.copytree(root / "step-9.partial", root / "step-11")  # half-written, newer than the newest

    fresh, fresh_opt = _toy(1)
    assert training.Checkpointer(dist, uri).load_latest(fresh, fresh_opt) == 8
    assert_same_weights(fresh.state_dict(), model.state_dict(), atol=0)
    assert fresh_opt.state_dict()["state"][0]["momentum_buffer"].abs().sum() > 0
    # resuming deletes what the crash left: nothing is being written now
    assert sorted(p.name for p in root.iterdir()) == ["step-4", "step-8"]


def test_checkpointer_without_a_uri_is_off(monkeypatch):
    import torch

    monkeypatch.setenv("MLOPS_CI_CHECKPOINT_URI", "")
    dist = training.Dist(rank=0, local_rank=0, world_size=1, backend=None, device=torch.device("cpu"))
    ckpt = training.Checkpointer(dist, every_steps=1)
    model, optimizer = _toy(0)
    assert not ckpt.enabled
    assert ckpt.load_latest(model, optimizer) == 0
    assert ckpt.maybe_save(1, model, optimizer) is False and ckpt.save(1, model) is None


def _dist(rank: int) -> training.Dist:
    dist = training.Dist(rank=rank, local_rank=rank, world_size=2, backend="gloo", device=None)
    dist.barrier = dist.close = lambda: None  # no process group in this test
    return dist


def test_finish_writes_the_result_atomically_on_rank_0_only(tmp_path, monkeypatch):
    result = tmp_path / "out" / "result.json"
    monkeypatch.setenv("MLOPS_CI_RESULT", str(result))
    monkeypatch.setenv("MLFLOW_RUN_ID", "0123abcd")  # the run mlops-ci opened; no active run here

    training.finish(_dist(1), model_uri="runs:/x/model", metrics={"auc": 0.5}, steps=3)
    assert not result.parent.exists()

    training.finish(_dist(0), model_uri="runs:/x/model", metrics={"auc": 0.75}, steps=120)
    assert json.loads(result.read_text()) == {"model_uri": "runs:/x/model", "metrics": {"auc": 0.75},
                                              "run_id": "0123abcd", "steps": 120}

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        training.finish(_dist(0), model_uri="runs:/y/model", metrics={"auc": 0.9}, steps=7)
    assert json.loads(result.read_text())["steps"] == 120  # the old file, whole
    assert [p.name for p in result.parent.iterdir()] == ["result.json"]  # no temp file left


def test_process_group_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("MLOPS_CI_PG_TIMEOUT_S", raising=False)
    assert training.pg_timeout_s() == 600
    monkeypatch.setenv("MLOPS_CI_PG_TIMEOUT_S", "45")
    assert training.pg_timeout_s() == 45 and training.pg_timeout_s(5) == 5
    monkeypatch.setenv("MLOPS_CI_PG_TIMEOUT_S", "soon")
    with pytest.raises(ConfigError, match="MLOPS_CI_PG_TIMEOUT_S"):
        training.pg_timeout_s()


def test_importing_the_runtime_imports_no_heavy_module():
    code = ("import sys, mlops_ci.training; "
            "print([m for m in ('torch', 'numpy', 'mlflow', 'fsspec') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_finish_also_puts_the_result_next_to_the_checkpoints(tmp_path, monkeypatch, scheme):
    """A multi-node Workflow's `result` step reads <checkpoint URI>/result.json (rank 0 only)."""
    monkeypatch.delenv("MLOPS_CI_RESULT", raising=False)
    monkeypatch.setenv("MLFLOW_RUN_ID", "feedbeef")
    monkeypatch.setenv("MLOPS_CI_CHECKPOINT_URI", f"{scheme}{tmp_path / 'ckpt'}")
    training.finish(_dist(1), model_uri="runs:/r/model", metrics={"auc": 0.5}, steps=1)
    assert not (tmp_path / "ckpt" / "result.json").exists()
    training.finish(_dist(0), model_uri="runs:/r/model", metrics={"auc": 0.5}, steps=4)
    assert json.loads((tmp_path / "ckpt" / "result.json").read_text()) == {
        "model_uri": "runs:/r/model", "metrics": {"auc": 0.5}, "run_id": "feedbeef", "steps": 4}
