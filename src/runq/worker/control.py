"""The worker's control thread: heartbeat, the controller's requests, lost workers, due retries.

It runs beside the worker's main loop, on its OWN backend connection, so it keeps beating
while a task runs and never waits behind the main loop's calls. Every ``poll_process`` seconds
(sooner when a heartbeat or a delayed retry is due) it:

- refreshes the heartbeat (``heartbeat_period``: it lapses after 3 x period) and reads the
  controller's requests: a kill (exit at once) or a cancel of the running task; either one
  pokes the worker's wake pipe, so a running task is stopped at once;
- notices when its worker was marked LOST (e.g. after a network partition): the main loop then
  re-registers under a new id;
- with each heartbeat, takes or renews the namespace's duty lease (``duty_lease``, lapsing
  after 2 x period; given up when the worker stops). Only the holder (``duty``) does the
  fleet-wide duties below, so an idle fleet costs its heartbeats plus one worker's duties,
  whatever its size; when the holder dies, its lease lapses before its heartbeat does and
  another worker takes it at its next beat, so lapsed workers are still judged within about
  3 periods. Without heartbeats (``heartbeat_period=None``) every worker does them, as all
  did before the lease;
- marks lapsed workers LOST (``detect_lost``: their tasks are re-queued or DIED), except during
  one heartbeat lifetime after it regained the backend — counted from the first tick that
  reached it again, which judges no one — so that after an outage every worker gets the
  chance to beat before anyone is judged;
- pushes delayed retries and SCHEDULED tasks that are due into their queues, and fires the
  due ticks of periodic schedules (``run_due``: ``timers.Timers.run_due``), waking at the next
  due time.

An unreachable backend is retried with back-off (at most one ``poll_process`` apart); any
other backend error is fatal: it is kept in ``fatal`` and the worker is woken to exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from runq.backends import Backend
from runq.exceptions import BackendError, BackendUnavailable

__all__ = ["ControlThread"]

log = logging.getLogger("runq.worker")

_HEARTBEAT_LIFETIMES = 3  # a heartbeat lapses after 3 x period
_LEASE_PERIODS = 2  # the duty lease lapses after 2 x period: before a dead holder's heartbeat


class ControlThread(threading.Thread):
    """See the module docstring. ``worker_id()`` gives the worker's current id;
    ``holds(task_id)`` whether it runs that task (several run at once with concurrency > 1);
    ``wake_fd`` is written to when a request concerns a running task."""

    def __init__(
        self,
        backend: Backend,
        worker_id: Callable[[], str],
        holds: Callable[[str], bool],
        wake_fd: int,
        *,
        heartbeat_period_s: float | None,
        poll_s: float,
        event: Callable[[str, str], None],
        run_due: Callable[[Backend], float | None] | None = None,
    ) -> None:
        super().__init__(name="runq-control", daemon=True)
        self.backend = backend
        self._worker_id = worker_id
        self._holds = holds
        self._wake_fd = wake_fd
        self.period_s = heartbeat_period_s
        self.poll_s = poll_s if heartbeat_period_s is None else min(poll_s, heartbeat_period_s)
        self._event = event
        self._halt = threading.Event()
        self.active = True  # False once the backend says this worker id is LOST or EXITED
        self.known = True  # False once the backend has no record of it (namespace destroyed)
        self.fatal: BackendError | None = None  # an error retrying cannot mend
        self.kill = False
        self.cancel: str | None = None
        #: Whether this worker does the fleet-wide duties (holds the duty lease, or keeps no
        #: heartbeat); read by the main loop, which then also does them on its idle path.
        self.duty = heartbeat_period_s is None
        self._next_beat = 0.0
        self._judge_after = 0.0  # no detect_lost before this (monotonic)
        self._next_due: float | None = None
        #: Moves due tasks (and fires due schedules: ``timers.Timers.run_due``); answers the
        #: next due time.
        self._run_due = run_due or (lambda backend: backend.promote_due())

    @property
    def ttl_s(self) -> float | None:
        return None if self.period_s is None else _HEARTBEAT_LIFETIMES * self.period_s

    def stop(self, timeout_s: float = 5.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout_s)
        if self.duty and self.period_s is not None:  # hand the duties on at once
            with contextlib.suppress(BackendError, OSError):
                self.backend.duty_lease(self._worker_id(), 0.0)
        self.backend.close()

    def reset(self) -> None:
        """Forget requests of a previous worker id (after a re-registration)."""
        self.active, self.known, self.kill, self.cancel = True, True, False, None
        self._next_beat = 0.0

    def run(self) -> None:
        delay = self.poll_s
        failing = False
        while not self._halt.is_set():
            try:
                self._tick(recovered=failing)
                if failing:
                    self._event("BACKEND_OK", "control thread reconnected")
                failing, delay = False, self.poll_s
            except (BackendUnavailable, OSError) as exc:
                if not failing:
                    log.warning("control thread: backend unreachable, retrying: %s", exc)
                failing, self._next_beat = True, 0.0
                delay = min(max(delay * 2, 0.05), self.poll_s)
            except BackendError as exc:
                self.fatal = exc
                self._poke()
                return
            self._halt.wait(self._sleep_s(delay))

    def _poke(self) -> None:
        """Wake the worker (it re-checks what this thread knows)."""
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._wake_fd, b"!")

    def _sleep_s(self, base: float) -> float:
        if self._next_due is None:
            return base
        return max(0.01, min(base, self._next_due - self.backend.now()))

    def _tick(self, recovered: bool = False) -> None:
        now = time.monotonic()
        ttl = None
        if self.ttl_s is not None and now >= self._next_beat:
            ttl = self.ttl_s
            self._next_beat = now + (self.period_s or 0.0)
        control = self.backend.heartbeat(self._worker_id(), ttl)
        self.active, self.kill, self.cancel = control.active, control.kill, control.cancel
        self.known = control.known
        if self.kill or not self.active or (self.cancel is not None and self._holds(self.cancel)):
            self._poke()
        if ttl is not None and self.period_s is not None:
            lease = _LEASE_PERIODS * self.period_s if self.active else 0.0
            self.duty = self.backend.duty_lease(self._worker_id(), lease)
        if recovered:  # the grace period starts now, before anyone is judged
            self._judge_after = now + (self.ttl_s or 0.0)
        if not self.duty:  # the lease holder does them (and so this worker, once it holds it)
            self._next_due = None
            return
        if now >= self._judge_after:
            lost = self.backend.detect_lost()
            if lost:
                self._event("LOST", f"marked lost (heartbeat lapsed): {', '.join(lost)}")
        self._next_due = self._run_due(self.backend)
