"""Named limits on Redis (``base.Backend``'s "limits" section).

A limit is a field of the ``limits`` hash; its state lives in ``lim:state`` and the tasks
claims set aside in ``lim:parked`` (the layout is described in ``lua/_lib.lua``, "named
limits", with the limited claim ``claim_limited`` every claim runs when the namespace has
limits). ``limit_set.lua`` and ``limit_remove.lua`` are the transitions. A claim that took
nothing may answer how long until a set-aside task's rate window opens: ``limit_due`` keeps
it, so that ``wait_for_work`` wakes then (a freed concurrency slot pushes a wake token).
"""

from __future__ import annotations

import time

from runq.backends import checks
from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import read_retried, translated
from runq.backends.redis.replies import text
from runq.models import Limit

__all__ = ["RedisLimits"]


class RedisLimits(RedisCore):
    """The named limits of ``RedisBackend``."""

    #: ``time.monotonic()`` when the soonest blocked rate window opens, per the last claim.
    limit_due: float | None = None

    @read_retried
    def limits(self) -> list[Limit]:
        raw = self._r.hgetall(self._k.key("limits"))
        out = []
        for name, spec in raw.items():
            _, _, conc, rate = text(spec).split("\t", 3)
            out.append(Limit(text(name), rate or None, int(conc) if conc else None))
        return sorted(out)

    @translated
    def _limit_set(self, limit: Limit) -> None:
        rate = checks.check_limit(limit)
        count, period = (str(rate[0]), repr(rate[1])) if rate is not None else ("", "")
        conc = "" if limit.concurrency is None else str(limit.concurrency)
        spec = "\t".join([count, period, conc, limit.rate or ""])
        self._eval("limit_set", [], [], [limit.name, spec])

    @translated
    def _limit_remove(self, name: str) -> bool:
        return bool(self._eval("limit_remove", [], self._known_queues(), [name]))

    def note_limit_wait(self, wait: bytes | str | None) -> None:
        """Keep the wait a claim answered (seconds as text; None: no set-aside task waits
        for its rate window)."""
        self.limit_due = None if wait is None else time.monotonic() + float(text(wait))

    def limit_wait(self, timeout_s: float) -> float:
        """``timeout_s``, shortened to when the last claim's soonest rate window opens."""
        due = self.limit_due
        if due is None:
            return timeout_s
        return max(0.0, min(timeout_s, due - time.monotonic() + 0.001))
