"""Measuring a served model: a closed-loop HTTP load and the peak memory of a process group.

:func:`drive` sends requests from ``concurrency`` clients, each sending its next request when the
last one is answered (a closed loop, as a fixed number of callers would), over keep-alive
connections (``http.client``: no client library's overhead in the numbers), and keeps every
latency and every answer. :class:`PeakMemory` samples the memory of every process in a group
(MLServer runs the model in a worker process beside the server) from ``/proc``: the sum of their
proportional set sizes counts each page once, as the pod's memory limit does.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

PROC = Path("/proc")


@dataclass
class Answer:
    index: int  # which body was sent (its position in the bodies)
    status: int  # the HTTP status, or 0 when no answer came (connection refused or dropped)
    body: bytes
    seconds: float
    seq: int = 0  # which request it was (0 is the first sent)


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def latencies_s(self) -> np.ndarray:
        return np.asarray([a.seconds for a in self.answers if a.status == 200], dtype=float)

    @property
    def errors(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]


def drive(url: str, bodies: list[bytes], *, requests: int, concurrency: int, timeout_s: float = 30.0,
          deadline_s: float = 300.0, stop_on_error: bool = False, alive=None) -> Load:
    """Send ``requests`` POSTs of ``bodies`` (cycling) to ``url`` from ``concurrency`` clients.

    The clients stop sending after ``deadline_s`` in all, when ``alive()`` says the server is
    gone, or (with ``stop_on_error``) after the first answer that is not a 200; the answers
    already in flight are kept, so ``len(load.answers) < requests`` says the load was cut short."""
    split = urlsplit(url)
    path = split.path + (f"?{split.query}" if split.query else "")
    lock = threading.Lock()
    state = {"next": 0, "stop": False}
    load = Load()
    until = time.monotonic() + deadline_s

    def client() -> None:
        conn = http.client.HTTPConnection(split.hostname, split.port, timeout=timeout_s)
        try:
            while True:
                with lock:
                    i = state["next"]
                    if i >= requests or state["stop"] or time.monotonic() > until:
                        return
                    state["next"] = i + 1
                body = bodies[i % len(bodies)]
                start = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                    reply = conn.getresponse()
                    status, data = reply.status, reply.read()
                except (OSError, http.client.HTTPException) as err:
                    status, data = 0, f"{type(err).__name__}: {err}".encode()
                    conn.close()
                    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=timeout_s)
                seconds = time.perf_counter() - start
                gone = status == 0 and alive is not None and not alive()
                with lock:
                    load.answers.append(Answer(i % len(bodies), status, data, seconds, seq=i))
                    if (status != 200 and stop_on_error) or gone:
                        state["stop"] = True
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(max(1, min(concurrency, requests)))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.wall_s = time.perf_counter() - start
    load.answers.sort(key=lambda a: a.seq)
    return load


def _children(pid: int) -> list[int] | None:
    """The children of ``pid`` (None where the kernel does not list them)."""
    out: list[int] = []
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except FileNotFoundError:
        return None if not (PROC / str(pid)).exists() else out
    except (OSError, ValueError):
        return out
    return out


def _group(pgid: int) -> list[int]:
    """Every process of group ``pgid`` (its leader and what it started): from the kernel's
    children lists, else by reading every process's group."""
    found, todo = [], [pgid]
    while todo:
        pid = todo.pop()
        kids = _children(pid)
        if kids is None and pid == pgid and not found:
            break  # no children lists here: fall back to the scan below
        found.append(pid)
        todo += kids or []
    if found:
        return found
    pids = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[2]) == pgid:
                    pids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # it ended while we looked
    return pids


def _memory(pid: int) -> int:
    """A process's proportional set size (shared pages split among the processes sharing them, so
    a sum counts each page once, as the pod's memory limit does), else its resident size."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def group_memory(pgid: int) -> int | None:
    """The memory (bytes) of every process in group ``pgid``; None where /proc is not there."""
    if not PROC.is_dir():
        return None
    return sum(_memory(pid) for pid in _group(pgid))


class PeakMemory:
    """Sample :func:`group_memory` every ``interval_s`` in a thread until stopped; ``peak`` is the
    largest sum seen (None where it cannot be measured)."""

    def __init__(self, pgid: int, interval_s: float = 0.1):
        self.pgid, self.interval_s = pgid, interval_s
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        used = group_memory(self.pgid)
        if used is not None:
            self.peak = max(self.peak or 0, used)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def percentile_ms(latencies_s: np.ndarray, q: float) -> float:
    return float(np.percentile(latencies_s, q) * 1000) if len(latencies_s) else float("nan")


__all__ = ["Answer", "Load", "PeakMemory", "drive", "group_memory", "percentile_ms"]
