"""Named limits on Redis (``base.Backend``'s "limits" section).

A limit is a field of the ``limits`` hash; its state lives in ``lim:state`` and the tasks
claims set aside in ``lim:parked`` (the layout is described in ``lua/_lib.lua``, "named
limits", with the limited claim ``claim_limited`` every claim runs when the namespace has
limits). ``limit_set.lua`` and ``limit_remove.lua`` are the transitions. ``wait_for_work``
asks ``limit_due.lua`` how long until a set-aside task's rate window opens and wakes then (a
freed concurrency slot pushes a wake token instead).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from runq.backends import checks
from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import read_retried, translated
from runq.backends.redis.replies import text
from runq.models import Limit

__all__ = ["RedisLimits"]

#: How long an idle worker takes a namespace without limits to stay so (a limit created
#: meanwhile is enforced at once by every claim; only its waiters' wake-up is that late).
_NO_LIMITS_RECHECK_S = 10.0


class RedisLimits(RedisCore):
    """The named limits of ``RedisBackend``."""

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
        self._no_limits_until = 0.0

    @translated
    def _limit_remove(self, name: str) -> bool:
        return bool(self._eval("limit_remove", [], self._known_queues(), [name]))

    #: ``time.monotonic()`` until which the namespace is taken to have no limits.
    _no_limits_until = 0.0

    def limit_wait(self, timeout_s: float, queues: Sequence[str]) -> float:
        """``timeout_s``, shortened to when a task set aside under a named limit in one of
        ``queues`` may start (0: now); one script call. A namespace without limits is asked
        again only every ``_NO_LIMITS_RECHECK_S``, so that idle workers cost no more."""
        if time.monotonic() < self._no_limits_until:
            return timeout_s
        reply = text(self._eval("limit_due", [], [], list(queues)))
        if reply == "none":
            self._no_limits_until = time.monotonic() + _NO_LIMITS_RECHECK_S
            return timeout_s
        if not reply:
            return timeout_s
        return max(0.0, min(timeout_s, float(reply) + 0.001))
