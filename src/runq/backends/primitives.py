"""What each backend implements (``base.Backend`` builds the contract on top of it).

- Verbs that take nothing to check (``close``, ``list_tasks``, ``workers``, ``message_take`` …)
  are declared here with their contract; each backend implements them as they are.
- Every other verb is a public method of ``base.Backend``, which checks its arguments (or
  composes several reads) and calls the primitives declared here: ``_enqueue`` for
  ``enqueue``, ``_moved_to`` and ``_moved_from`` for ``resolve`` and ``chain`` … A primitive
  keeps the contract of its verb; it is never called with arguments the verb refuses (an
  empty batch included: the base answers it).

The sections are those of ``base.py``, named like the modules of each backend package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from runq.backends.records import Control, ScheduleRecord, WorkerRecord
from runq.models import (
    Blob,
    ClaimedTask,
    Limit,
    LogEntry,
    Message,
    NewTask,
    TaskRecord,
    TaskStatus,
    TaskTimes,
)

__all__ = ["Primitives"]


class Primitives(ABC):
    """The operations each backend implements (see the module docstring)."""

    #: The namespace (queue_id) this object serves.
    namespace: str
    #: A display form of the backend's address; never contains a password.
    address: str

    # ------------------------------------------------------------------ lifecycle
    # Open, close, destroy (``backend.py`` of each backend).
    @abstractmethod
    def now(self) -> float:
        """The backend's clock, in seconds since the epoch."""
        ...

    @abstractmethod
    def close(self) -> None:
        """Release connections. The object must not be used afterwards."""
        ...

    @abstractmethod
    def destroy(self) -> None:
        """Delete everything stored for this namespace (tasks, queues, workers, logs, version)."""
        ...

    @abstractmethod
    def expire(self, seconds: float) -> None:
        """Have everything stored for this namespace deleted ``seconds`` from now. Redis: key
        expiry. SQLite: the first client that opens the file after the deadline deletes it."""
        ...

    # ------------------------------------------------------------------ submission
    # Tasks: ``tasks.py`` of each backend (Redis: a large batch in ``staging.py``).
    @abstractmethod
    def _enqueue(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        """``enqueue``, its arguments checked."""

    # ------------------------------------------------------------------ inspection
    # Reads of tasks (``inspection.py``).
    @abstractmethod
    def list_tasks(self) -> list[str]:
        """Every task id of the namespace, in submission order."""
        ...

    @abstractmethod
    def overview(self) -> dict[TaskStatus, int]:
        """How many tasks of the namespace are in each status (statuses with none omitted)."""
        ...

    @abstractmethod
    def queue_tasks(self, queue: str) -> list[str]:
        """The ids waiting in ``queue``, head (next to run) first."""
        ...

    @abstractmethod
    def queue_lengths(self) -> dict[str, int]:
        """Number of tasks waiting in each queue that has ever held a task."""
        ...

    @abstractmethod
    def deferred(self) -> dict[str, list[str]]:
        """Each DEFERRED task -> its dependencies that are not yet COMPLETE."""
        ...

    @abstractmethod
    def wait_change(self, ids: Sequence[str], timeout_s: float) -> dict[str, TaskStatus]:
        """Block until some task among ``ids`` may have reached a finished status, or until
        ``timeout_s`` has passed. It may return early; callers re-check ``status``. A
        completion stored by a worker must wake it within milliseconds (Redis: a pub/sub
        notification; SQLite: a short poll with back-off on ``PRAGMA data_version``).

        Answers nothing, or a whole account (Redis, from the announcements): the newest
        finished status of each of ``ids`` that finished since this thread's previous
        ``wait_change`` returned, in the order the backend recorded them. An id of ``ids`` that
        is absent from a non-empty answer did not finish in that time, so a caller that knew
        it unfinished then knows it still is. SQLite answers nothing: the caller reads."""
        ...

    def watches(self, ids: Sequence[str]) -> bool:
        """Whether ``wait_change(ids)`` is sure to wake for every finish of each of ``ids``
        since it was submitted (Redis: submitted by this object while its subscription to the
        announcements was live, and still is), so that a wait on them may skip its first
        status read. False when the backend cannot tell (SQLite)."""
        return False

    @abstractmethod
    def _status(self, ids: Sequence[str]) -> list[TaskStatus]:
        """``status``, its arguments checked."""

    @abstractmethod
    def _task_page(
        self,
        after: int | None,
        limit: int,
        scan: int,
        status: TaskStatus | None,
        queue: str | None,
        name: str | None,
    ) -> tuple[list[str], int | None]:
        """``task_page``, its arguments checked."""

    @abstractmethod
    def _records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        """``records``, its arguments checked."""

    @abstractmethod
    def _payloads(self, ids: Sequence[str]) -> list[bytes | None]:
        """``payloads``, its arguments checked."""

    @abstractmethod
    def _results(self, ids: Sequence[str]) -> list[bytes | None]:
        """``results``, its arguments checked."""

    @abstractmethod
    def _times(self, ids: Sequence[str]) -> list[TaskTimes]:
        """``times``, its arguments checked."""

    def _outcomes(self, ids: Sequence[str]) -> tuple[list[TaskStatus], list[bytes | None]]:
        """``outcomes``, its arguments checked: the statuses, then the outcomes (a backend
        that can read both in one round trip does so)."""
        return self._status(ids), self._results(ids)

    # ------------------------------------------------------------------ controller transitions
    # Tasks (``tasks.py``).
    @abstractmethod
    def _cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        """``cancel_queued``, its arguments checked."""

    @abstractmethod
    def _remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        """``remove_from_queue``, its arguments checked."""

    @abstractmethod
    def _delete(self, ids: Sequence[str], check: bool) -> None:
        """``delete``, its arguments checked."""

    # ------------------------------------------------------------------ worker transitions
    # Tasks (``tasks.py``).
    @abstractmethod
    def wait_for_work(
        self,
        worker_id: str,
        queues: Sequence[str],
        timeout_s: float,
        wake_fd: int | None = None,
    ) -> None:
        """Block until a task may have been pushed to one of ``queues`` (or a message sent to
        this worker, or a task SCHEDULED — the next due time may be earlier: the caller asks
        ``promote_due``), or ``timeout_s`` passed, or the file descriptor ``wake_fd`` is
        readable (it is not read: a worker's wake pipe, written on a signal). May return
        early; the caller claims again. A push must wake a waiting worker within
        milliseconds; a long wait sends nothing more to the backend than the wait itself."""
        ...

    @abstractmethod
    def wait_for_request(
        self, worker_id: str, timeout_s: float, wake_fd: int | None = None
    ) -> None:
        """Block until the controller asks something of this worker (``request_kill``, or
        ``request_cancel`` of a task it runs: its next ``heartbeat`` answers what), or
        ``timeout_s`` passed, or ``wake_fd`` is readable (not read). May return early. A
        request must wake a waiting worker within milliseconds (the control thread blocks
        here between heartbeats instead of polling)."""
        ...

    @abstractmethod
    def _claim(self, worker_id: str, queues: Sequence[str], pid: int) -> ClaimedTask | None:
        """``claim``, its arguments checked."""

    @abstractmethod
    def _finish(
        self,
        worker_id: str,
        task_id: str,
        status: TaskStatus,
        result: bytes | None,
        next_queues: Sequence[str] | None = None,
        pid: int = 0,
    ) -> tuple[bool, ClaimedTask | None]:
        """``finish``, its arguments checked."""

    @abstractmethod
    def _requeue(self, worker_id: str, task_id: str) -> bool:
        """``requeue``, its arguments checked."""

    @abstractmethod
    def _progress_set(self, task_id: str, value: bytes) -> None:
        """``progress_set``, its arguments checked."""

    @abstractmethod
    def _progress_get(self, task_id: str) -> bytes | None:
        """``progress_get``, its arguments checked."""

    # ------------------------------------------------------------------ workers
    # Registration, the worker log, the list of workers (``workers.py``).
    @abstractmethod
    def workers(self, include_exited: bool = False) -> list[WorkerRecord]:
        """Active workers (IDLE/BUSY/PAUSED), oldest first; with ``include_exited`` also
        EXITED and LOST ones."""
        ...

    @abstractmethod
    def worker_log_tail(self, worker_id: str, n: int) -> list[LogEntry]:
        """The worker's last ``n`` log events, oldest first (all of them if ``n <= 0``)."""
        ...

    @abstractmethod
    def _register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        """``register_worker``, its arguments checked."""

    @abstractmethod
    def _worker_log(self, worker_id: str, command: str, message: str) -> None:
        """``worker_log``, its arguments checked."""

    @abstractmethod
    def _worker_exit(self, worker_id: str, message: str = "") -> None:
        """``worker_exit``, its arguments checked."""

    # ------------------------------------------------------------------ liveness
    # Heartbeats, lost workers, cancel/kill requests (``liveness.py`` of each backend).
    @abstractmethod
    def detect_lost(self) -> list[str]:
        """Atomically mark every active worker whose heartbeat lapsed LOST (log LOST) and
        release its running task as ``release_worker`` does. Returns the newly LOST ids."""
        ...

    @abstractmethod
    def _heartbeat(self, worker_id: str, ttl_s: float | None) -> Control:
        """``heartbeat``, its arguments checked."""

    @abstractmethod
    def _duty_lease(self, worker_id: str, ttl_s: float) -> bool:
        """``duty_lease``, its arguments checked."""

    @abstractmethod
    def _release_worker(self, worker_id: str, status: str, message: str) -> str | None:
        """``release_worker``, its arguments checked."""

    @abstractmethod
    def _request_cancel(self, task_id: str) -> TaskStatus:
        """``request_cancel``, its arguments checked."""

    @abstractmethod
    def _request_kill(self, worker_ids: Sequence[str]) -> None:
        """``request_kill``, its arguments checked."""

    # ------------------------------------------------------------------ limits
    @abstractmethod
    def limits(self) -> list[Limit]:
        """Every named limit of the namespace, by name."""
        ...

    @abstractmethod
    def _limit_set(self, limit: Limit) -> None:
        """``limit_set``, its argument checked."""

    @abstractmethod
    def _limit_remove(self, name: str) -> bool:
        """``limit_remove``, its argument checked."""

    # ------------------------------------------------------------------ retries
    # Delayed retries, manual retry (MOVED) and the retry chain (``retries.py``).
    @abstractmethod
    def promote_due(self) -> float | None:
        """Move the delayed tasks that are due (at most 1,000 a call; the earliest due first),
        atomically, whoever calls it first (any worker or controller; nothing is lost or
        moved twice): a delayed retry (PENDING) goes to the HEAD of its queue; a SCHEDULED
        task becomes IMPOSSIBLE (its dependants too) if a dependency failed, DEFERRED if one
        is not yet COMPLETE, else PENDING at the TAIL of its queue. Workers are woken.
        Returns the due time of the next delayed task still waiting, or None."""
        ...

    @abstractmethod
    def _retry_later(self, worker_id: str, task_id: str, delay_s: float, result: bytes) -> bool:
        """``retry_later``, its arguments checked."""

    @abstractmethod
    def _retry_tasks(
        self, pairs: Sequence[tuple[str, str]], payloads: Sequence[bytes] | None = None
    ) -> list[TaskStatus]:
        """``retry_tasks``, its arguments checked."""

    @abstractmethod
    def _moved_to(self, ids: Sequence[str]) -> dict[str, str]:
        """Of ``ids`` (distinct), each one that was retried as another task (MOVED) -> the id
        of that task. One round trip."""

    @abstractmethod
    def _moved_from(self, ids: Sequence[str]) -> dict[str, str]:
        """Of ``ids`` (distinct), each one that is the retry of another task -> the id of
        that task. One round trip."""

    @abstractmethod
    def _retry_at(self, task_id: str) -> float | None:
        """The due time of the task's delayed retry, or None if it waits for none."""

    # ------------------------------------------------------------------ messaging
    # Messages, pause/resume, saved worker configs, the worker environment (``messaging.py``).
    @abstractmethod
    def message_take(self, worker_id: str) -> list[Message]:
        """Remove and return every message waiting for ``worker_id``, oldest first, logging
        MESSAGE for each; ``[]`` at the cost of a read when there is none."""
        ...

    @abstractmethod
    def message_responses(self, message_id: str, worker_ids: Sequence[str]) -> list[bytes | None]:
        """Each worker's stored response to ``message_id`` (None where there is none)."""
        ...

    @abstractmethod
    def message_delete_responses(self, message_id: str, worker_ids: Sequence[str]) -> None:
        """Forget the responses of ``worker_ids`` to ``message_id``."""
        ...

    @abstractmethod
    def message_response_ids(self, worker_id: str) -> list[str]:
        """The ids of the messages ``worker_id`` has stored responses to, oldest first."""
        ...

    @abstractmethod
    def wait_response(self, message_id: str, worker_ids: Sequence[str], timeout_s: float) -> None:
        """Block until every one of ``worker_ids`` may have responded to ``message_id``, or
        ``timeout_s`` passed. May return early; callers re-check ``message_responses``. A
        stored response must wake it within milliseconds."""
        ...

    @abstractmethod
    def worker_pause(self, worker_id: str, paused: bool) -> None:
        """An active worker becomes PAUSED (``paused``) or IDLE again; logs PAUSE / RESUME.
        Exited or lost workers are left as they are."""
        ...

    @abstractmethod
    def worker_delete(self, worker_ids: Sequence[str]) -> list[str]:
        """Forget EXITED or LOST workers among ``worker_ids``: their records, logs, messages
        and responses. Active ones are left alone. Returns the ids deleted."""
        ...

    @abstractmethod
    def config_save(self, name: str, config_json: str, overwrite: bool) -> bool:
        """Store a worker config (``WorkerConfig.to_json``) under ``name``; without
        ``overwrite`` an existing one is kept. Returns whether it was written."""
        ...

    @abstractmethod
    def config_read(self, name: str) -> str | None:
        """The config JSON saved under ``name``, or None."""
        ...

    @abstractmethod
    def config_list(self) -> list[str]:
        """The names of the saved configs, sorted."""
        ...

    @abstractmethod
    def envir_save(self, payload: bytes | None) -> None:
        """Store the worker environment's sealed ``create`` function (None: remove it)."""
        ...

    @abstractmethod
    def envir_load(self) -> bytes | None:
        """The stored worker environment, or None."""
        ...

    @abstractmethod
    def _message_send(
        self, worker_ids: Sequence[str] | None, command: str, args: bytes
    ) -> tuple[str, list[str]]:
        """``message_send``, its arguments checked."""

    @abstractmethod
    def _message_respond(
        self, worker_id: str, message_id: str, command: str, response: bytes
    ) -> None:
        """``message_respond``, its arguments checked."""

    # ------------------------------------------------------------------ store
    # The object store and the namespace settings (``store.py``).
    @abstractmethod
    def store_list(self) -> list[str]:
        """Every stored hash, sorted."""
        ...

    @abstractmethod
    def store_tags(self) -> list[str]:
        """Every tag in use, sorted."""
        ...

    @abstractmethod
    def store_collect(self) -> list[str]:
        """Answer (and forget) the offloaded values that task deletions freed."""
        ...

    @abstractmethod
    def store_destroy(self) -> list[str]:
        """Delete every value and tag of the namespace; answers the offloaded hashes."""
        ...

    @abstractmethod
    def settings_get(self) -> dict[str, Any]:
        """The namespace's settings (``runq.configure``), a JSON-able dict ({} if none)."""
        ...

    @abstractmethod
    def settings_set(self, settings: dict[str, Any]) -> None:
        """Replace the namespace's settings (JSON-able), so every worker sees them."""
        ...

    @abstractmethod
    def _store_put(self, tag: str, blobs: Sequence[Blob]) -> None:
        """``store_put``, its arguments checked."""

    @abstractmethod
    def _store_get(self, hashes: Sequence[str]) -> list[Blob | None]:
        """``store_get``, its arguments checked."""

    @abstractmethod
    def _store_locations(self, hashes: Sequence[str]) -> list[str | None]:
        """``store_locations``, its arguments checked."""

    @abstractmethod
    def _store_drop(self, tags: Sequence[str]) -> list[str]:
        """``store_drop``, its arguments checked."""

    # ------------------------------------------------------------------ schedules
    # Periodic schedules, fired by the workers (``schedules.py`` of each backend).
    @abstractmethod
    def schedules(self) -> list[ScheduleRecord]:
        """Every schedule of the namespace (without payloads), sorted by name."""
        ...

    @abstractmethod
    def _schedule_save(
        self, name: str, spec: str, payload: bytes, next_run: float, replace: bool
    ) -> bool:
        """``schedule_save``, its arguments checked."""

    @abstractmethod
    def _schedule_remove(self, name: str) -> bool:
        """``schedule_remove``, its arguments checked."""

    @abstractmethod
    def _schedule_pause(self, name: str, paused: bool, next_run: float) -> bool:
        """``schedule_pause``, its arguments checked."""

    @abstractmethod
    def _schedule_fire(self, name: str, due: float, next_run: float, task: NewTask) -> bool:
        """``schedule_fire``, its arguments checked."""

    @abstractmethod
    def _schedules_due(self, limit: int) -> tuple[list[ScheduleRecord], float | None]:
        """``schedules_due``, its arguments checked."""

    # ------------------------------------------------------------------ expiry
    @abstractmethod
    def _expire_take(
        self, limit: int, lease_s: float, postpone_s: float
    ) -> tuple[list[str], float | None]:
        """``expire_take``, its arguments checked."""
