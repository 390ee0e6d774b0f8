"""torchrun on this machine: `torchrun --standalone --nproc-per-node N script args...`.

CPU runs use gloo and GPU runs NCCL (chosen by mlops_ci.training from what the process
sees). The command is an argument list; nothing from the repository or the event is ever
interpolated into a shell.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time

from mlops_ci.backends.trainers.base import TrainResult, TrainSpec
from mlops_ci.console import Progress
from mlops_ci.errors import TrainingError

_TAIL = 200
# where torchrun's own failure report starts: glog lines ("E1126 12:00:00 ..."), the elastic
# agent's messages, its "=====" banner, or a traceback raised inside torch.distributed
_LAUNCHER = re.compile(r"^(?:[EWI]\d{4} \d\d:|.*torch\.distributed\.elastic|={20,})")
_WORKER_EXIT = re.compile(r"exitcode\s*:\s*(-?\d+)")


def summarize_failure(lines: tuple[str, ...] | list[str]) -> tuple[int | None, str]:
    """The failing worker's exit code and the last line the user's script printed before torchrun's report."""
    code = next((int(m.group(1)) for line in lines if (m := _WORKER_EXIT.search(line))), None)
    cut = len(lines)
    for i, line in enumerate(lines):
        launcher_traceback = line.startswith("Traceback") and any("torch/distributed" in x for x in lines[i:i + 6])
        if _LAUNCHER.match(line) or launcher_traceback:
            cut = i
            break
    user = [line for line in lines[:cut] if line.strip()]
    return code, (user[-1].strip() if user else "")


class TorchrunTrainer:
    name = "torchrun"
    reads_worktree = True  # trains the checkout as it is on this machine
    stops_pull_requests = False  # its runs end with the job

    def image(self, train) -> None:
        return None  # this machine's environment: the fingerprint names the trainer

    def title(self, model: str, spec: TrainSpec) -> str:
        n = spec.nproc_per_node
        return f"training {model}: {n} process{'es' if n != 1 else ''} (torchrun)"

    def command(self, spec: TrainSpec) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={spec.nproc_per_node}", spec.script, *spec.args]

    def run(self, spec: TrainSpec, progress: Progress) -> TrainResult:
        script = spec.workdir / spec.script
        if not script.is_file():
            raise TrainingError(f"{script}: training script not found",
                                hint="fix train.script in .mlops-ci.yaml")
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        # a single-threaded BLAS per rank keeps N ranks from oversubscribing the cores
        env.setdefault("OMP_NUM_THREADS", "1")
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(self.command(spec), cwd=spec.workdir, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        except OSError as err:
            raise TrainingError(f"cannot start torchrun: {err}") from err

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line.rstrip("\n"))
                progress.log(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=spec.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        except BaseException:  # Ctrl-C: take the whole process group down, then re-raise
            _kill_group(proc)
            raise
        reader.join(timeout=5)
        code, last = summarize_failure(tuple(tail)) if proc.returncode else (None, "")
        return TrainResult(returncode=proc.returncode if not timed_out else -9, timed_out=timed_out,
                           log_tail=tuple(tail), duration_s=round(time.monotonic() - start, 3),
                           worker_exit_code=code, error_line=last)


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
