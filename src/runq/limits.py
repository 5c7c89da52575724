"""``ctl.limits``: named rate and concurrency limits, held in the backend.

A task joins a limit with ``enqueue(..., limit=name)`` or ``@task(limit=name)``. The limit
holds across every worker and machine of the namespace: ``claim`` enforces it in the same
atomic transition that starts the task (see ``Backend.limit_set``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runq.models import Limit

if TYPE_CHECKING:
    from runq.session import Session

__all__ = ["LimitsAPI"]


class LimitsAPI:
    """Create, list and remove the named limits of a controller's namespace."""

    def __init__(self, session: Session) -> None:
        self._backend = session.backend

    def set(self, name: str, rate: str | None = None, concurrency: int | None = None) -> Limit:
        """Create or replace limit ``name``: at most ``rate`` task starts (``"100/m"``: 100
        in any minute; units s, m, h, d; ``"5/10s"``: 5 in any 10 seconds) and at most
        ``concurrency`` of its tasks RUNNING at once, across every worker. At least one of
        the two; ``ConfigError`` names a bad value. Changing the rate restarts its window."""
        limit = Limit(name, rate, concurrency)
        self._backend.limit_set(limit)
        return limit

    def list(self) -> dict[str, Limit]:
        """Every limit of the namespace, by name."""
        return {limit.name: limit for limit in self._backend.limits()}

    def remove(self, name: str) -> bool:
        """Delete limit ``name``: the tasks waiting for it are queued again (at the head of
        their queues) and run unlimited, as do tasks that name a limit that does not exist.
        True if it existed."""
        return self._backend.limit_remove(name)
