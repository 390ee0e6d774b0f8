"""Measuring a served model: a closed-loop HTTP load and the peak memory of a process group.

:func:`drive` sends requests from ``concurrency`` clients, each sending its next request when the
last one is answered (a closed loop, as a fixed number of callers would), over keep-alive
connections (``http.client``: no client library's overhead in the numbers), and keeps every
latency and every answer. :class:`PeakMemory` samples the resident memory of every process in a
group (MLServer runs the model in a worker process beside the server) from ``/proc``; the sum is
what the pod's memory limit counts.
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


def drive(url: str, bodies: list[bytes], *, requests: int, concurrency: int, timeout_s: float = 60.0,
          stop_on_error: bool = False) -> Load:
    """Send ``requests`` POSTs of ``bodies`` (cycling) to ``url`` from ``concurrency`` clients.

    With ``stop_on_error`` the clients stop after the first answer that is not a 200 (the
    answers already in flight are kept)."""
    split = urlsplit(url)
    path = split.path + (f"?{split.query}" if split.query else "")
    lock = threading.Lock()
    state = {"next": 0, "stop": False}
    load = Load()

    def client() -> None:
        conn = http.client.HTTPConnection(split.hostname, split.port, timeout=timeout_s)
        try:
            while True:
                with lock:
                    i = state["next"]
                    if i >= requests or state["stop"]:
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
                with lock:
                    load.answers.append(Answer(i % len(bodies), status, data, seconds))
                    if status != 200 and stop_on_error:
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
    load.answers.sort(key=lambda a: a.index)
    return load


def group_rss(pgid: int) -> int | None:
    """The resident memory (bytes) of every process in group ``pgid``; None where /proc is not there."""
    if not PROC.is_dir():
        return None
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid pgrp ... rss is field 24; comm may hold spaces and parentheses
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            continue  # it ended while we looked
    return total


class PeakMemory:
    """Sample :func:`group_rss` every ``interval_s`` in a thread until stopped; ``peak`` is the
    largest sum seen (None where it cannot be measured)."""

    def __init__(self, pgid: int, interval_s: float = 0.05):
        self.pgid, self.interval_s = pgid, interval_s
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss = group_rss(self.pgid)
        if rss is not None:
            self.peak = max(self.peak or 0, rss)

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


__all__ = ["Answer", "Load", "PeakMemory", "drive", "group_rss", "percentile_ms"]
