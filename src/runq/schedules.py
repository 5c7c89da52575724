"""``ctl.schedules``: periodic schedules stored in the backend and fired by the workers
themselves (no beat process): each tick creates exactly one task, whatever the number of
workers, controllers and machines, and ticks missed while no worker ran are fired once.

A schedule holds the call sealed for the place ``schedule:<name>`` (the worker that fires a
tick checks that signature and seals the call again for the new task's id), its timetable
(``runq.timetable``: cron in a time zone, or every N seconds) and the task's options.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from runq.backends.records import ScheduleRecord
from runq.exceptions import ConfigError
from runq.models import Schedule
from runq.options import TaskOptions, call_arguments, check_name
from runq.serialize import Call, Kind
from runq.submission import Submitter, function_label, with_ttl_defaults
from runq.timetable import Timetable

if TYPE_CHECKING:
    from runq.session import Session

__all__ = ["SchedulesAPI"]


def _place(name: str) -> str:
    return f"schedule:{name}"  # as runq.worker.timers.schedule_place (the worker side)


class SchedulesAPI:
    """Add, list, pause, resume and remove the periodic schedules of a namespace."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._backend = session.backend

    def add(
        self,
        name: str,
        fn: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        timezone: str | None = "UTC",
        queue: str | None = None,
        **task_options: Any,
    ) -> Schedule:
        """Run ``fn(*args, **kwargs)`` at each tick of ``cron`` (a 5-field cron expression
        in ``timezone``, an IANA name) or ``every`` seconds (or a ``timedelta``), on
        ``queue``, with any task option of ``enqueue`` (``timeout``, ``retries``,
        ``result_ttl`` …; not ``delay``/``at``, nor an ``on_duplicate`` policy). A schedule
        of the same name is replaced; adding it again unchanged (say, at each start of every
        process of an application) keeps it as it is, with its next tick. Returns the stored
        schedule."""
        check_name("schedule name", name)
        for option in ("delay", "at", "depends_on"):
            if option in task_options:
                raise ConfigError(f"a schedule's tasks take no {option}= option")
        opts = TaskOptions.build(queue=queue, **task_options)
        if opts.on_duplicate != "parallel":
            raise ConfigError("a schedule's tasks take no on_duplicate policy (each tick runs)")
        now = self._backend.now()
        timetable = Timetable.build(cron, every, timezone, anchor=now)
        call_args, call_kwargs = call_arguments(args, kwargs)
        call = Call(
            "call",
            Submitter.function_bytes(fn),
            call_args,
            call_kwargs,
            retry_on=opts.retry_on,
        )
        data, values = self._session.blobs.pack_call(call, {})
        if values:
            raise ConfigError(
                f"schedule {name!r}: its arguments are too large for the backend "
                "(store_max_size); pass a small reference to the data instead"
            )
        options = {**self._session_defaults(opts), "fn": function_label(fn)}
        spec = {
            "timetable": timetable.to_json(),
            "queue": opts.queue,
            "options": options,
            "task": function_label(fn),
            "call": hashlib.blake2b(data, digest_size=16).hexdigest(),
        }
        existing = self._record(name)
        if existing is not None and _same(json.loads(existing.spec), spec):
            return _schedule(existing)  # added again as it is (each process at its start)
        payload = self._session.codec.seal(data, Kind.CALL, _place(name))
        first = timetable.next_after(now)
        self._backend.schedule_save(name, json.dumps(spec), payload, first, replace=True)
        return self.get(name)

    def _session_defaults(self, opts: TaskOptions) -> dict[str, Any]:
        """The stored options of the ticks' tasks, with the namespace's default ttls."""
        return with_ttl_defaults(opts.to_json(), self._backend.settings_get())

    def get(self, name: str) -> Schedule:
        """The schedule ``name``; ``ConfigError`` naming the existing ones if there is none."""
        found = self.list()
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise ConfigError(f"no schedule named {name!r} (schedules: {known})")
        return found[name]

    def list(self) -> dict[str, Schedule]:
        """Every schedule, by name (sorted)."""
        return {r.name: _schedule(r) for r in self._backend.schedules()}

    def remove(self, name: str) -> bool:
        """Delete the schedule ``name`` (tasks it created are kept); False if there was none."""
        return self._backend.schedule_remove(check_name("schedule name", name))

    def pause(self, name: str) -> bool:
        """Stop firing the schedule ``name`` until ``resume``; False if there is none."""
        record = self._record(name)
        if record is None:
            return False
        return self._backend.schedule_pause(name, True, record.next_run)

    def resume(self, name: str) -> bool:
        """Fire the schedule ``name`` again, from its next tick after now (ticks missed while
        paused are not fired); False if there is none."""
        record = self._record(name)
        if record is None:
            return False
        timetable = Timetable.from_json(json.loads(record.spec)["timetable"])
        return self._backend.schedule_pause(
            name, False, timetable.next_after(self._backend.now())
        )

    def _record(self, name: str) -> ScheduleRecord | None:
        check_name("schedule name", name)
        return next((r for r in self._backend.schedules() if r.name == name), None)


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two specs describe the same schedule (the timetable's anchor aside)."""
    strip = ("anchor",)
    old_tt = {k: v for k, v in old.get("timetable", {}).items() if k not in strip}
    new_tt = {k: v for k, v in new["timetable"].items() if k not in strip}
    rest = ("queue", "options", "task", "call")
    return old_tt == new_tt and all(old.get(k) == new[k] for k in rest)


def _schedule(record: ScheduleRecord) -> Schedule:
    spec = json.loads(record.spec)
    timetable = Timetable.from_json(spec["timetable"])
    return Schedule(
        name=record.name,
        cron=timetable.cron,
        every=timetable.every_s,
        timezone=timetable.timezone,
        next_run=record.next_run,
        last_run=record.last_run,
        paused=record.paused,
        last_task_id=record.last_task_id,
        queue=str(spec.get("queue", "default")),
        task=str(spec.get("task", "")),
    )
