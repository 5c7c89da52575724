"""The one backend contract: domain verbs, each an atomic state transition.

Two implementations follow it: ``sqlite.SqliteBackend`` (one ``BEGIN IMMEDIATE`` transaction per
transition) and ``redis.RedisBackend`` (one Lua script or MULTI per transition). Nothing above
this seam knows which backend it talks to; ``tests/test_backend_contract.py`` runs the same
suite against both.

``Backend`` is a base class: its public verbs check their arguments once, for every backend
(``checks.py``: ids, names, outcomes, hashes …), then call the primitive of the same name with
a leading underscore, which each backend implements. So SQLite and Redis refuse the same
inputs with the same errors, before anything is written.

Conventions every implementation keeps:

- One backend object serves one *namespace* (``queue_id``); every key or row it touches is
  scoped to it. A namespace stores its schema version (``SCHEMA_VERSION``); opening one that
  holds another version raises ``SchemaVersionMismatch`` unless ``check_version=False``.
- Times are float seconds since the epoch on the backend's clock (Redis ``TIME``; SQLite: the
  host's ``time.time()``).
- Methods taking ``ids`` answer one item per id, in order. Their cost is a bounded number of
  round trips whatever ``len(ids)`` is (pipelining / batched SQL), never one per id.
- Task payloads and results are opaque ``bytes`` (signed serialized values); the backend never
  unpickles anything. Task ``options`` are JSON-able dicts stored as JSON; the backend reads
  only ``options["retries"]`` (to decide between re-queue and DIED when a worker is lost).
- A claimed task is always recorded against a live worker: ``claim`` moves it atomically from
  its queue to RUNNING under that worker id. No path holds a task only in a worker's memory.
- Log events ride the round trip of the transition they record (``claim`` logs TASK_START,
  ``finish`` logs TASK_COMPLETE / TASK_CANCEL / TASK_ERROR, …).
- A backend object may be used from several threads; each method is thread-safe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runq.backends import checks
from runq.models import (
    Blob,
    ClaimedTask,
    LogEntry,
    Message,
    NewTask,
    TaskRecord,
    TaskStatus,
    TaskTimes,
)

__all__ = ["SCHEMA_VERSION", "Backend", "Chain", "Control", "WorkerRecord"]

#: Bumped whenever the stored layout changes in a way older code cannot read.
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """What the backend stores about a worker."""

    worker_id: str
    status: str  # a WorkerStatus value
    info: dict[str, Any]  # JSON-able, as given to register_worker
    task_id: str | None  # the task it is running, if any
    started: float
    last_seen: float  # time of its last transition or heartbeat


@dataclass(frozen=True, slots=True)
class Control:
    """What ``heartbeat`` answers: the controller's requests to a worker."""

    active: bool  # False once the worker was marked LOST or EXITED (or is unknown)
    kill: bool = False  # exit at once
    cancel: str | None = None  # the id of its running task to stop
    #: False when the backend holds no record at all of the worker id (its namespace was
    #: destroyed, or the worker deleted): the worker should exit rather than register again.
    #: A worker marked LOST or EXITED is still known (``active=False, known=True``).
    known: bool = True


@dataclass(frozen=True, slots=True)
class Chain:
    """What ``chain`` answers about a task."""

    ids: tuple[str, ...]  # every id of its retry chain, oldest first
    retry_at: float | None = None  # due time of its delayed retry, if it waits for one


