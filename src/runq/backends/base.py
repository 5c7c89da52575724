"""The one backend contract: domain verbs, each an atomic state transition.

Two implementations follow it: ``sqlite.SqliteBackend`` (one ``BEGIN IMMEDIATE`` transaction per
transition) and ``redis.RedisBackend`` (one Lua script or MULTI per transition). Nothing above
this seam knows which backend it talks to; ``tests/test_backend_contract.py`` runs the same
suite against both.

``Backend`` is a base class in two layers:

- ``Backend`` (here): the verbs the base implements. Each checks its arguments once, for every
  backend (``checks.py``: ids, names, outcomes, hashes …), then calls the primitive of the same
  name with a leading underscore. So SQLite and Redis refuse the same inputs with the same
  errors, before anything is written. Composed reads (``resolve``, ``chain``, ``payload``) are
  written here once, over small primitives (``_moved_to``, ``_moved_from``, ``_retry_at``,
  ``_payloads``), and an empty batch is answered here without a round trip.
- ``primitives.Primitives``: what each backend implements, with its contract: the verbs that
  take nothing to check (``list_tasks``, ``workers`` …) and the ``_verb`` primitives.

Both follow the same sections, named like the modules of each backend package (``sqlite/``,
``redis/``): lifecycle, tasks, workers, liveness, retries, messaging, store.

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

from collections.abc import Callable, Sequence
from typing import Any

from runq.backends import checks
from runq.backends.records import Chain, Control
from runq.backends.timed import TimedVerbs
from runq.models import Blob, ClaimedTask, Limit, NewTask, TaskRecord, TaskStatus, TaskTimes

__all__ = ["SCHEMA_VERSION", "Backend"]

#: Bumped whenever the stored layout changes in a way older code cannot read (2: SCHEDULED,
#: schedules, limits, expiry records; a task's options stored only where not the default;
#: 3: on Redis one record per task holds its queue, submitted time, options and payload; on
#: SQLite queue entries name their task by rowid, in ``queue_items``; 4: on SQLite a task's
#: place in its queue is a column of its row, ``tasks.qpos``, and its payload is deflated;
#: 5: on Redis a PENDING task stores no status entry, its record holds its sequence number and
#: is keyed by the id's bytes, and the submission order is kept in blocks; 6: on SQLite a
#: task's status is stored as one letter, ``sqlite/core.py`` ``STATUS_CODES``).
SCHEMA_VERSION = 6
#: The longest MOVED chain ``resolve`` and ``chain`` follow.
_MAX_MOVES = 64


class Backend(TimedVerbs):
    """The domain-level operations runq needs from a store.

    Every transition is atomic: it happens whole or not at all, and other clients never see
    half of it.
    """

    # ------------------------------------------------------------------ submission
    # Tasks: ``tasks.py`` of each backend (Redis: a large batch in ``staging.py``).
    def enqueue(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        """Store new tasks, all or none however many they are (no task of a batch is visible
        before the others), and return each one's initial status.

        Each task is recorded with its submitted time and then becomes:
        - IMPOSSIBLE if any dependency is ERROR/CANCELLED/DIED/TIMEOUT/IMPOSSIBLE;
        - DEFERRED if some dependency is not yet COMPLETE (it is recorded as a dependant of
          each such dependency, and queued when the last one COMPLETEs);
        - PENDING otherwise, pushed to the tail of its queue (batch order kept);
        - SCHEDULED instead of PENDING or DEFERRED when the batch has a ``delay_s`` (one for
          the whole batch): due ``delay_s`` seconds from now on the backend's clock, it waits
          outside any queue (waking the workers of its queue so that they learn the new due
          time) until ``promote_due`` moves it.
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
        return self._enqueue(tasks) if tasks else []

    # ------------------------------------------------------------------ inspection
    # Reads of tasks (``inspection.py``).
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
        return self._payloads([task_id])[0]

    def payloads(self, ids: Sequence[str]) -> list[bytes | None]:
        """Each task's stored call (None for an unknown id); one round trip."""
        checks.check_ids(ids)
        return self._payloads(ids)

    def results(self, ids: Sequence[str]) -> list[bytes | None]:
        """Each task's stored outcome: the serialized result (COMPLETE) or serialized
        ``TaskError`` (ERROR, TIMEOUT, DIED, …); None where nothing is stored."""
        checks.check_ids(ids)
        return self._results(ids)

    def outcomes(self, ids: Sequence[str]) -> tuple[list[TaskStatus], list[bytes | None]]:
        """Each task's status (as ``status``) and stored outcome (as ``results``), read
        together: one round trip on Redis (the statuses first, so a finished status always
        comes with its outcome)."""
        checks.check_ids(ids)
        return self._outcomes(ids)

    def times(self, ids: Sequence[str]) -> list[TaskTimes]:
        """Each task's submitted/started/finished times; all None for an unknown id."""
        checks.check_ids(ids)
        return self._times(ids)

    def task_page(
        self,
        after: int | None,
        limit: int,
        scan: int,
        status: TaskStatus | None = None,
        queue: str | None = None,
        name: str | None = None,
    ) -> tuple[list[str], int | None]:
        """One page of the namespace's task ids, newest first, for listings that must stay
        fast however many tasks there are (one bounded read).

        Walks the tasks in reverse submission order, starting below the cursor ``after``
        (None: the newest), and keeps those whose status, queue and name (``options["name"]``)
        equal the filters given, until ``limit`` are kept or ``scan`` tasks were examined (a
        backend with an index for a filter may examine only the matching ones). Answers (the
        ids kept, the cursor to pass as ``after`` for the rest), the cursor None once the
        oldest task was examined. A page may hold fewer than ``limit`` ids while the cursor
        is not None (a rare filter): walking every page until None yields every matching task
        exactly once, newest first. Cursors are submission sequence numbers, comparable
        between the pages of one namespace only."""
        checks.check_page(after, limit, scan, status)
        checks.check_names("queue", None if queue is None else [queue])
        if name is not None:
            checks.check_text("name", name)
        wanted = None if status is None else TaskStatus(status)
        return self._task_page(after, limit, scan, wanted, queue, name)

    # ------------------------------------------------------------------ controller transitions
    # Tasks (``tasks.py``).
    def cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        """PENDING, DEFERRED or SCHEDULED tasks among ``ids`` become CANCELLED (finished time set),
        leave their queue, and their dependants become IMPOSSIBLE transitively. Other tasks are
        left as they are. Returns each task's status *before* the call (MISSING if unknown)."""
        checks.check_ids(ids)
        return self._cancel_queued(ids) if ids else []

    def remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        """Take PENDING tasks out of their queue (or only of ``queue`` if given): they become
        CANCELLED and their dependants IMPOSSIBLE. Returns how many were removed."""
        checks.check_ids(ids)
        checks.check_names("queue", None if queue is None else [queue])
        return self._remove_from_queue(ids, queue) if ids else 0

    def delete(self, ids: Sequence[str], check: bool) -> None:
        """Delete tasks: their records, payloads, results, progress values and queue entries.
        DEFERRED dependants of a deleted task that was not COMPLETE become IMPOSSIBLE. With
        ``check``, raise ``TaskStateError`` naming a RUNNING task and delete nothing. Unknown
        ids are ignored."""
        checks.check_ids(ids)
        if ids:
            self._delete(ids, check)

    # ------------------------------------------------------------------ worker transitions
    # Tasks (``tasks.py``).
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

    def progress_set(self, task_id: str, value: bytes) -> None:
        """Store a running task's latest progress value (sealed bytes), replacing the last."""
        checks.check_id(task_id)
        checks.check_bytes("progress value", value)
        return self._progress_set(task_id, value)

    def progress_get(self, task_id: str) -> bytes | None:
        """The task's latest progress value, or None if it never posted one."""
        checks.check_id(task_id)
        return self._progress_get(task_id)

    # ------------------------------------------------------------------ workers
    # Registration, the worker log, the list of workers (``workers.py``).
    def register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        """Record a new worker as IDLE (``info`` is JSON-able) and log ALIVE. Raises
        ``ConfigError`` if an active worker already has this id."""
        checks.check_worker_id(worker_id)
        return self._register_worker(worker_id, info)

    def worker_log(self, worker_id: str, command: str, message: str) -> None:
        """Append one event to the worker's log (and refresh its last-seen time)."""
        checks.check_worker_id(worker_id)
        checks.check_text("log command", command)
        return self._worker_log(worker_id, command, message)

    def worker_exit(self, worker_id: str, message: str = "") -> None:
        """Mark a worker EXITED and log STOP with ``message``."""
        checks.check_worker_id(worker_id)
        return self._worker_exit(worker_id, message)

    # ------------------------------------------------------------------ liveness
    # Heartbeats, lost workers, cancel/kill requests (``liveness.py`` of each backend).
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

    def duty_lease(self, worker_id: str, ttl_s: float) -> bool:
        """Take or renew the namespace's duty lease for ``worker_id`` (atomic): it is granted
        when no one holds it, its holder's lease lapsed, or ``worker_id`` holds it already,
        and only to an active worker (IDLE, BUSY or PAUSED); it then lapses ``ttl_s`` seconds
        from now. ``ttl_s`` 0 gives it up (if ``worker_id`` holds it). True if ``worker_id``
        holds it now. Its holder does the namespace's shared timed duties (lost workers, due
        tasks, schedules), so the other idle workers need not poll for them."""
        checks.check_worker_id(worker_id)
        checks.check_seconds("ttl", ttl_s)
        return self._duty_lease(worker_id, ttl_s)

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
        if worker_ids:
            self._request_kill(worker_ids)

    # ------------------------------------------------------------------ limits
    # Named limits (``limits.py`` of each backend).
    def limit_set(self, limit: Limit) -> None:
        """Create or replace a named limit (atomic). From then on, ``claim`` starts a task
        whose ``options["limit"]`` names it only while fewer than ``limit.concurrency`` of
        its tasks are RUNNING and fewer than the rate's count started in the last period (a
        sliding window: never more in any window of that length). A claim that meets a task
        over its limit sets it aside (it stays PENDING, out of its queue's list) and goes on
        down the queue, so tasks without that limit are not held up; a later claim takes the
        set-aside tasks first, in submission order, as soon as the limit allows. Changing a
        limit's rate restarts its window. ``ConfigError`` for a bad name, rate or
        concurrency."""
        checks.check_limit(limit)
        self._limit_set(limit)

    def limit_remove(self, name: str) -> bool:
        """Delete a named limit (atomic): its set-aside tasks go back to the head of their
        queues and run unlimited, as does any task that names a limit that does not exist.
        True if it existed."""
        checks.check_names("limit name", [name])
        return self._limit_remove(name)

    # ------------------------------------------------------------------ retries
    # Delayed retries, manual retry (MOVED) and the retry chain (``retries.py``).
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
        return self._retry_tasks(pairs, payloads) if pairs else []

    def resolve(self, ids: Sequence[str]) -> list[str]:
        """Each id followed along its MOVED chain to the newest task (itself if not moved)."""
        checks.check_ids(ids)
        out = list(ids)
        for _ in range(_MAX_MOVES):
            newer = self._moved_to(list(dict.fromkeys(out)))
            if not newer:
                break
            out = [newer.get(x, x) for x in out]
        return out

    def chain(self, task_id: str) -> Chain:
        """The retry chain of a task (every id, oldest first) and, if it waits for a delayed
        retry, the due time."""
        checks.check_id(task_id)
        older = self._follow(task_id, self._moved_from)
        newer = self._follow(task_id, self._moved_to)
        return Chain((*reversed(older), task_id, *newer), self._retry_at(task_id))

    @staticmethod
    def _follow(task_id: str, step: Callable[[Sequence[str]], dict[str, str]]) -> list[str]:
        """The ids met walking from ``task_id`` by ``step`` (``_moved_to`` or
        ``_moved_from``), nearest first."""
        out: list[str] = []
        current = task_id
        for _ in range(_MAX_MOVES):
            found = step([current]).get(current)
            if found is None:
                break
            out.append(found)
            current = found
        return out

    # ------------------------------------------------------------------ messaging
    # Messages, pause/resume, saved worker configs, the worker environment (``messaging.py``).
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

    def message_respond(
        self, worker_id: str, message_id: str, command: str, response: bytes
    ) -> None:
        """Store a worker's response (opaque bytes) to a message, log RESPONSE, and wake
        controllers waiting in ``wait_response``."""
        checks.check_worker_id(worker_id)
        checks.check_text("message id", message_id)
        checks.check_bytes("response", response)
        return self._message_respond(worker_id, message_id, command, response)

    # ------------------------------------------------------------------ store
    # The object store and the namespace settings (``store.py``).
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
        return self._store_get(hashes) if hashes else []

    def store_locations(self, hashes: Sequence[str]) -> list[str | None]:
        """Each value's location without its bytes: ``"backend"``, ``"offload"`` or None."""
        checks.check_ids(hashes, "hashes")
        return self._store_locations(hashes)

    def store_drop(self, tags: Sequence[str]) -> list[str]:
        """Drop ``tags`` (atomic); values left without any tag are deleted. Answers the hashes
        of deleted values that were offloaded."""
        checks.check_ids(tags, "tags")
        return self._store_drop(tags) if tags else []
