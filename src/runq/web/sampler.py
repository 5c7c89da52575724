"""The dashboard's memory of the recent past: a background thread samples the namespace
(counts by status, workers by status, the newest finished tasks) so that the overview can draw
throughput and latency over time, the live updates share one read of the backend whatever the
number of browsers, and ``/metrics`` has a histogram of task durations.

The interval adapts to the cost of a sample (at least ``min_interval_s``, and at least five
times what the last sample took), so a namespace of a million tasks is not read in a loop.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from runq import Controller, RunqError, TaskStatus

__all__ = ["DURATION_BUCKETS", "Sampler"]

#: Seconds; the task durations histogram's upper bounds (``runq_task_duration_seconds``).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
_RECENT = 200  # newest finished tasks read per status and sample
_SEEN_MAX = 20_000  # finished ids remembered so that each is observed once
_OBSERVED = (TaskStatus.COMPLETE, TaskStatus.ERROR, TaskStatus.TIMEOUT)
_FINISHED = (
    TaskStatus.COMPLETE,
    TaskStatus.ERROR,
    TaskStatus.CANCELLED,
    TaskStatus.DIED,
    TaskStatus.TIMEOUT,
    TaskStatus.IMPOSSIBLE,
)


class Sampler:
    """Samples ``ctl`` in a daemon thread between ``start()`` and ``stop()``."""

    def __init__(
        self,
        ctl: Controller,
        registry: CollectorRegistry,
        min_interval_s: float = 2.0,
        keep: int = 300,
    ) -> None:
        self._ctl = ctl
        self._min_interval_s = min_interval_s
        self._interval_s = min_interval_s
        self._history: deque[dict[str, Any]] = deque(maxlen=keep)
        self._latest: dict[str, Any] = {"counts": {}, "workers": {}, "queues": {}, "time": None}
        self._seen: dict[str, None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_finished: tuple[float, int] | None = None
        self.durations = Histogram(
            "runq_task_duration_seconds",
            "How long finished tasks ran (started to finished), by final status, as seen by "
            "this dashboard since it started.",
            ["namespace", "status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        """Take a first sample now (unless the backend does not answer: the pages say so
        until it does), then keep sampling in a daemon thread."""
        with contextlib.suppress(RunqError):
            self.sample()
        self._thread = threading.Thread(target=self._run, name="runq-web-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread (at most a few seconds)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def poke(self) -> None:
        """Sample again soon (after an action changed something)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            with contextlib.suppress(RunqError):  # the backend is down: try again later
                self.sample()

    # ------------------------------------------------------------------ one sample
    def sample(self) -> None:
        """Read the namespace once and record what changed."""
        began = time.monotonic()
        counts = {str(k): v for k, v in self._ctl.overview().items()}
        queues = dict(sorted(self._ctl.queues.lengths().items()))
        workers: dict[str, int] = {}
        for status in self._ctl.workers.status().values():
            workers[str(status)] = workers.get(str(status), 0) + 1
        ran, waited = self._observe_recent()
        now = time.time()
        finished = sum(counts.get(str(s), 0) for s in _FINISHED)
        rate = None
        if self._last_finished is not None:
            then, before = self._last_finished
            rate = max(0, finished - before) / max(now - then, 1e-6)
        self._last_finished = (now, finished)
        point = {"time": now, "throughput": rate, "ran": ran, "waited": waited}
        with self._lock:
            self._latest = {"counts": counts, "workers": workers, "queues": queues, "time": now}
            self._history.append(point)
        cost = time.monotonic() - began
        self._interval_s = max(self._min_interval_s, 5 * cost)

    def _observe_recent(self) -> tuple[float | None, float | None]:
        """Observe the durations of newly finished tasks; the mean run and wait times of the
        newest completed ones (None when there are none)."""
        ran: list[float] = []
        waited: list[float] = []
        for status in _OBSERVED:
            for task in self._ctl.task_page(status=status, limit=_RECENT).tasks:
                submitted, started, finished = task.times
                if started is None or finished is None:
                    continue
                if status is TaskStatus.COMPLETE:
                    ran.append(finished - started)
                    if submitted is not None:
                        waited.append(started - submitted)
                if task.id in self._seen:
                    continue
                self._seen[task.id] = None
                observed = self.durations.labels(namespace=self._ctl.queue_id, status=str(status))
                observed.observe(max(0.0, finished - started))
        while len(self._seen) > _SEEN_MAX:
            del self._seen[next(iter(self._seen))]
        return (
            sum(ran) / len(ran) if ran else None,
            sum(waited) / len(waited) if waited else None,
        )

    # ------------------------------------------------------------------ readers
    def latest(self) -> dict[str, Any]:
        """The last sample: counts by status, workers by status, queue depths, its time."""
        with self._lock:
            return dict(self._latest)

    def history(self) -> list[dict[str, Any]]:
        """The samples kept, oldest first: time, throughput (tasks finished per second since
        the sample before), ran and waited (mean seconds of the newest completed tasks)."""
        with self._lock:
            return list(self._history)