class Backend(ABC):
    """The domain-level operations runq needs from a store.

    Every transition is atomic: it happens whole or not at all, and other clients never see
    half of it.
    """

    #: The namespace (queue_id) this object serves.
    namespace: str
    #: A display form of the backend's address; never contains a password.
    address: str

    # ------------------------------------------------------------------ lifecycle
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
    def enqueue(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        """Store new tasks, all or none however many they are (no task of a batch is visible
        before the others), and return each one's initial status.

        Each task is recorded with its submitted time and then becomes:
        - IMPOSSIBLE if any dependency is ERROR/CANCELLED/DIED/TIMEOUT/IMPOSSIBLE;
        - DEFERRED if some dependency is not yet COMPLETE (it is recorded as a dependant of
          each such dependency, and queued when the last one COMPLETEs);
        - PENDING otherwise, pushed to the tail of its queue (batch order kept).
        A dependency may name a task earlier in the same batch.

        Duplicate policies: a task with a ``dedup_key`` (its ``options["on_duplicate"]`` is
        ``discard``, ``serial`` or ``queue_one``; it has no dependencies, else ``ConfigError``)
        is admitted against the *active* tasks of that key — those admitted and not yet
        finished, cancelled or deleted — in the same atomic transition, batch order kept:
        ``discard`` with any active, or ``queue_one`` with two or more, makes it DISCARDED
        (finished time set, never queued); otherwise it joins the key's active tasks, PENDING
        if it is the first, else DEFERRED (held, in no queue). Whenever an active task
        finishes (``finish``), is cancelled (``cancel_queued``, ``remove_from_queue``) or
        deleted, the same transition releases the next held task of its key (PENDING, tail of
        its queue), so the tasks of a key run one at a time, in admission order.

        Raises ``UnknownTaskError`` naming the first dependency id that does not exist, or
        ``ConfigError`` if a task id already exists; nothing is written in either case.
        """
        checks.check_new_tasks(tasks)
        return self._enqueue(tasks)

    # ------------------------------------------------------------------ inspection
    def status(self, ids: Sequence[str]) -> list[TaskStatus]:
        """Each task's status; MISSING for an unknown id."""
        checks.check_ids(ids)
        return self._status(ids)

    def records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        """Each task's record (None for an unknown id)."""
        checks.check_ids(ids)
        return self._records(ids)

    def payload(self, task_id: str) -> bytes | None:
        """The stored call of a task, or None for an unknown id."""
        checks.check_id(task_id)
        return self._payload(task_id)

    def payloads(self, ids: Sequence[str]) -> list[bytes | None]:
        """Each task's stored call (None for an unknown id); one round trip."""
        checks.check_ids(ids)
        return self._payloads(ids)

    def results(self, ids: Sequence[str]) -> list[bytes | None]:
        """Each task's stored outcome: the serialized result (COMPLETE) or serialized
        ``TaskError`` (ERROR, TIMEOUT, DIED, …); None where nothing is stored."""
        checks.check_ids(ids)
        return self._results(ids)

    def times(self, ids: Sequence[str]) -> list[TaskTimes]:
        """Each task's submitted/started/finished times; all None for an unknown id."""
        checks.check_ids(ids)
        return self._times(ids)

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
    def wait_change(self, ids: Sequence[str], timeout_s: float) -> None:
        """Block until some task among ``ids`` may have reached a finished status, or until
        ``timeout_s`` has passed. It may return early; callers re-check ``status``. A
        completion stored by a worker must wake it within milliseconds (Redis: a pub/sub
        notification; SQLite: a short poll with back-off on ``PRAGMA data_version``)."""
        ...

    # ------------------------------------------------------------------ controller transitions
    def cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        """PENDING or DEFERRED tasks among ``ids`` become CANCELLED (finished time set),
        leave their queue, and their dependants become IMPOSSIBLE transitively. Other tasks are
        left as they are. Returns each task's status *before* the call (MISSING if unknown)."""
        checks.check_ids(ids)
        return self._cancel_queued(ids)

    def remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        """Take PENDING tasks out of their queue (or only of ``queue`` if given): they become
        CANCELLED and their dependants IMPOSSIBLE. Returns how many were removed."""
        checks.check_ids(ids)
        checks.check_names("queue", None if queue is None else [queue])
        return self._remove_from_queue(ids, queue)

    def delete(self, ids: Sequence[str], check: bool) -> None:
        """Delete tasks: their records, payloads, results, progress values and queue entries.
        DEFERRED dependants of a deleted task that was not COMPLETE become IMPOSSIBLE. With
        ``check``, raise ``TaskStateError`` naming a RUNNING task and delete nothing. Unknown
        ids are ignored."""
        checks.check_ids(ids)
        return self._delete(ids, check)

    # ------------------------------------------------------------------ worker transitions
    def register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        """Record a new worker as IDLE (``info`` is JSON-able) and log ALIVE. Raises
        ``ConfigError`` if an active worker already has this id."""
        checks.check_worker_id(worker_id)
        return self._register_worker(worker_id, info)

    def claim(self, worker_id: str, queues: Sequence[str], pid: int) -> ClaimedTask | None:
        """Pop the head of the first non-empty queue among ``queues`` (priority order),
        make it RUNNING under ``worker_id`` (started time, pid, attempt + 1), make the worker
        BUSY, log TASK_START; or return None if all are empty (the worker stays IDLE)."""
        checks.check_worker_id(worker_id)
        checks.check_names("queue", queues)
        return self._claim(worker_id, queues, pid)

    def finish(
        self,
        worker_id: str,
        task_id: str,
        status: TaskStatus,
        result: bytes | None,
        next_queues: Sequence[str] | None = None,
        pid: int = 0,
    ) -> tuple[bool, ClaimedTask | None]:
        """Store a RUNNING task's outcome: ``status`` (COMPLETE, ERROR, TIMEOUT, CANCELLED …),
        ``result`` bytes, finished time; log TASK_COMPLETE (COMPLETE), TASK_CANCEL (CANCELLED)
        or TASK_ERROR (other); the worker becomes IDLE. A COMPLETE task releases each
        dependant whose dependencies are now all COMPLETE (DEFERRED -> PENDING, to the tail of
        its queue); a failed one makes its dependants IMPOSSIBLE, transitively.

        If the task is no longer RUNNING under ``worker_id`` (cancelled, or the worker was
        marked LOST and the task re-run), nothing of it is written and the first element of
        the answer is False.

        With ``next_queues``, the same round trip then does ``claim(worker_id, next_queues,
        pid)`` and returns its answer as the second element (finish + claim = one round trip).
        """
        checks.check_worker_id(worker_id)
        checks.check_id(task_id)
        checks.check_outcome(status)
        checks.check_bytes("result", result, optional=True)
        checks.check_names("queue", next_queues)
        return self._finish(worker_id, task_id, status, result, next_queues, pid)

    def requeue(self, worker_id: str, task_id: str) -> bool:
        """Give back a RUNNING task held by ``worker_id``: it becomes PENDING at the *head* of
        its queue (started time and worker cleared; the attempt is not counted). The worker
        becomes IDLE. Returns False (and changes nothing) if the worker does not hold it."""
        checks.check_worker_id(worker_id)
        checks.check_id(task_id)
        return self._requeue(worker_id, task_id)

    @abstractmethod
    def wait_for_work(self, worker_id: str, queues: Sequence[str], timeout_s: float) -> None:
        """Block until a task may have been pushed to one of ``queues`` (or a message sent to
        this worker), or ``timeout_s`` passed. May return early; the caller claims again.
        A push must wake a waiting worker within milliseconds."""
        ...

    def worker_log(self, worker_id: str, command: str, message: str) -> None:
        """Append one event to the worker's log (and refresh its last-seen time)."""
        checks.check_worker_id(worker_id)
        checks.check_text("log command", command)
        return self._worker_log(worker_id, command, message)

    def worker_exit(self, worker_id: str, message: str = "") -> None:
        """Mark a worker EXITED and log STOP with ``message``."""
        checks.check_worker_id(worker_id)
        return self._worker_exit(worker_id, message)

    @abstractmethod
    def workers(self, include_exited: bool = False) -> list[WorkerRecord]:
        """Active workers (IDLE/BUSY/PAUSED), oldest first; with ``include_exited`` also
        EXITED and LOST ones."""
        ...

    @abstractmethod
    def worker_log_tail(self, worker_id: str, n: int) -> list[LogEntry]:
        """The worker's last ``n`` log events, oldest first (all of them if ``n <= 0``)."""
        ...

    # ------------------------------------------------------------------ object store (issue 3)
    # Values are keyed by the BLAKE2b-256 hash of their bytes and held while at least one tag
    # refers to them: tagging a value twice with the same tag counts once; a value is deleted
    # with its last tag. An offloaded value (``Blob.data is None``) has its bytes in a file
    # the caller manages: verbs that delete values answer the hashes of the offloaded ones
    # deleted, so the caller removes their files. ``enqueue`` tags each task's ``blobs`` with
    # the task id; ``delete`` drops the tag of every deleted task (values it frees that were
    # offloaded are remembered until ``store_collect``).

    def store_put(self, tag: str, blobs: Sequence[Blob]) -> None:
        """Store each value (unless its hash is already stored) and tag it with ``tag``, all
        in one atomic transition."""
        checks.check_text("store tag", tag)
        checks.check_blobs(blobs)
        return self._store_put(tag, blobs)

    def store_get(self, hashes: Sequence[str]) -> list[Blob | None]:
        """Each value, in order: its bytes (``data``) or, if offloaded, ``data=None``; None
        for a hash that is not stored. One round trip."""
        checks.check_ids(hashes, "hashes")
        return self._store_get(hashes)

    def store_locations(self, hashes: Sequence[str]) -> list[str | None]:
        """Each value's location without its bytes: ``"backend"``, ``"offload"`` or None."""
        checks.check_ids(hashes, "hashes")
        return self._store_locations(hashes)

    @abstractmethod
    def store_list(self) -> list[str]:
        """Every stored hash, sorted."""
        ...

    @abstractmethod
    def store_tags(self) -> list[str]:
        """Every tag in use, sorted."""
        ...

    def store_drop(self, tags: Sequence[str]) -> list[str]:
        """Drop ``tags`` (atomic); values left without any tag are deleted. Answers the hashes
        of deleted values that were offloaded."""
        checks.check_ids(tags, "tags")
        return self._store_drop(tags)

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

    # ------------------------------------------------------------------ worker operations
    # Messages, pause/resume, saved worker configs, the worker environment (issue 5).
    # A worker's messages wait in its own FIFO. ``claim`` and ``finish`` (its claim part) take
    # no task while the worker has a message waiting, so a worker answers messages before it
    # takes its next task without an extra round trip per task; ``wait_for_work`` wakes on a
    # message too.

    def message_send(
        self, worker_ids: Sequence[str] | None, command: str, args: bytes
    ) -> tuple[str, list[str]]:
        """Append one message to the FIFO of each of ``worker_ids`` (None: every active
        worker, decided atomically with the send) and wake them. The message id derives from
        the backend's clock: ``"<seconds>.<microseconds>"``, unique and increasing within the
        namespace (bumped by a microsecond when the clock has not moved on), so ids sort by
        send time. Returns (message id, the worker ids it went to)."""
        checks.check_names("worker id", worker_ids)
        checks.check_text("message command", command)
        checks.check_bytes("message args", args)
        return self._message_send(worker_ids, command, args)

    @abstractmethod
    def message_take(self, worker_id: str) -> list[Message]:
        """Remove and return every message waiting for ``worker_id``, oldest first, logging
        MESSAGE for each; ``[]`` at the cost of a read when there is none."""
        ...

    def message_respond(
        self, worker_id: str, message_id: str, command: str, response: bytes
    ) -> None:
        """Store a worker's response (opaque bytes) to a message, log RESPONSE, and wake
        controllers waiting in ``wait_response``."""
        checks.check_worker_id(worker_id)
        checks.check_text("message id", message_id)
        checks.check_bytes("response", response)
        return self._message_respond(worker_id, message_id, command, response)

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

    # ------------------------------------------------------------------ fault tolerance (issue 4)
    # Heartbeats, lost workers, cancel/kill requests, delayed retries, manual retry (MOVED).
    # Implemented by ``sqlite_fault.SqliteFaultMixin`` and ``redis_fault.RedisFaultMixin``.

    def heartbeat(self, worker_id: str, ttl_s: float | None) -> Control:
        """Refresh the worker's heartbeat so that it lapses ``ttl_s`` seconds from now (None:
        only read, no heartbeat kept), refresh its last-seen time, and answer what the
        controller asks of it: a kill request, and a cancel request for the task it runs
        (a request for a task it no longer runs is dropped). Also tells whether the worker
        is still active (False once it was marked LOST or EXITED) and whether the backend
        knows it at all (``known``: False once its namespace was destroyed or the worker
        deleted; an unknown worker gets no heartbeat kept)."""
        checks.check_worker_id(worker_id)
        checks.check_seconds("ttl", ttl_s, optional=True)
        return self._heartbeat(worker_id, ttl_s)

    @abstractmethod
    def detect_lost(self) -> list[str]:
        """Atomically mark every active worker whose heartbeat lapsed LOST (log LOST) and
        release its running task as ``release_worker`` does. Returns the newly LOST ids."""
        ...

    def release_worker(self, worker_id: str, status: str, message: str) -> str | None:
        """The worker leaves (``status`` LOST or EXITED, logged with ``message``); its
        RUNNING task, if any, is re-queued at the HEAD of its queue (same id, the attempt
        stays counted) when ``attempt <= options["retries"]``, else it becomes DIED (finished
        time set, dependants IMPOSSIBLE). Returns the released task id, if any."""
        checks.check_worker_id(worker_id)
        checks.check_gone(status)
        return self._release_worker(worker_id, status, message)

    def request_cancel(self, task_id: str) -> TaskStatus:
        """Ask the worker running ``task_id`` to stop it (it then finishes it CANCELLED).
        Returns the task's status; only a RUNNING task gets a request."""
        checks.check_id(task_id)
        return self._request_cancel(task_id)

    def request_kill(self, worker_ids: Sequence[str]) -> None:
        """Ask active workers to exit at once (seen by their next ``heartbeat``)."""
        checks.check_names("worker id", worker_ids)
        return self._request_kill(worker_ids)

    def retry_later(self, worker_id: str, task_id: str, delay_s: float, result: bytes) -> bool:
        """A RUNNING task held by ``worker_id`` waits ``delay_s`` seconds for its next attempt:
        it becomes PENDING outside any queue, recorded in the time-ordered delayed set/table
        with its due time (``result`` is kept as the last error). The worker becomes IDLE.
        False (nothing changed) if the worker does not hold the task."""
        checks.check_worker_id(worker_id)
        checks.check_id(task_id)
        checks.check_seconds("delay", delay_s)
        checks.check_bytes("result", result)
        return self._retry_later(worker_id, task_id, delay_s, result)

    @abstractmethod
    def promote_due(self) -> float | None:
        """Push every delayed task that is due to the tail of its queue (waking workers).
        Returns the due time of the next delayed task still waiting, or None."""
        ...

    def retry_tasks(
        self, pairs: Sequence[tuple[str, str]], payloads: Sequence[bytes] | None = None
    ) -> list[TaskStatus]:
        """Manual retry, all or none: for each (old, new) a new PENDING task ``new`` with the
        old one's queue and options, and the payload ``payloads[i]`` (the old one's if
        ``payloads`` is None: a signed payload is bound to its task id, so the controller
        re-seals it for the new id), goes to the tail of its queue, and ``old`` becomes
        MOVED, pointing to ``new``. Each old task must be finished (not MOVED).
        Raises ``UnknownTaskError`` / ``TaskStateError`` naming the first bad id. Returns
        the old statuses."""
        checks.check_retries(pairs, payloads)
        return self._retry_tasks(pairs, payloads)

    def resolve(self, ids: Sequence[str]) -> list[str]:
        """Each id followed along its MOVED chain to the newest task (itself if not moved)."""
        checks.check_ids(ids)
        return self._resolve(ids)

    def chain(self, task_id: str) -> Chain:
        """The retry chain of a task (every id, oldest first) and, if it waits for a delayed
        retry, the due time."""
        checks.check_id(task_id)
        return self._chain(task_id)

    # ------------------------------------------------------------------ progress
    def progress_set(self, task_id: str, value: bytes) -> None:
        """Store a running task's latest progress value (sealed bytes), replacing the last."""
        checks.check_id(task_id)
        checks.check_bytes("progress value", value)
        return self._progress_set(task_id, value)

    def progress_get(self, task_id: str) -> bytes | None:
        """The task's latest progress value, or None if it never posted one."""
        checks.check_id(task_id)
        return self._progress_get(task_id)

    # ------------------------------------------------------------------ primitives
    # What each backend implements for the verbs above that check their arguments first.

    @abstractmethod
    def _enqueue(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        """``enqueue``, its arguments checked."""

    @abstractmethod
    def _status(self, ids: Sequence[str]) -> list[TaskStatus]:
        """``status``, its arguments checked."""

    @abstractmethod
    def _records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        """``records``, its arguments checked."""

    @abstractmethod
    def _payload(self, task_id: str) -> bytes | None:
        """``payload``, its arguments checked."""

    @abstractmethod
    def _payloads(self, ids: Sequence[str]) -> list[bytes | None]:
        """``payloads``, its arguments checked."""

    @abstractmethod
    def _results(self, ids: Sequence[str]) -> list[bytes | None]:
        """``results``, its arguments checked."""

    @abstractmethod
    def _times(self, ids: Sequence[str]) -> list[TaskTimes]:
        """``times``, its arguments checked."""

    @abstractmethod
    def _cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        """``cancel_queued``, its arguments checked."""

    @abstractmethod
    def _remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        """``remove_from_queue``, its arguments checked."""

    @abstractmethod
    def _delete(self, ids: Sequence[str], check: bool) -> None:
        """``delete``, its arguments checked."""

    @abstractmethod
    def _register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        """``register_worker``, its arguments checked."""

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
    def _worker_log(self, worker_id: str, command: str, message: str) -> None:
        """``worker_log``, its arguments checked."""

    @abstractmethod
    def _worker_exit(self, worker_id: str, message: str = "") -> None:
        """``worker_exit``, its arguments checked."""

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

    @abstractmethod
    def _heartbeat(self, worker_id: str, ttl_s: float | None) -> Control:
        """``heartbeat``, its arguments checked."""

    @abstractmethod
    def _release_worker(self, worker_id: str, status: str, message: str) -> str | None:
        """``release_worker``, its arguments checked."""

    @abstractmethod
    def _request_cancel(self, task_id: str) -> TaskStatus:
        """``request_cancel``, its arguments checked."""

    @abstractmethod
    def _request_kill(self, worker_ids: Sequence[str]) -> None:
        """``request_kill``, its arguments checked."""

    @abstractmethod
    def _retry_later(self, worker_id: str, task_id: str, delay_s: float, result: bytes) -> bool:
        """``retry_later``, its arguments checked."""

    @abstractmethod
    def _retry_tasks(
        self, pairs: Sequence[tuple[str, str]], payloads: Sequence[bytes] | None = None
    ) -> list[TaskStatus]:
        """``retry_tasks``, its arguments checked."""

    @abstractmethod
    def _resolve(self, ids: Sequence[str]) -> list[str]:
        """``resolve``, its arguments checked."""

    @abstractmethod
    def _chain(self, task_id: str) -> Chain:
        """``chain``, its arguments checked."""

    @abstractmethod
    def _progress_set(self, task_id: str, value: bytes) -> None:
        """``progress_set``, its arguments checked."""

    @abstractmethod
    def _progress_get(self, task_id: str) -> bytes | None:
        """``progress_get``, its arguments checked."""
