"""The worker's control thread: heartbeat, the controller's requests, lost workers, due retries.

It runs beside the worker's main loop, on its OWN backend connection, so it keeps beating
while a task runs and never waits behind the main loop's calls. It does not poll: between
heartbeats it blocks in ``backend.wait_for_request``, which a request of the controller (a
kill, a cancel of a task this worker runs) ends at once, and it wakes for its next heartbeat
or the next due time it knows. An idle worker that holds no duty lease thus costs one
heartbeat (and one lease renewal, and the wait) per ``heartbeat_period``. At each wake-up it:

- refreshes the heartbeat when one is due (``heartbeat_period``: it lapses after 3 x period)
  and reads the controller's requests: a kill (exit at once) or a cancel of the running task;
  either one pokes the worker's wake pipe, so a running task is stopped, and an idle worker
  woken, at once;
- notices when its worker was marked LOST (e.g. after a network partition) or its namespace
  destroyed, at its next heartbeat: the main loop then re-registers under a new id (or exits);
- with each heartbeat, takes or renews the namespace's duty lease (``duty_lease``, lapsing
  after 2 x period; given up when the worker stops). Only the holder (``duty``) does the
  fleet-wide duties below, so an idle fleet costs its heartbeats plus one worker's duties,
  whatever its size; when the holder dies, its lease lapses before its heartbeat does and
  another worker takes it at its next beat, so lapsed workers are still judged within about
  3 periods. Without heartbeats (``heartbeat_period=None``) every worker does them, as all
  did before the lease, every ``poll_process`` seconds;
- marks lapsed workers LOST (``detect_lost``: their tasks are re-queued or DIED), except during
  one heartbeat lifetime after it regained the backend — counted from the first tick that
  reached it again, which judges no one — so that after an outage every worker gets the
  chance to beat before anyone is judged;
- pushes delayed retries and SCHEDULED tasks that are due into their queues, and fires the
  due ticks of periodic schedules (``run_due``: ``timers.Timers.run_due``), waking at the next
  due time (the holder too blocks until then: a new SCHEDULED task wakes an idle worker of
  its queue, whose main loop asks for the due times again).

An unreachable backend is retried with back-off (at most one ``poll_process`` apart); any
other backend error is fatal: it is kept in ``fatal`` and the worker is woken to exit.
``stop`` and ``reset`` (after a re-registration) end the thread's wait through its own pipe.
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
from runq.worker import wakepipe

__all__ = ["ControlThread"]

log = logging.getLogger("runq.worker")

_HEARTBEAT_LIFETIMES = 3  # a heartbeat lapses after 3 x period
_LEASE_PERIODS = 2  # the duty lease lapses after 2 x period: before a dead holder's heartbeat
#: A heartbeat this early is taken as on time (a wait may end a little before its deadline).
_EARLY_S = 0.05


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
        self._next_due: float | None = None  # time.monotonic() of the next due time
        #: Moves due tasks (and fires due schedules: ``timers.Timers.run_due``); answers the
        #: next due time.
        self._run_due = run_due or (lambda backend: backend.promote_due())
        self._own_r, self._own_w = wakepipe.new()  # ends this thread's wait (stop, reset)

    @property
    def ttl_s(self) -> float | None:
        return None if self.period_s is None else _HEARTBEAT_LIFETIMES * self.period_s

    def stop(self, timeout_s: float = 5.0) -> None:
        self._halt.set()
        self._nudge()
        if self.is_alive():
            self.join(timeout_s)
        if self.duty and self.period_s is not None:  # hand the duties on at once
            with contextlib.suppress(BackendError, OSError):
                self.backend.duty_lease(self._worker_id(), 0.0)
        self.backend.close()
        if not self.is_alive():  # (a thread stuck in a call still selects on its pipe)
            os.close(self._own_r)
            os.close(self._own_w)

    def reset(self) -> None:
        """Forget requests of a previous worker id (after a re-registration), and beat for
        the new one at once."""
        self.active, self.known, self.kill, self.cancel = True, True, False, None
        self._next_beat = 0.0
        self._nudge()

    def run(self) -> None:
        delay = self.poll_s
        failing = False
        while not self._halt.is_set():
            try:
                self._tick(recovered=failing)
                if failing:
                    self._event("BACKEND_OK", "control thread reconnected")
                failing, delay = False, self.poll_s
                self._wait()
                continue
            except (BackendUnavailable, OSError) as exc:
                if not failing:
                    log.warning("control thread: backend unreachable, retrying: %s", exc)
                failing, self._next_beat = True, 0.0
                delay = min(max(delay * 2, 0.05), self.poll_s)
            except BackendError as exc:
                self.fatal = exc
                self._poke()
                return
            self._halt.wait(delay)

    def _wait(self) -> None:
        """Block until the next heartbeat or due time, a request, or ``stop``/``reset``."""
        wait_s = self._sleep_s()
        if wait_s > 0 and not self._halt.is_set():
            self.backend.wait_for_request(self._worker_id(), wait_s, self._own_r)
        wakepipe.drain(self._own_r)

    def _poke(self) -> None:
        """Wake the worker (it re-checks what this thread knows)."""
        wakepipe.poke(self._wake_fd)

    def _nudge(self) -> None:
        """End this thread's current wait."""
        wakepipe.poke(self._own_w)

    def _sleep_s(self) -> float:
        """Seconds until the next heartbeat (``poll_process`` without heartbeats: then every
        worker does the duties) or the next due time, whichever comes first."""
        now = time.monotonic()
        until = now + self.poll_s if self.period_s is None else self._next_beat
        if self._next_due is not None:
            until = min(until, self._next_due)
        return max(0.0, until - now)

    def _tick(self, recovered: bool = False) -> None:
        now = time.monotonic()
        ttl = None
        if self.ttl_s is not None and now >= self._next_beat - _EARLY_S:
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
        due = self._run_due(self.backend)  # on the backend's clock
        if due is None:
            self._next_due = None
        else:
            self._next_due = time.monotonic() + max(0.0, due - self.backend.now())
