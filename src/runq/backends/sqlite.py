"""The SQLite backend: one file shared by the controller and every local worker process.

Each state transition of ``base.Backend`` is one ``BEGIN IMMEDIATE`` transaction; reads that
take several statements run in one read transaction, so they see one snapshot. The file is in
WAL mode (readers never block the writer) with ``synchronous=NORMAL`` and a 30 s busy timeout.
Blocking waits poll ``PRAGMA data_version`` (it changes when another connection commits) with
back-off from 0.5 ms to 20 ms, then re-check the state they wait for. Errors go through
``sqlite_error``: a database locked past the busy timeout is ``BackendUnavailable`` (a worker
waits it out); a read-only, corrupt or foreign file, a full disk … is ``BackendError``.

Tables (created by ``schema.sql``; every statement run on them is named in ``sqlite_sql.py``).
Every table has an ``ns`` column, the namespace, so one file may hold many queue ids:

================= ==================================================================
meta              (ns, key) -> value: ``schema_version`` of the namespace
tasks             one row per task; rowid ``seq`` = submission order; status, queue,
                  options (JSON), worker_id, pid, attempt, times, payload, result
deps              (ns, task, pos) -> dep: ``task`` depends on ``dep`` (indexed both ways)
queue_entries     (ns, queue, seq) -> task_id: the PENDING tasks; head = lowest seq
queues            (ns, queue): every queue that has ever held a task
workers           one row per worker id: status, info (JSON), task_id, started, last_seen
worker_log        (ns, worker_id, time, command, message, child), oldest first by rowid
messages          (ns, worker_id, id) -> command, args: each worker's waiting messages
                  (``sqlite_ops.py``); ``_claim`` takes no task while the worker has one
message_responses (ns, worker_id, id) -> response
worker_configs    (ns, name) -> WorkerConfig JSON;  worker_envir (ns) -> sealed create()
store_values      (ns, hash) -> size, data (NULL if offloaded): the object store
store_tags        (ns, tag, hash): which tags hold which values (``sqlite_store.py``)
store_orphans     (ns, hash): offloaded values freed by task deletions
================= ==================================================================

Invariant kept by every transition: a task has a ``queue_entries`` row iff it is PENDING.

Lists of ids cross into SQL as one JSON array parameter joined through ``json_each``, so any
number of ids costs one statement, keeps the caller's order and repeats duplicates.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from typing import Any

from runq.backends import redact_url
from runq.backends import sqlite_sql as sql
from runq.backends.base import SCHEMA_VERSION, Backend
from runq.backends.records import WorkerRecord
from runq.backends.sqlite_dedup import SqliteDedupMixin
from runq.backends.sqlite_fault import SqliteFaultMixin
from runq.backends.sqlite_ops import SqliteOpsMixin
from runq.backends.sqlite_store import SqliteStoreMixin
from runq.exceptions import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    SchemaVersionMismatch,
    TaskStateError,
    UnknownNamespaceError,
    UnknownTaskError,
)
from runq.models import (
    FAILED_STATUSES,
    ClaimedTask,
    LogEntry,
    NewTask,
    TaskRecord,
    TaskStatus,
    TaskTimes,
)

__all__ = ["SqliteBackend"]

BUSY_TIMEOUT_S = 30.0
POLL_FIRST_S = 0.0005
POLL_MAX_S = 0.02
POLL_GROWTH = 1.5

_STATUS = {s.value: s for s in TaskStatus}
_PENDING, _DEFERRED, _COMPLETE = TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.COMPLETE
_IMPOSSIBLE, _MISSING = TaskStatus.IMPOSSIBLE, TaskStatus.MISSING
_DISCARDED = TaskStatus.DISCARDED
_ACTIVE_WORKER = ("IDLE", "BUSY", "PAUSED")
_GONE_WORKER = ("LOST", "EXITED")  # may not claim; an unknown worker id may
#: The log event of a finished task (every other finished status logs TASK_ERROR).
_FINISH_EVENT = {TaskStatus.COMPLETE: "TASK_COMPLETE", TaskStatus.CANCELLED: "TASK_CANCEL"}


#: SQLite's primary result codes (``sqlite_errorcode & 0xff``) of a database that is only busy
#: for now (another connection held a lock past the busy timeout): ``BackendUnavailable``.
_BUSY_CODES = frozenset({5, 6, 15})  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_PROTOCOL
#: What to fix, for the codes that waiting does not cure (``BackendError``).
_HINTS = {
    8: "the file or its directory is read-only for this user",  # SQLITE_READONLY
    10: "the disk failed to read or write it",  # SQLITE_IOERR
    11: "the file is corrupt: restore it from a backup or delete it",  # SQLITE_CORRUPT
    13: "the disk is full",  # SQLITE_FULL
    14: "check the path and the permissions of the file and its directory",  # SQLITE_CANTOPEN
    26: "the file is not an SQLite database: check the path",  # SQLITE_NOTADB
}


def sqlite_error(err: sqlite3.Error, address: str, doing: str = "") -> BackendError:
    """The runq exception for an ``sqlite3`` one: ``BackendUnavailable`` while another
    connection holds the database locked (a worker may wait it out), else ``BackendError``
    saying what to fix (a read-only, corrupt or foreign file, a full disk …)."""
    code = getattr(err, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    where = f"SQLite database {address}" + (f": {doing}" if doing else "")
    if primary in _BUSY_CODES or (primary is None and "locked" in str(err)):
        return BackendUnavailable(f"{where}: {err} (another process holds it locked)")
    hint = _HINTS.get(primary or 0)
    return BackendError(f"{where}: {err}" + (f" ({hint})" if hint else ""))


def _path_of(url: str) -> str:
    """The absolute file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(
            f"invalid SQLite URL {redact_url(url)!r}: use sqlite:///relative/file.db or "
            "sqlite:////absolute/file.db"
        )
    path = url[len(prefix) :]
    if "?" in path or path == ":memory:":
        raise ConfigError(
            f"unsupported SQLite URL {redact_url(url)!r}: give a file path, without query "
            "parameters (workers in other processes must be able to open it)"
        )
    return os.path.abspath(path)


