"""``ctl.queues``: the named priority queues of a namespace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from runq.options import as_id_list

if TYPE_CHECKING:
    from runq.session import Session

__all__ = ["QueuesAPI"]


class QueuesAPI:
    """Inspect and edit the queues of a controller's namespace."""

    def __init__(self, session: Session) -> None:
        self._backend = session.backend

    def length(self, queue: str | None = None) -> int:
        """How many tasks wait in ``queue`` ("default" if None)."""
        return len(self._backend.queue_tasks(queue or "default"))

    def list(self, queue: str | None = None) -> list[str]:
        """The ids waiting in ``queue`` ("default" if None), next to run first."""
        return self._backend.queue_tasks(queue or "default")

    def lengths(self) -> dict[str, int]:
        """Every queue that has held a task -> how many tasks wait in it."""
        return self._backend.queue_lengths()

    def remove(self, ids: str | Sequence[str], queue: str | None = None) -> int:
        """Take waiting tasks out of their queue (only of ``queue`` if given): they become
        CANCELLED and their dependants IMPOSSIBLE. Returns how many were removed."""
        return self._backend.remove_from_queue(as_id_list(ids), queue)
