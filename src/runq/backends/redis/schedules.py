"""Periodic schedules on Redis (``base.Backend``'s "schedules" section): four keys per
namespace (``keys.NamespaceKeys.schedule``), the ``next`` sorted set ordering the ticks.
Every change is one script (``schedule.lua``; ``schedule_fire.lua`` compares and sets the
next tick and stores the tick's task in the same call); ``schedules_due.lua`` reads.

Tick times travel as ``repr(float)`` text, so the compare of ``schedule_fire`` is exact.
"""

from __future__ import annotations

import json

from runq.backends.records import ScheduleRecord
from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import read_retried, translated
from runq.backends.redis.replies import text
from runq.models import NewTask

__all__ = ["RedisSchedules"]


class RedisSchedules(RedisCore):
    """The schedule verbs of ``RedisBackend``."""

    @read_retried
    def schedules(self) -> list[ScheduleRecord]:
        spec_key, _, _, state_key = self._k.schedule
        pipe = self._r.pipeline(transaction=True)
        pipe.hgetall(spec_key)
        pipe.hgetall(state_key)
        specs, states = pipe.execute()
        out = []
        for raw_name in sorted(specs, key=text):
            state = states.get(raw_name)
            if state is not None:
                out.append(_record(text(raw_name), text(specs[raw_name]), text(state), None))
        return out

    @translated
    def _schedule_save(
        self, name: str, spec: str, payload: bytes, next_run: float, replace: bool
    ) -> bool:
        args = ["save", name, spec, payload, repr(float(next_run)), "1" if replace else "0"]
        changed = bool(self._eval("schedule", self._k.schedule, [], args))
        if changed:
            self._wake_duty()
        return changed

    @translated
    def _schedule_remove(self, name: str) -> bool:
        return bool(self._eval("schedule", self._k.schedule, [], ["remove", name]))

    @translated
    def _schedule_pause(self, name: str, paused: bool, next_run: float) -> bool:
        args = ["pause", name, "1" if paused else "0", repr(float(next_run))]
        changed = bool(self._eval("schedule", self._k.schedule, [], args))
        if changed:
            self._wake_duty()
        return changed

    @translated
    def _schedule_fire(self, name: str, due: float, next_run: float, task: NewTask) -> bool:
        self._remember([task.queue])
        args = [
            name,
            repr(float(due)),
            repr(float(next_run)),
            task.id,
            task.queue,
            json.dumps(task.options, separators=(",", ":")),
            task.payload,
        ]
        return bool(self._eval("schedule_fire", self._k.schedule, [task.queue], args))

    @translated
    def _schedules_due(self, limit: int) -> tuple[list[ScheduleRecord], float | None]:
        reply = self._eval("schedules_due", self._k.schedule, [], [limit])
        nxt = text(reply[0])
        out = []
        for i in range(1, len(reply), 4):
            name, spec, state, payload = reply[i : i + 4]
            if spec is not None and state is not None and payload is not None:
                out.append(_record(text(name), text(spec), text(state), bytes(payload)))
        return out, float(nxt) if nxt else None


def _record(name: str, spec: str, state: str, payload: bytes | None) -> ScheduleRecord:
    """A record from the ``state`` text ``next\\tlast_run\\tlast_task\\tpaused``."""
    nxt, last_run, last_task, paused = state.split("\t")
    return ScheduleRecord(
        name,
        spec,
        float(nxt),
        float(last_run) if last_run else None,
        last_task or None,
        paused == "1",
        payload,
    )