def _ids_json(ids: Sequence[str]) -> str:
    return json.dumps(list(ids))


def _distinct(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _status(value: str | None) -> TaskStatus:
    return _MISSING if value is None else _STATUS[value]


def _first_duplicate(ids: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            return task_id
        seen.add(task_id)
    return None


def _initial_statuses(tasks: Sequence[NewTask], dep_status: dict[str, str]) -> list[TaskStatus]:
    """Each new task's status from its dependencies' (``dep_status`` holds the stored ones;
    earlier tasks of the batch are added as they are decided)."""
    known = dict(dep_status)
    statuses = []
    for task in tasks:
        status = _PENDING
        if task.depends_on:
            deps = [known[d] for d in task.depends_on]
            if any(s in FAILED_STATUSES for s in deps):
                status = _IMPOSSIBLE
            elif any(s != _COMPLETE for s in deps):
                status = _DEFERRED
        known[task.id] = status
        statuses.append(status)
    return statuses


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """(key, value) pairs -> key: its values, in order."""
    groups: dict[str, list[str]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return {key: tuple(values) for key, values in groups.items()}


def _loads_each(texts: list[str]) -> list[Any]:
    """``[json.loads(t) for t in texts]`` in one parse (each text is one JSON value)."""
    return list(json.loads("[" + ",".join(texts) + "]"))


class SqliteBackend(SqliteStoreMixin, SqliteOpsMixin, SqliteDedupMixin, SqliteFaultMixin, Backend):
    """``base.Backend`` on an SQLite file (see the module docstring for the layout)."""

    def __init__(
        self, url: str, namespace: str, *, check_version: bool = True, create: bool = True
    ) -> None:
        self.namespace = namespace
        self.address = _path_of(url)
        self._lock = threading.Lock()  # guards self._conn
        self._watch_lock = threading.Lock()  # guards self._watch
        if not create and not os.path.isfile(self.address):  # connecting would create it
            raise UnknownNamespaceError(namespace, self.address, [])
        self._conn = self._connect()
        try:
            self._init_namespace(check_version, create)
            self._watch = self._connect()  # only polls PRAGMA data_version
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ plumbing
    def _error(self, err: sqlite3.Error) -> BackendError:
        return sqlite_error(err, self.address)

    def _connect(self) -> sqlite3.Connection:
        try:
            os.makedirs(os.path.dirname(self.address), exist_ok=True)
        except OSError as err:
            raise BackendError(f"cannot create the directory of {self.address}: {err}") from err
        conn = None
        try:
            conn = sqlite3.connect(
                self.address,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as err:
            if conn is not None:
                conn.close()
            raise sqlite_error(err, self.address, "cannot open it") from err
        return conn

    def _init_namespace(self, check_version: bool, create: bool = True) -> None:
        """Create the tables and the namespace (its schema version) if missing, purge the
        namespaces whose ``destroy(delete=N)`` came due, and check the version. Without
        ``create``, a namespace that does not exist is an ``UnknownNamespaceError`` and
        nothing is written."""
        from runq.namespaces import sqlite_namespaces

        if not create:  # checked before the tables are created: a read writes nothing
            with self._read() as conn:
                existing = sqlite_namespaces(conn)
            if self.namespace not in existing:
                raise UnknownNamespaceError(self.namespace, self.address, existing)
        schema = resources.files("runq.backends").joinpath("schema.sql").read_text("utf-8")
        with self._lock:
            try:  # executescript would COMMIT an open transaction: the script brings its own
                self._conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\nCOMMIT;")
            except sqlite3.Error as err:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise sqlite_error(err, self.address, "cannot create runq's tables") from err
        with self._write() as conn:
            for (expired,) in conn.execute(sql.EXPIRED, (time.time(),)).fetchall():
                for statement in sql.DESTROY:  # destroy(delete=N) came due: see expire()
                    conn.execute(statement, (expired,))
            row = conn.execute(sql.VERSION_GET, (self.namespace,)).fetchone()
            if row is None and not create:  # it was destroyed since the check above
                existing = sqlite_namespaces(conn)
                raise UnknownNamespaceError(self.namespace, self.address, existing)
            if row is None:
                conn.execute(sql.VERSION_SET, (self.namespace, str(SCHEMA_VERSION)))
            elif check_version and row[0] != str(SCHEMA_VERSION):
                raise SchemaVersionMismatch(
                    f"queue {self.namespace!r} in {self.address} was written with runq schema "
                    f"version {row[0]}, this runq uses version {SCHEMA_VERSION}: use the runq "
                    "version that wrote it, destroy the queue, or pass check_version=False"
                )

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute(begin)
                yield conn
                conn.execute("COMMIT")
            except BaseException as err:
                if conn.in_transaction:
                    conn.rollback()
                if isinstance(err, sqlite3.Error):
                    raise self._error(err) from err
                raise

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction("BEGIN")

    def _fetchall(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self._read() as conn:
            return conn.execute(statement, params).fetchall()

    def _data_version(self) -> int:
        with self._watch_lock:
            try:
                return int(self._watch.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as err:
                raise self._error(err) from err

    # ------------------------------------------------------------------ lifecycle
    def now(self) -> float:
        return time.time()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._watch_lock:
            self._watch.close()

    def destroy(self) -> None:
        with self._write() as conn:
            for statement in sql.DESTROY:
                conn.execute(statement, (self.namespace,))

    def expire(self, seconds: float) -> None:
        with self._write() as conn:
            conn.execute(sql.EXPIRE_SET, (self.namespace, repr(time.time() + seconds)))

    # ------------------------------------------------------------------ submission
    def _enqueue(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        if not tasks:
            return []
        now = time.time()
        ns = self.namespace
        with self._write() as conn:
            dep_status = self._check_new(conn, tasks)
            statuses = _initial_statuses(tasks, dep_status)
            if any(t.dedup_key is not None for t in tasks):
                statuses = self._dedup_admit(conn, tasks, statuses)
            conn.executemany(
                sql.TASK_INSERT,
                (
                    (
                        ns,
                        t.id,
                        t.queue,
                        st.value,
                        json.dumps(t.options),
                        now,
                        now if st is _IMPOSSIBLE or st is _DISCARDED else None,
                        t.payload,
                    )
                    for t, st in zip(tasks, statuses, strict=True)
                ),
            )
            conn.executemany(
                sql.DEP_INSERT,
                (
                    (ns, t.id, pos, dep)
                    for t in tasks
                    for pos, dep in enumerate(dict.fromkeys(t.depends_on))
                ),
            )
            pending = [
                (t.queue, t.id) for t, st in zip(tasks, statuses, strict=True) if st is _PENDING
            ]
            self._push(conn, pending)
            self._store_put_tasks(conn, tasks)
        return statuses

    def _check_new(self, conn: sqlite3.Connection, tasks: Sequence[NewTask]) -> dict[str, str]:
        """Raise if a task id exists or a dependency is unknown; return the statuses of the
        dependencies stored before this batch."""
        ids = [t.id for t in tasks]
        dup = _first_duplicate(ids)
        if dup is not None:
            raise ConfigError(f"task id {dup!r} appears twice in one enqueue batch")
        row = conn.execute(sql.EXISTING_IDS, (self.namespace, _ids_json(ids))).fetchone()
        if row is not None:
            raise ConfigError(
                f"task id {row[0]!r} already exists in queue {self.namespace!r}: "
                "delete it first or use a new id"
            )
        deps = _distinct([d for t in tasks for d in t.depends_on])
        if not deps:
            return {}
        rows = conn.execute(sql.STATUS_OF, (self.namespace, _ids_json(deps))).fetchall()
        known: dict[str, str] = dict(rows)
        earlier: set[str] = set()
        for t in tasks:
            for dep in t.depends_on:
                if dep not in known and dep not in earlier:
                    raise UnknownTaskError(
                        f"task {t.id!r} depends on {dep!r}, which is not a task of queue "
                        f"{self.namespace!r} (nor an earlier task of the same batch)"
                    )
            earlier.add(t.id)
        return known

    def _push(
        self, conn: sqlite3.Connection, entries: list[tuple[str, str]], head: bool = False
    ) -> None:
        """Push (queue, task_id) pairs to the tail of their queues, in order; with ``head``,
        to the head, the first pair ending up first."""
        by_queue: dict[str, list[str]] = {}
        for queue, task_id in entries:
            by_queue.setdefault(queue, []).append(task_id)
        ns, rows = self.namespace, list[tuple[str, str, int, str]]()
        for queue, ids in by_queue.items():
            if head:
                (first,) = conn.execute(sql.QUEUE_FIRST, (ns, queue)).fetchone()
                start = (first or 0) - len(ids)
            else:
                (last,) = conn.execute(sql.QUEUE_LAST, (ns, queue)).fetchone()
                start = (last or 0) + 1
            rows.extend((ns, queue, start + i, task_id) for i, task_id in enumerate(ids))
        conn.executemany(sql.QUEUE_REGISTER, ((ns, queue) for queue in by_queue))
        conn.executemany(sql.QUEUE_PUSH, rows)

    # ------------------------------------------------------------------ inspection
    def _status(self, ids: Sequence[str]) -> list[TaskStatus]:
        rows = self._fetchall(sql.STATUS, (self.namespace, _ids_json(ids)))
        return [_status(r[0]) for r in rows]

    def _records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        ns, distinct = self.namespace, _ids_json(_distinct(ids))
        with self._read() as conn:
            rows = conn.execute(sql.RECORDS, (ns, _ids_json(ids))).fetchall()
            depends_on = _group(conn.execute(sql.DEPENDS_ON, (ns, distinct)))
            dependants = _group(conn.execute(sql.DEPENDANTS, (ns, distinct)))
        options = iter(_loads_each([r[3] for r in rows if r[0] is not None]))
        return [
            None
            if r[0] is None
            else TaskRecord(
                id=r[0],
                status=_STATUS[r[1]],
                queue=r[2],
                options=next(options),
                worker_id=r[4],
                pid=r[5],
                depends_on=depends_on.get(r[0], ()),
                dependants=dependants.get(r[0], ()),
                attempt=r[6],
                times=TaskTimes(r[7], r[8], r[9]),
            )
            for r in rows
        ]

    def _payloads(self, ids: Sequence[str]) -> list[bytes | None]:
        rows = self._fetchall(sql.PAYLOADS, (self.namespace, _ids_json(ids)))
        return [None if r[0] is None else bytes(r[0]) for r in rows]

    def _progress_set(self, task_id: str, value: bytes) -> None:
        with self._write() as conn:
            conn.execute(sql.PROGRESS_SET, (self.namespace, task_id, value))

    def _progress_get(self, task_id: str) -> bytes | None:
        rows = self._fetchall(sql.PROGRESS_GET, (self.namespace, task_id))
        return bytes(rows[0][0]) if rows else None

    def _results(self, ids: Sequence[str]) -> list[bytes | None]:
        rows = self._fetchall(sql.RESULTS, (self.namespace, _ids_json(ids)))
        return [r[0] for r in rows]

    def _times(self, ids: Sequence[str]) -> list[TaskTimes]:
        rows = self._fetchall(sql.TIMES, (self.namespace, _ids_json(ids)))
        return [TaskTimes(*r) for r in rows]

    def list_tasks(self) -> list[str]:
        return [r[0] for r in self._fetchall(sql.LIST_TASKS, (self.namespace,))]

    def overview(self) -> dict[TaskStatus, int]:
        return {_STATUS[s]: n for s, n in self._fetchall(sql.OVERVIEW, (self.namespace,))}

    def queue_tasks(self, queue: str) -> list[str]:
        return [r[0] for r in self._fetchall(sql.QUEUE_TASKS, (self.namespace, queue))]

    def queue_lengths(self) -> dict[str, int]:
        return dict(self._fetchall(sql.QUEUE_LENGTHS, (self.namespace,)))

    def deferred(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for task_id, dep in self._fetchall(sql.DEFERRED, (self.namespace,)):
            waiting = out.setdefault(task_id, [])
            if dep is not None:
                waiting.append(dep)
        return out

    def wait_change(self, ids: Sequence[str], timeout_s: float) -> None:
        distinct = _distinct(ids)
        if not distinct:
            return
        params = (self.namespace, _ids_json(distinct))

        def some_finished() -> bool:  # or unknown (MISSING)
            (unfinished,) = self._fetchall(sql.COUNT_UNFINISHED, params)[0]
            return bool(unfinished < len(distinct))

        self._poll(some_finished, timeout_s)

    def _poll(self, ready: Callable[[], bool], timeout_s: float) -> None:
        """Return once ``ready()`` is true, re-checking it whenever another connection has
        committed, or after ``timeout_s``. Polls ``PRAGMA data_version`` with back-off, and
        never spends more than about half its time in ``ready()``."""
        deadline = time.monotonic() + timeout_s
        version = self._data_version()  # before the first check: no commit goes unseen
        if ready():
            return
        delay = POLL_FIRST_S
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(delay, left))
            delay = min(delay * POLL_GROWTH, POLL_MAX_S)
            current = self._data_version()
            if current != version:
                version = current
                checked = time.monotonic()
                if ready():
                    return
                delay = max(delay, time.monotonic() - checked)

    # ------------------------------------------------------------------ controller transitions
    def _cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        ns = self.namespace
        with self._write() as conn:
            before = [_status(r[0]) for r in conn.execute(sql.STATUS, (ns, _ids_json(ids)))]
            queued = (TaskStatus.PENDING, TaskStatus.DEFERRED)
            targets = _distinct([i for i, s in zip(ids, before, strict=True) if s in queued])
            self._cancel(conn, targets)
        return before

    def _remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        with self._write() as conn:
            rows = conn.execute(sql.QUEUED_AMONG, (self.namespace, _ids_json(ids), queue))
            targets = [r[0] for r in rows]
            self._cancel(conn, targets)
        return len(targets)

    def _cancel(self, conn: sqlite3.Connection, targets: list[str]) -> None:
        """PENDING/DEFERRED ``targets`` become CANCELLED, leave their queue, and their
        dependants become IMPOSSIBLE."""
        if targets:
            params = (self.namespace, _ids_json(targets), time.time())
            conn.execute(sql.CANCEL, params)
            conn.execute(sql.UNQUEUE, params[:2])
            conn.execute(sql.MAKE_IMPOSSIBLE, params)
            self._dedup_release(conn, targets)

    def _delete(self, ids: Sequence[str], check: bool) -> None:
        ns = self.namespace
        with self._write() as conn:
            found = conn.execute(sql.STATUS_OF, (ns, _ids_json(_distinct(ids)))).fetchall()
            if not found:
                return
            status = dict(found)
            if check:
                running = [i for i in ids if status.get(i) == TaskStatus.RUNNING]
                if running:
                    raise TaskStateError(
                        f"task {running[0]!r} is RUNNING: cancel it first, or delete with "
                        "check=False"
                    )
            incomplete = [i for i, s in found if s != TaskStatus.COMPLETE]
            if incomplete:
                conn.execute(sql.MAKE_IMPOSSIBLE, (ns, _ids_json(incomplete), time.time()))
            params = (ns, _ids_json(list(status)))
            self._dedup_release(conn, list(status))
            conn.execute(sql.UNQUEUE, params)
            conn.execute(sql.DELETE_DEPS_OF, params)
            conn.execute(sql.DELETE_DEPS_ON, params)
            conn.execute(sql.DELETE_TASKS, params)
            conn.execute(sql.PROGRESS_DELETE, params)
            self._store_untag(conn, list(status), orphan=True)

    # ------------------------------------------------------------------ worker transitions
    def _register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            if self._worker_state(conn, worker_id)[0] in _ACTIVE_WORKER:
                raise ConfigError(
                    f"worker id {worker_id!r} is already in use by an active worker of queue "
                    f"{ns!r}: choose another id"
                )
            conn.execute(sql.WORKER_REGISTER, (ns, worker_id, json.dumps(info), now, now))
            conn.execute(sql.LOG, (ns, worker_id, now, "ALIVE", ""))

    def _claim(self, worker_id: str, queues: Sequence[str], pid: int) -> ClaimedTask | None:
        if not self._work_ready(queues):  # a read: idle workers never take the write lock
            return None
        with self._write() as conn:
            if self._worker_state(conn, worker_id)[0] in _GONE_WORKER:
                return None
            return self._claim_in(conn, worker_id, queues, pid, time.time())

    def _worker_state(
        self, conn: sqlite3.Connection, worker_id: str
    ) -> tuple[str | None, str | None]:
        """(status, task_id) of a worker; (None, None) for an unknown id."""
        row = conn.execute(sql.WORKER_STATE, (self.namespace, worker_id)).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def _claim_in(
        self, conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], pid: int, now: float
    ) -> ClaimedTask | None:
        """claim() inside the caller's transaction, for a worker allowed to claim."""
        if self._has_messages(worker_id, conn):  # messages first: the worker answers them
            return None
        ns = self.namespace
        task_id = self._pop(conn, worker_id, queues, pid, now)
        if task_id is None:
            return None
        queue, payload, options, attempt = conn.execute(sql.TASK_CLAIMED, (ns, task_id)).fetchone()
        conn.execute(sql.LOG, (ns, worker_id, now, "TASK_START", task_id))
        conn.execute(sql.WORKER_BUSY, (ns, worker_id, task_id, now))
        return ClaimedTask(task_id, queue, payload, json.loads(options), attempt)

    def _pop(
        self, conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], pid: int, now: float
    ) -> str | None:
        """Take the head of the first non-empty queue and make it RUNNING; return its id."""
        ns = self.namespace
        for queue in queues:
            while (head := conn.execute(sql.QUEUE_HEAD, (ns, queue)).fetchone()) is not None:
                seq, task_id = head
                conn.execute(sql.QUEUE_POP, (ns, queue, seq))
                if conn.execute(sql.TASK_START, (worker_id, pid, now, ns, task_id)).rowcount:
                    return str(task_id)
        return None

    def _finish(
        self,
        worker_id: str,
        task_id: str,
        status: TaskStatus,
        result: bytes | None,
        next_queues: Sequence[str] | None = None,
        pid: int = 0,
    ) -> tuple[bool, ClaimedTask | None]:
        if status in (TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.RUNNING):
            raise ConfigError(f"finish() needs a finished status, not {status.value}")
        now = time.time()
        with self._write() as conn:
            done = self._finish_in(conn, worker_id, task_id, status, result, now)
            worker_status, worker_task = self._worker_state(conn, worker_id)
            if worker_status in _GONE_WORKER:  # it re-registers under a new id
                return done, None
            claimed = (
                self._claim_in(conn, worker_id, next_queues, pid, now) if next_queues else None
            )
            if claimed is None and (done or worker_task == task_id):
                conn.execute(sql.WORKER_IDLE, (now, self.namespace, worker_id))
        return done, claimed

    def _finish_in(
        self,
        conn: sqlite3.Connection,
        worker_id: str,
        task_id: str,
        status: TaskStatus,
        result: bytes | None,
        now: float,
    ) -> bool:
        """Store the outcome and release or doom the dependants; the worker is left as is."""
        ns = self.namespace
        params = (status.value, result, now, ns, task_id, worker_id)
        if not conn.execute(sql.TASK_FINISH, params).rowcount:
            return False
        command = _FINISH_EVENT.get(status, "TASK_ERROR")
        conn.execute(sql.LOG, (ns, worker_id, now, command, task_id))
        self._dedup_release(conn, [task_id])
        if conn.execute(sql.HAS_DEPENDANTS, (ns, task_id)).fetchone() is None:
            return True
        if status is TaskStatus.COMPLETE:
            released = conn.execute(sql.RELEASABLE, (ns, task_id)).fetchall()
            conn.executemany(sql.RELEASE, ((ns, tid) for tid, _ in released))
            self._push(conn, [(queue, tid) for tid, queue in released])
        elif status in FAILED_STATUSES:
            conn.execute(sql.MAKE_IMPOSSIBLE, (ns, json.dumps([task_id]), now))
        return True

    def _requeue(self, worker_id: str, task_id: str) -> bool:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            if not conn.execute(sql.TASK_REQUEUE, (ns, task_id, worker_id)).rowcount:
                return False
            (queue,) = conn.execute(sql.TASK_QUEUE, (ns, task_id)).fetchone()
            self._push(conn, [(queue, task_id)], head=True)
            conn.execute(sql.WORKER_IDLE, (now, ns, worker_id))
            conn.execute(sql.LOG, (ns, worker_id, now, "TASK_REQUEUE", task_id))
        return True

    def wait_for_work(self, worker_id: str, queues: Sequence[str], timeout_s: float) -> None:
        self._poll(lambda: self._has_messages(worker_id) or self._work_ready(queues), timeout_s)

    def _work_ready(self, queues: Sequence[str]) -> bool:
        return bool(self._fetchall(sql.WORK_READY, (self.namespace, _ids_json(queues))))

    def _worker_log(self, worker_id: str, command: str, message: str) -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            conn.execute(sql.LOG, (ns, worker_id, now, command, message))
            conn.execute(sql.WORKER_SEEN, (now, ns, worker_id))

    def _worker_exit(self, worker_id: str, message: str = "") -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            conn.execute(sql.WORKER_EXIT, (now, ns, worker_id))
            conn.execute(sql.LOG, (ns, worker_id, now, "STOP", message))

    def workers(self, include_exited: bool = False) -> list[WorkerRecord]:
        rows = self._fetchall(sql.WORKERS, (self.namespace, include_exited))
        return [
            WorkerRecord(worker_id, status, json.loads(info), task_id, started, last_seen)
            for worker_id, status, info, task_id, started, last_seen in rows
        ]

    def worker_log_tail(self, worker_id: str, n: int) -> list[LogEntry]:
        limit = n if n > 0 else -1
        rows = self._fetchall(sql.LOG_TAIL, (self.namespace, worker_id, limit))
        return [LogEntry(*r) for r in rows]
