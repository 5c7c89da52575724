"""The SQLite backend: one file shared by the controller and every local worker process.

Each state transition of ``base.Backend`` is one ``BEGIN IMMEDIATE`` transaction; reads that
take several statements run in one read transaction, so they see one snapshot. The file is in
WAL mode (readers never block the writer) with ``synchronous=NORMAL`` and a 30 s busy timeout.
Blocking waits poll ``PRAGMA data_version`` (it changes when another connection commits) with
back-off from 0.5 ms to 20 ms, then re-check the state they wait for.

Tables (``schema.sql``; every one has an ``ns`` column, the namespace, so one file may hold many
queue ids):

============== ====================================================================
meta           (ns, key) -> value: ``schema_version`` of the namespace
tasks          one row per task; rowid ``seq`` = submission order; status, queue,
               options (JSON), worker_id, pid, attempt, times, payload, result
deps           (ns, task, pos) -> dep: ``task`` depends on ``dep`` (indexed both ways)
queue_entries  (ns, queue, seq) -> task_id: the PENDING tasks; head = lowest seq
queues         (ns, queue): every queue that has ever held a task
workers        one row per worker id: status, info (JSON), task_id, started, last_seen
worker_log     (ns, worker_id, time, command, message, child), oldest first by rowid
============== ====================================================================

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from typing import Any

from runq.backends.base import SCHEMA_VERSION, WorkerRecord
from runq.exceptions import (
    BackendUnavailable,
    ConfigError,
    SchemaVersionMismatch,
    TaskStateError,
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
_ACTIVE_WORKER = ("IDLE", "BUSY", "PAUSED")

# ---------------------------------------------------------------------------- namespace
SQL_VERSION_GET = "SELECT value FROM meta WHERE ns = ? AND key = 'schema_version'"
SQL_VERSION_SET = "INSERT INTO meta (ns, key, value) VALUES (?, 'schema_version', ?)"
SQL_DESTROY = [
    f"DELETE FROM {table} WHERE ns = ?"
    for table in ("tasks", "deps", "queue_entries", "queues", "workers", "worker_log", "meta")
]

# ---------------------------------------------------------------------------- tasks
SQL_TASK_INSERT = """
INSERT INTO tasks (ns, id, queue, status, options, submitted, finished, payload)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
SQL_DEP_INSERT = "INSERT INTO deps (ns, task, pos, dep) VALUES (?, ?, ?, ?)"
SQL_EXISTING_IDS = """
SELECT j.value FROM json_each(?2) j CROSS JOIN tasks t ON t.ns = ?1 AND t.id = j.value
ORDER BY j.key LIMIT 1"""
SQL_STATUS_OF = """
SELECT t.id, t.status FROM json_each(?2) j CROSS JOIN tasks t ON t.ns = ?1 AND t.id = j.value"""
SQL_STATUS = """
SELECT t.status FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value
ORDER BY j.key"""
SQL_RESULTS = """
SELECT t.result FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value
ORDER BY j.key"""
SQL_TIMES = """
SELECT t.submitted, t.started, t.finished
FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value ORDER BY j.key"""
SQL_RECORDS = """
SELECT t.id, t.status, t.queue, t.options, t.worker_id, t.pid, t.attempt,
       t.submitted, t.started, t.finished
FROM json_each(?2) j LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value ORDER BY j.key"""
SQL_DEPENDS_ON = """
SELECT d.task, d.dep FROM json_each(?2) j CROSS JOIN deps d ON d.ns = ?1 AND d.task = j.value
ORDER BY d.task, d.pos"""
SQL_DEPENDANTS = """
SELECT d.dep, d.task FROM json_each(?2) j CROSS JOIN deps d ON d.ns = ?1 AND d.dep = j.value
CROSS JOIN tasks t ON t.ns = ?1 AND t.id = d.task ORDER BY t.seq"""
SQL_COUNT_UNFINISHED = """
SELECT count(*) FROM json_each(?2) j CROSS JOIN tasks t ON t.ns = ?1 AND t.id = j.value
WHERE t.status IN ('PENDING', 'DEFERRED', 'RUNNING')"""
SQL_PAYLOAD = "SELECT payload FROM tasks WHERE ns = ? AND id = ?"
SQL_LIST_TASKS = "SELECT id FROM tasks WHERE ns = ? ORDER BY seq"
SQL_OVERVIEW = "SELECT status, count(*) FROM tasks WHERE ns = ? GROUP BY status"
SQL_DEFERRED = """
SELECT t.id, dt.id FROM tasks t
LEFT JOIN deps d ON d.ns = t.ns AND d.task = t.id
LEFT JOIN tasks dt ON dt.ns = d.ns AND dt.id = d.dep AND dt.status != 'COMPLETE'
WHERE t.ns = ? AND t.status = 'DEFERRED' ORDER BY t.seq, d.pos"""
SQL_CANCEL = """
UPDATE tasks SET status = 'CANCELLED', finished = ?3
WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2)) AND status IN ('PENDING', 'DEFERRED')"""
SQL_DELETE_TASKS = "DELETE FROM tasks WHERE ns = ?1 AND id IN (SELECT value FROM json_each(?2))"
SQL_DELETE_DEPS = """
DELETE FROM deps WHERE ns = ?1 AND (task IN (SELECT value FROM json_each(?2))
                                    OR dep IN (SELECT value FROM json_each(?2)))"""
