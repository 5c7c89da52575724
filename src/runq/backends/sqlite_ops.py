"""Worker operations on SQLite: messages, pause/resume, saved configs, the worker environment.

A mixin of ``sqlite.SqliteBackend`` (``base.Backend``'s "worker operations" section). Tables
(``schema.sql``): ``messages`` (each worker's FIFO, ordered by message id), ``message_responses``,
``worker_configs``, ``worker_envir``; the message clock is the ``message_clock`` key of ``meta``
(the last id given, in microseconds). Each transition is one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from runq.backends import sqlite_sql as sql
from runq.models import Message

__all__ = ["SqliteOpsMixin", "message_id"]

ACTIVE = "('IDLE', 'BUSY', 'PAUSED')"
MSG_PENDING = "SELECT 1 FROM messages WHERE ns = ? AND worker_id = ? LIMIT 1"
MSG_INSERT = "INSERT INTO messages (ns, worker_id, id, command, args) VALUES (?, ?, ?, ?, ?)"
MSG_TAKE = "SELECT id, command, args FROM messages WHERE ns = ? AND worker_id = ? ORDER BY id"
MSG_DELETE = "DELETE FROM messages WHERE ns = ? AND worker_id = ?"
CLOCK_GET = "SELECT value FROM meta WHERE ns = ? AND key = 'message_clock'"
CLOCK_SET = "INSERT OR REPLACE INTO meta (ns, key, value) VALUES (?, 'message_clock', ?)"
ACTIVE_WORKERS = f"""
SELECT worker_id FROM workers WHERE ns = ? AND status IN {ACTIVE} ORDER BY started, seq"""
RESP_PUT = """
INSERT OR REPLACE INTO message_responses (ns, worker_id, id, response) VALUES (?, ?, ?, ?)"""
RESP_GET = """
SELECT r.response FROM json_each(?3) j
LEFT JOIN message_responses r ON r.ns = ?1 AND r.worker_id = j.value AND r.id = ?2
ORDER BY j.key"""
RESP_COUNT = """
SELECT count(*) FROM message_responses
WHERE ns = ?1 AND id = ?2 AND worker_id IN (SELECT value FROM json_each(?3))"""
RESP_DELETE = """
DELETE FROM message_responses
WHERE ns = ?1 AND id = ?2 AND worker_id IN (SELECT value FROM json_each(?3))"""
RESP_IDS = "SELECT id FROM message_responses WHERE ns = ? AND worker_id = ? ORDER BY id"
WORKER_PAUSE = f"""
UPDATE workers SET status = ?, last_seen = ?
WHERE ns = ? AND worker_id = ? AND status IN {ACTIVE}"""
GONE_AMONG = """
SELECT w.worker_id FROM json_each(?2) j
CROSS JOIN workers w ON w.ns = ?1 AND w.worker_id = j.value
WHERE w.status IN ('EXITED', 'LOST')"""
WORKER_FORGET = [
    f"DELETE FROM {table} WHERE ns = ?1 AND worker_id IN (SELECT value FROM json_each(?2))"
    for table in ("workers", "worker_log", "messages", "message_responses")
]
CONFIG_INSERT = "INSERT OR IGNORE INTO worker_configs (ns, name, config) VALUES (?, ?, ?)"
CONFIG_REPLACE = "INSERT OR REPLACE INTO worker_configs (ns, name, config) VALUES (?, ?, ?)"
CONFIG_READ = "SELECT config FROM worker_configs WHERE ns = ? AND name = ?"
CONFIG_LIST = "SELECT name FROM worker_configs WHERE ns = ? ORDER BY name"
ENVIR_SET = "INSERT OR REPLACE INTO worker_envir (ns, payload) VALUES (?, ?)"
ENVIR_DELETE = "DELETE FROM worker_envir WHERE ns = ?"
ENVIR_GET = "SELECT payload FROM worker_envir WHERE ns = ?"


def message_id(micros: int) -> str:
    """The message id for a clock reading in microseconds: ``"<seconds>.<micro>"``."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class SqliteOpsMixin:
    """The "worker operations" verbs of ``base.Backend`` for ``SqliteBackend``."""

    namespace: str

    if TYPE_CHECKING:

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _fetchall(self, statement: str, params: Sequence[Any]) -> list[Any]: ...
        def _poll(self, ready: Callable[[], bool], timeout_s: float) -> None: ...

    # ------------------------------------------------------------------ hot-path helpers
    def _has_messages(self, worker_id: str, conn: sqlite3.Connection | None = None) -> bool:
        """Whether a message waits for ``worker_id`` (in ``conn``'s transaction if given)."""
        params = (self.namespace, worker_id)
        if conn is not None:
            return conn.execute(MSG_PENDING, params).fetchone() is not None
        return bool(self._fetchall(MSG_PENDING, params))

    # ------------------------------------------------------------------ messages
    def _message_send(
        self, worker_ids: Sequence[str] | None, command: str, args: bytes
    ) -> tuple[str, list[str]]:
        ns = self.namespace
        with self._write() as conn:
            if worker_ids is None:
                targets = [r[0] for r in conn.execute(ACTIVE_WORKERS, (ns,))]
            else:
                targets = list(dict.fromkeys(worker_ids))
            micros = int(time.time() * 1_000_000)
            row = conn.execute(CLOCK_GET, (ns,)).fetchone()
            if row is not None and micros <= int(row[0]):
                micros = int(row[0]) + 1
            conn.execute(CLOCK_SET, (ns, str(micros)))
            mid = message_id(micros)
            conn.executemany(MSG_INSERT, ((ns, w, mid, command, args) for w in targets))
        return mid, targets

    def message_take(self, worker_id: str) -> list[Message]:
        if not self._has_messages(worker_id):  # a read: no write lock when there is none
            return []
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            rows = conn.execute(MSG_TAKE, (ns, worker_id)).fetchall()
            conn.execute(MSG_DELETE, (ns, worker_id))
            conn.executemany(
                sql.LOG, ((ns, worker_id, now, "MESSAGE", f"{c} {i}") for i, c, _ in rows)
            )
            conn.execute(sql.WORKER_SEEN, (now, ns, worker_id))
        return [Message(i, c, bytes(a)) for i, c, a in rows]

    def _message_respond(
        self, worker_id: str, message_id: str, command: str, response: bytes
    ) -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            conn.execute(RESP_PUT, (ns, worker_id, message_id, response))
            conn.execute(sql.LOG, (ns, worker_id, now, "RESPONSE", f"{command} {message_id}"))
            conn.execute(sql.WORKER_SEEN, (now, ns, worker_id))

    def message_responses(self, message_id: str, worker_ids: Sequence[str]) -> list[bytes | None]:
        rows = self._fetchall(RESP_GET, (self.namespace, message_id, json.dumps(list(worker_ids))))
        return [None if r[0] is None else bytes(r[0]) for r in rows]

    def message_delete_responses(self, message_id: str, worker_ids: Sequence[str]) -> None:
        with self._write() as conn:
            conn.execute(RESP_DELETE, (self.namespace, message_id, json.dumps(list(worker_ids))))

    def message_response_ids(self, worker_id: str) -> list[str]:
        return [r[0] for r in self._fetchall(RESP_IDS, (self.namespace, worker_id))]

    def wait_response(self, message_id: str, worker_ids: Sequence[str], timeout_s: float) -> None:
        wanted = list(dict.fromkeys(worker_ids))
        params = (self.namespace, message_id, json.dumps(wanted))

        def all_answered() -> bool:
            return bool(self._fetchall(RESP_COUNT, params)[0][0] >= len(wanted))

        self._poll(all_answered, timeout_s)

    # ------------------------------------------------------------------ workers
    def worker_pause(self, worker_id: str, paused: bool) -> None:
        ns, now = self.namespace, time.time()
        status, event = ("PAUSED", "PAUSE") if paused else ("IDLE", "RESUME")
        with self._write() as conn:
            if conn.execute(WORKER_PAUSE, (status, now, ns, worker_id)).rowcount:
                conn.execute(sql.LOG, (ns, worker_id, now, event, ""))

    def worker_delete(self, worker_ids: Sequence[str]) -> list[str]:
        ns = self.namespace
        with self._write() as conn:
            gone = [r[0] for r in conn.execute(GONE_AMONG, (ns, json.dumps(list(worker_ids))))]
            for statement in WORKER_FORGET:
                conn.execute(statement, (ns, json.dumps(gone)))
        return gone

    # ------------------------------------------------------------------ configs, environment
    def config_save(self, name: str, config_json: str, overwrite: bool) -> bool:
        with self._write() as conn:
            statement = CONFIG_REPLACE if overwrite else CONFIG_INSERT
            return bool(conn.execute(statement, (self.namespace, name, config_json)).rowcount)

    def config_read(self, name: str) -> str | None:
        rows = self._fetchall(CONFIG_READ, (self.namespace, name))
        return str(rows[0][0]) if rows else None

    def config_list(self) -> list[str]:
        return [r[0] for r in self._fetchall(CONFIG_LIST, (self.namespace,))]

    def envir_save(self, payload: bytes | None) -> None:
        with self._write() as conn:
            if payload is None:
                conn.execute(ENVIR_DELETE, (self.namespace,))
            else:
                conn.execute(ENVIR_SET, (self.namespace, payload))

    def envir_load(self) -> bytes | None:
        rows = self._fetchall(ENVIR_GET, (self.namespace,))
        return bytes(rows[0][0]) if rows else None
