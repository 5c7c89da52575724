"""The worker's timed duties, done on its idle path (and, for due tasks, by its control
thread too): whoever gets there first does each one, in one atomic backend transition.

- Delayed tasks (``enqueue(delay=)``, delayed retries): ``promote_due`` moves those that are
  due into their queues and answers the next due time, so an idle worker blocks until then
  (bounded by its ``poll_queue``) instead of polling: a due task starts within milliseconds,
  and the cost of an idle fleet does not grow with the number of tasks waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from runq.backends import Backend
from runq.worker.retrying import Retrying

__all__ = ["Timers"]

#: How often the offset between this host's clock and the backend's is measured again.
_CLOCK_CHECK_S = 60.0


class Timers:
    """See the module docstring. ``backend()`` gives the worker's current backend object and
    ``retrying(op)`` runs ``op`` through the worker's retry-while-unreachable policy."""

    def __init__(self, backend: Callable[[], Backend], retrying: Retrying) -> None:
        self._backend = backend
        self._retrying = retrying
        self._offset = 0.0  # backend clock - time.time()
        self._next_clock_check = 0.0

    def tick(self) -> float | None:
        """Do what is due; answer the seconds until the next due time (None: nothing waits)."""
        backend = self._backend()
        due = self._retrying(backend.promote_due)
        if due is None:
            return None
        return max(0.0, due - self._backend_now(backend))

    def _backend_now(self, backend: Backend) -> float:
        """The backend's clock, estimated from this host's (measured once a minute)."""
        now = time.monotonic()
        if now >= self._next_clock_check:
            self._next_clock_check = now + _CLOCK_CHECK_S
            self._offset = self._retrying(backend.now) - time.time()
        return time.time() + self._offset