# Every DEFERRED task downstream of the roots ?2 (a JSON array) becomes IMPOSSIBLE.
SQL_MAKE_IMPOSSIBLE = """
WITH RECURSIVE doomed(id) AS (
    SELECT value FROM json_each(?2)
    UNION
    SELECT d.task FROM doomed
    JOIN deps d ON d.ns = ?1 AND d.dep = doomed.id
    JOIN tasks t ON t.ns = ?1 AND t.id = d.task AND t.status = 'DEFERRED'
)
UPDATE tasks SET status = 'IMPOSSIBLE', finished = ?3
WHERE ns = ?1 AND status = 'DEFERRED' AND id IN (SELECT id FROM doomed)"""
SQL_HAS_DEPENDANTS = "SELECT 1 FROM deps WHERE ns = ? AND dep = ? LIMIT 1"
# DEFERRED dependants of ?2 whose dependencies are now all COMPLETE (or deleted).
SQL_RELEASABLE = """
SELECT t.id, t.queue FROM deps d JOIN tasks t ON t.ns = d.ns AND t.id = d.task
WHERE d.ns = ?1 AND d.dep = ?2 AND t.status = 'DEFERRED' AND NOT EXISTS (
    SELECT 1 FROM deps d2 JOIN tasks t2 ON t2.ns = d2.ns AND t2.id = d2.dep
    WHERE d2.ns = ?1 AND d2.task = t.id AND t2.status != 'COMPLETE')
ORDER BY t.seq"""
SQL_RELEASE = "UPDATE tasks SET status = 'PENDING' WHERE ns = ? AND id = ? AND status = 'DEFERRED'"

