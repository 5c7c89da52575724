"""Result expiry on Redis (``base.Backend``'s "expiry" section): ``finish.lua`` records a
finished task with ``result_ttl`` / ``failure_ttl`` in the ``expiring`` sorted set (a static
key of every script); ``expire_take.lua`` takes those due, under a lease, for the caller to
delete (``delete.lua`` drops their entries). Tasks live in namespace-level hashes, so no key
of theirs can expire by itself: the workers' bounded sweep deletes them."""

from __future__ import annotations

from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import translated
from runq.backends.redis.replies import text

__all__ = ["RedisExpiry"]


class RedisExpiry(RedisCore):
    """The expiry verbs of ``RedisBackend``."""

    @translated
    def _expire_take(
        self, limit: int, lease_s: float, postpone_s: float
    ) -> tuple[list[str], float | None]:
        reply = self._eval("expire_take", [], [], [limit, repr(lease_s), repr(postpone_s)])
        nxt = text(reply[0])
        return [text(x) for x in reply[1:]], float(nxt) if nxt else None
