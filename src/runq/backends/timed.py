"""The timed verbs of the backend contract (issue 11): periodic schedules and result expiry.
``base.Backend`` inherits them; like every verb of the base, each checks its arguments once
(``checks.py``) and calls the primitive of the same name with a leading underscore
(``primitives.py``), implemented by ``schedules.py`` and ``expiry.py`` of each backend."""

from __future__ import annotations

from runq.backends import checks
from runq.backends.primitives import Primitives
from runq.backends.records import ScheduleRecord
from runq.exceptions import ConfigError
from runq.models import NewTask

__all__ = ["TimedVerbs"]


class TimedVerbs(Primitives):
    """Schedules and expiry (see the module docstring)."""

    # ------------------------------------------------------------------ schedules
    # Periodic schedules, fired by the workers (``schedules.py`` of each backend).
    def schedule_save(
        self, name: str, spec: str, payload: bytes, next_run: float, replace: bool
    ) -> bool:
        """Store the schedule ``name`` (``spec`` JSON text and sealed ``payload``, both opaque),
        due first at ``next_run``, not paused, never run. Without ``replace`` an existing
        schedule of that name is kept. Returns whether it was written (atomic)."""
        checks.check_text("schedule name", name)
        checks.check_text("schedule spec", spec)
        checks.check_bytes("schedule payload", payload)
        checks.check_seconds("next_run", next_run)
        return self._schedule_save(name, spec, payload, next_run, replace)

    def schedule_remove(self, name: str) -> bool:
        """Forget the schedule ``name``; False if there was none."""
        checks.check_text("schedule name", name)
        return self._schedule_remove(name)

    def schedule_pause(self, name: str, paused: bool, next_run: float) -> bool:
        """Pause the schedule ``name`` (no tick fires while paused), or resume it, due next at
        ``next_run``. False if there is no such schedule."""
        checks.check_text("schedule name", name)
        checks.check_seconds("next_run", next_run)
        return self._schedule_pause(name, paused, next_run)

    def schedule_fire(self, name: str, due: float, next_run: float, task: NewTask) -> bool:
        """Fire one tick, atomically: if the schedule ``name`` is not paused and still due at
        ``due`` (no one fired this tick yet), enqueue ``task`` (PENDING, no dependencies, no
        delay), record ``last_run`` (now), ``last_task_id`` and the next tick ``next_run``.
        Else change nothing and answer False: whatever the number of callers, each tick
        creates one task."""
        checks.check_text("schedule name", name)
        checks.check_seconds("due", due)
        checks.check_seconds("next_run", next_run)
        checks.check_new_tasks([task])
        if task.depends_on or task.delay_s is not None or task.dedup_key is not None:
            raise ConfigError("a scheduled tick's task has no dependencies, delay or dedup key")
        return self._schedule_fire(name, due, next_run, task)

    def schedules_due(self, limit: int = 100) -> tuple[list[ScheduleRecord], float | None]:
        """The schedules not paused whose ``next_run`` has come (at most ``limit``, the
        earliest first, with their payloads), and the ``next_run`` of the first one not yet
        due (None if none). A read: firing is ``schedule_fire``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ConfigError(f"limit must be an int > 0, got {limit!r}")
        return self._schedules_due(limit)

    # ------------------------------------------------------------------ expiry
    # Result expiry (``result_ttl`` / ``failure_ttl``): ``finish`` records when a task is
    # due to go; the workers sweep (``expiry.py`` of each backend).
    def expire_take(
        self, limit: int = 500, lease_s: float = 60.0, postpone_s: float = 5.0
    ) -> tuple[list[str], float | None]:
        """Take (atomically) up to ``limit`` finished tasks whose ``result_ttl`` (COMPLETE) or
        ``failure_ttl`` (other finished statuses), counted from their finished time, has
        passed, the earliest first, for the caller to ``delete``; each taken task is leased
        for ``lease_s`` seconds (taken again after that if it still exists). A task that has
        a dependant not yet started (PENDING, DEFERRED, SCHEDULED) is left ``postpone_s``
        seconds more. Answers the ids taken and the next expiry time (None if none)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ConfigError(f"limit must be an int > 0, got {limit!r}")
        checks.check_seconds("lease", lease_s)
        checks.check_seconds("postpone", postpone_s)
        return self._expire_take(limit, float(lease_s), float(postpone_s))