# ---------------------------------------------------------------------------- queues
SQL_QUEUE_REGISTER = "INSERT OR IGNORE INTO queues (ns, queue) VALUES (?, ?)"
SQL_PUSH_TAIL = """
INSERT INTO queue_entries (ns, queue, seq, task_id)
SELECT ?1, ?2, coalesce(max(seq), 0) + 1, ?3 FROM queue_entries WHERE ns = ?1 AND queue = ?2"""
SQL_PUSH_HEAD = """
INSERT INTO queue_entries (ns, queue, seq, task_id)
SELECT ?1, ?2, coalesce(min(seq), 0) - 1, ?3 FROM queue_entries WHERE ns = ?1 AND queue = ?2"""
SQL_QUEUE_HEAD = (
    "SELECT seq, task_id FROM queue_entries WHERE ns = ? AND queue = ? ORDER BY seq LIMIT 1"
)
SQL_QUEUE_POP = "DELETE FROM queue_entries WHERE ns = ? AND queue = ? AND seq = ?"
SQL_QUEUE_TASKS = "SELECT task_id FROM queue_entries WHERE ns = ? AND queue = ? ORDER BY seq"
SQL_QUEUE_LENGTHS = """
SELECT q.queue, count(e.seq) FROM queues q
LEFT JOIN queue_entries e ON e.ns = q.ns AND e.queue = q.queue
WHERE q.ns = ? GROUP BY q.queue ORDER BY q.queue"""
SQL_QUEUED_AMONG = """
SELECT DISTINCT e.task_id FROM json_each(?2) j
CROSS JOIN queue_entries e ON e.ns = ?1 AND e.task_id = j.value AND (?3 IS NULL OR e.queue = ?3)"""
SQL_UNQUEUE = (
    "DELETE FROM queue_entries WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"
)
SQL_WORK_READY = """
SELECT 1 FROM queue_entries WHERE ns = ?1 AND queue IN (SELECT value FROM json_each(?2)) LIMIT 1"""

# ---------------------------------------------------------------------------- running tasks
SQL_TASK_START = """
UPDATE tasks SET status = 'RUNNING', worker_id = ?, pid = ?, started = ?, attempt = attempt + 1
WHERE ns = ? AND id = ? AND status = 'PENDING'"""
SQL_TASK_CLAIMED = "SELECT queue, payload, options, attempt FROM tasks WHERE ns = ? AND id = ?"
SQL_TASK_FINISH = """
UPDATE tasks SET status = ?, result = ?, finished = ?
WHERE ns = ? AND id = ? AND status = 'RUNNING' AND worker_id = ?"""
SQL_TASK_REQUEUE = """
UPDATE tasks SET status = 'PENDING', worker_id = NULL, pid = NULL, started = NULL,
                 attempt = max(attempt - 1, 0)
WHERE ns = ? AND id = ? AND status = 'RUNNING' AND worker_id = ?
"""
SQL_TASK_QUEUE = "SELECT queue FROM tasks WHERE ns = ? AND id = ?"

# ---------------------------------------------------------------------------- workers
SQL_WORKER_STATUS = "SELECT status FROM workers WHERE ns = ? AND worker_id = ?"
SQL_WORKER_REGISTER = """
INSERT OR REPLACE INTO workers (ns, worker_id, status, info, task_id, started, last_seen)
VALUES (?, ?, 'IDLE', ?, NULL, ?, ?)"""
# A transition's worker update; creates the row for a worker that never registered.
SQL_WORKER_SET = """
INSERT INTO workers (ns, worker_id, status, info, task_id, started, last_seen)
VALUES (?1, ?2, ?3, '{}', ?4, ?5, ?5)
ON CONFLICT (ns, worker_id) DO UPDATE
SET status = excluded.status, task_id = excluded.task_id, last_seen = excluded.last_seen"""
SQL_WORKER_SEEN = "UPDATE workers SET last_seen = ? WHERE ns = ? AND worker_id = ?"
SQL_WORKER_EXIT = (
    "UPDATE workers SET status = 'EXITED', last_seen = ? WHERE ns = ? AND worker_id = ?"
)
SQL_WORKERS = """
SELECT worker_id, status, info, task_id, started, last_seen FROM workers
WHERE ns = ? AND (? OR status IN ('IDLE', 'BUSY', 'PAUSED')) ORDER BY started, seq"""
SQL_LOG = """
INSERT INTO worker_log (ns, worker_id, time, command, message, child)
VALUES (?, ?, ?, ?, ?, NULL)"""
SQL_LOG_TAIL = """
SELECT worker_id, child, time, command, message FROM (
    SELECT seq, worker_id, child, time, command, message FROM worker_log
    WHERE ns = ? AND worker_id = ? ORDER BY seq DESC LIMIT ?
) ORDER BY seq"""


