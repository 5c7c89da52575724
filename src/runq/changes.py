"""Changing tasks: cancel, retry, delete, and destroying the namespace — the write side of
``Controller`` besides submission (``TaskChanges``, mixed into it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, overload

from runq.backends import Backend
from runq.exceptions import TaskStateError, UnknownTaskError
from runq.inspection import Ids, scalar_or_list
from runq.models import FINISHED_STATUSES, TaskStatus
from runq.options import as_id_list, new_task_id, seconds
from runq.session import Session
from runq.store import StoreAPI
from runq.submission import Submitter
from runq.waiting import wait_finished
from runq.workers import WorkersAPI

__all__ = ["TaskChanges"]


class TaskChanges:
    """Cancel, retry and delete tasks; destroy the namespace."""

    queue_id: str
    session: Session
    submitter: Submitter
    backend: Backend
    store: StoreAPI
    workers: WorkersAPI

    if TYPE_CHECKING:

        def _resolve(self, ids: list[str], follow: bool | None) -> list[str]: ...

    def cancel(self, tid: str, wait: bool = True, timeout: float = 10) -> bool:
        """Cancel a task: a PENDING, DEFERRED or SCHEDULED one is unqueued and becomes CANCELLED; a
        RUNNING one is stopped by its worker (SIGTERM, then SIGKILL) and becomes CANCELLED.
        Its dependants become IMPOSSIBLE. With ``wait``, block until a running task is
        stopped (``WaitTimeout`` after ``timeout`` seconds). Returns True if it was (or, with
        ``wait=False``, is being) cancelled, False if it finished first. A task that had
        already finished is a ``TaskStateError``."""
        for _ in range(3):  # a task may move on between the two calls
            before = self.backend.cancel_queued([tid])[0]
            if before is TaskStatus.MISSING:
                raise UnknownTaskError(f"task {tid} does not exist in queue {self.queue_id!r}")
            if before in (TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.SCHEDULED):
                return True
            if before is not TaskStatus.RUNNING:
                raise TaskStateError(f"task {tid} is {before}: it has already finished")
            now = self.backend.request_cancel(tid)
            if now is TaskStatus.RUNNING:
                if not wait:
                    return True
                self.backend.detect_lost()  # a dead worker's task is DIED, not waited for
                final = wait_finished(self.backend, [tid], seconds("timeout", timeout), 1.0, False)
                return final[tid] is TaskStatus.CANCELLED
            if now in FINISHED_STATUSES:
                return now is TaskStatus.CANCELLED
        return False

    @overload
    def retry(self, ids: str) -> str: ...  # type: ignore[overload-overlap]
    @overload
    def retry(self, ids: Sequence[str]) -> list[str]: ...
    def retry(self, ids: Ids) -> str | list[str]:
        """Run finished tasks again under new ids (one id -> one new id, many -> a list);
        each old id becomes MOVED and points to its new one. With the controller's
        ``follow``, an id retried before is retried from its newest retry. All or none: a
        task that has not finished is a ``TaskStateError``."""
        olds = self._resolve(as_id_list(ids), None)
        pairs = [(old, new_task_id()) for old in olds]
        self.backend.retry_tasks(pairs, self.submitter.resealed(pairs))
        return scalar_or_list(ids, [new for _, new in pairs])

    def delete(self, ids: Ids, check: bool = True) -> None:
        """Delete tasks (their records, calls and results). With ``check``, a RUNNING task is
        a ``TaskStateError`` and nothing is deleted. Their large values leave the object
        store with them, unless something else still holds them."""
        self.backend.delete(as_id_list(ids), check)
        if self.session.blobs.settings().offload_path is not None:
            self.session.blobs.collect_freed()

    def destroy(
        self,
        delete: bool | float = True,
        worker_stop_type: str = "message",
        timeout_worker_stop: float = 0,
    ) -> None:
        """Stop the namespace's workers and delete everything it stores: now (``delete=True``),
        never (``False``), or ``delete`` seconds from now (a number). Offload files go too;
        later, they are removed by this process if it still runs, else by the next runq
        process that reads or writes that offload directory (``runq._offload``)."""
        later = None if isinstance(delete, bool) else seconds("delete", delete)
        if self.backend.workers():
            self.workers.stop(type=worker_stop_type, timeout=timeout_worker_stop)
        if later is not None:
            self.session.blobs.destroy_later(later)
            self.backend.expire(later)
        elif delete:
            self.store.destroy()
            self.backend.destroy()
