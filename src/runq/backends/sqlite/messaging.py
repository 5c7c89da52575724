"""Worker messaging on SQLite: messages, pause/resume, forgetting workers, saved configs, the
worker environment (``base.Backend``'s "messaging" section).

Tables (``schema.sql``): ``messages`` (each worker's FIFO, ordered by message id),
``message_responses``, ``worker_configs``, ``worker_envir``; the message clock is the
``message_clock`` key of ``meta`` (the last id given, in microseconds). Each transition is one
``BEGIN IMMEDIATE`` transaction. ``has_message`` also runs inside ``claim`` and ``finish``,
which take no task while the worker has a message waiting.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from runq.backends.sqlite import sql
from runq.backends.sqlite.core import SqliteCore, ids_json
from runq.models import Message

__all__ = ["SqliteMessaging", "has_message", "message_id"]


def message_id(micros: int) -> str:
    """The message id for a clock reading in microseconds: ``"<seconds>.<micro>"``."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def has_message(conn: sqlite3.Connection, ns: str, worker_id: str) -> bool:
    """Whether a message waits for ``worker_id`` (in ``conn``'s transaction)."""
    return conn.execute(sql.MSG_PENDING, (ns, worker_id)).fetchone() is not None


class SqliteMessaging(SqliteCore):
    """The messaging verbs of ``SqliteBackend``."""

    def _has_message(self, worker_id: str) -> bool:
        """``has_message`` in a read transaction of its own."""
        with self._read() as conn:
            return has_message(conn, self.namespace, worker_id)

    # ------------------------------------------------------------------ messages
    def _message_send(
        self, worker_ids: Sequence[str] | None, command: str, args: bytes
    ) -> tuple[str, list[str]]:
        ns = self.namespace
        with self._write() as conn:
            if worker_ids is None:
                targets = [r[0] for r in conn.execute(sql.ACTIVE_WORKERS, (ns,))]
            else:
                targets = list(dict.fromkeys(worker_ids))
            micros = int(time.time() * 1_000_000)
            row = conn.execute(sql.CLOCK_GET, (ns,)).fetchone()
            if row is not None and micros <= int(row[0]):
                micros = int(row[0]) + 1
            conn.execute(sql.CLOCK_SET, (ns, str(micros)))
            mid = message_id(micros)
            conn.executemany(sql.MSG_INSERT, ((ns, w, mid, command, args) for w in targets))
        return mid, targets

    def message_take(self, worker_id: str) -> list[Message]:
        if not self._has_message(worker_id):  # a read: no write lock when there is none
            return []
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            rows = conn.execute(sql.MSG_TAKE, (ns, worker_id)).fetchall()
            conn.execute(sql.MSG_DELETE, (ns, worker_id))
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
            conn.execute(sql.RESP_PUT, (ns, worker_id, message_id, response))
            conn.execute(sql.LOG, (ns, worker_id, now, "RESPONSE", f"{command} {message_id}"))
            conn.execute(sql.WORKER_SEEN, (now, ns, worker_id))

    def message_responses(self, message_id: str, worker_ids: Sequence[str]) -> list[bytes | None]:
        params = (self.namespace, message_id, ids_json(worker_ids))
        return [None if r[0] is None else bytes(r[0]) for r in self._fetchall(sql.RESP_GET, params)]

    def message_delete_responses(self, message_id: str, worker_ids: Sequence[str]) -> None:
        with self._write() as conn:
            conn.execute(sql.RESP_DELETE, (self.namespace, message_id, ids_json(worker_ids)))

    def message_response_ids(self, worker_id: str) -> list[str]:
        return [r[0] for r in self._fetchall(sql.RESP_IDS, (self.namespace, worker_id))]

    def wait_response(self, message_id: str, worker_ids: Sequence[str], timeout_s: float) -> None:
        wanted = list(dict.fromkeys(worker_ids))
        params = (self.namespace, message_id, json.dumps(wanted))

        def all_answered() -> bool:
            return bool(self._fetchall(sql.RESP_COUNT, params)[0][0] >= len(wanted))

        self._poll(all_answered, timeout_s)

    # ------------------------------------------------------------------ workers
    def worker_pause(self, worker_id: str, paused: bool) -> None:
        ns, now = self.namespace, time.time()
        status, event = ("PAUSED", "PAUSE") if paused else ("IDLE", "RESUME")
        with self._write() as conn:
            if conn.execute(sql.WORKER_PAUSE, (status, now, ns, worker_id)).rowcount:
                conn.execute(sql.LOG, (ns, worker_id, now, event, ""))

    def worker_delete(self, worker_ids: Sequence[str]) -> list[str]:
        ns = self.namespace
        with self._write() as conn:
            gone = [r[0] for r in conn.execute(sql.GONE_AMONG, (ns, ids_json(worker_ids)))]
            for statement in sql.WORKER_FORGET:
                conn.execute(statement, (ns, ids_json(gone)))
        return gone

    # ------------------------------------------------------------------ configs, environment
    def config_save(self, name: str, config_json: str, overwrite: bool) -> bool:
        with self._write() as conn:
            statement = sql.CONFIG_REPLACE if overwrite else sql.CONFIG_INSERT
            return bool(conn.execute(statement, (self.namespace, name, config_json)).rowcount)

    def config_read(self, name: str) -> str | None:
        rows = self._fetchall(sql.CONFIG_READ, (self.namespace, name))
        return str(rows[0][0]) if rows else None

    def config_list(self) -> list[str]:
        return [r[0] for r in self._fetchall(sql.CONFIG_LIST, (self.namespace,))]

    def envir_save(self, payload: bytes | None) -> None:
        with self._write() as conn:
            if payload is None:
                conn.execute(sql.ENVIR_DELETE, (self.namespace,))
            else:
                conn.execute(sql.ENVIR_SET, (self.namespace, payload))

    def envir_load(self) -> bytes | None:
        rows = self._fetchall(sql.ENVIR_GET, (self.namespace,))
        return bytes(rows[0][0]) if rows else None