def sqlite_path(url: str) -> str:
    """The absolute file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(
            f"invalid SQLite URL {url!r}: use sqlite:///relative/file.db or "
            "sqlite:////absolute/file.db"
        )
    path = url[len(prefix) :]
    if "?" in path or path == ":memory:":
        raise ConfigError(
            f"unsupported SQLite URL {url!r}: give a file path, without query parameters "
            "(workers in other processes must be able to open it)"
        )
    return os.path.abspath(path)


def _ids_json(ids: Sequence[str]) -> str:
    return json.dumps(list(ids))


def _distinct(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _status(value: str | None) -> TaskStatus:
    return TaskStatus.MISSING if value is None else _STATUS[value]


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
        deps = [known[d] for d in task.depends_on]
        if any(s in FAILED_STATUSES for s in deps):
            status = TaskStatus.IMPOSSIBLE
        elif all(s == TaskStatus.COMPLETE for s in deps):
            status = TaskStatus.PENDING
        else:
            status = TaskStatus.DEFERRED
        known[task.id] = status.value
        statuses.append(status)
    return statuses


class SqliteBackend:
    """``base.Backend`` on an SQLite file (see the module docstring for the layout)."""

    def __init__(self, url: str, namespace: str, *, check_version: bool = True) -> None:
        self.namespace = namespace
        self.address = sqlite_path(url)
        self._lock = threading.Lock()  # guards self._conn
        self._watch_lock = threading.Lock()  # guards self._watch
        self._conn = self._connect()
        try:
            self._init_namespace(check_version)
            self._watch = self._connect()  # only polls PRAGMA data_version
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ plumbing
    def _unavailable(self, err: sqlite3.Error) -> BackendUnavailable:
        return BackendUnavailable(f"SQLite database {self.address}: {err}")

    def _connect(self) -> sqlite3.Connection:
        try:
            os.makedirs(os.path.dirname(self.address), exist_ok=True)
            conn = sqlite3.connect(
                self.address,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except OSError as err:
            raise BackendUnavailable(
                f"cannot create the directory of {self.address}: {err}"
            ) from err
        except sqlite3.Error as err:
            raise BackendUnavailable(
                f"cannot open SQLite database {self.address}: {err} (check that the path is a "
                "writable file in a writable directory)"
            ) from err
        return conn

    def _init_namespace(self, check_version: bool) -> None:
        schema = resources.files("runq.backends").joinpath("schema.sql").read_text("utf-8")
        with self._lock:
            try:  # executescript would COMMIT an open transaction: the script brings its own
                self._conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\nCOMMIT;")
            except sqlite3.Error as err:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise BackendUnavailable(
                    f"cannot create runq's tables in {self.address}: {err}"
                ) from err
        with self._write() as conn:
            row = conn.execute(SQL_VERSION_GET, (self.namespace,)).fetchone()
            if row is None:
                conn.execute(SQL_VERSION_SET, (self.namespace, str(SCHEMA_VERSION)))
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
                if isinstance(err, sqlite3.OperationalError):
                    raise self._unavailable(err) from err
                raise

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction("BEGIN")

    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._read() as conn:
            return conn.execute(sql, params).fetchall()

    def _data_version(self) -> int:
        with self._watch_lock:
            try:
                return int(self._watch.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.OperationalError as err:
                raise self._unavailable(err) from err

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
            for sql in SQL_DESTROY:
                conn.execute(sql, (self.namespace,))

    # ------------------------------------------------------------------ submission
    def enqueue(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        if not tasks:
            return []
        now = time.time()
        ns = self.namespace
        with self._write() as conn:
            dep_status = self._check_new(conn, tasks)
            statuses = _initial_statuses(tasks, dep_status)
            conn.executemany(
                SQL_TASK_INSERT,
                (
                    (
                        ns,
                        t.id,
                        t.queue,
                        st.value,
                        json.dumps(t.options),
                        now,
                        now if st is TaskStatus.IMPOSSIBLE else None,
                        t.payload,
                    )
                    for t, st in zip(tasks, statuses, strict=True)
                ),
            )
            conn.executemany(
                SQL_DEP_INSERT,
                (
                    (ns, t.id, pos, dep)
                    for t in tasks
                    for pos, dep in enumerate(dict.fromkeys(t.depends_on))
                ),
            )
            pending = [
                (t.queue, t.id)
                for t, st in zip(tasks, statuses, strict=True)
                if st is TaskStatus.PENDING
            ]
            self._push(conn, SQL_PUSH_TAIL, pending)
        return statuses

    def _check_new(self, conn: sqlite3.Connection, tasks: Sequence[NewTask]) -> dict[str, str]:
        """Raise if a task id exists or a dependency is unknown; return the statuses of the
        dependencies stored before this batch."""
        ids = [t.id for t in tasks]
        dup = _first_duplicate(ids)
        if dup is not None:
            raise ConfigError(f"task id {dup!r} appears twice in one enqueue batch")
        row = conn.execute(SQL_EXISTING_IDS, (self.namespace, _ids_json(ids))).fetchone()
        if row is not None:
            raise ConfigError(
                f"task id {row[0]!r} already exists in queue {self.namespace!r}: "
                "delete it first or use a new id"
            )
        deps = _distinct([d for t in tasks for d in t.depends_on])
        if not deps:
            return {}
        rows = conn.execute(SQL_STATUS_OF, (self.namespace, _ids_json(deps))).fetchall()
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

    def _push(self, conn: sqlite3.Connection, sql: str, entries: list[tuple[str, str]]) -> None:
        """Push (queue, task_id) pairs with SQL_PUSH_TAIL or SQL_PUSH_HEAD, in order."""
        if entries:
            ns = self.namespace
            conn.executemany(SQL_QUEUE_REGISTER, ((ns, q) for q in {q for q, _ in entries}))
            conn.executemany(sql, ((ns, q, tid) for q, tid in entries))

    # ------------------------------------------------------------------ inspection
    def status(self, ids: Sequence[str]) -> list[TaskStatus]:
        rows = self._fetchall(SQL_STATUS, (self.namespace, _ids_json(ids)))
        return [_status(r[0]) for r in rows]

    def records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        ns, distinct = self.namespace, _ids_json(_distinct(ids))
        with self._read() as conn:
            rows = conn.execute(SQL_RECORDS, (ns, _ids_json(ids))).fetchall()
            depends_on: dict[str, list[str]] = {}
            for task_id, dep in conn.execute(SQL_DEPENDS_ON, (ns, distinct)):
                depends_on.setdefault(task_id, []).append(dep)
            dependants: dict[str, list[str]] = {}
            for task_id, dependant in conn.execute(SQL_DEPENDANTS, (ns, distinct)):
                dependants.setdefault(task_id, []).append(dependant)
        return [
            None
            if r[0] is None
            else TaskRecord(
                id=r[0],
                status=_STATUS[r[1]],
                queue=r[2],
                options=json.loads(r[3]),
                worker_id=r[4],
                pid=r[5],
                depends_on=tuple(depends_on.get(r[0], ())),
                dependants=tuple(dependants.get(r[0], ())),
                attempt=r[6],
                times=TaskTimes(r[7], r[8], r[9]),
            )
            for r in rows
        ]

    def payload(self, task_id: str) -> bytes | None:
        rows = self._fetchall(SQL_PAYLOAD, (self.namespace, task_id))
        return bytes(rows[0][0]) if rows else None

    def results(self, ids: Sequence[str]) -> list[bytes | None]:
        rows = self._fetchall(SQL_RESULTS, (self.namespace, _ids_json(ids)))
        return [r[0] for r in rows]

    def times(self, ids: Sequence[str]) -> list[TaskTimes]:
        rows = self._fetchall(SQL_TIMES, (self.namespace, _ids_json(ids)))
        return [TaskTimes(*r) for r in rows]

    def list_tasks(self) -> list[str]:
        return [r[0] for r in self._fetchall(SQL_LIST_TASKS, (self.namespace,))]

    def overview(self) -> dict[TaskStatus, int]:
        return {_STATUS[s]: n for s, n in self._fetchall(SQL_OVERVIEW, (self.namespace,))}

    def queue_tasks(self, queue: str) -> list[str]:
        return [r[0] for r in self._fetchall(SQL_QUEUE_TASKS, (self.namespace, queue))]

    def queue_lengths(self) -> dict[str, int]:
        return dict(self._fetchall(SQL_QUEUE_LENGTHS, (self.namespace,)))

    def deferred(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for task_id, dep in self._fetchall(SQL_DEFERRED, (self.namespace,)):
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
            (unfinished,) = self._fetchall(SQL_COUNT_UNFINISHED, params)[0]
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
    def cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        ns = self.namespace
        with self._write() as conn:
            before = [_status(r[0]) for r in conn.execute(SQL_STATUS, (ns, _ids_json(ids)))]
            queued = (TaskStatus.PENDING, TaskStatus.DEFERRED)
            targets = _distinct([i for i, s in zip(ids, before, strict=True) if s in queued])
            self._cancel(conn, targets)
        return before

    def remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        with self._write() as conn:
            rows = conn.execute(SQL_QUEUED_AMONG, (self.namespace, _ids_json(ids), queue))
            targets = [r[0] for r in rows]
            self._cancel(conn, targets)
        return len(targets)

    def _cancel(self, conn: sqlite3.Connection, targets: list[str]) -> None:
        """PENDING/DEFERRED ``targets`` become CANCELLED, leave their queue, and their
        dependants become IMPOSSIBLE."""
        if targets:
            params = (self.namespace, _ids_json(targets), time.time())
            conn.execute(SQL_CANCEL, params)
            conn.execute(SQL_UNQUEUE, params[:2])
            conn.execute(SQL_MAKE_IMPOSSIBLE, params)

    def delete(self, ids: Sequence[str], check: bool) -> None:
        ns = self.namespace
        with self._write() as conn:
            found = conn.execute(SQL_STATUS_OF, (ns, _ids_json(_distinct(ids)))).fetchall()
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
                conn.execute(SQL_MAKE_IMPOSSIBLE, (ns, _ids_json(incomplete), time.time()))
            params = (ns, _ids_json(list(status)))
            conn.execute(SQL_UNQUEUE, params)
            conn.execute(SQL_DELETE_DEPS, params)
            conn.execute(SQL_DELETE_TASKS, params)

    # ------------------------------------------------------------------ worker transitions
    def register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            row = conn.execute(SQL_WORKER_STATUS, (ns, worker_id)).fetchone()
            if row is not None and row[0] in _ACTIVE_WORKER:
                raise ConfigError(
                    f"worker id {worker_id!r} is already in use by an active worker of queue "
                    f"{ns!r}: choose another id"
                )
            conn.execute(SQL_WORKER_REGISTER, (ns, worker_id, json.dumps(info), now, now))
            conn.execute(SQL_LOG, (ns, worker_id, now, "ALIVE", ""))

    def claim(self, worker_id: str, queues: Sequence[str], pid: int) -> ClaimedTask | None:
        if not self._work_ready(queues):  # a read: idle workers never take the write lock
            return None
        with self._write() as conn:
            return self._claim(conn, worker_id, queues, pid, time.time())

    def _claim(
        self, conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], pid: int, now: float
    ) -> ClaimedTask | None:
        """claim() inside the caller's transaction; a worker marked EXITED or LOST gets None."""
        ns = self.namespace
        row = conn.execute(SQL_WORKER_STATUS, (ns, worker_id)).fetchone()
        if row is not None and row[0] not in _ACTIVE_WORKER:
            return None
        task_id = self._pop(conn, worker_id, queues, pid, now)
        if task_id is None:
            return None
        queue, payload, options, attempt = conn.execute(SQL_TASK_CLAIMED, (ns, task_id)).fetchone()
        conn.execute(SQL_LOG, (ns, worker_id, now, "TASK_START", task_id))
        conn.execute(SQL_WORKER_SET, (ns, worker_id, "BUSY", task_id, now))
        return ClaimedTask(task_id, queue, payload, json.loads(options), attempt)

    def _pop(
        self, conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], pid: int, now: float
    ) -> str | None:
        """Take the head of the first non-empty queue and make it RUNNING; return its id."""
        ns = self.namespace
        for queue in queues:
            while (head := conn.execute(SQL_QUEUE_HEAD, (ns, queue)).fetchone()) is not None:
                seq, task_id = head
                conn.execute(SQL_QUEUE_POP, (ns, queue, seq))
                if conn.execute(SQL_TASK_START, (worker_id, pid, now, ns, task_id)).rowcount:
                    return str(task_id)
        return None

    def finish(
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
            done = self._finish(conn, worker_id, task_id, status, result, now)
            claimed = None
            if next_queues:
                claimed = self._claim(conn, worker_id, next_queues, pid, now)
            if done and claimed is None:
                conn.execute(SQL_WORKER_SET, (self.namespace, worker_id, "IDLE", None, now))
        return done, claimed

    def _finish(
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
        if not conn.execute(SQL_TASK_FINISH, params).rowcount:
            return False
        command = "TASK_COMPLETE" if status is TaskStatus.COMPLETE else "TASK_ERROR"
        conn.execute(SQL_LOG, (ns, worker_id, now, command, task_id))
        if conn.execute(SQL_HAS_DEPENDANTS, (ns, task_id)).fetchone() is None:
            return True
        if status is TaskStatus.COMPLETE:
            released = conn.execute(SQL_RELEASABLE, (ns, task_id)).fetchall()
            conn.executemany(SQL_RELEASE, ((ns, tid) for tid, _ in released))
            self._push(conn, SQL_PUSH_TAIL, [(queue, tid) for tid, queue in released])
        elif status in FAILED_STATUSES:
            conn.execute(SQL_MAKE_IMPOSSIBLE, (ns, json.dumps([task_id]), now))
        return True

    def requeue(self, worker_id: str, task_id: str) -> bool:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            if not conn.execute(SQL_TASK_REQUEUE, (ns, task_id, worker_id)).rowcount:
                return False
            (queue,) = conn.execute(SQL_TASK_QUEUE, (ns, task_id)).fetchone()
            self._push(conn, SQL_PUSH_HEAD, [(queue, task_id)])
            conn.execute(SQL_WORKER_SET, (ns, worker_id, "IDLE", None, now))
        return True

    def wait_for_work(self, worker_id: str, queues: Sequence[str], timeout_s: float) -> None:
        # No message table exists in this contract yet; when one does, wake on it here too.
        self._poll(lambda: self._work_ready(queues), timeout_s)

    def _work_ready(self, queues: Sequence[str]) -> bool:
        return bool(self._fetchall(SQL_WORK_READY, (self.namespace, _ids_json(queues))))

    def worker_log(self, worker_id: str, command: str, message: str) -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            conn.execute(SQL_LOG, (ns, worker_id, now, command, message))
            conn.execute(SQL_WORKER_SEEN, (now, ns, worker_id))

    def worker_exit(self, worker_id: str, message: str = "") -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            conn.execute(SQL_WORKER_EXIT, (now, ns, worker_id))
            conn.execute(SQL_LOG, (ns, worker_id, now, "STOP", message))

    def workers(self, include_exited: bool = False) -> list[WorkerRecord]:
        rows = self._fetchall(SQL_WORKERS, (self.namespace, include_exited))
        return [
            WorkerRecord(worker_id, status, json.loads(info), task_id, started, last_seen)
            for worker_id, status, info, task_id, started, last_seen in rows
        ]

    def worker_log_tail(self, worker_id: str, n: int) -> list[LogEntry]:
        limit = n if n > 0 else -1
        rows = self._fetchall(SQL_LOG_TAIL, (self.namespace, worker_id, limit))
        return [LogEntry(*r) for r in rows]
