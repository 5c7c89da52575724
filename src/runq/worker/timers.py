"""The worker's timed duties: whoever gets there first does each one, in one atomic backend
transition, so any number of workers (on any number of machines) can share them. The worker
runs them on its idle path (``tick``: after a wake-up, when it goes idle, and at a due time it
learned) and the duty lease holder's control thread at each heartbeat and at each due time
(``run_due``), so they happen even while every worker is busy.

- Delayed tasks (``enqueue(delay=)``, delayed retries): ``promote_due`` moves those that are
  due into their queues and answers the next due time, so an idle worker blocks until then
  (bounded by ``max(poll_queue, 60 s)``) instead of polling: a due task starts within
  milliseconds, and the cost of an idle fleet does not grow with the number of tasks waiting.
- Periodic schedules (``ctl.schedules``): each due schedule's tick is fired with
  ``schedule_fire``, a compare-and-set of its next tick that enqueues the tick's task in the
  same transition, so each tick creates one task. The next tick is the first one after *now*:
  ticks missed while no worker ran are fired once, not once each.
- Result expiry (``result_ttl`` / ``failure_ttl``): ``expire_take`` hands out, under a lease,
  at most ``_SWEEP_BATCH`` finished tasks whose time is up (never one whose dependant has not
  started), and they are deleted as ``ctl.delete`` deletes them. Offloaded values they free
  stay remembered by the backend until a controller collects them (``store_collect``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from runq.backends import Backend
from runq.backends.records import ScheduleRecord
from runq.models import NewTask
from runq.options import new_task_id
from runq.serialize import Codec, Kind
from runq.timetable import Timetable
from runq.worker.retrying import Retrying

__all__ = ["Timers", "schedule_place"]

log = logging.getLogger("runq.worker")

#: How often the offset between this host's clock and the backend's is measured again.
_CLOCK_CHECK_S = 60.0
#: Schedules fired per call at most (the rest on the next call, at once).
_FIRE_BATCH = 100
#: Expired tasks deleted per call at most (a bounded sweep; the rest on the next call).
_SWEEP_BATCH = 500
#: The idle path's duties at most this often (``paced_tick``): a worker woken by one task
#: after another (submit, wait, result, again) would otherwise send three calls after each,
#: on the machine and the server the next task needs.
TICK_PAUSE_S = 0.05


def schedule_place(name: str) -> str:
    """Where a schedule's call is sealed (the signature binds it there, not to a task)."""
    return f"schedule:{name}"


class Timers:
    """See the module docstring. ``backend()`` gives the worker's current backend object and
    ``retrying(op)`` runs ``op`` through the worker's retry-while-unreachable policy."""

    def __init__(self, backend: Callable[[], Backend], retrying: Retrying, codec: Codec) -> None:
        self._backend = backend
        self._retrying = retrying
        self._codec = codec
        self._offset = 0.0  # backend clock - time.time()
        self._next_clock_check = 0.0
        self._paused_until = 0.0  # paced_tick: no tick before (time.monotonic())
        self._due_at: float | None = None  # the next due time the last tick answered

    def paced_tick(self) -> float | None:
        """``tick``, but at most once per ``TICK_PAUSE_S`` unless the due time it learned last
        has come: in between, answer the seconds until the pause ends or that due time (the
        caller comes back then). A due time the worker has not learned (a SCHEDULED task just
        submitted, a retry another worker left) is learned at most ``TICK_PAUSE_S`` late."""
        now = time.monotonic()
        due_at = self._due_at
        if now < self._paused_until and (due_at is None or now < due_at):
            left = self._paused_until - now
            return left if due_at is None else min(left, due_at - now)
        self._paused_until = now + TICK_PAUSE_S
        due = self.tick()
        self._due_at = None if due is None else now + due
        return due

    def tick(self) -> float | None:
        """Do what is due; answer the seconds until the next due time (None: nothing waits)."""
        backend = self._backend()
        due = self._retrying(lambda: self.run_due(backend))
        if due is None:
            return None
        return max(0.0, due - self._backend_now(backend))

    def run_due(self, backend: Backend) -> float | None:
        """Move due tasks, fire due schedules (through ``backend``); answer the next due time
        on the backend's clock, or None."""
        nxt = backend.promote_due()
        records, later = backend.schedules_due(_FIRE_BATCH)
        for record in records:
            self._fire(backend, record)
        expired, expiry = backend.expire_take(_SWEEP_BATCH)
        if expired:  # as ctl.delete: records, payloads, results, progress, store tags
            backend.delete(expired, check=False)
        if len(records) == _FIRE_BATCH or len(expired) == _SWEEP_BATCH:
            return 0.0  # more are due: come back at once
        times = [t for t in (nxt, later, expiry) if t is not None]
        return min(times) if times else None

    def _fire(self, backend: Backend, record: ScheduleRecord) -> None:
        """Fire one tick of ``record`` (or see that another worker did)."""
        spec = json.loads(record.spec)
        timetable = Timetable.from_json(spec["timetable"])
        next_run = timetable.next_after(max(self._backend_now(backend), record.next_run))
        task_id = new_task_id()
        place = schedule_place(record.name)
        try:
            data = self._codec.open(record.payload or b"", Kind.CALL, place, f"schedule {place}")
        except Exception as exc:  # forged or unreadable: never fire it, and say so once
            log.error("schedule %r cannot be fired, pausing it: %s", record.name, exc)
            backend.schedule_pause(record.name, True, next_run)
            return
        payload = self._codec.seal(data, Kind.CALL, task_id)
        options = {**spec["options"], "schedule": record.name, "tick": record.next_run}
        task = NewTask(task_id, spec["queue"], payload, options)
        backend.schedule_fire(record.name, record.next_run, next_run, task)

    def _backend_now(self, backend: Backend) -> float:
        """The backend's clock, estimated from this host's (measured once a minute)."""
        now = time.monotonic()
        if now >= self._next_clock_check:
            self._next_clock_check = now + _CLOCK_CHECK_S
            self._offset = backend.now() - time.time()
        return time.time() + self._offset
