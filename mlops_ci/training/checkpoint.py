"""Periodic checkpoints with ``torch.distributed.checkpoint`` (DCP) and resume from the newest.

    ckpt = training.Checkpointer(dist, every_steps=500)   # where: $MLOPS_CI_CHECKPOINT_URI
    step = ckpt.load_latest(model, optimizer)            # 0 when there is none (or no URI)
    epoch, skip = divmod(step, steps_per_epoch)           # batches of `epoch` already trained
    ...
    ckpt.maybe_save(step, model, optimizer, epoch=epoch)  # after optimizer.step(); step counts steps done

Layout under the URI: ``step-<n>/`` holds DCP's files (each rank writes its own) and, once every
rank has written and rank 0 has seen them all, a ``COMPLETE`` marker (JSON). Only directories with
the marker count; a local directory is also written under ``step-<n>.partial`` and renamed, so a
half-written checkpoint never even carries the final name. The newest ``keep_last`` complete
checkpoints are kept; older ones and leftover partial ones are deleted by rank 0.

A checkpoint holds the model and optimizer state (through ``get_state_dict``/``set_state_dict``, so
DDP- and FSDP-wrapped models load into a differently wrapped or sized run), the step, the epoch, an
optional ``extra`` dict (the same on every rank), and each rank's Python, NumPy and torch (CPU and
CUDA) RNG state, restored on the same rank, so dropout and other random draws continue as if
uninterrupted. For a bit-identical continuation mid-epoch, iterate the epoch's sampler order
(``sampler.set_epoch(epoch)``) and skip the ``skip`` batches already done; a DataLoader draws a seed
from torch's generator when its iterator is created, so create it (or give it its own
``generator=``) the same way in both runs. Checkpointing at epoch ends needs none of this.

Every rank must call ``load_latest``, ``save`` and ``maybe_save`` together (they are collective).
With several nodes, the URI must be storage every node reaches (a shared volume or a bucket).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlops_ci.errors import ConfigError, TrainingError
from mlops_ci.training.runtime import Dist
from mlops_ci.training.storage import Store, open_store

CHECKPOINT_ENV = "MLOPS_CI_CHECKPOINT_URI"
MARKER = "COMPLETE"
_STEP_DIR = re.compile(r"^step-(\d+)(\.partial)?$")


class Checkpointer:
    """Saves every ``every_steps`` steps into ``uri`` (default ``$MLOPS_CI_CHECKPOINT_URI``); off without one."""

    def __init__(self, dist: Dist, uri: str | os.PathLike | None = None, *, every_steps: int = 0,
                 keep_last: int = 2) -> None:
        if uri is None:
            uri = os.environ.get(CHECKPOINT_ENV, "").strip() or None
        if every_steps < 0:
            raise ConfigError(f"Checkpointer(every_steps={every_steps}) must be 0 (only explicit saves) or more")
        if keep_last < 1:
            raise ConfigError(f"Checkpointer(keep_last={keep_last}) must keep at least 1 checkpoint")
        self.dist = dist
        self.every_steps = every_steps
        self.keep_last = keep_last
        self.store: Store | None = open_store(uri) if uri else None
        self.epoch = 0  # restored by load_latest
        self.extra: dict[str, Any] = {}  # restored by load_latest
        self.resumed_from: int | None = None

    @property
    def enabled(self) -> bool:
        return self.store is not None

    # -- what is there ---------------------------------------------------------------------

    def steps(self) -> list[int]:
        """The steps of the complete checkpoints, oldest first."""
        if self.store is None:
            return []
        return [s for s, partial in self._dirs() if not partial and self._complete(s)]

    def latest(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        if self.store is None:
            return None
        for step, partial in reversed(self._dirs()):
            if not partial and self._complete(step):
                return step
        return None

    def _dirs(self) -> list[tuple[int, bool]]:
        found = []
        for name in self.store.list_names():
            m = _STEP_DIR.fullmatch(name)
            if m:
                found.append((int(m.group(1)), bool(m.group(2))))
        return sorted(found)

    def _complete(self, step: int) -> bool:
        return self.store.exists(self.store.join(f"step-{step}", MARKER))

    def path(self, step: int) -> str:
        return self.store.join(f"step-{step}")

    # -- resume ------------------------------------------------------------------------------

    def load_latest(self, model, optimizer=None, *, sampler=None) -> int:
        """Restore the newest complete checkpoint; return its step (0 when none or disabled).

        Rank 0 picks the checkpoint (and deletes half-written ones a crash left behind); every rank
        loads it. ``self.epoch`` and ``self.extra`` are restored too, and ``sampler.set_epoch(epoch)``
        is called when a sampler is given.
        """
        if self.store is None:
            return 0
        step = self.dist.broadcast(self._clean() if self.dist.is_main else None)
        if step is None:
            return 0
        meta = self._load(step, model, optimizer)
        self.epoch = int(meta.get("epoch", 0))
        self.extra = dict(meta.get("extra") or {})
        self.resumed_from = step
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)
        if self.dist.is_main:
            print(f"mlops-ci: resumed from checkpoint {self.path(step)} at step {step} (epoch {self.epoch})",
                  flush=True)
        return step

    def _load(self, step: int, model, optimizer) -> dict[str, Any]:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_state_dict

        path = self.path(step)
        saved = set(self.store.reader(path).read_metadata().state_dict_metadata)
        state = self._state(model, optimizer)
        rng_key = _rng_key(self.dist.rank)
        if rng_key not in saved:  # the world grew since: this rank starts from its seed
            del state[rng_key]
            print(f"mlops-ci: rank {self.dist.rank}: checkpoint {path} holds no RNG state for this rank "
                  "(was it saved with fewer ranks?); random draws will differ from an uninterrupted run",
                  flush=True)
        if optimizer is not None and not any(k.startswith("optim.") for k in saved):
            raise TrainingError(f"checkpoint {path} holds no optimizer state",
                                hint="it was saved without an optimizer; load it with optimizer=None")
        with _single_process_quiet():
            dcp.load(state, storage_reader=self.store.reader(path), no_dist=_no_dist())
        if optimizer is None:
            set_model_state_dict(model, state["model"])
        else:
            set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        if rng_key in state:
            _set_rng_state(pickle.loads(state[rng_key]))
        return pickle.loads(state["meta"])

    # -- save --------------------------------------------------------------------------------

    def maybe_save(self, step: int, model, optimizer=None, *, epoch: int = 0,
                   extra: dict[str, Any] | None = None) -> bool:
        """Save when ``step`` is a multiple of ``every_steps``; True when it saved."""
        if self.store is None or not self.every_steps or step <= 0 or step % self.every_steps:
            return False
        self.save(step, model, optimizer, epoch=epoch, extra=extra)
        return True

    def save(self, step: int, model, optimizer=None, *, epoch: int = 0,
             extra: dict[str, Any] | None = None) -> str | None:
        """Save a checkpoint for ``step`` (collective); return its URI, None when disabled."""
        if self.store is None:
            return None
        import torch.distributed.checkpoint as dcp

        store, final = self.store, self.path(step)
        target = store.join(f"step-{step}.partial") if store.renames else final
        if self.dist.is_main and not store.renames:
            store.remove(store.join(f"step-{step}", MARKER))  # rewriting in place: not complete meanwhile
        state = self._state(model, optimizer, meta={"step": step, "epoch": epoch, "extra": extra or {},
                                                     "world_size": self.dist.world_size})
        with _single_process_quiet():
            dcp.save(state, storage_writer=store.writer(target), no_dist=_no_dist())
        self.dist.barrier()  # every rank's files are written
        if self.dist.is_main:
            if store.renames:
                store.remove_tree(final)
                store.rename(target, final)
            store.write_text(store.join(f"step-{step}", MARKER), json.dumps(
                {"step": step, "epoch": epoch, "world_size": self.dist.world_size, "time": time.time()}))
            self._prune()
        self.dist.barrier()  # complete (and pruned) before any rank goes on
        return final

    def _clean(self) -> int | None:
        """Delete what crashed runs left half-written (nothing is being written now); the newest step."""
        complete = set(self.steps())
        for step, partial in self._dirs():
            if partial or step not in complete:
                self.store.remove_tree(self.store.join(f"step-{step}.partial" if partial else f"step-{step}"))
        return max(complete, default=None)

    def _prune(self) -> None:
        complete = self.steps()
        if not complete:
            return
        for step in complete[:-self.keep_last]:
            self.store.remove_tree(self.path(step))
        newest = complete[-1]
        for step, partial in self._dirs():
            if step < newest and (partial or step not in complete):
                self.store.remove_tree(self.store.join(f"step-{step}.partial" if partial else f"step-{step}"))

    # -- the state dict ----------------------------------------------------------------------

    def _state(self, model, optimizer, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

        if optimizer is None:
            state: dict[str, Any] = {"model": get_model_state_dict(model)}
        else:
            msd, osd = get_state_dict(model, optimizer)
            state = {"model": msd, "optim": osd}
        # Non-tensor values are stored pickled; the RNG state differs per rank, hence one key per rank.
        state["meta"] = pickle.dumps(meta or {})
        state[_rng_key(self.dist.rank)] = pickle.dumps(_rng_state()) if meta is not None else b""
        return state


def _no_dist() -> bool:
    """One process without a process group: DCP saves and loads without collectives."""
    import torch.distributed as td

    return not (td.is_available() and td.is_initialized())


@contextmanager
def _single_process_quiet() -> Iterator[None]:
    """DCP warns on every single-process save and load that it assumes a single process: it is one."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def _rng_key(rank: int) -> str:
    return f"rng_rank{rank}"


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
