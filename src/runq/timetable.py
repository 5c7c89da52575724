"""When a periodic schedule's ticks fall: a cron expression in a time zone (through the
``cronsim`` library and ``zoneinfo``, daylight-saving transitions included, as cron treats
them: a time skipped by the clock change fires once, at the first valid time after it, and a
time that occurs twice fires once), or a fixed interval counted from the schedule's anchor.

A leaf module: the controller checks a schedule with it, and the worker that fires a tick
computes the next one with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from runq.exceptions import ConfigError

__all__ = ["Timetable"]


@dataclass(frozen=True, slots=True)
class Timetable:
    """A schedule's ticks: ``cron`` (a 5-field expression) in ``timezone``, or ``every``
    seconds from ``anchor`` (seconds since the epoch)."""

    cron: str | None
    every_s: float | None
    timezone: str
    anchor: float

    @classmethod
    def build(
        cls,
        cron: str | None,
        every: float | timedelta | None,
        timezone: str | None,
        anchor: float,
    ) -> Timetable:
        """A checked timetable; ``ConfigError`` names what is wrong."""
        if (cron is None) == (every is None):
            raise ConfigError("a schedule takes cron= or every=, exactly one of them")
        zone = "UTC" if timezone is None else timezone
        if not isinstance(zone, str):
            raise ConfigError(f"timezone must be an IANA time zone name, got {zone!r}")
        _zone(zone)
        every_s: float | None = None
        if every is not None:
            every_s = every.total_seconds() if isinstance(every, timedelta) else every
            if (
                isinstance(every_s, bool)
                or not isinstance(every_s, int | float)
                or not math.isfinite(every_s)
                or every_s <= 0
            ):
                raise ConfigError(f"every must be a number of seconds > 0, got {every!r}")
            every_s = float(every_s)
        if cron is not None:
            if not isinstance(cron, str):
                raise ConfigError(f"cron must be a cron expression string, got {cron!r}")
            try:
                CronSim(cron, datetime.fromtimestamp(anchor, _zone(zone)))
            except CronSimError as exc:
                raise ConfigError(f"cron expression {cron!r} is not valid: {exc}") from exc
        return cls(cron, every_s, zone, float(anchor))

    def next_after(self, t: float) -> float:
        """The first tick strictly after ``t`` (seconds since the epoch)."""
        if self.every_s is not None:
            k = math.floor((t - self.anchor) / self.every_s) + 1
            return self.anchor + max(k, 1) * self.every_s if t >= self.anchor else self.anchor
        assert self.cron is not None
        start = datetime.fromtimestamp(t, _zone(self.timezone))
        return float(next(CronSim(self.cron, start)).timestamp())

    def to_json(self) -> dict[str, Any]:
        return {
            "cron": self.cron,
            "every": self.every_s,
            "timezone": self.timezone,
            "anchor": self.anchor,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timetable:
        every = data.get("every")
        return cls(
            data.get("cron"),
            None if every is None else float(every),
            str(data.get("timezone", "UTC")),
            float(data.get("anchor", 0.0)),
        )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (an IANA name such as 'UTC')") from exc
